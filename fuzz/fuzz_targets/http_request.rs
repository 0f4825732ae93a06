//! Fuzzes the request-head parser (`http::request::parse`).
//!
//! Checks, besides "no panic": a head takes at most the buffer, exactly its own bytes, and no more
//! than the header limit; "need more" and errors leave the buffer untouched; the head's framing,
//! keep-alive and Host rules agree with its headers; and the result is the same whether the bytes
//! arrive at once or in pieces (the connection re-parses its buffer after every read).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::config::HttpLimits;
use tern_core::error::RequestError;
use tern_core::http::body::BodyFraming;
use tern_core::http::request::{self, Method, RequestHead, Version};
use tern_fuzz::{split_into_reads, Rng};

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_input(data);
    check(data, &HttpLimits::default(), &mut rng);
    let small = HttpLimits {
        max_request_line: rng.below(64),
        max_header_size: rng.below(512),
        max_headers: 1 + rng.below(8),
        ..HttpLimits::default()
    };
    check(data, &small, &mut rng);
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
            Outcome::Refused(error)
        }
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
    let _ = head.path_and_query();
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

    HeadSummary {
        consumed: raw.len(),
        method: head.method,
        method_str,
        target,
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
            assert_eq!(head.version, Version::Http11);
            assert!(lengths.is_empty());
            assert_eq!(codings.len(), 1);
            assert!(codings[0].trim_ascii().eq_ignore_ascii_case(b"chunked"));
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
    if head.version == Version::Http11 {
        assert_eq!(values("host").count(), 1, "an HTTP/1.1 head needs one Host");
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
