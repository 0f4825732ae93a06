//! Responses: the status, the headers a handler chose, a body, and how the head is serialised.
//!
//! The writer adds the headers every response carries (`Server`, `Date`, `Connection`,
//! `Content-Length`), so handlers cannot forget them or send them twice.

use std::borrow::Cow;
use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use crate::http::date;

/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("tern/", env!("CARGO_PKG_VERSION"));

/// A header value: usually a static string (content types), sometimes built per request.
pub type HeaderValue = Cow<'static, str>;

/// A response ready to be written.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Headers besides Server, Date, Connection and Content-Length.
    pub headers: Vec<(&'static str, HeaderValue)>,
    pub body: Body,
}

/// What follows the head.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Bytes),
    /// A byte range of an open file, sent with sendfile(2) when large.
    File(FileBody),
}

#[derive(Debug)]
pub struct FileBody {
    /// Shared: the static-file cache may keep the same descriptor open for later requests.
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(file) => file.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Response {
    pub fn new(status: u16, body: Body) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// A short HTML page for an error or redirect status (ASCII, so UTF-8 whatever `--charset`
    /// says about the files served).
    pub fn error_page(status: u16) -> Self {
        let reason = reason_phrase(status);
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n<body><h1>{status} {reason}</h1></body></html>\n"
        );
        Response::new(status, Body::Bytes(Bytes::from(page)))
            .header("Content-Type", "text/html; charset=utf-8")
    }

    pub fn header(mut self, name: &'static str, value: impl Into<HeaderValue>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

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

/// The reason phrase for the statuses tern sends (RFC 9110 §15).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
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
