//! A parsed request head: the request line and header fields, as every handler sees them (the
//! connection, the router, the static files, an application through [`crate::service`]).
//!
//! [`crate::http::request`] parses it; it keeps offsets into the head's own bytes, so handlers
//! borrow names and values without copying and without holding the connection's buffer.

use bytes::Bytes;

/// The forms of request target a request can reach a handler with (RFC 9112 §3.2.1–§3.2.4).
/// The fourth, authority-form, is only for CONNECT, which tern refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`: the usual form (§3.2.1).
    Origin,
    /// `http://authority/path?query`: what clients send to proxies; origin servers must accept it
    /// and take the host from it (§3.2.2).
    Absolute,
    /// `*` with OPTIONS: a question about the server as a whole, not about a resource (§3.2.4).
    Asterisk,
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A byte range inside [`RequestHead::bytes`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other token; its text is in [`RequestHead::method_str`].
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    /// A stream of an HTTP/2 connection (its head arrived as a HEADERS frame).
    Http2,
}

/// A parsed request line and header section.
#[derive(Debug)]
pub struct RequestHead {
    /// The raw head, ending with the blank line.
    pub(crate) bytes: Bytes,
    pub method: Method,
    pub(crate) method_span: Span,
    pub(crate) target: Span,
    /// Which form the target has (RFC 9112 §3.2); authority-form (CONNECT) never gets this far.
    pub target_form: TargetForm,
    /// The path and query inside the target: all of it, or what follows an absolute-form
    /// target's authority (possibly nothing, which means `/`).
    pub(crate) path: Span,
    /// The host the request is for: an absolute-form target's authority, else the Host field.
    pub(crate) host: Option<Span>,
    pub version: Version,
    /// (name, value) spans in arrival order.
    pub(crate) headers: Vec<(Span, Span)>,
    /// Whether the client lets the connection stay open after this request (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// How the body, if any, is delimited.
    pub framing: BodyFraming,
    /// The client sent `Expect: 100-continue` and waits before sending the body.
    pub expect_continue: bool,
    /// The head has `X-Forwarded-For`, `X-Forwarded-Proto` or `Forwarded`: only then is it worth
    /// asking [`crate::http::forwarded::resolve`] who the client is.
    pub proxy_headers: bool,
}

/// Whether two header names of equal length are the same, ignoring ASCII case. Cheaper than
/// `eq_ignore_ascii_case` (about 19 instructions per byte here, callgrind 2026-12-04), which
/// folds both bytes of every pair: most bytes of a name are equal as sent, and two bytes that
/// differ are the same letter only if they differ in the case bit alone and that bit set gives
/// a lower-case letter. (Comparing eight bytes at a time measured no better on header names.)
fn same_name(sent: &[u8], wanted: &[u8]) -> bool {
    sent.iter()
        .zip(wanted)
        .all(|(&a, &b)| a == b || (a | 0x20 == b | 0x20 && (b | 0x20).is_ascii_lowercase()))
}

impl RequestHead {
    pub fn method_str(&self) -> &str {
        self.str_of(self.method_span)
    }

    /// The request target as sent (still percent-encoded).
    pub fn target(&self) -> &str {
        self.str_of(self.target)
    }

    /// The target split into path and query (without the '?'); any fragment is dropped, and an
    /// absolute-form target (`http://host/path`, RFC 9112 §3.2.2) is reduced to its path.
    ///
    /// The path always starts with '/' (an absolute-form target without one has the path `/`,
    /// RFC 9110 §4.2.3), except for asterisk-form, where it is `*`: that request is about the
    /// server, not a path, and the server answers it itself.
    pub fn path_and_query(&self) -> (&str, Option<&str>) {
        let rest = self.str_of(self.path);
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        (if path.is_empty() { "/" } else { path }, query)
    }

