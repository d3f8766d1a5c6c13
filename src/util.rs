//! Small pure helpers: times, random ids, secrets, percent-decoding, JSON string quoting.

use rand::RngCore;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-11-27T10:23:58.123Z` for a time in milliseconds since the epoch.
pub fn iso_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

/// The time `iso_ms` writes (`2026-11-27T10:23:58.123Z`; the fraction may be absent or have 1 to
/// 3 digits), in milliseconds since the epoch; `None` for anything else.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let milli = match &b[19..] {
        [b'Z'] => 0,
        [b'.', frac @ .., b'Z'] if (1..=3).contains(&frac.len()) => {
            let n = num(20..20 + frac.len())?;
            n * 10i64.pow(3 - frac.len() as u32)
        }
        _ => return None,
    };
    if !(1..=12).contains(&m) || h > 23 || min > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32)?;
    Some(days * 86_400_000 + h * 3_600_000 + min * 60_000 + sec * 1000 + milli)
}

/// Howard Hinnant's civil-to-days algorithm; `None` for a day the month does not have.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d == 0 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new public id: 24 lowercase hex characters from the OS-seeded CSPRNG.
pub fn new_id() -> String {
    random_hex(12)
}

/// A new API key: 40 hex characters (160 random bits).
pub fn new_api_key() -> String {
    random_hex(20)
}

/// True for the ids this server hands out (24 lowercase hex characters).
pub fn is_id(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Step ids: 1 to 64 characters of `A-Z a-z 0-9 _ -`.
pub fn is_step_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Percent-decodes a query-string component (`+` is a space). Invalid escapes stay as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A Rust string as a JSON string literal.
pub fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Password rule: at least 8 characters with a letter, a digit and another symbol, and at most
/// 1024 bytes (the longest secret an `Authorization` header is read with).
pub fn password_ok(p: &str) -> bool {
    p.chars().count() >= 8
        && p.len() <= 1024
        && p.chars().any(|c| c.is_alphabetic())
        && p.chars().any(|c| c.is_ascii_digit())
        && p.chars().any(|c| !c.is_alphanumeric())
}

/// E-mail rule: `local@domain`, at most 254 characters, no spaces, no control characters and no
/// colon (HTTP Basic splits `email:secret` at the first colon, so such a user could never sign in).
pub fn email_ok(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && e.len() <= 254
                && !e
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ':')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_formats_known_instants() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_795_774_638_123), "2026-11-27T10:17:18.123Z");
        assert_eq!(iso_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn iso_times_parse_back() {
        for ms in [0, 1_795_774_638_123, 951_782_400_000, 1_700_000_000_001] {
            assert_eq!(parse_iso_ms(&iso_ms(ms)), Some(ms));
        }
        assert_eq!(
            parse_iso_ms("2026-11-27T10:23:58Z"),
            Some(1_795_775_038_000)
        );
        assert_eq!(
            parse_iso_ms("2026-11-27T10:23:58.1Z"),
            Some(1_795_775_038_100)
        );
        for bad in [
            "",
            "2026-11-27",
            "2026-02-30T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T10:23:58.1234Z",
            "2026-11-27 10:23:58Z",
            "2026-11-27T10:23:58+01:00",
        ] {
            assert_eq!(parse_iso_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_24_hex_and_distinct() {
        let a = new_id();
        assert!(is_id(&a), "{a}");
        assert_ne!(a, new_id());
        assert!(!is_id("65F0C0FFEE0000000000ABCD"));
        assert!(!is_id("../etc/passwd"));
    }

    #[test]
    fn step_ids() {
        assert!(is_step_id("step_1-A"));
        assert!(!is_step_id(""));
        assert!(!is_step_id("a.b"));
        assert!(!is_step_id(&"a".repeat(65)));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("page%5Bsize%5D"), "page[size]");
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
