//! Property tests of the line codec and the evaluator, where a fuzzer is more than needed.
//!
//! The codec must give the same lines however the peer's bytes are cut into reads (the kernel
//! decides that, not the client); the evaluator must agree with plain `i128` arithmetic, with
//! Python's floor division and modulo, wherever that does not overflow. Case counts are kept small
//! so `cargo test` stays fast; `PROPTEST_CASES=10000` runs more.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use proptest::prelude::*;
use tern_core::socket::{Peer, Socket};
use tern_lines::arithmetic::{evaluate_line, EvalErrorKind};
use tern_lines::codec::{LineEvent, LineReader};
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

/// A scripted socket has no descriptor of its own. It shows /dev/null's, opened read-only once, so
/// that a call on the descriptor (sendfile, writev, a peek) fails as it would on a dead socket.
impl AsFd for ScriptedSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        static DEV_NULL: OnceLock<File> = OnceLock::new();
        DEV_NULL
            .get_or_init(|| File::open("/dev/null").expect("open /dev/null"))
            .as_fd()
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
