//! The line services (`echo`, `calc`, `eval`, `hello`) and the `client` load tool, over real
//! sockets on 127.0.0.1. Every answer is compared byte for byte, "\r\n" included.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::support::{connect, Server, PATIENCE};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One blocking connection to a line service; every read is bounded by [`PATIENCE`].
struct LineConn {
    reader: BufReader<TcpStream>,
}

impl LineConn {
    fn open(addr: SocketAddr) -> LineConn {
        let stream = connect(addr);
        stream.set_nodelay(true).unwrap();
        LineConn {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// The next line exactly as sent, line ending included.
    fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("an answer line in time");
        String::from_utf8(line).expect("answers are UTF-8")
    }

    /// Reads one line and requires it to be exactly `text` + "\r\n".
    fn expect(&mut self, text: &str) {
        assert_eq!(self.read_line(), format!("{text}\r\n"));
    }

    /// Sends `line` + "\n" and requires `answer` + "\r\n" back.
    fn ask(&mut self, line: &str, answer: &str) {
        self.send(format!("{line}\n").as_bytes());
        self.expect(answer);
    }

    /// Requires the server to have closed the connection with nothing more to say.
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("an orderly close in time");
        assert_eq!(
            String::from_utf8_lossy(&rest),
            "",
            "nothing after the last answer"
        );
    }
}

/// Sends `input`, closes the sending side, and returns everything the server sends until it
/// closes.
fn transcript(addr: SocketAddr, input: &[u8]) -> String {
    let mut stream = connect(addr);
    stream.write_all(input).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .expect("the server closes in time");
    String::from_utf8(out).expect("answers are UTF-8")
}

/// The tests that hold thousands of sockets run one at a time, so together they stay far from
/// the file-descriptor limit and the ephemeral port range.
fn heavy_test() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Raises this process's soft open-file limit to the hard limit; returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    // `None` is RLIM_INFINITY.
    let current = limit.current.unwrap_or(u64::MAX);
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    if current < maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).unwrap();
        return maximum;
    }
    current
}

/// A small tokio runtime for the tests with thousands of connections.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens `count` connections (a few hundred attempts at a time) and returns them in order.
async fn connect_many(addr: SocketAddr, count: usize) -> Vec<tokio::net::TcpStream> {
    let slots = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let slots = slots.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("connection {index}: {e}"));
            (index, stream)
        });
    }
    let mut streams: Vec<Option<tokio::net::TcpStream>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, stream) = joined.expect("connect task");
        streams[index] = Some(stream);
    }
    streams.into_iter().map(Option::unwrap).collect()
}

/// On every connection at once: send `lines[i]`, read one answer line (ending included).
async fn ask_all(streams: Vec<tokio::net::TcpStream>, lines: Vec<String>) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (stream, line)) in streams.into_iter().zip(lines).enumerate() {
        tasks.spawn(async move {
            let mut stream = tokio::io::BufReader::new(stream);
            stream
                .get_mut()
                .write_all(line.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("send on {index}: {e}"));
            let mut answer = Vec::new();
            stream
                .read_until(b'\n', &mut answer)
                .await
                .unwrap_or_else(|e| panic!("answer on {index}: {e}"));
            (
                index,
                String::from_utf8(answer).expect("answers are UTF-8"),
                stream,
            )
        });
    }
    let mut answers = vec![String::new(); tasks.len()];
    // Connections stay open until every answer is in: all of them are concurrent.
    let mut still_open = Vec::with_capacity(answers.len());
    while let Some(joined) = tasks.join_next().await {
        let (index, answer, stream) = joined.expect("conversation task");
        answers[index] = answer;
        still_open.push(stream);
    }
    answers
}

/// Runs `tern client <args>` to completion (bounded); returns its exit code and stdout.
fn run_client(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .arg("client")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern client");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "tern client {args:?} did not finish; stderr:\n{}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("tern client was killed ({status}); stderr:\n{stderr}"));
    (code, stdout)
}

/// The stdout line starting with `prefix`.
fn summary_line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{stdout}"))
}

/// Checks the summary of a run in which every message was answered as expected.
fn assert_clean_run(code: i32, stdout: &str, connections: u64, messages: u64) {
    assert_eq!(
        summary_line(stdout, "connections: "),
        format!("connections: {connections} opened, 0 failed")
    );
    let total = connections * messages;
    assert_eq!(
        summary_line(stdout, "messages: "),
        format!("messages: {total} sent, {total} answered, 0 failed")
    );
    assert_eq!(
        summary_line(stdout, "failed connections: "),
        "failed connections: none"
    );
    assert_eq!(
        summary_line(stdout, "failed messages: "),
        "failed messages: none"
    );
    assert!(
        summary_line(stdout, "latency: ").starts_with("latency: p50 "),
        "{stdout}"
    );
    assert!(
        summary_line(stdout, "throughput: ").len() > "throughput: ".len(),
        "{stdout}"
    );
    assert_eq!(code, 0, "exit status of a clean run; stdout:\n{stdout}");
}

