//! Fuzzes the request-head parser (`http::request::parse`).
//!
//! Checks, besides "no panic": a head takes at most the buffer, exactly its own bytes, and no more
//! than the header limit; "need more" and errors leave the buffer untouched; the head's framing,
//! keep-alive and Host rules agree with its headers; its target is origin-form, absolute-form
//! (whose authority is then the host) or `*` with OPTIONS, and its host follows the RFC 3986
//! grammar (checked by `tern_fuzz::uri`, not by tern-core's own code); 501 only for CONNECT or a
//! Transfer-Encoding; an empty line before the request line changes nothing but the bytes taken
//! (RFC 9112 §2.2); and the result is the same whether the bytes arrive at once or in pieces
//! (the connection re-parses its buffer after every read).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::config::HttpLimits;
use tern_core::error::RequestError;
use tern_core::http::request;
use tern_core::message::request::{BodyFraming, Method, RequestHead, TargetForm, Version};
use tern_fuzz::uri::{absolute_authority, is_host_and_port};
use tern_fuzz::{split_into_reads, Rng};

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_input(data);
    check(data, &HttpLimits::default(), &mut rng);
    // As the CLI requires, the header limit is at least the request-line limit.
    let max_request_line = rng.below(64);
    let small = HttpLimits {
        max_request_line,
        max_header_size: max_request_line + rng.below(512),
        max_headers: 1 + rng.below(8),
        ..HttpLimits::default()
    };
    check(data, &small, &mut rng);
    check_leading_empty_line(data);
});

/// What one parse gave, in a form that can be compared.
#[derive(Debug, PartialEq)]
enum Outcome {
    Head(HeadSummary),
    NeedMore,
    Refused(RequestError),
}

/// Everything a handler can read from a [`RequestHead`], plus how many bytes it took.
#[derive(Debug, PartialEq)]
struct HeadSummary {
    consumed: usize,
    method: Method,
    method_str: String,
    target: String,
    target_form: TargetForm,
    path_and_query: (String, Option<String>),
    host: Option<Vec<u8>>,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
    framing: BodyFraming,
    expect_continue: bool,
    request_line: Vec<u8>,
}

fn check(data: &[u8], limits: &HttpLimits, rng: &mut Rng) {
    let whole = parse_whole(data, limits);
    let reads = split_into_reads(data, rng);
    let incremental = parse_incrementally(&reads, limits);
    match (&whole, &incremental) {
        (Outcome::Refused(_), Outcome::Refused(_)) => {}
        _ => assert_eq!(whole, incremental, "whole input vs {} reads", reads.len()),
    }
}

fn parse_whole(data: &[u8], limits: &HttpLimits) -> Outcome {
    let mut buf = BytesMut::from(data);
    match request::parse(&mut buf, limits) {
        Ok(Some(head)) => {
            let consumed = data.len() - buf.len();
            assert!(consumed > 0, "a head of no bytes");
            assert_eq!(&buf[..], &data[consumed..], "bytes after the head changed");
            Outcome::Head(summarize(&head, &data[..consumed], limits))
        }
        Ok(None) => {
            assert_eq!(&buf[..], data, "'need more' changed the buffer");
            assert!(
                data.len() <= limits.max_header_size,
                "waits for more with {} buffered, over the {}-byte header limit",
                data.len(),
                limits.max_header_size
            );
            Outcome::NeedMore
        }
        Err(error) => {
            assert_eq!(&buf[..], data, "a refused head changed the buffer");
            assert!(
                matches!(error.status(), 400 | 414 | 431 | 501 | 505),
                "status {} for a request head",
                error.status()
            );
            // 501 is for what tern does not implement: CONNECT's tunnels and transfer codings
            // other than chunked (RFC 9110 §15.6.2), both named in the head.
            if error.status() == 501 {
                let lower = data.to_ascii_lowercase();
                assert!(
                    data.windows(8).any(|w| w == b"CONNECT ")
                        || lower.windows(18).any(|w| w == b"transfer-encoding:"),
                    "501 without CONNECT or Transfer-Encoding"
                );
            }
            Outcome::Refused(error)
        }
    }
}

/// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line. tern
/// ignores any number of CRLFs, so one more must change nothing but the bytes a head takes.
/// Inputs starting with an empty line or a bare LF are left out (tern refuses a head starting
/// with LF), and so are those the two bytes would take over the header limit.
fn check_leading_empty_line(data: &[u8]) {
    let limits = HttpLimits::default();
    if matches!(data.first(), None | Some(b'\r' | b'\n')) || data.len() + 2 > limits.max_header_size
    {
        return;
    }
    let mut after_empty_line = b"\r\n".to_vec();
    after_empty_line.extend_from_slice(data);
    let plain = parse_whole(data, &limits);
    let later = parse_whole(&after_empty_line, &limits);
    match (plain, later) {
        (Outcome::Head(plain), Outcome::Head(mut later)) => {
            later.consumed -= 2;
            assert_eq!(plain, later, "the same head after an empty line");
        }
        (Outcome::NeedMore, Outcome::NeedMore) => {}
        (Outcome::Refused(plain), Outcome::Refused(later)) => assert_eq!(
            plain.status(),
            later.status(),
            "refused with {plain:?} alone, {later:?} after an empty line"
        ),
        (plain, later) => panic!("{plain:?} alone, {later:?} after an empty line"),
    }
}

/// As the connection does it: append each read, parse the whole buffer again, stop at a result.
fn parse_incrementally(reads: &[&[u8]], limits: &HttpLimits) -> Outcome {
    let mut buf = BytesMut::new();
    let mut fed = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        fed.extend_from_slice(read);
        match request::parse(&mut buf, limits) {
            Ok(None) => {}
            Ok(Some(head)) => {
                let consumed = fed.len() - buf.len();
                return Outcome::Head(summarize(&head, &fed[..consumed], limits));
            }
            Err(error) => return Outcome::Refused(error),
        }
    }
    Outcome::NeedMore
}

/// Reads every accessor of `head` (none may panic) and checks them against the raw head bytes.
fn summarize(head: &RequestHead, raw: &[u8], limits: &HttpLimits) -> HeadSummary {
    assert!(
        raw.len() <= limits.max_header_size,
        "head over the header limit"
    );
    assert!(raw.ends_with(b"\n"), "a head ends with its blank line");

    let request_line = head.request_line();
    assert!(!request_line.contains(&b'\n') && !request_line.ends_with(b"\r"));
    assert!(
        request_line.len() <= limits.max_request_line,
        "request line of {} bytes over the {}-byte limit",
        request_line.len(),
        limits.max_request_line
    );
    let method_str = head.method_str().to_owned();
    assert!(!method_str.is_empty());
    assert!(request_line.starts_with(method_str.as_bytes()));
    assert_eq!(head.method == Method::Get, method_str == "GET");
    assert_eq!(head.method == Method::Head, method_str == "HEAD");
    let target = head.target().to_owned();
    assert!(!target.is_empty());
    let (path, query) = head.path_and_query();
    let path_and_query = (path.to_owned(), query.map(str::to_owned));
    let host = head.host().map(<[u8]>::to_vec);
    let _ = head.version_str();

    let headers: Vec<(String, Vec<u8>)> = head
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_vec()))
        .collect();
    assert!(headers.len() <= limits.max_headers.max(1));
    for (name, _) in &headers {
        assert!(!name.is_empty());
        assert!(head.header(name).is_some());
        let _ = head.header_str(name);
    }
    check_semantics(head, &headers);
    check_target_and_host(head, &headers);

    HeadSummary {
        consumed: raw.len(),
        method: head.method,
        method_str,
        target,
        target_form: head.target_form,
        path_and_query,
        host,
        version: head.version,
        headers,
        keep_alive: head.keep_alive,
        framing: head.framing,
        expect_continue: head.expect_continue,
        request_line: request_line.to_vec(),
    }
}

