//! Property tests of the byte-level HTTP decoders, where a fuzzer is more than needed.
//!
//! The decoders must give the same result however the peer's bytes are cut into reads (the kernel
//! decides that, not the client). Case counts are kept small so `cargo test` stays fast;
//! `PROPTEST_CASES=10000` runs more. The line codec and the evaluator have theirs in tern-lines.

use bytes::BytesMut;
use proptest::prelude::*;
use tern_core::config::HttpLimits;
use tern_core::error::RequestError;
use tern_core::http::body::{BodyDecoder, Decoded};
use tern_core::http::request;
use tern_core::message::request::{BodyFraming, Method, RequestHead, Version};

/// Cases per property: enough to cover the shapes, few enough for a quick `cargo test`.
const CASES: u32 = 64;

/// `cases` per property, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        default
    } else {
        ProptestConfig { cases, ..default }
    }
}

/// Cuts `data` at the given points (taken modulo its length) into non-empty reads.
fn cut(data: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = points
        .iter()
        .filter(|_| !data.is_empty())
        .map(|p| p % data.len())
        .filter(|&p| p > 0)
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut reads = Vec::new();
    let mut start = 0;
    for point in points.into_iter().chain([data.len()]) {
        if point > start {
            reads.push(data[start..point].to_vec());
            start = point;
        }
    }
    reads
}

fn cut_points() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..12)
}

// ---------------------------------------------------------------------------
// Request heads
// ---------------------------------------------------------------------------

/// A valid request head, the parts it was built from, and bytes that follow it.
#[derive(Debug, Clone)]
struct GeneratedRequest {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
    content_length: Option<u64>,
    close: bool,
    line_ending: &'static str,
    after: Vec<u8>,
}

impl GeneratedRequest {
    fn all_headers(&self) -> Vec<(String, String)> {
        let mut all = vec![("Host".to_owned(), "example.org".to_owned())];
        all.extend(self.headers.iter().cloned());
        if let Some(length) = self.content_length {
            all.push(("Content-Length".to_owned(), length.to_string()));
        }
        if self.close {
            all.push(("Connection".to_owned(), "close".to_owned()));
        }
        all
    }

    fn bytes(&self) -> Vec<u8> {
        let eol = self.line_ending;
        let version = if self.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut text = format!("{} {} {version}{eol}", self.method, self.target);
        for (name, value) in self.all_headers() {
            text.push_str(&format!("{name}: {value}{eol}"));
        }
        text.push_str(eol);
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.after);
        bytes
    }

    fn head_len(&self) -> usize {
        self.bytes().len() - self.after.len()
    }
}

/// Header names that change the head's meaning are left to the generator's own fields.
fn is_plain_header(name: &str) -> bool {
    ![
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
    ]
    .iter()
    .any(|special| name.eq_ignore_ascii_case(special))
}

fn requests() -> impl Strategy<Value = GeneratedRequest> {
    let header = (
        "[A-Za-z][A-Za-z0-9-]{0,15}".prop_filter("plain header", |n| is_plain_header(n)),
        "([!-~]([ -~]{0,20}[!-~])?)?",
    );
    (
        prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
        "/[A-Za-z0-9._~%-]{0,24}(\\?[a-z0-9=&]{0,12})?",
        any::<bool>(),
        prop::collection::vec(header, 0..6),
        prop::option::of(0u64..100_000),
        any::<bool>(),
        prop::sample::select(vec!["\r\n", "\n"]),
        prop::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(
            |(method, target, http10, headers, content_length, close, line_ending, after)| {
                GeneratedRequest {
                    method: method.to_owned(),
                    target,
                    http10,
                    headers,
                    content_length,
                    close,
                    line_ending,
                    after,
                }
            },
        )
}

/// What a handler sees of a head, comparable across parses.
#[derive(Debug, PartialEq)]
struct Head {
    consumed: usize,
    method: Method,
    method_str: String,
    target: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
    framing: BodyFraming,
}

impl Head {
    fn of(head: &RequestHead, consumed: usize) -> Head {
        Head {
            consumed,
            method: head.method,
            method_str: head.method_str().to_owned(),
            target: head.target().to_owned(),
            version: head.version,
            headers: head
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_vec()))
                .collect(),
            keep_alive: head.keep_alive,
            framing: head.framing,
        }
    }
}

