//! An HTTP/2 request's pseudo-headers and header fields, turned into the [`RequestHead`] every
//! handler reads.
//!
//! The head is written out as an HTTP/1.1 head and parsed by [`crate::http::request::parse`], so
//! an HTTP/2 request meets every check and limit an HTTP/1.1 one does (target, host, header
//! syntax, sizes) and handlers see one kind of head. `:authority` becomes the Host field (it wins
//! over a `host` field, RFC 9113 §8.3.1); `cookie` fields, which HTTP/2 lets a client split, are
//! joined with "; " (§8.2.3). The version in the kept request line then reads `HTTP/2.0` (the
//! access log shows it so, as nginx's does) and the head's version is [`Version::Http2`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::HttpLimits;
use crate::error::RequestError;
use crate::http::request;
use crate::message::request::{BodyFraming, RequestHead, Version};

/// Room for the parts of the written head besides the fields themselves.
const LINE_ROOM: usize = 64;

/// The head of an HTTP/2 request; `end_stream`: its HEADERS frame ended the stream (no body).
pub(super) fn request_head(
    parts: &http::request::Parts,
    end_stream: bool,
    limits: &HttpLimits,
) -> Result<RequestHead, RequestError> {
    if parts.method == http::Method::CONNECT {
        return Err(RequestError::TunnelNotSupported);
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str());
    let authority = parts.uri.authority().map(|authority| authority.as_str());
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let mut text = BytesMut::with_capacity(
        LINE_ROOM
            + parts.method.as_str().len()
            + target.len()
            + authority.map_or(0, str::len)
            + fields,
    );
    text.put_slice(parts.method.as_str().as_bytes());
    text.put_u8(b' ');
    text.put_slice(target.as_bytes());
    text.put_slice(b" HTTP/1.1\r\n");
    if let Some(authority) = authority {
        append_field(&mut text, b"host", authority.as_bytes());
    }
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        if *name == http::header::HOST && authority.is_some() {
            continue;
        }
        if *name == http::header::COOKIE {
            cookies.push(value.as_bytes());
            continue;
        }
        append_field(&mut text, name.as_str().as_bytes(), value.as_bytes());
    }
    if !cookies.is_empty() {
        append_field(&mut text, b"cookie", &cookies.join(&b"; "[..]));
    }
    text.put_slice(b"\r\n");
    let line_end = memchr::memchr(b'\r', &text).unwrap_or(0);
    let mut head = request::parse(&mut text, limits)?
        .ok_or(RequestError::Malformed("incomplete HTTP/2 request head"))?;
    // The same length as "HTTP/1.1": every span into the head stays where it was.
    let mut bytes = BytesMut::from(&head.bytes[..]);
    bytes[line_end - 8..line_end].copy_from_slice(b"HTTP/2.0");
    head.bytes = Bytes::from(bytes);
    head.version = Version::Http2;
    head.keep_alive = true;
    head.framing = match head.framing {
        _ if end_stream => BodyFraming::Empty,
        BodyFraming::Length(length) => BodyFraming::Length(length),
        // DATA frames carry a body of a length not declared.
        _ => BodyFraming::Chunked,
    };
    Ok(head)
}

fn append_field(text: &mut BytesMut, name: &[u8], value: &[u8]) {
    text.put_slice(name);
    text.put_slice(b": ");
    text.put_slice(value);
    text.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(request: http::Request<()>) -> http::request::Parts {
        request.into_parts().0
    }

    #[test]
    fn authority_becomes_the_host_and_cookies_are_joined() {
        let request = http::Request::builder()
            .method("GET")
            .uri("https://example.org:8443/a%20b?x=1")
            .header("host", "ignored.example")
            .header("cookie", "a=1")
            .header("cookie", "b=2")
            .header("accept", "*/*")
            .body(())
            .unwrap();
        let head = request_head(&parts(request), true, &HttpLimits::default()).unwrap();
        assert_eq!(head.version, Version::Http2);
        assert_eq!(head.host(), Some(&b"example.org:8443"[..]));
        assert_eq!(head.header("cookie"), Some(&b"a=1; b=2"[..]));
        assert_eq!(head.header("accept"), Some(&b"*/*"[..]));
        assert_eq!(head.path_and_query(), ("/a%20b", Some("x=1")));
        assert_eq!(head.request_line_bytes(), b"GET /a%20b?x=1 HTTP/2.0");
        assert_eq!(head.framing, BodyFraming::Empty);
    }

    #[test]
    fn a_body_without_a_length_is_framed_by_its_frames() {
        let request = http::Request::builder()
            .method("POST")
            .uri("http://h/upload")
            .body(())
            .unwrap();
        let head = request_head(&parts(request), false, &HttpLimits::default()).unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        let request = http::Request::builder()
            .method("POST")
            .uri("http://h/upload")
            .header("content-length", "5")
            .body(())
            .unwrap();
        let head = request_head(&parts(request), false, &HttpLimits::default()).unwrap();
        assert_eq!(head.framing, BodyFraming::Length(5));
    }

    #[test]
    fn connect_and_oversized_heads_are_refused() {
        let request = http::Request::builder()
            .method("CONNECT")
            .uri("example.org:443")
            .body(())
            .unwrap();
        assert!(request_head(&parts(request), true, &HttpLimits::default()).is_err());
        let limits = HttpLimits {
            max_header_size: 1024,
            ..HttpLimits::default()
        };
        let request = http::Request::builder()
            .uri("http://h/")
            .header("x-big", "y".repeat(2000))
            .body(())
            .unwrap();
        let refused = request_head(&parts(request), true, &limits).unwrap_err();
        assert_eq!(refused.status(), 431);
    }
}
