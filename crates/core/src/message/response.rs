//! A response as a handler builds it: the status, the headers it chose, and a body (bytes, or a
//! range of an open file). The static files and the router build them; [`crate::http::response`]
//! writes their heads, adding the headers every response carries.

use std::borrow::Cow;
use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

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

/// A validated response head from an application.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: u16,
    /// The reason phrase the application chose ("OK" in "200 OK").
    pub reason: std::borrow::Cow<'static, str>,
    /// The application's header lines, each `Name: value\r\n`, already checked for syntax,
    /// CR/LF injection and hop-by-hop fields.
    pub header_lines: Vec<u8>,
    /// The body length, when known: from the application's own Content-Length header (then it
    /// is among `header_lines`) or, for a body known in full, counted by the service.
    pub content_length: Option<u64>,
    /// `content_length` came from the application's headers; otherwise the connection writes
    /// the Content-Length header itself.
    pub length_in_headers: bool,
    /// The application set its own `Server` header; the connection then adds none.
    pub has_server: bool,
    /// The application set its own `Date` header.
    pub has_date: bool,
}
