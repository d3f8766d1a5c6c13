//! Snapshot values as JSON text, kept exactly as the client wrote them.
//!
//! Why: a snapshot must come back as it was sent: the same numbers without rounding or
//! re-formatting (`1e400`, `12345678901234567890123`, `-0.0`), the same members in the same order,
//! the same strings. Parsing into a tree and printing it again cannot promise that, so the value's
//! text is taken from the body as it is (serde_json's `RawValue`, which also checks it without
//! recursion) and only the whitespace between tokens is removed.

use crate::error::{Error, Result};

/// The compact form of a valid JSON text: every byte outside strings that is JSON whitespace is
/// dropped; everything else is kept as written. Refuses values nested deeper than `max_depth`.
/// `raw` must already be valid JSON.
pub fn compact(raw: &str, max_depth: usize) -> Result<String> {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut depth = 0usize;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => continue,
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Error::invalid(
                        "/data/attributes/snapshot",
                        format!("the snapshot is nested more than {max_depth} levels deep (max_json_depth)"),
                    ));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn keeps_tokens_drops_whitespace() {
        let raw = "{ \"a b\" : [ 1e400 , -0.0,\n\t12345678901234567890123 ], \"s\" : \"x \\\" y\\\\\" , \"u\":\"\\u00e9 é\" }";
        assert_eq!(
            compact(raw, 10).unwrap(),
            "{\"a b\":[1e400,-0.0,12345678901234567890123],\"s\":\"x \\\" y\\\\\",\"u\":\"\\u00e9 é\"}"
        );
        assert_eq!(compact("null", 1).unwrap(), "null");
        assert_eq!(compact("\" [ \"", 0).unwrap(), "\" [ \"");
    }

    #[test]
    fn depth_limit() {
        assert!(compact("[[[]]]", 3).is_ok());
        let e = compact("[[[[]]]]", 3).unwrap_err();
        assert_eq!(e.kind.status(), 400);
        assert!(compact("\"[[[[[[\"", 1).is_ok());
    }
}