    /// The host (and port) the request is for, as `uri-host [ ":" port ]` (checked by the
    /// parser): an absolute-form target's authority, which wins over the Host field (RFC 9112
    /// §3.2.2), else the Host field's value. None only for HTTP/1.0 without either.
    pub fn host(&self) -> Option<&[u8]> {
        self.host.map(|span| self.bytes_of(span))
    }

    /// The first value of header `name` (case-insensitive).
    ///
    /// Compares bytes: a request is asked for a dozen headers, and checking every name as
    /// UTF-8 on each lookup (through [`RequestHead::headers`]) was a tenth of the instructions
    /// of a static request (callgrind, 2026-12-04).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|&&(n, _)| self.name_is(n, name))
            .map(|&(_, value)| self.bytes_of(value))
    }

    /// The first value of header `name` (case-insensitive), sharing the head's memory.
    pub fn header_shared(&self, name: &str) -> Option<Bytes> {
        self.headers
            .iter()
            .find(|&&(n, _)| self.name_is(n, name))
            .map(|&(_, value)| self.bytes.slice(value.start as usize..value.end as usize))
    }

    /// The first value of header `name` if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header as (name, value), in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers
            .iter()
            .map(|&(name, value)| (self.str_of(name), self.bytes_of(value)))
    }

    /// The request line as received ("GET /path HTTP/1.1"), sharing the head's memory.
    pub fn request_line(&self) -> Bytes {
        self.bytes.slice_ref(self.request_line_bytes())
    }

    /// The request line as received ("GET /path HTTP/1.1"), borrowed from the head.
    pub fn request_line_bytes(&self) -> &[u8] {
        let start = self.method_span.start as usize;
        let line = &self.bytes[start..];
        let end = memchr::memchr(b'\n', line).unwrap_or(line.len());
        let end = if end > 0 && line[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        &line[..end]
    }

    pub fn version_str(&self) -> &'static str {
        match self.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2",
        }
    }

    /// Whether the header name at `span` is `wanted`, ignoring ASCII case: the length first
    /// (most names asked about differ in length), then the bytes.
    fn name_is(&self, span: Span, wanted: &str) -> bool {
        span.end.wrapping_sub(span.start) as usize == wanted.len()
            && same_name(self.bytes_of(span), wanted.as_bytes())
    }

    fn bytes_of(&self, span: Span) -> &[u8] {
        &self.bytes[span.start as usize..span.end as usize]
    }

    fn str_of(&self, span: Span) -> &str {
        // Method, target and names were checked to be tokens or visible ASCII by httparse.
        std::str::from_utf8(self.bytes_of(span)).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn names_match_ignoring_case_and_nothing_else() {
        assert!(same_name(b"User-Agent", b"user-agent"));
        assert!(same_name(b"USER-AGENT", b"User-Agent"));
        assert!(same_name(b"x-id", b"X-ID"));
        // Bytes that differ only in the 0x20 bit but are not letters.
        assert!(!same_name(b"a^b", b"a~b"));
        assert!(!same_name(b"a@", b"a`"));
        assert!(!same_name(b"x-1", b"x\r1"));
        assert!(!same_name(b"referer", b"referez"));
        // Longer than a word, and a difference only in the last (partial) word.
        assert!(same_name(b"X-Forwarded-Proto", b"x-forwarded-proto"));
        assert!(!same_name(b"X-Forwarded-Proto", b"x-forwarded-protp"));
        assert!(!same_name(b"Content-Type", b"content_type"));
        assert!(same_name(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            b"abcdefghijklmnopqrstuvwxyz"
        ));
        // Every pair of ASCII bytes agrees with the standard library.
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let (x, y) = (
                    [b'k', a, b'-', a, 1, 2, 3, a, a],
                    [b'K', b, b'-', b, 1, 2, 3, b, b],
                );
                assert_eq!(
                    same_name(&x, &y),
                    x.eq_ignore_ascii_case(&y),
                    "{a:#x} {b:#x}"
                );
                assert_eq!(
                    same_name(&x[..3], &y[..3]),
                    x[..3].eq_ignore_ascii_case(&y[..3])
                );
            }
        }
    }
}
