//! Parsing a request head (RFC 9112 §2–§3) out of the connection's read buffer.
//!
//! "Need more bytes" is `Ok(None)`, not an error. A complete head is split off the buffer into an
//! owned [`RequestHead`] that keeps offsets into its bytes, so handlers can borrow names and values
//! without copying and without holding the connection's buffer.

use std::mem::MaybeUninit;

use bytes::BytesMut;

use crate::config::HttpLimits;
use crate::error::RequestError;
use crate::http::target;
use crate::message::request::{BodyFraming, Method, RequestHead, Span, Version};

/// Upper bound for `--max-headers`: header slots live on the stack while parsing.
pub const MAX_HEADERS_CAP: usize = 256;

/// Parses a head from the front of `buf`. On success the head's bytes are removed from `buf`.
pub fn parse(buf: &mut BytesMut, limits: &HttpLimits) -> Result<Option<RequestHead>, RequestError> {
    if buf.first() == Some(&b'\n') {
        return Err(RequestError::Malformed(
            "empty line instead of a request line",
        ));
    }
    check_request_line_length(buf, limits.max_request_line)?;

    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let slots = &mut slots[..limits.max_headers.clamp(1, MAX_HEADERS_CAP)];
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_size {
                return Err(RequestError::HeadersTooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooManyHeaders),
        Err(httparse::Error::Version) => {
            return match classify_version_error(buf) {
                Some(error) => Err(error),
                None => Ok(None),
            }
        }
        Err(error) => return Err(RequestError::Malformed(describe(error))),
    };
    if head_len > limits.max_header_size {
        return Err(RequestError::HeadersTooLarge);
    }

    let base = buf.as_ptr() as usize;
    let span = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    };
    let method_text = request.method.unwrap_or("");
    let method = match method_text {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let version = if request.version == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    };
    let method_span = span(method_text.as_bytes());
    let target_text = request.path.unwrap_or("");
    let target_span = span(target_text.as_bytes());
    let parts = target::classify(method_text, target_text)?;
    let headers: Vec<(Span, Span)> = request
        .headers
        .iter()
        .map(|h| (span(h.name.as_bytes()), span(h.value)))
        .collect();
    let HeadSemantics {
        keep_alive,
        framing,
        expect_continue,
        host,
        proxy_headers,
    } = HeadSemantics::read(request.headers, version)?;
    let within_target = |(start, end): (usize, usize)| Span {
        start: target_span.start + start as u32,
        end: target_span.start + end as u32,
    };
    let path_span = within_target((parts.path_start, target_text.len()));
    let host_span = match parts.authority {
        Some(authority) => Some(within_target(authority)),
        None => host.map(span),
    };

    let bytes = buf.split_to(head_len).freeze();
    Ok(Some(RequestHead {
        bytes,
        method,
        method_span,
        target: target_span,
        target_form: parts.form,
        path: path_span,
        host: host_span,
        version,
        headers,
        keep_alive,
        framing,
        // RFC 9110 §10.1.1: an HTTP/1.0 client gets no 1xx, so its expectation is ignored.
        expect_continue: expect_continue && version == Version::Http11,
        proxy_headers,
    }))
}

/// 414 as soon as the request line is known to be longer than `max` bytes, even before it ends.
/// The line ending (CRLF, or a bare LF) does not count toward the limit.
/// The buffer after the empty lines a client may send before its request line (RFC 9112 §2.2:
/// a server skips them, as httparse does).
fn after_empty_lines(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|&byte| byte != b'\r' && byte != b'\n')
        .unwrap_or(buf.len());
    &buf[start..]
}

fn check_request_line_length(buf: &[u8], max: usize) -> Result<(), RequestError> {
    let buf = after_empty_lines(buf);
    // A line of exactly `max` bytes has its LF at index `max`, or at `max + 1` after a CR.
    let window = &buf[..buf.len().min(max + 2)];
    let too_long = match memchr::memchr(b'\n', window) {
        Some(lf) => lf > max && !(lf == max + 1 && window[max] == b'\r'),
        None => buf.len() > max + 1 || (buf.len() == max + 1 && buf[max] != b'\r'),
    };
    if too_long {
        Err(RequestError::RequestLineTooLong)
    } else {
        Ok(())
    }
}