/// Product of decimal integers (optional leading '-'), schoolbook style; exact for any size.
fn decimal_product(numbers: &[String]) -> String {
    let mut negative = false;
    // Little-endian decimal digits.
    let mut product: Vec<u32> = vec![1];
    for number in numbers {
        let digits = match number.strip_prefix('-') {
            Some(digits) => {
                negative = !negative;
                digits
            }
            None => number.as_str(),
        };
        let factor: Vec<u32> = digits.bytes().rev().map(|b| u32::from(b - b'0')).collect();
        let mut result = vec![0u32; product.len() + factor.len()];
        for (i, &a) in product.iter().enumerate() {
            let mut carry = 0;
            for (j, &b) in factor.iter().enumerate() {
                let cell = result[i + j] + a * b + carry;
                result[i + j] = cell % 10;
                carry = cell / 10;
            }
            let mut k = i + factor.len();
            while carry > 0 {
                let cell = result[k] + carry;
                result[k] = cell % 10;
                carry = cell / 10;
                k += 1;
            }
        }
        while result.len() > 1 && result.last() == Some(&0) {
            result.pop();
        }
        product = result;
    }
    let magnitude: String = product
        .iter()
        .rev()
        .map(|d| char::from(b'0' + *d as u8))
        .collect();
    if negative && magnitude != "0" {
        format!("-{magnitude}")
    } else {
        magnitude
    }
}

// ---------------------------------------------------------------------------------------------
// echo
// ---------------------------------------------------------------------------------------------

#[test]
fn echo_sends_every_line_back_with_crlf_whichever_ending_it_came_with() {
    let server = Server::start(&["echo"]);
    assert_eq!(
        transcript(
            server.addr,
            b"hello\nworld\r\n\n\r\n  spaced out  \nh\xc3\xa9llo \xe2\x9c\x93\r\n"
        ),
        "hello\r\nworld\r\n\r\n\r\n  spaced out  \r\nh\u{e9}llo \u{2713}\r\n"
    );
}

#[test]
fn echo_answers_each_line_as_soon_as_it_is_complete() {
    let server = Server::start(&["echo"]);
    let mut conn = LineConn::open(server.addr);
    conn.ask("first", "first");
    conn.ask("second", "second");
    // A line that arrives one byte at a time is still one line.
    for byte in b"in pieces\r\n" {
        conn.send(&[*byte]);
        std::thread::sleep(Duration::from_millis(5));
    }
    conn.expect("in pieces");
    // Several lines in one write: one answer each, in order.
    conn.send(b"a\nb\r\nc\n");
    conn.expect("a");
    conn.expect("b");
    conn.expect("c");
}

#[test]
fn echo_puts_the_prefix_before_every_line() {
    let server = Server::start(&["echo", "--prefix", "GOT:"]);
    assert_eq!(
        transcript(server.addr, b"hi\nthere\r\n\n"),
        "GOT:hi\r\nGOT:there\r\nGOT:\r\n"
    );
}

// ---------------------------------------------------------------------------------------------
// calc
// ---------------------------------------------------------------------------------------------

const WELCOME: &str = "<welcome: starting in sum mode>";
const CALC_ERROR: &str = "ERROR. Enter only integers separated by commas";

