//! Property tests of the byte-level decoders and the evaluator, where a fuzzer is more than needed.
//!
//! The decoders must give the same result however the peer's bytes are cut into reads (the kernel
//! decides that, not the client); the evaluator must agree with plain `i128` arithmetic, with
//! Python's floor division and modulo, wherever that does not overflow. Case counts are kept small
//! so `cargo test` stays fast; `PROPTEST_CASES=10000` runs more.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use tern_core::config::HttpLimits;
use tern_core::error::RequestError;
use tern_core::http::body::{BodyDecoder, BodyFraming, Decoded};
use tern_core::http::request::{self, Method, RequestHead, Version};
use tern_core::lines::arithmetic::{evaluate_line, EvalErrorKind};
use tern_core::lines::codec::{LineEvent, LineReader};
use tern_core::socket::{Peer, Socket};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

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

// ---------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------

/// A socket whose peer sent the given reads, one per `read` call, and then closed.
struct ScriptedSocket {
    reads: VecDeque<Vec<u8>>,
}

impl AsyncRead for ScriptedSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut read) = self.reads.pop_front() {
            let fits = read.len().min(buf.remaining());
            buf.put_slice(&read[..fits]);
            if fits < read.len() {
                self.reads.push_front(read.split_off(fits));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsRawFd for ScriptedSocket {
    fn as_raw_fd(&self) -> RawFd {
        -1
    }
}

impl Socket for ScriptedSocket {
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
    fn poll_read_ready(&self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn try_io<R>(&self, _: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        f()
    }
    fn local_addr(&self) -> Option<std::net::SocketAddr> {
        None
    }
    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        Err(io::ErrorKind::Unsupported.into())
    }
    fn from_owned_fd(_: OwnedFd) -> io::Result<(Self, Peer)> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Longest line the codec accepts in these tests (unit: bytes); generated lines stay below it.
const MAX_LINE: usize = 64;

fn line_events(reads: Vec<Vec<u8>>) -> Vec<LineEvent> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut socket = ScriptedSocket {
        reads: reads.into(),
    };
    let mut reader = LineReader::new(MAX_LINE);
    runtime.block_on(async {
        let mut events = Vec::new();
        loop {
            let event = reader
                .next_line(&mut socket, Duration::from_secs(60))
                .await
                .unwrap();
            let last = matches!(event, LineEvent::Closed | LineEvent::TooLong);
            events.push(event);
            if last || events.len() > 100 {
                return events;
            }
        }
    })
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn lines_are_the_same_whatever_the_reads(
        lines in prop::collection::vec(("[ -~]{0,40}|\\PC{0,10}", any::<bool>()), 0..12),
        last in "([ -~]{1,40})?",
        points in cut_points(),
    ) {
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (line, crlf) in &lines {
            input.extend_from_slice(line.as_bytes());
            input.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            expected.push(LineEvent::Line(line.clone()));
        }
        if !last.is_empty() {
            input.extend_from_slice(last.as_bytes());
            expected.push(LineEvent::Line(last.clone()));
        }
        expected.push(LineEvent::Closed);

        prop_assert_eq!(&line_events(vec![input.clone()]), &expected);
        prop_assert_eq!(&line_events(cut(&input, &points)), &expected);
    }
}

// ---------------------------------------------------------------------------
// The evaluator
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    FloorDiv,
    Mod,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::FloorDiv => "//",
            Op::Mod => "%",
        }
    }
}

/// An integer expression, printed with every operation in parentheses.
#[derive(Debug, Clone)]
enum Expr {
    Literal(u8),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, u8),
}

/// Why the reference has no integer answer.
#[derive(Debug, PartialEq)]
enum Stop {
    DivisionByZero,
    /// Past `i128`: the case is skipped.
    Overflow,
}

impl Expr {
    fn text(&self) -> String {
        match self {
            Expr::Literal(n) => n.to_string(),
            Expr::Neg(e) => format!("(-{})", e.text()),
            Expr::Binary(op, a, b) => format!("({} {} {})", a.text(), op.symbol(), b.text()),
            Expr::Pow(a, n) => format!("({} ** {n})", a.text()),
        }
    }

    /// Python's value, evaluated left to right like Python (so the first error wins).
    fn value(&self) -> Result<i128, Stop> {
        match self {
            Expr::Literal(n) => Ok(i128::from(*n)),
            Expr::Neg(e) => e.value()?.checked_neg().ok_or(Stop::Overflow),
            Expr::Pow(a, n) => a.value()?.checked_pow(u32::from(*n)).ok_or(Stop::Overflow),
            Expr::Binary(op, a, b) => apply(*op, a.value()?, b.value()?),
        }
    }
}