/// As the connection does it: append each read and parse the whole buffer again until a result.
fn parse_reads(reads: &[Vec<u8>]) -> Result<Option<Head>, RequestError> {
    let limits = HttpLimits::default();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    for read in reads {
        buf.extend_from_slice(read);
        fed += read.len();
        if let Some(head) = request::parse(&mut buf, &limits)? {
            return Ok(Some(Head::of(&head, fed - buf.len())));
        }
    }
    Ok(None)
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn a_request_head_parses_the_same_whatever_the_reads(
        request in requests(),
        points in cut_points(),
    ) {
        let bytes = request.bytes();
        let whole = parse_reads(std::slice::from_ref(&bytes)).unwrap().unwrap();
        let split = parse_reads(&cut(&bytes, &points)).unwrap().unwrap();
        prop_assert_eq!(&split, &whole);

        prop_assert_eq!(whole.consumed, request.head_len());
        prop_assert_eq!(&whole.method_str, &request.method);
        prop_assert_eq!(&whole.target, &request.target);
        let version = if request.http10 { Version::Http10 } else { Version::Http11 };
        prop_assert_eq!(whole.version, version);
        let sent: Vec<(String, Vec<u8>)> = request
            .all_headers()
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes()))
            .collect();
        prop_assert_eq!(&whole.headers, &sent);
        let framing = match request.content_length {
            None | Some(0) => BodyFraming::Empty,
            Some(length) => BodyFraming::Length(length),
        };
        prop_assert_eq!(whole.framing, framing);
        prop_assert_eq!(whole.keep_alive, !request.close && !request.http10);
    }
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

/// Decodes a body from `reads` with at most `max` bytes per piece, as the connection does.
fn decode_reads(
    framing: BodyFraming,
    reads: &[Vec<u8>],
    max: usize,
) -> Result<(Vec<u8>, usize), RequestError> {
    let mut decoder = BodyDecoder::new(framing, u64::MAX);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut body = Vec::new();
    for read in reads.iter().map(Vec::as_slice).chain([&b""[..]]) {
        buf.extend_from_slice(read);
        fed += read.len();
        loop {
            match decoder.decode(&mut buf, max)? {
                Decoded::Data(data) => {
                    assert!(data.len() <= max);
                    body.extend_from_slice(&data);
                }
                Decoded::NeedMore => break,
                Decoded::Done => return Ok((body, fed - buf.len())),
            }
        }
    }
    Err(RequestError::Malformed("the body did not end"))
}

/// A chunked encoding of `chunks` (RFC 9112 §7.1) with the given extensions and trailers.
fn chunked(chunks: &[(Vec<u8>, bool, bool)], trailers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (data, upper_hex, extension) in chunks {
        let size = if *upper_hex {
            format!("{:X}", data.len())
        } else {
            format!("{:x}", data.len())
        };
        out.extend_from_slice(size.as_bytes());
        if *extension {
            out.extend_from_slice(b" ;name=\"value\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn a_chunked_body_decodes_the_same_whatever_the_reads(
        chunks in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 1..300), any::<bool>(), any::<bool>()),
            0..6,
        ),
        trailers in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,10}", "[ -~]{0,20}"), 0..3),
        after in prop::collection::vec(any::<u8>(), 0..16),
        points in cut_points(),
        max in 1usize..64,
    ) {
        let encoded = chunked(&chunks, &trailers);
        let mut input = encoded.clone();
        input.extend_from_slice(&after);
        let expected: Vec<u8> = chunks.iter().flat_map(|(data, _, _)| data.clone()).collect();

        let whole = decode_reads(BodyFraming::Chunked, &[input.clone()], usize::MAX).unwrap();
        prop_assert_eq!(&whole.0, &expected);
        prop_assert_eq!(whole.1, encoded.len());
        let split = decode_reads(BodyFraming::Chunked, &cut(&input, &points), max).unwrap();
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn a_content_length_body_decodes_the_same_whatever_the_reads(
        body in prop::collection::vec(any::<u8>(), 0..600),
        after in prop::collection::vec(any::<u8>(), 0..16),
        points in cut_points(),
        max in 1usize..64,
    ) {
        let mut input = body.clone();
        input.extend_from_slice(&after);
        let framing = BodyFraming::Length(body.len() as u64);
        let split = decode_reads(framing, &cut(&input, &points), max).unwrap();
        prop_assert_eq!(split, (body.clone(), body.len()));
    }
}