/// httparse says "Version" for whatever follows the target when it is not `HTTP/1.0` or
/// `HTTP/1.1`. RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive); a
/// well-formed other version is 505 (RFC 9110 §15.6.6), anything else 400, which includes a
/// space inside the target (`GET /a b HTTP/1.1`: the "version" is then `b HTTP/1.1`).
/// None: the line has not ended and could still end in a well-formed version.
fn classify_version_error(buf: &[u8]) -> Option<RequestError> {
    let malformed = Some(RequestError::Malformed("missing or invalid HTTP version"));
    let buf = after_empty_lines(buf);
    let (line, ended) = match memchr::memchr(b'\n', buf) {
        Some(lf) => (&buf[..lf], true),
        None => (buf, false),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // httparse accepted "METHOD SP target SP" before failing, so the version is after the second
    // space (the target cannot hold one).
    let mut spaces = line.iter().enumerate().filter(|&(_, &b)| b == b' ');
    let Some((version_start, _)) = spaces.nth(1) else {
        return malformed;
    };
    let version = &line[version_start + 1..];
    const PATTERN: &[u8] = b"HTTP/0.0";
    let fits = |i: usize, b: u8| {
        if PATTERN[i] == b'0' {
            b.is_ascii_digit()
        } else {
            b == PATTERN[i]
        }
    };
    let matches_so_far =
        version.len() <= PATTERN.len() && version.iter().enumerate().all(|(i, &b)| fits(i, b));
    if !ended {
        return if matches_so_far { None } else { malformed };
    }
    if matches_so_far && version.len() == PATTERN.len() {
        Some(RequestError::UnsupportedVersion)
    } else {
        malformed
    }
}

fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name (or obsolete line folding)",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid token in the request line",
        _ => "invalid request",
    }
}

/// What the connection layer needs to know from the headers.
struct HeadSemantics<'a> {
    keep_alive: bool,
    framing: BodyFraming,
    expect_continue: bool,
    /// The Host field's value, checked to be `uri-host [ ":" port ]`.
    host: Option<&'a [u8]>,
    /// A forwarding header is present (see [`RequestHead::proxy_headers`]).
    proxy_headers: bool,
}

impl<'a> HeadSemantics<'a> {
    fn read(
        headers: &[httparse::Header<'a>],
        version: Version,
    ) -> Result<HeadSemantics<'a>, RequestError> {
        let mut close = false;
        let mut keep_alive_token = false;
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding: Option<&[u8]> = None;
        let mut expect_continue = false;
        let mut host: Option<&[u8]> = None;
        let mut proxy_headers = false;
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(merge_content_length(content_length, header.value)?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if transfer_encoding.is_some() {
                    return Err(RequestError::Malformed("repeated Transfer-Encoding"));
                }
                transfer_encoding = Some(header.value);
            } else if name.eq_ignore_ascii_case("expect") {
                expect_continue = header
                    .value
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"100-continue");
            } else if name.eq_ignore_ascii_case("host") {
                // RFC 9112 §3.2: more than one Host, or one that is not a host, is a 400.
                if host.is_some() {
                    return Err(RequestError::Malformed("repeated Host"));
                }
                if !target::is_valid_host(header.value) {
                    return Err(RequestError::Malformed("invalid Host"));
                }
                host = Some(header.value);
            } else if is_proxy_header(name) {
                proxy_headers = true;
            }
        }
        // RFC 9112 §3.2: a 1.1 request without Host is answered with 400.
        if version == Version::Http11 && host.is_none() {
            return Err(RequestError::Malformed("missing Host header"));
        }
        // RFC 9112 §6.1: both framings at once is a smuggling attempt; reject and close.
        let framing = match (transfer_encoding, content_length) {
            (Some(_), Some(_)) => {
                return Err(RequestError::Malformed(
                    "both Content-Length and Transfer-Encoding",
                ))
            }
            (Some(_), None) if version == Version::Http10 => {
                return Err(RequestError::Malformed(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ))
            }
            (Some(codings), None) => chunked_framing(codings)?,
            (None, Some(0)) | (None, None) => BodyFraming::Empty,
            (None, Some(length)) => BodyFraming::Length(length),
        };
        let keep_alive = match version {
            // HTTP/2 heads are written as HTTP/1.1 before they are parsed.
            Version::Http11 | Version::Http2 => !close,
            Version::Http10 => keep_alive_token && !close,
        };
        Ok(HeadSemantics {
            keep_alive,
            framing,
            expect_continue,
            host,
            proxy_headers,
        })
    }
}

/// The headers a proxy uses to name the client: `X-Forwarded-For`, `X-Forwarded-Proto`,
/// `Forwarded` (RFC 7239).
fn is_proxy_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-forwarded-for")
        || name.eq_ignore_ascii_case("x-forwarded-proto")
        || name.eq_ignore_ascii_case("forwarded")
}