fn apply(op: Op, a: i128, b: i128) -> Result<i128, Stop> {
    match op {
        Op::Add => a.checked_add(b).ok_or(Stop::Overflow),
        Op::Sub => a.checked_sub(b).ok_or(Stop::Overflow),
        Op::Mul => a.checked_mul(b).ok_or(Stop::Overflow),
        Op::FloorDiv => floor_div_mod(a, b).map(|(q, _)| q),
        Op::Mod => floor_div_mod(a, b).map(|(_, r)| r),
    }
}

/// Python's `//` and `%`: the quotient rounds down, the remainder has the divisor's sign.
fn floor_div_mod(a: i128, b: i128) -> Result<(i128, i128), Stop> {
    if b == 0 {
        return Err(Stop::DivisionByZero);
    }
    let q = a.checked_div(b).ok_or(Stop::Overflow)?;
    let r = a - q * b;
    if r != 0 && ((r < 0) != (b < 0)) {
        Ok((q - 1, r + b))
    } else {
        Ok((q, r))
    }
}

fn ops() -> impl Strategy<Value = Op> {
    prop::sample::select(vec![Op::Add, Op::Sub, Op::Mul, Op::FloorDiv, Op::Mod])
}

fn exprs() -> impl Strategy<Value = Expr> {
    (0u8..=30)
        .prop_map(Expr::Literal)
        .prop_recursive(5, 32, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Neg(Box::new(e))),
                (ops(), inner.clone(), inner.clone()).prop_map(|(op, a, b)| Expr::Binary(
                    op,
                    Box::new(a),
                    Box::new(b)
                )),
                (inner, 0u8..=4).prop_map(|(a, n)| Expr::Pow(Box::new(a), n)),
            ]
        })
}

/// The evaluator's answer in the reference's terms.
fn evaluated(line: &str) -> Result<i128, Stop> {
    match evaluate_line(line) {
        Ok(text) => Ok(text
            .parse()
            .expect("an integer expression gives an integer")),
        Err(error) if error.kind == EvalErrorKind::DivisionByZero => Err(Stop::DivisionByZero),
        Err(error) => panic!("{line}: unexpected error {error}"),
    }
}

proptest! {
    #![proptest_config(config(CASES * 4))]

    #[test]
    fn integer_expressions_agree_with_i128(expr in exprs()) {
        let expected = expr.value();
        if expected != Err(Stop::Overflow) {
            prop_assert_eq!(evaluated(&expr.text()), expected, "{}", expr.text());
        }
    }

    /// Without parentheses: `*`, `//` and `%` bind tighter than `+` and `-`, all left to right,
    /// and a unary minus on a factor binds tighter still.
    #[test]
    fn precedence_agrees_with_i128(
        first in prop::collection::vec((ops(), -50i8..50), 1..4),
        rest in prop::collection::vec(
            (any::<bool>(), prop::collection::vec((ops(), -50i8..50), 1..4)),
            0..4,
        ),
    ) {
        let products = |factors: &[(Op, i8)]| -> (String, Result<i128, Stop>) {
            let mut text = factors[0].1.to_string();
            let mut value = Ok(i128::from(factors[0].1));
            for &(op, factor) in &factors[1..] {
                let op = match op {
                    Op::Add | Op::Sub => Op::Mul,
                    other => other,
                };
                text.push_str(&format!(" {} {factor}", op.symbol()));
                value = value.and_then(|v| apply(op, v, i128::from(factor)));
            }
            (text, value)
        };
        let (mut text, mut value) = products(&first);
        for (plus, factors) in &rest {
            let (term_text, term_value) = products(factors);
            let op = if *plus { Op::Add } else { Op::Sub };
            text.push_str(&format!(" {} {term_text}", op.symbol()));
            value = value.and_then(|v| term_value.and_then(|t| apply(op, v, t)));
        }
        prop_assert_eq!(evaluated(&text), value, "{}", text);
    }

    /// `/` between ints is correctly rounded true division (exact for operands below 2^53).
    #[test]
    fn true_division_is_correctly_rounded(a in -1_000_000i64..1_000_000, b in -1000i64..1000) {
        let result = evaluate_line(&format!("{a} / {b}"));
        if b == 0 {
            prop_assert_eq!(result.unwrap_err().kind, EvalErrorKind::DivisionByZero);
        } else {
            let printed = result.unwrap();
            let value: f64 = printed.parse().unwrap();
            prop_assert_eq!(value.to_bits(), (a as f64 / b as f64).to_bits(), "{}", printed);
        }
    }
}
