//! Writing a response's head: the status line, the headers its handler chose (see
//! [`crate::message::response`]) and the ones every response carries.
//!
//! The writer adds the headers every response carries (`Server`, `Date`, `Connection`,
//! `Content-Length`), so handlers cannot forget them or send them twice.

use crate::http::date;
use crate::message::response::{reason_phrase, HeaderValue};

/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("tern/", env!("CARGO_PKG_VERSION"));

/// Whether a response with this status carries a body (and so a Content-Length), RFC 9110 §6.4.1.
pub fn status_has_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// Appends the status line and headers, ending with the blank line.
///
/// `content_length` is the length a GET would get; pass it for HEAD too (RFC 9110 §9.3.2).
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&'static str, HeaderValue)],
    content_length: Option<u64>,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(number.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER_NAME.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    date::append_now(out);
    for (name, value) in headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    if let Some(length) = content_length {
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(number.format(length).as_bytes());
    }
    out.extend_from_slice(if keep_alive {
        b"\r\nConnection: keep-alive\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_mandatory_headers() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            200,
            &[("Content-Type", "text/plain".into())],
            Some(5),
            true,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\nServer: tern/"));
        assert!(text.contains("\r\nDate: "));
        assert!(text.contains(
            "\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"
        ));
    }
}