/// The framing a Transfer-Encoding value gives (RFC 9112 §6.1, §7): chunked must be the final
/// coding, or the body's end cannot be found (400); it may be applied only once (400); codings
/// before it would have to be decoded, which tern does not do (501).
fn chunked_framing(value: &[u8]) -> Result<BodyFraming, RequestError> {
    // RFC 9110 §5.6.1: empty list elements are ignored.
    let mut codings = value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    let is_chunked = |coding: &[u8]| coding.eq_ignore_ascii_case(b"chunked");
    if !codings.next_back().is_some_and(is_chunked) {
        return Err(RequestError::Malformed(
            "chunked is not the final transfer coding",
        ));
    }
    let mut others = false;
    for coding in codings {
        if is_chunked(coding) {
            return Err(RequestError::Malformed("chunked applied more than once"));
        }
        others = true;
    }
    if others {
        Err(RequestError::UnsupportedTransferCoding)
    } else {
        Ok(BodyFraming::Chunked)
    }
}

/// Content-Length may repeat (or be a list) only with one identical value (RFC 9110 §8.6).
fn merge_content_length(seen: Option<u64>, value: &[u8]) -> Result<u64, RequestError> {
    let mut merged = seen;
    for item in value.split(|&b| b == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
            return Err(RequestError::Malformed("invalid Content-Length"));
        }
        let length: u64 = std::str::from_utf8(item)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(RequestError::Malformed("invalid Content-Length"))?;
        match merged {
            Some(previous) if previous != length => {
                return Err(RequestError::Malformed("conflicting Content-Length values"))
            }
            _ => merged = Some(length),
        }
    }
    merged.ok_or(RequestError::Malformed("invalid Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::request::TargetForm;

    fn parse_text(text: &str) -> Result<Option<RequestHead>, RequestError> {
        parse(&mut BytesMut::from(text), &HttpLimits::default())
    }

    #[test]
    fn parses_a_simple_get() {
        let head = parse_text("GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.path_and_query(), ("/a%20b", Some("x=1")));
        assert_eq!(head.header("x-a"), Some(&b"1"[..]));
        assert!(head.keep_alive);
        assert_eq!(head.framing, BodyFraming::Empty);
    }

    #[test]
    fn partial_head_needs_more() {
        assert!(parse_text("GET / HTTP/1.1\r\nHost: h\r\n")
            .unwrap()
            .is_none());
    }

    #[test]
    fn classifies_errors() {
        assert_eq!(
            parse_text("GET / HTTP/2.0\r\n\r\n").unwrap_err().status(),
            505
        );
        assert_eq!(parse_text("GET /\r\n\r\n").unwrap_err().status(), 400);
        assert_eq!(parse_text("\n").unwrap_err().status(), 400);
        assert_eq!(
            parse_text("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            parse_text(
                "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
            )
            .unwrap_err()
            .status(),
            400
        );
        assert_eq!(
            parse_text("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap_err()
                .status(),
            400
        );
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000));
        assert_eq!(parse_text(&long).unwrap_err().status(), 414);
    }

    #[test]
    fn the_request_line_limit_excludes_the_line_ending() {
        let limits = HttpLimits {
            max_request_line: 20,
            ..HttpLimits::default()
        };
        let line =
            |len: usize, ending: &str| format!("GET /{} HTTP/1.1{ending}", "a".repeat(len - 14));
        for ending in ["\r\n", "\n", ""] {
            let at_limit = parse(&mut BytesMut::from(line(20, ending).as_str()), &limits);
            assert!(at_limit.is_ok(), "20 bytes + {ending:?}");
            let over = parse(&mut BytesMut::from(line(21, ending).as_str()), &limits);
            assert_eq!(
                over.unwrap_err(),
                RequestError::RequestLineTooLong,
                "21 bytes + {ending:?}"
            );
        }
    }

    #[test]
    fn absolute_form_targets_reduce_to_their_path() {
        let head = parse_text("GET HTTP://example.org/a?b HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.path_and_query(), ("/a", Some("b")));
        let head = parse_text("GET http://example.org HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.path_and_query(), ("/", None));
    }

    #[test]
    fn multibyte_targets_do_not_panic() {
        // 'é' spans bytes 6 and 7, where the scheme comparison would cut a str slice.
        match parse_text("GET /aaaaa\u{e9}bbb HTTP/1.1\r\nHost: h\r\n\r\n") {
            Ok(Some(head)) => assert_eq!(head.path_and_query().0, "/aaaaa\u{e9}bbb"),
            Err(error) => assert_eq!(error.status(), 400),
            Ok(None) => panic!("a complete head must parse"),
        }
    }

    fn status(text: &str) -> u16 {
        match parse_text(text) {
            Err(error) => error.status(),
            Ok(Some(_)) => 200,
            Ok(None) => 0,
        }
    }

    #[test]
    fn only_origin_absolute_and_options_asterisk_targets_get_through() {
        // RFC 9112 §3.2: anything else is refused before a handler sees it.
        let with = |request_line: &str| format!("{request_line}\r\nHost: h\r\n\r\n");
        assert_eq!(status(&with("GET /admin HTTP/1.1")), 200);
        assert_eq!(status(&with("GET admin HTTP/1.1")), 400);
        assert_eq!(status(&with("GET * HTTP/1.1")), 400);
        assert_eq!(status(&with("GET h:80 HTTP/1.1")), 400);
        assert_eq!(status(&with("CONNECT h:443 HTTP/1.1")), 501);
        assert_eq!(status(&with("GET /a%00 HTTP/1.1")), 400);
        let head = parse_text(&with("OPTIONS * HTTP/1.1")).unwrap().unwrap();
        assert_eq!(head.target_form, TargetForm::Asterisk);
        assert_eq!(head.path_and_query(), ("*", None));
    }

    #[test]
    fn the_host_is_the_absolute_form_authority_else_the_host_field() {
        // RFC 9112 §3.2.2: the target's authority wins over the Host field.
        let head = parse_text("GET http://a.example:8080/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.host(), Some(&b"a.example:8080"[..]));
        assert_eq!(head.path_and_query(), ("/x", Some("y")));
        assert_eq!(head.target_form, TargetForm::Absolute);
        let head = parse_text("GET /x HTTP/1.1\r\nHost:  b.example \r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.host(), Some(&b"b.example"[..]));
        let head = parse_text("GET http://[::1]?q HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.host(), Some(&b"[::1]"[..]));
        assert_eq!(head.path_and_query(), ("/", Some("q")));
        let head = parse_text("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.host(), None);
    }

    #[test]
    fn host_fields_must_be_one_uri_host_and_port() {
        for host in ["a b", "a, b", "evil.com/../x", "[::1", "user@x", "", "x:y"] {
            assert_eq!(
                status(&format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")),
                400,
                "{host:?}"
            );
        }
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.0\r\nHost: a b\r\n\r\n"), 400);
        // Checked even when an absolute-form target names the host.
        assert_eq!(status("GET http://h/ HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
        assert_eq!(status("GET http://h/ HTTP/1.1\r\n\r\n"), 400);
    }

    #[test]
    fn versions_are_http_digit_dot_digit_and_only_1_x_is_served() {
        // RFC 9112 §2.3; RFC 9110 §15.6.6 for 505.
        let with = |version: &str| format!("GET / {version}\r\nHost: h\r\n\r\n");
        for version in ["HTTP/2.0", "HTTP/3.0", "HTTP/1.2", "HTTP/0.9"] {
            assert_eq!(status(&with(version)), 505, "{version}");
        }
        for version in [
            "HTTP/1.10",
            "HTTP/9",
            "HTTP/1",
            "HTTP/11",
            "http/1.1",
            "HTTP/1.1 ",
            "HTTP/a.b",
        ] {
            assert_eq!(status(&with(version)), 400, "{version}");
        }
        assert_eq!(status("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(status("GET /a b HTTP/2.0\r\nHost: h\r\n\r\n"), 400);
        // Unfinished lines wait while they can still become a version, and not longer.
        assert_eq!(status("GET / HTTP/2"), 0);
        assert_eq!(status("GET / HTTP/2.0\r"), 0);
        assert_eq!(status("GET / HTTPS"), 400);
        assert_eq!(status("GET / HTTP/2.00"), 400);
    }

    #[test]
    fn transfer_encoding_must_end_in_a_single_chunked() {
        // RFC 9112 §6.1 and §7.
        let with = |codings: &str| {
            format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {codings}\r\n\r\n")
        };
        for codings in ["chunked", "Chunked", "chunked,", " , chunked"] {
            let head = parse_text(&with(codings)).unwrap().unwrap();
            assert_eq!(head.framing, BodyFraming::Chunked, "{codings}");
        }
        for codings in [
            "chunked, identity",
            "identity",
            "xchunked",
            "chunked, chunked",
            "",
            "chunked;q=1",
        ] {
            assert_eq!(status(&with(codings)), 400, "{codings:?}");
        }
        for codings in ["gzip, chunked", "gzip,chunked"] {
            assert_eq!(status(&with(codings)), 501, "{codings}");
        }
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn content_length_is_digits_and_repeats_must_agree() {
        // RFC 9110 §8.6.
        let with =
            |value: &str| format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {value}\r\n\r\n");
        assert_eq!(
            parse_text(&with("5, 5")).unwrap().unwrap().framing,
            BodyFraming::Length(5)
        );
        for value in ["+5", "0x5", "5 5", "-1", "", "5,6", "99999999999999999999"] {
            assert_eq!(status(&with(value)), 400, "{value:?}");
        }
    }

    #[test]
    fn http10_closes_unless_asked() {
        assert!(
            !parse_text("GET / HTTP/1.0\r\n\r\n")
                .unwrap()
                .unwrap()
                .keep_alive
        );
        assert!(
            parse_text("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap()
                .unwrap()
                .keep_alive
        );
    }
}
