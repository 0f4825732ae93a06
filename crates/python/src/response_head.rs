//! A response head built from an application's status and header fields, with the checks both
//! interfaces make (WSGI's `str` fields arrive here as latin-1 bytes, ASGI's as they are): a
//! name that is not a token, a line break or control character in a value, a Content-Length that
//! is not one number. Hop-by-hop fields are reported apart, since WSGI refuses them and ASGI
//! leaves them out (the connection frames the response itself).

use std::borrow::Cow;

use tern_core::service::ResponseHead;

/// Headers only the server may set (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&[u8]] = &[
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailer",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
];

/// Why a header field was not added.
#[derive(Debug)]
pub enum FieldError {
    /// A hop-by-hop field: the server's business, not the application's.
    HopByHop,
    /// Malformed: the message says what is wrong.
    Invalid(String),
}

/// Collects checked header lines into a [`ResponseHead`].
pub struct HeadBuilder {
    head: ResponseHead,
}

impl HeadBuilder {
    pub fn new(status: u16, reason: Cow<'static, str>) -> Self {
        HeadBuilder {
            head: ResponseHead {
                status,
                reason,
                header_lines: Vec::with_capacity(128),
                content_length: None,
                length_in_headers: false,
                has_server: false,
                has_date: false,
            },
        }
    }

    /// Checks one field and appends it as `Name: value\r\n`.
    pub fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), FieldError> {
        let shown = || String::from_utf8_lossy(name).into_owned();
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if name.is_empty() || !name.iter().all(token) {
            return Err(FieldError::Invalid(format!(
                "invalid header name {:?}",
                shown()
            )));
        }
        if HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop)) {
            return Err(FieldError::HopByHop);
        }
        if let Some(&bad) = value
            .iter()
            .find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            let what = if bad == b'\r' || bad == b'\n' {
                "a line break"
            } else {
                "a control character"
            };
            return Err(FieldError::Invalid(format!(
                "value of header {} contains {what}",
                shown()
            )));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let digits = value.trim_ascii();
            let length = std::str::from_utf8(digits)
                .ok()
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok())
                .ok_or_else(|| {
                    FieldError::Invalid(format!(
                        "Content-Length {:?} is not a number",
                        String::from_utf8_lossy(value)
                    ))
                })?;
            if self.head.length_in_headers {
                if self.head.content_length != Some(length) {
                    return Err(FieldError::Invalid(
                        "conflicting Content-Length headers".into(),
                    ));
                }
                return Ok(());
            }
            self.head.content_length = Some(length);
            self.head.length_in_headers = true;
        } else if name.eq_ignore_ascii_case(b"server") {
            self.head.has_server = true;
        } else if name.eq_ignore_ascii_case(b"date") {
            self.head.has_date = true;
        }
        let lines = &mut self.head.header_lines;
        lines.extend_from_slice(name);
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(value);
        lines.extend_from_slice(b"\r\n");
        Ok(())
    }

    pub fn finish(self) -> ResponseHead {
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_rendered() {
        let mut builder = HeadBuilder::new(200, Cow::Borrowed("OK"));
        builder.add(b"content-type", b"text/plain").unwrap();
        builder.add(b"Content-Length", b" 5 ").unwrap();
        builder.add(b"content-length", b"5").unwrap();
        assert!(matches!(
            builder.add(b"Transfer-Encoding", b"chunked"),
            Err(FieldError::HopByHop)
        ));
        assert!(matches!(
            builder.add(b"x-a", b"1\r\nx: y"),
            Err(FieldError::Invalid(_))
        ));
        assert!(matches!(
            builder.add(b"bad name", b"1"),
            Err(FieldError::Invalid(_))
        ));
        assert!(matches!(
            builder.add(b"content-length", b"6"),
            Err(FieldError::Invalid(_))
        ));
        let head = builder.finish();
        assert_eq!(head.content_length, Some(5));
        assert_eq!(
            head.header_lines,
            b"content-type: text/plain\r\nContent-Length:  5 \r\n"
        );
    }
}