/// Framing (RFC 9112 §6), Host (§3.2), persistence (§9.3) and Expect (RFC 9110 §10.1.1).
fn check_semantics(head: &RequestHead, headers: &[(String, Vec<u8>)]) {
    let values = |wanted: &'static str| {
        headers
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value.as_slice())
    };
    let lengths: Vec<&[u8]> = values("content-length").collect();
    let codings: Vec<&[u8]> = values("transfer-encoding").collect();
    match head.framing {
        BodyFraming::Chunked => {
            // RFC 9112 §6.1 and §7: chunked once and last, nothing before it (tern decodes no
            // other coding), only in HTTP/1.1, never with Content-Length. Empty list elements
            // do not count (RFC 9110 §5.6.1).
            assert_eq!(head.version, Version::Http11);
            assert!(lengths.is_empty());
            assert_eq!(codings.len(), 1, "one Transfer-Encoding field");
            let list: Vec<&[u8]> = codings[0]
                .split(|&b| b == b',')
                .map(trim_whitespace)
                .filter(|coding| !coding.is_empty())
                .collect();
            assert!(
                matches!(list.as_slice(), [only] if only.eq_ignore_ascii_case(b"chunked")),
                "chunked framing from Transfer-Encoding {:?}",
                codings[0].escape_ascii().to_string()
            );
        }
        BodyFraming::Length(length) => {
            assert!(length > 0 && codings.is_empty() && !lengths.is_empty());
            for value in lengths {
                for item in value.split(|&b| b == b',') {
                    let item = std::str::from_utf8(item.trim_ascii()).unwrap();
                    assert_eq!(item.parse::<u64>().ok(), Some(length));
                }
            }
        }
        BodyFraming::Empty => {
            assert!(codings.is_empty());
            for value in lengths {
                for item in value.split(|&b| b == b',') {
                    let item = std::str::from_utf8(item.trim_ascii()).unwrap();
                    assert_eq!(item.parse::<u64>().ok(), Some(0));
                }
            }
        }
    }
    // RFC 9112 §3.2: one Host in HTTP/1.1, never more than one.
    let hosts = values("host").count();
    assert!(hosts <= 1, "{hosts} Host fields");
    if head.version == Version::Http11 {
        assert_eq!(hosts, 1, "an HTTP/1.1 head needs one Host");
    }
    let tokens: Vec<&[u8]> = values("connection")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let has = |token: &[u8]| tokens.iter().any(|t| t.eq_ignore_ascii_case(token));
    if has(b"close") {
        assert!(!head.keep_alive);
    }
    if head.version == Version::Http10 && head.keep_alive {
        assert!(has(b"keep-alive"));
    }
    if head.expect_continue {
        assert_eq!(head.version, Version::Http11);
    }
}

/// The request target (RFC 9112 §3.2) and the host (§3.2, §3.2.2), from the raw target and
/// headers: origin-form starts with '/', asterisk-form is `*` with OPTIONS, absolute-form is an
/// http(s) URI whose authority is the host; CONNECT's authority-form never gets through. Every
/// Host field, and the host, is `uri-host [ ":" port ]`.
fn check_target_and_host(head: &RequestHead, headers: &[(String, Vec<u8>)]) {
    let target = head.target();
    let method = head.method_str();
    let (path, query) = head.path_and_query();
    assert_ne!(method, "CONNECT", "CONNECT reached a handler");
    assert!(!path.contains(['?', '#']) && !query.is_some_and(|q| q.contains('#')));
    let authority = absolute_authority(target.as_bytes());
    match head.target_form {
        TargetForm::Origin => {
            assert!(target.starts_with('/'), "origin-form {target:?}");
            let before_fragment = target.split('#').next().unwrap_or(target);
            let rebuilt = match query {
                Some(query) => format!("{path}?{query}"),
                None => path.to_owned(),
            };
            assert_eq!(rebuilt, before_fragment);
        }
        TargetForm::Asterisk => {
            assert_eq!((method, target), ("OPTIONS", "*"));
            assert_eq!((path, query), ("*", None));
        }
        TargetForm::Absolute => {
            let (start, end) = authority.expect("absolute-form is an http(s) URI");
            assert_eq!(head.host(), Some(&target.as_bytes()[start..end]));
            assert!(path.starts_with('/'), "path {path:?} of {target:?}");
        }
    }
    if head.target_form != TargetForm::Absolute {
        assert!(
            authority.is_none(),
            "an http(s) URI that is not absolute-form"
        );
    }

    let host_field = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| trim_whitespace(value));
    if let Some(value) = host_field {
        assert!(
            is_host_and_port(value, true),
            "Host {:?} accepted",
            value.escape_ascii().to_string()
        );
        if head.target_form != TargetForm::Absolute {
            assert_eq!(head.host(), Some(value), "the host is the Host field");
        }
    }
    match head.host() {
        Some(host) => assert!(
            is_host_and_port(host, true),
            "host {:?}",
            host.escape_ascii().to_string()
        ),
        None => assert!(host_field.is_none() && head.version == Version::Http10),
    }
}

/// OWS trimmed from both ends (RFC 9110 §5.6.3: spaces and tabs).
fn trim_whitespace(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b' ' && b != b'\t');
    let end = value.iter().rposition(|&b| b != b' ' && b != b'\t');
    match (start, end) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => &[],
    }
}