#[test]
fn calc_greets_on_connect_before_any_input() {
    let server = Server::start(&["calc"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    conn.ask("1,2", "Sum of input numbers: 3");
}

#[test]
fn calc_sums_by_default_and_switches_modes_on_request() {
    let server = Server::start(&["calc"]);
    let input = "1,2,3\r\n 4 , -5 \n-7\nproduct\r\n2, 3,4\n-2,3\n-2,-3,-4\r\n0,5\nproduct\nsum\n10, -10\r\n";
    let expected = [
        WELCOME,
        "Sum of input numbers: 6",
        "Sum of input numbers: -1",
        "Sum of input numbers: -7",
        "<switching to product mode>",
        "Product of input numbers: 24",
        "Product of input numbers: -6",
        "Product of input numbers: -24",
        "Product of input numbers: 0",
        "<switching to product mode>",
        "<switching to sum mode>",
        "Sum of input numbers: 0",
    ];
    assert_eq!(
        transcript(server.addr, input.as_bytes()),
        expected.map(|l| format!("{l}\r\n")).concat()
    );
}

#[test]
fn calc_mode_belongs_to_each_connection() {
    let server = Server::start(&["calc"]);
    let mut a = LineConn::open(server.addr);
    let mut b = LineConn::open(server.addr);
    a.expect(WELCOME);
    b.expect(WELCOME);
    a.ask("product", "<switching to product mode>");
    b.ask("2,3,4", "Sum of input numbers: 9");
    a.ask("2,3,4", "Product of input numbers: 24");
    b.ask("product", "<switching to product mode>");
    a.ask("sum", "<switching to sum mode>");
    b.ask("5,5", "Product of input numbers: 25");
    a.ask("5,5", "Sum of input numbers: 10");
    // A new connection starts in sum mode whatever the others did.
    let mut c = LineConn::open(server.addr);
    c.expect(WELCOME);
    c.ask("5,5", "Sum of input numbers: 10");
    b.ask("5,5", "Product of input numbers: 25");
}

#[test]
fn calc_product_of_forty_twenty_digit_numbers_is_exact() {
    // The helper itself, against a product that fits in u128.
    assert_eq!(
        decimal_product(&["1234567890123456789".into(), "-9876543210987654321".into()]),
        format!("-{}", 1234567890123456789u128 * 9876543210987654321u128)
    );
    let mut state: u128 = 0x2545_F491_4F6C_DD1D;
    let numbers: Vec<String> = (0..40)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                % (1 << 100);
            let magnitude = 10u128.pow(19) + state % (9 * 10u128.pow(19));
            assert_eq!(magnitude.to_string().len(), 20);
            if i % 13 == 5 {
                format!("-{magnitude}")
            } else {
                magnitude.to_string()
            }
        })
        .collect();
    let expected = decimal_product(&numbers);
    assert!(
        expected.starts_with('-') && expected.len() > 760,
        "three negative factors, ~780 digits: {expected}"
    );
    let server = Server::start(&["calc"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    conn.ask("product", "<switching to product mode>");
    conn.ask(
        &numbers.join(" , "),
        &format!("Product of input numbers: {expected}"),
    );
    conn.ask(
        &numbers[..2].join(","),
        &format!(
            "Product of input numbers: {}",
            decimal_product(&numbers[..2])
        ),
    );
}

#[test]
fn calc_sums_are_exact_beyond_64_bits() {
    let server = Server::start(&["calc"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    let big = "9".repeat(50);
    conn.ask(
        &format!("{big},1"),
        &format!("Sum of input numbers: 1{}", "0".repeat(50)),
    );
    conn.ask(
        &format!("-{big}, -1"),
        &format!("Sum of input numbers: -1{}", "0".repeat(50)),
    );
    conn.ask(
        "18446744073709551615, 18446744073709551615, 1",
        &format!("Sum of input numbers: {}", 2 * u128::from(u64::MAX) + 1),
    );
}

#[test]
fn calc_rejects_anything_but_comma_separated_integers() {
    let server = Server::start(&["calc"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    let not_integer_lists = [
        "hello", "1,,2", "1,2,", ",1", "", "   ", "1.5", "1 2", "1;2", "0x10", "1e3", "- 1", "--1",
        "Sum", "quit now",
    ];
    for line in not_integer_lists {
        conn.ask(line, CALC_ERROR);
    }
    // The connection, and its mode, survive the errors.
    conn.ask("product", "<switching to product mode>");
    conn.ask("x", CALC_ERROR);
    conn.ask("3,3", "Product of input numbers: 9");
}

#[test]
fn calc_quit_answers_and_closes_the_connection() {
    let server = Server::start(&["calc"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    conn.ask("1,2", "Sum of input numbers: 3");
    conn.ask("quit", "connection closed");
    conn.expect_closed();
    // With a CRLF ending too, and the server goes on serving new connections.
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    conn.send(b"quit\r\n");
    conn.expect("connection closed");
    conn.expect_closed();
}

// ---------------------------------------------------------------------------------------------
// eval
// ---------------------------------------------------------------------------------------------

#[test]
fn eval_follows_python_arithmetic() {
    let server = Server::start(&["eval"]);
    let mut conn = LineConn::open(server.addr);
    for (line, answer) in [
        ("-2**2", "-4"),
        ("7//2", "3"),
        ("-7//2", "-4"),
        ("7 % -2", "-1"),
        ("1/4", "0.25"),
        ("4/2", "2.0"),
        ("0.1+0.2", "0.30000000000000004"),
        (
            "2**200",
            "1606938044258990275541962092341162602522202993782792835301376",
        ),
        ("2**200 + 1 - 2**200", "1"),
        ("(1 + 2) * 3", "9"),
        ("2**3**2", "512"),
        ("2**-1", "0.5"),
        ("1e16", "1e+16"),
    ] {
        conn.ask(line, answer);
    }
    // Either line ending.
    conn.send(b"6*7\r\n");
    conn.expect("42");
}

#[test]
fn eval_reports_errors_with_reason_and_column_and_keeps_serving() {
    let server = Server::start(&["eval"]);
    let mut conn = LineConn::open(server.addr);
    for (line, answer) in [
        ("1/0", "error: division by zero at column 2"),
        ("4 + 1 // 0", "error: division by zero at column 7"),
        ("2 * (3 + 4))", "error: unexpected token ')' at column 12"),
        ("1 +", "error: unexpected end of input at column 4"),
        ("(1 + 2", "error: unclosed '(' at column 1"),
        ("", "error: empty expression"),
    ] {
        conn.ask(line, answer);
    }
    conn.ask("1 + 1", "2");
}

#[test]
fn eval_rejects_letters_and_never_executes_them() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("executed");
    let server = Server::start(&["eval"]);
    let mut conn = LineConn::open(server.addr);
    conn.ask(
        "__import__('os')",
        "error: invalid character '_' at column 1",
    );
    conn.ask(
        &format!("__import__('os').system('touch {}')", marker.display()),
        "error: invalid character '_' at column 1",
    );
    conn.ask("1 + x", "error: invalid character 'x' at column 5");
    conn.ask("abs(-1)", "error: invalid character 'a' at column 1");
    assert!(!marker.exists(), "the expression was executed");
    conn.ask("2+2", "4");
}

#[test]
fn eval_refuses_huge_powers_and_deep_nesting() {
    let server = Server::start(&["eval"]);
    let mut conn = LineConn::open(server.addr);
    // Refused up front: the answer arrives within the read timeout instead of after hours.
    conn.ask("9**9**9", "error: number too large at column 2");
    let deep = "(".repeat(1000) + "1" + &")".repeat(1000);
    conn.ask(&deep, "error: nesting too deep at column 101");
    let deep_unary = "-".repeat(1000) + "1";
    conn.ask(&deep_unary, "error: nesting too deep at column 101");
    conn.ask("2**10", "1024");
}

/// `term` repeated and joined by `+`, as long as fits in `limit` bytes.
fn repeated_sum(term: &str, limit: usize) -> String {
    let count = (limit + 1) / (term.len() + 1);
    vec![term; count].join("+")
}

/// Runs `body` on its own thread and waits at most `limit` for it (panics carried over).
fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = done_tx.send(body());
    });
    match done_rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(_) if worker.is_finished() => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sent nothing yet ended cleanly"),
        },
        Err(_) => panic!("not done within {limit:?}"),
    }
}

#[test]
fn eval_line_with_too_much_work_is_refused_while_others_are_answered() {
    // One worker: both connections share its event loop.
    let server = Server::start(&["eval", "-w", "1"]);
    let addr = server.addr;
    // 64 KiB of large powers: seconds of CPU if computed; the third term does not fit.
    let hostile = repeated_sum("9**30000%7**30000*0", 64 * 1024);
    within(Duration::from_secs(90), move || {
        let mut attacker = LineConn::open(addr);
        attacker.send(format!("{hostile}\n").as_bytes());
        let bystander = std::thread::spawn(move || {
            let mut conn = LineConn::open(addr);
            for i in 0..20 {
                conn.ask(&format!("{i} * 6 + 1"), &(i * 6 + 1).to_string());
            }
        });
        attacker.expect("error: too much work for one line at column 42");
        // The connection stays usable.
        attacker.ask("9**30000%7**30000*0", "0");
        bystander.join().unwrap();
    });
    server.wait_for_log("eval line refused", "--max-work 4000000");
}

#[test]
fn eval_max_work_flag_sets_the_budget() {
    let server = Server::start(&["eval", "--max-work", "1000"]);
    let mut conn = LineConn::open(server.addr);
    conn.ask("2**10", "1024");
    conn.ask(
        "1 + 3**5000",
        "error: too much work for one line at column 6",
    );
    let server = Server::start_with(&["eval"], &[("TERN_MAX_WORK", "1000")]);
    let mut conn = LineConn::open(server.addr);
    conn.ask(
        "1 + 3**5000",
        "error: too much work for one line at column 6",
    );
}

#[test]
fn eval_client_pipelining_heavy_lines_does_not_hold_up_the_worker() {
    const HEAVY_LINES: usize = 100;
    let server = Server::start(&["eval", "-w", "1"]);
    let addr = server.addr;
    within(Duration::from_secs(300), move || {
        // Each line is within the budget, but all of them together take a while.
        let heavy = "(3**31500)*(3**31500) - 3**63000\n".repeat(HEAVY_LINES);
        let mut attacker = LineConn::open(addr);
        attacker.send(heavy.as_bytes());
        let mut bystander = LineConn::open(addr);
        bystander.ask("6*7", "42");
        // The bystander was answered in the middle of the pipeline, not after it: the heavy
        // answers are written together once the last one is ready, and are not all there yet.
        let attacker_stream = attacker.reader.get_ref();
        attacker_stream.set_nonblocking(true).unwrap();
        let mut ready = vec![0u8; HEAVY_LINES * 3];
        let already = match attacker_stream.peek(&mut ready) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => panic!("peeking at the heavy answers: {e}"),
        };
        assert!(
            already < HEAVY_LINES * 3,
            "all {HEAVY_LINES} heavy answers were sent before the bystander's"
        );
        attacker_stream.set_nonblocking(false).unwrap();
        for _ in 0..HEAVY_LINES {
            attacker.expect("0");
        }
    });
}

#[test]
fn eval_delay_holds_answers_without_holding_up_other_clients() {
    const CLIENTS: usize = 1000;
    const DELAY_SECONDS: u64 = 5;
    let _heavy = heavy_test();
    raise_fd_limit();
    let server = Server::start(&[
        "eval",
        "--delay",
        &DELAY_SECONDS.to_string(),
        "--no-access-log",
    ]);
    let lines: Vec<String> = (0..CLIENTS)
        .map(|i| format!("{i} * {i} - 1{}", if i % 2 == 0 { "\n" } else { "\r\n" }))
        .collect();
    let answers = runtime().block_on(async {
        let streams =
            tokio::time::timeout(Duration::from_secs(60), connect_many(server.addr, CLIENTS))
                .await
                .expect("1000 connections opened within 60 s");
        // One at a time this would take CLIENTS * DELAY_SECONDS = 5000 s; the bound is 60 s.
        tokio::time::timeout(Duration::from_secs(60), ask_all(streams, lines))
            .await
            .expect("every delayed answer within 60 s: the delays overlap")
    });
    for (i, answer) in answers.iter().enumerate() {
        let i = i as i64;
        assert_eq!(*answer, format!("{}\r\n", i * i - 1), "client {i}");
    }
}

// ---------------------------------------------------------------------------------------------
// hello
// ---------------------------------------------------------------------------------------------

#[test]
fn hello_answers_every_message_with_the_default_text() {
    let server = Server::start(&["hello"]);
    assert_eq!(
        transcript(server.addr, b"hi\nanything at all\r\n\n1,2\r\n"),
        "Hello from server!\r\n".repeat(4)
    );
}

#[test]
fn hello_text_flag_sets_the_answer() {
    let server = Server::start(&["hello", "--text", "Howdy, partner"]);
    let mut conn = LineConn::open(server.addr);
    conn.ask("hi", "Howdy, partner");
    conn.ask("again", "Howdy, partner");
}

// ---------------------------------------------------------------------------------------------
// client
// ---------------------------------------------------------------------------------------------

#[test]
fn client_reports_a_clean_run_against_echo() {
    let server = Server::start(&["echo", "--prefix", "GOT:"]);
    let addr = server.addr.to_string();
    let (code, stdout) = run_client(&[
        &addr,
        "-c",
        "5",
        "-n",
        "3",
        "--message",
        "ping",
        "--expect",
        "GOT:ping",
    ]);
    assert_clean_run(code, &stdout, 5, 3);
}

#[test]
fn client_reports_a_clean_run_against_hello() {
    let server = Server::start(&["hello"]);
    let addr = server.addr.to_string();
    let (code, stdout) = run_client(&[
        &addr,
        "-c",
        "20",
        "-n",
        "5",
        "--expect",
        "Hello from server!",
    ]);
    assert_clean_run(code, &stdout, 20, 5);
}

#[test]
fn client_skips_the_calc_greeting_and_checks_sums() {
    let server = Server::start(&["calc"]);
    let addr = server.addr.to_string();
    let (code, stdout) = run_client(&[
        &addr,
        "-c",
        "10",
        "-n",
        "4",
        "--greeting-lines",
        "1",
        "--message",
        "1,2",
        "--expect",
        "Sum of input numbers: 3",
    ]);
    assert_clean_run(code, &stdout, 10, 4);
}

#[test]
fn client_reports_a_clean_run_against_eval() {
    let server = Server::start(&["eval"]);
    let addr = server.addr.to_string();
    let (code, stdout) = run_client(&[
        &addr,
        "-c",
        "8",
        "-n",
        "2",
        "--message",
        "6*7",
        "--expect",
        "42",
    ]);
    assert_clean_run(code, &stdout, 8, 2);
}

#[test]
fn client_duration_keeps_sending_until_the_time_is_up() {
    let server = Server::start(&["echo"]);
    let addr = server.addr.to_string();
    let (code, stdout) = run_client(&[
        &addr,
        "-c",
        "2",
        "--duration",
        "1",
        "--message",
        "tick",
        "--expect",
        "tick",
    ]);
    assert_eq!(
        summary_line(&stdout, "connections: "),
        "connections: 2 opened, 0 failed"
    );
    let counts: Vec<u64> = summary_line(&stdout, "messages: ")
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let [sent, answered, failed] = counts[..] else {
        panic!("messages line: {stdout}")
    };
    assert!(sent > 0, "{stdout}");
    assert_eq!((answered, failed), (sent, 0), "{stdout}");
    assert!(summary_line(&stdout, "latency: ").starts_with("latency: p50 "));
    summary_line(&stdout, "throughput: ");
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn client_with_a_wrong_expectation_counts_failures_and_exits_1() {
    let server = Server::start(&["hello"]);
    let addr = server.addr.to_string();
    let (code, stdout) = run_client(&[&addr, "-c", "3", "-n", "2", "--expect", "Goodbye"]);
    assert_eq!(
        summary_line(&stdout, "connections: "),
        "connections: 3 opened, 0 failed"
    );
    assert_eq!(
        summary_line(&stdout, "messages: "),
        "messages: 6 sent, 6 answered, 6 failed"
    );
    assert_eq!(
        summary_line(&stdout, "failed connections: "),
        "failed connections: none"
    );
    assert_eq!(
        summary_line(&stdout, "failed messages: "),
        "failed messages: 6 wrong answer"
    );
    assert_eq!(code, 1, "{stdout}");
}

#[test]
fn client_reports_refused_connections_and_exits_1() {
    // A port that was free a moment ago and has nothing listening now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.1:{port}");
    let (code, stdout) = run_client(&[&target, "-c", "3", "-n", "2", "--timeout", "10"]);
    assert_eq!(
        summary_line(&stdout, "target: "),
        format!("target: {target}")
    );
    assert_eq!(
        summary_line(&stdout, "connections: "),
        "connections: 0 opened, 3 failed"
    );
    assert!(
        summary_line(&stdout, "messages: ").starts_with("messages: 0 sent, 0 answered, "),
        "{stdout}"
    );
    assert_eq!(
        summary_line(&stdout, "failed connections: "),
        "failed connections: 3 refused"
    );
    assert_eq!(
        summary_line(&stdout, "failed messages: "),
        "failed messages: 6 not sent"
    );
    assert_eq!(code, 1, "{stdout}");
}

/// What a [`scripted_server`] does on one connection after answering its first `answers` lines
/// with "pong": it reads one more line, then...
#[derive(Clone, Copy)]
enum Ending {
    /// ...resets the connection (SO_LINGER 0).
    Reset,
    /// ...closes it in order, without an answer.
    Close,
    /// ...never answers, and waits for the client to give up.
    Stall,
}

/// A stand-in line server on 127.0.0.1 that accepts one connection per entry of `script` and
/// plays it (in accept order); stops by itself.
fn scripted_server(answers: usize, script: Vec<Ending>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + PATIENCE;
        let mut script = script.into_iter();
        let mut next = script.next();
        while let Some(ending) = next {
            if Instant::now() > deadline {
                return;
            }
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                Err(e) => panic!("accept: {e}"),
            };
            next = script.next();
            std::thread::spawn(move || play(stream, answers, ending));
        }
    });
    addr
}

