//! JSON string escaping for `--log-format json` (RFC 8259 §7), on bytes, without allocating.
//!
//! Log text is mostly valid UTF-8, but a request line or header may carry other bytes: those are
//! read as Latin-1 (each byte the code point of the same number, as WSGI reads them), so every
//! line is valid JSON whatever a client sent. A hand-written escaper rather than serde_json: it
//! works on bytes in place of a `&str` and appends to the access buffer directly.

/// Appends `text` as a JSON string, quotes included.
pub fn append_string(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    append_escaped(out, text);
    out.push(b'"');
}

/// Appends `text` escaped for the inside of a JSON string (no quotes).
pub fn append_escaped(out: &mut Vec<u8>, text: &[u8]) {
    for chunk in text.utf8_chunks() {
        append_valid(out, chunk.valid().as_bytes());
        for &byte in chunk.invalid() {
            // Latin-1: U+0080..U+00FF, two bytes of UTF-8.
            out.extend_from_slice(char::from(byte).encode_utf8(&mut [0; 2]).as_bytes());
        }
    }
}

/// Makes the bytes from `start` to the end of `out` a JSON string's inside, in place: nothing to
/// do (and nothing copied) when they need no escape, as an IPv4 address never does.
pub fn escape_tail(out: &mut Vec<u8>, start: usize) {
    let tail = &out[start..];
    if tail
        .iter()
        .all(|&b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\')
    {
        return;
    }
    let raw = out.split_off(start);
    append_escaped(out, &raw);
}

/// Valid UTF-8: only quotes, backslashes and control characters change.
fn append_valid(out: &mut Vec<u8>, text: &[u8]) {
    let mut plain_from = 0;
    for (i, &byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[plain_from..i]);
        plain_from = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&text[plain_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &[u8]) -> String {
        let mut out = Vec::new();
        append_string(&mut out, text);
        String::from_utf8(out).expect("escaped text is UTF-8")
    }

    #[test]
    fn plain_text_is_only_quoted() {
        assert_eq!(escaped(b"GET / HTTP/1.1"), r#""GET / HTTP/1.1""#);
        assert_eq!(escaped("café ☕".as_bytes()), "\"café ☕\"");
        assert_eq!(escaped(b""), r#""""#);
    }

    #[test]
    fn quotes_backslashes_and_controls_are_escaped() {
        assert_eq!(escaped(br#"say "hi"\"#), r#""say \"hi\"\\""#);
        assert_eq!(
            escaped(b"Traceback:\n  line 1\r\n\tx"),
            r#""Traceback:\n  line 1\r\n\tx""#
        );
        assert_eq!(escaped(b"\x00\x1b\x1f"), r#""\u0000\u001b\u001f""#);
        // DEL is allowed unescaped (RFC 8259 §7 escapes only U+0000..U+001F).
        assert_eq!(escaped(b"\x7f"), "\"\x7f\"");
    }

    #[test]
    fn bytes_that_are_not_utf8_read_as_latin1() {
        assert_eq!(escaped(b"caf\xe9"), "\"café\"");
        assert_eq!(escaped(b"\xff\xfe\""), "\"ÿþ\\\"\"");
    }

    #[test]
    fn serde_json_reads_back_what_was_escaped() {
        let inputs: [&[u8]; 5] = [
            b"a \"quoted\" \\ path",
            b"multi\nline\ntraceback",
            b"\x01\x02 controls \x1f",
            "unicode ✓ and \u{2028}".as_bytes(),
            b"mixed \xe9\xc3\xa9 bytes",
        ];
        for input in inputs {
            let json = escaped(input);
            let back: String = serde_json::from_str(&json).expect("valid JSON");
            let expected: String = input
                .utf8_chunks()
                .flat_map(|c| {
                    c.valid()
                        .chars()
                        .chain(c.invalid().iter().map(|&b| char::from(b)))
                })
                .collect();
            assert_eq!(back, expected, "{json}");
        }
    }

    #[test]
    fn escape_tail_leaves_plain_text_and_fixes_the_rest() {
        let mut out = b"{\"remote\":\"".to_vec();
        let start = out.len();
        out.extend_from_slice(b"127.0.0.1");
        escape_tail(&mut out, start);
        assert_eq!(out, b"{\"remote\":\"127.0.0.1");
        let start = out.len();
        out.extend_from_slice(b"a\"b\n");
        escape_tail(&mut out, start);
        assert_eq!(out, b"{\"remote\":\"127.0.0.1a\\\"b\\n");
    }
}
