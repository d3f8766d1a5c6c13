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
///
/// Works on bytes, copying the runs between whitespace: every byte it looks at (quotes,
/// backslashes, brackets, whitespace) is ASCII, and UTF-8 never uses ASCII byte values inside a
/// multi-byte character, so a run always starts and ends on a character boundary.
pub fn compact(raw: &str, max_depth: usize) -> Result<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut depth = 0usize;
    let mut run = 0; // start of the bytes not yet copied
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Skip the string: its whitespace is content.
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                out.extend_from_slice(&b[run..i]);
                run = i + 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Error::invalid(
                        "/data/attributes/snapshot",
                        format!("the snapshot is nested more than {max_depth} levels deep (max_json_depth)"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    out.extend_from_slice(&b[run.min(b.len())..]);
    String::from_utf8(out).map_err(|_| Error::internal("compacting a JSON text broke its UTF-8"))
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