fn play(stream: TcpStream, answers: usize, ending: Ending) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    for _ in 0..answers {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if reader.get_ref().write_all(b"pong\n").is_err() {
            return;
        }
    }
    // The next message stays unanswered.
    line.clear();
    let _ = reader.read_line(&mut line);
    let stream = reader.into_inner();
    match ending {
        Ending::Reset => close_abruptly(stream),
        Ending::Close => drop(stream),
        Ending::Stall => {
            let mut rest = Vec::new();
            let _ = (&stream).read_to_end(&mut rest);
        }
    }
}

#[test]
fn client_counts_connections_reset_mid_run_as_failed_and_exits_1() {
    let addr = scripted_server(1, vec![Ending::Reset; 3]).to_string();
    let (code, stdout) = run_client(&[&addr, "-c", "3", "-n", "4", "--expect", "pong"]);
    assert_eq!(
        summary_line(&stdout, "connections: "),
        "connections: 3 opened, 3 failed"
    );
    assert_eq!(
        summary_line(&stdout, "messages: "),
        "messages: 6 sent, 3 answered, 9 failed"
    );
    assert_eq!(
        summary_line(&stdout, "failed connections: "),
        "failed connections: 3 reset"
    );
    assert_eq!(
        summary_line(&stdout, "failed messages: "),
        "failed messages: 3 unanswered, 6 not sent"
    );
    assert_eq!(code, 1, "{stdout}");
}

