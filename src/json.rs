//! JSON written by hand on the exchange's path, where a general serializer would scan every
//! string byte by byte: the audit line and the minted token's claims. Output is byte for byte
//! what serde_json writes for the same values (tested here and by their users).

use std::io::Write as _;

/// `value` as a JSON string, escaped as serde_json escapes: `"`, `\\` and control characters;
/// everything else, non-ASCII included, as is.
pub fn write_string(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = value.as_bytes();
    if !needs_escaping(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// Whether `bytes` hold a `"`, a `\\` or a control character. Two scans that run on vectors
/// (memchr's search and a byte minimum) rather than one branch per byte: most values are clean.
fn needs_escaping(bytes: &[u8]) -> bool {
    memchr::memchr2(b'"', b'\\', bytes).is_some()
        || bytes.iter().fold(u8::MAX, |m, &b| m.min(b)) < 0x20
}

/// `,"name":"value"`, or nothing for no value.
pub fn member(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        write_string(out, value);
    }
}

/// `,"name":N`.
pub fn member_i64(out: &mut Vec<u8>, name: &str, value: i64) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(value: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, value);
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "q\"b\\s/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}é\u{2028}😀 end".into(),
        ];
        // Every ASCII byte, alone and at every position of a value longer than a vector, so that
        // a byte the scans miss in any lane shows.
        for b in 0u8..0x80 {
            let c = char::from(b);
            cases.push(c.to_string());
            for at in [0, 1, 15, 16, 17, 31, 32, 63, 64, 100] {
                let mut long = "x".repeat(101);
                long.replace_range(at..=at, &c.to_string());
                cases.push(long);
            }
        }
        for value in &cases {
            let theirs = serde_json::to_string(value).expect("serializes");
            assert_eq!(ours(value), theirs, "{value:?}");
        }
    }

    #[test]
    fn only_quotes_backslashes_and_control_characters_need_escaping() {
        assert!(!needs_escaping(b""));
        assert!(!needs_escaping(
            "plain text, spaces ~ \u{7f} é 😀".as_bytes()
        ));
        assert!(!needs_escaping(&[b' '; 100]));
        for bad in [b'"', b'\\', 0, 0x1f, b'\n'] {
            for at in [0, 15, 16, 31, 32, 99] {
                let mut value = vec![b'x'; 100];
                value[at] = bad;
                assert!(needs_escaping(&value), "byte {bad:#x} at {at}");
            }
        }
    }

    #[test]
    fn members_are_written_only_when_present() {
        let mut out = Vec::new();
        member(&mut out, "a", Some("x\"y"));
        member(&mut out, "b", None);
        member_i64(&mut out, "n", -42);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            r#","a":"x\"y","n":-42"#
        );
    }
}
