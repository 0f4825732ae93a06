//! The character classes of RFC 9110 §5.5–§5.6 that the body decoder checks by hand (httparse
//! checks the head, but chunk extensions and trailer fields are ours to parse).

/// tchar (RFC 9110 §5.6.2): the characters of a token, such as a field name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// How many bytes at the start of `bytes` form a token (0: none).
pub fn token_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&b| is_tchar(b)).count()
}

/// A byte that may appear in a field value (RFC 9110 §5.5): VCHAR, obs-text, space or tab; never
/// CR, LF, NUL or another control byte.
pub fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// The length of the quoted-string at the start of `bytes`, both quotes included (RFC 9110
/// §5.6.4), or None if it does not end or holds a control byte.
pub fn quoted_string_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return Some(i + 1),
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            b'\\' => match bytes.get(i + 1) {
                Some(&escaped) if is_field_value_byte(escaped) => i += 2,
                _ => return None,
            },
            // qdtext: a field-value byte other than '"' and '\' (handled above).
            b if is_field_value_byte(b) => i += 1,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_stop_at_separators() {
        assert_eq!(token_len(b"name=value"), 4);
        assert_eq!(token_len(b"X-Trace_1.2~!: v"), 13);
        assert_eq!(token_len(b" name"), 0);
        assert_eq!(token_len(b"a\"b"), 1);
        assert_eq!(token_len(b"a(b"), 1);
        assert_eq!(token_len(b"caf\xc3\xa9"), 3);
    }

    #[test]
    fn field_values_refuse_control_bytes() {
        for b in [0u8, b'\r', b'\n', 0x01, 0x0b, 0x1f, 0x7f] {
            assert!(!is_field_value_byte(b), "{b:#x}");
        }
        for b in [b'\t', b' ', b'a', b'~', 0x80, 0xff] {
            assert!(is_field_value_byte(b), "{b:#x}");
        }
    }

    #[test]
    fn quoted_strings_end_at_an_unescaped_quote() {
        assert_eq!(quoted_string_len(b"\"\""), Some(2));
        assert_eq!(quoted_string_len(b"\"a b\";x"), Some(5));
        assert_eq!(quoted_string_len(b"\"a\\\"b\""), Some(6));
        assert_eq!(quoted_string_len(b"\"open"), None);
        assert_eq!(quoted_string_len(b"\"a\\"), None);
        assert_eq!(quoted_string_len(b"\"a\rb\""), None);
        assert_eq!(quoted_string_len(b"\"a\0b\""), None);
        assert_eq!(quoted_string_len(b"\"a\\\rb\""), None);
        assert_eq!(quoted_string_len(b"plain"), None);
    }
}