#[test]
fn client_says_why_each_connection_failed() {
    let script = vec![Ending::Reset, Ending::Close, Ending::Stall];
    let addr = scripted_server(1, script).to_string();
    let (code, stdout) = run_client(&[
        &addr,
        "-c",
        "3",
        "--duration",
        "30",
        "--timeout",
        "1",
        "--expect",
        "pong",
    ]);
    assert_eq!(
        summary_line(&stdout, "connections: "),
        "connections: 3 opened, 3 failed"
    );
    assert_eq!(
        summary_line(&stdout, "failed connections: "),
        "failed connections: 1 reset, 1 timed out, 1 closed early"
    );
    assert_eq!(
        summary_line(&stdout, "failed messages: "),
        "failed messages: 3 unanswered"
    );
    assert_eq!(code, 1, "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Limits and bad input
// ---------------------------------------------------------------------------------------------

#[test]
fn line_at_max_line_is_served_and_a_longer_one_gets_an_error_and_the_connection_closes() {
    let server = Server::start(&["echo", "--max-line", "100"]);
    let at_limit = "a".repeat(100);
    let mut conn = LineConn::open(server.addr);
    conn.ask(&at_limit, &at_limit);
    // The "\r" of a "\r\n" ending does not count.
    conn.send(format!("{at_limit}\r\n").as_bytes());
    conn.expect(&at_limit);
    conn.send(format!("short\n{}\n", "b".repeat(101)).as_bytes());
    conn.expect("short");
    conn.expect("error: line too long (limit 100 bytes)");
    conn.expect_closed();
    // Others are still served.
    let mut other = LineConn::open(server.addr);
    other.ask("still here", "still here");
}

/// Regression (found by fuzzing): a last line without a line ending, one byte over the limit,
/// was answered instead of refused.
#[test]
fn a_last_line_without_an_ending_gets_the_same_limit() {
    let server = Server::start(&["echo", "--max-line", "4"]);
    for (sent, answer) in [
        ("1234", "1234\r\n"),
        ("12345", "error: line too long (limit 4 bytes)\r\n"),
    ] {
        let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(sent.as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut received = String::new();
        stream.read_to_string(&mut received).unwrap();
        assert_eq!(received, answer, "for {sent:?}");
    }
}

/// Sends `first` followed at once by more lines than the server reads in one go, then keeps
/// sending lines for a while from another thread (as a pipelining client does), then
/// half-closes. Returns the connection, for reading the answers meanwhile.
fn send_and_keep_sending(
    addr: SocketAddr,
    first: &[u8],
) -> (LineConn, std::thread::JoinHandle<()>) {
    const FILLER_WRITES: usize = 20;
    let filler = format!("{}\n", "f".repeat(1023)).repeat(16);
    let conn = LineConn::open(addr);
    let mut writer = conn.reader.get_ref().try_clone().unwrap();
    let mut opening = first.to_vec();
    opening.extend_from_slice(filler.as_bytes());
    let sender = std::thread::spawn(move || {
        // Once the server has closed, writes may fail: that is the server's right.
        if writer.write_all(&opening).is_err() {
            return;
        }
        for _ in 0..FILLER_WRITES {
            std::thread::sleep(Duration::from_millis(10));
            if writer.write_all(filler.as_bytes()).is_err() {
                return;
            }
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    (conn, sender)
}

#[test]
fn too_long_line_error_reaches_a_client_that_keeps_sending() {
    let server = Server::start(&["echo", "--max-line", "100"]);
    for attempt in 0..5 {
        let first = format!("ok {attempt}\n{}\n", "b".repeat(5000));
        let (mut conn, sender) = send_and_keep_sending(server.addr, first.as_bytes());
        conn.expect(&format!("ok {attempt}"));
        // Read, not reset: the server closes without destroying its last answer.
        conn.expect("error: line too long (limit 100 bytes)");
        conn.expect_closed();
        sender.join().unwrap();
    }
}

#[test]
fn endless_line_error_reaches_a_client_that_keeps_sending() {
    let server = Server::start(&["calc", "--max-line", "100"]);
    for _ in 0..5 {
        let (mut conn, sender) = send_and_keep_sending(server.addr, "1,".repeat(3000).as_bytes());
        conn.expect(WELCOME);
        conn.expect("error: line too long (limit 100 bytes)");
        conn.expect_closed();
        sender.join().unwrap();
    }
}

#[test]
fn calc_quit_answer_reaches_a_client_that_keeps_sending() {
    let server = Server::start(&["calc"]);
    for _ in 0..5 {
        let (mut conn, sender) = send_and_keep_sending(server.addr, b"1,2\nquit\n");
        conn.expect(WELCOME);
        conn.expect("Sum of input numbers: 3");
        conn.expect("connection closed");
        conn.expect_closed();
        sender.join().unwrap();
    }
}

#[test]
fn endless_line_is_cut_off_at_max_line_without_waiting_for_its_end() {
    let server = Server::start(&["calc", "--max-line", "100"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    // No line ending ever comes; the server must not wait for one.
    conn.send("1,".repeat(150).as_bytes());
    conn.expect("error: line too long (limit 100 bytes)");
    conn.expect_closed();
}

#[test]
fn default_max_line_is_64_kib() {
    let server = Server::start(&["echo"]);
    let at_limit = "x".repeat(64 * 1024);
    let mut conn = LineConn::open(server.addr);
    conn.ask(&at_limit, &at_limit);
    conn.send(format!("{}\n", "y".repeat(64 * 1024 + 1)).as_bytes());
    conn.expect("error: line too long (limit 65536 bytes)");
    conn.expect_closed();
}

#[test]
fn invalid_utf8_gets_an_error_line_and_the_connection_goes_on() {
    let server = Server::start(&["echo"]);
    assert_eq!(
        transcript(server.addr, b"before\n\xff\xfe\xfd\r\n\xc3\x28\nh\xc3\xa9\n\xe2\x82\nafter\r\n"),
        "before\r\nerror: invalid UTF-8\r\nerror: invalid UTF-8\r\nh\u{e9}\r\nerror: invalid UTF-8\r\nafter\r\n"
    );
    // The connection keeps its state too.
    let server = Server::start(&["calc"]);
    let mut conn = LineConn::open(server.addr);
    conn.expect(WELCOME);
    conn.ask("product", "<switching to product mode>");
    conn.send(b"2,\xff3\r\n");
    conn.expect("error: invalid UTF-8");
    conn.ask("2,3", "Product of input numbers: 6");
}

/// Closes `stream` with a reset instead of an orderly close (SO_LINGER with a zero timeout).
fn close_abruptly(stream: TcpStream) {
    rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).unwrap();
    drop(stream);
}

#[test]
fn clients_vanishing_mid_line_do_not_disturb_anyone_else() {
    let server = Server::start(&["echo"]);
    let mut steady = LineConn::open(server.addr);
    steady.ask("before", "before");
    for i in 0..60 {
        let mut stream = connect(server.addr);
        let partial = if i % 3 == 0 {
            "z".repeat(60_000)
        } else {
            format!("half a li{i}")
        };
        stream.write_all(partial.as_bytes()).unwrap();
        if i % 2 == 0 {
            close_abruptly(stream);
        } else {
            drop(stream);
        }
    }
    steady.ask("after", "after");
    let mut fresh = LineConn::open(server.addr);
    fresh.ask("fresh", "fresh");
    steady.ask("still", "still");
}

#[test]
fn client_that_never_reads_does_not_stop_others_being_served() {
    let server = Server::start(&["echo", "-w", "1"]);
    let mut hog = connect(server.addr);
    send_until_the_server_stops_taking_more(&mut hog);
    // The only worker is stuck writing to `hog`; everyone else is still served.
    let mut other = LineConn::open(server.addr);
    other.ask("can you hear me", "can you hear me");
    assert_eq!(transcript(server.addr, b"one\ntwo\r\n"), "one\r\ntwo\r\n");
    other.ask("still", "still");
    drop(hog);
}

/// Sends lines without ever reading the answers until the server stops taking more: its answers
/// have filled both socket buffers and it is blocked writing to us.
fn send_until_the_server_stops_taking_more(stream: &mut TcpStream) {
    let block = format!("{}\n", "q".repeat(1023)).repeat(64);
    stream.set_nonblocking(true).unwrap();
    let mut total = 0usize;
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 10 {
        assert!(
            total < 1 << 30,
            "the server took 1 GiB from a client that never reads"
        );
        match stream.write(block.as_bytes()) {
            Ok(written) => {
                total += written;
                refused_in_a_row = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                refused_in_a_row += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("writing to the server: {e}"),
        }
    }
    assert!(total > 0);
}

#[test]
fn ten_thousand_concurrent_connections_to_one_worker_are_all_answered() {
    const CONNECTIONS: usize = 10_000;
    let _heavy = heavy_test();
    let limit = raise_fd_limit();
    assert!(
        limit >= CONNECTIONS as u64 + 1000,
        "open-file limit {limit} too low for this test"
    );
    let server = Server::start(&["echo", "-w", "1", "--no-access-log"]);
    let lines: Vec<String> = (0..CONNECTIONS)
        .map(|i| format!("connection {i}\n"))
        .collect();
    let answers = runtime().block_on(async {
        // Every connection is open before the first line is sent.
        let streams = tokio::time::timeout(
            Duration::from_secs(120),
            connect_many(server.addr, CONNECTIONS),
        )
        .await
        .expect("10,000 connections opened in time");
        tokio::time::timeout(Duration::from_secs(120), ask_all(streams, lines))
            .await
            .expect("10,000 answers in time")
    });
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(*answer, format!("connection {i}\r\n"));
    }
    // The worker is still healthy afterwards.
    let mut conn = LineConn::open(server.addr);
    conn.ask("done", "done");
}
