//! Logs a deployment reads: `--access-log-format` (gunicorn's atoms), `--log-format json`,
//! `--access-logfile`, and SIGUSR1 reopening the log files after a rotation without losing or
//! cutting a line.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{connect, exchange, read_response, send_signal, Server, Site, PATIENCE};

/// 19 bytes, the benchmark's static case.
const PAGE: &[u8] = b"hello from the logs";

fn site() -> Site {
    let site = Site::new();
    site.file("index.html", PAGE);
    site
}

/// Polls until `condition` holds; panics with `what` after the harness's patience.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `GET path` with extra header lines, on a fresh connection; returns the status.
fn get_status(addr: SocketAddr, path: &str, extra: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    exchange(addr, request.as_bytes()).status
}

/// `count` requests on one keep-alive connection, for `/?n=<first>`, `/?n=<first + 1>`, ...
fn numbered_requests(addr: SocketAddr, first: usize, count: usize) {
    let mut stream = connect(addr);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for n in first..first + count {
        write!(stream, "GET /?n={n} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let response = read_response(&mut reader, false).expect("a response");
        assert_eq!(response.status, 200);
    }
}

/// A tern whose log goes to a file (so its start-up line cannot be read from stderr): started
/// on a port found free beforehand, stopped with SIGTERM when dropped.
struct FileLogged {
    child: Child,
    addr: SocketAddr,
}

impl FileLogged {
    fn start(args: &[&str]) -> FileLogged {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(args)
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        eventually("the server accepts", || {
            std::net::TcpStream::connect(addr).is_ok()
        });
        FileLogged { child, addr }
    }

    fn signal(&self, signal: i32) {
        send_signal(self.child.id(), signal);
    }

    /// SIGTERM, then the exit status (the workers write out their access lines on the way).
    fn stop(mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "tern did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FileLogged {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The access lines for `/?n=N` in `text`, as the numbers N; panics on a line that is not a
/// whole log line (time, level, pid, then the access line's parts to its end).
fn numbered_access_lines(text: &str) -> Vec<usize> {
    let mut numbers = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(
            fields.len() >= 4 && fields[0].len() == 24 && fields[0].ends_with('Z'),
            "not a whole log line: {line:?}"
        );
        let Some(rest) = line.split("\"GET /?n=").nth(1) else {
            continue;
        };
        let (n, tail) = rest.split_once(' ').unwrap();
        assert!(
            tail.starts_with("HTTP/1.1\" 200 19 ") && tail.ends_with("us"),
            "a cut access line: {line:?}"
        );
        numbers.push(n.parse().unwrap());
    }
    numbers
}

#[test]
fn a_custom_access_log_format_shows_gunicorns_atoms() {
    let site = site();
    let format = concat!(
        r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" "#,
        r#"%(m)s %(U)s %(q)s %(H)s %({X-Request-Id}i)s %({Content-Type}o)s "#,
        r#"%({Content-Length}o)s %({X-Absent}o)s %(D)s %(M)s %(T)s 100%%"#,
    );
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--access-log-format",
        format,
    ]);
    let extra =
        "Referer: http://example.com/from\r\nUser-Agent: probe/1.0\r\nX-Request-Id: r-42\r\n";
    assert_eq!(get_status(server.addr, "/index.html?a=1&b=2", extra), 200);
    let line = server.wait_for_log("\"GET /index.html?a=1&b=2 HTTP/1.1\"", "probe");
    // The format and nothing else, as gunicorn writes it (no `time INFO [pid] ` before it).
    let (start, time_and_rest) = line.split_once('[').unwrap();
    assert_eq!(start, "127.0.0.1 - - ");
    let (time, rest) = time_and_rest.split_once("] ").unwrap();
    // 03/Dec/2026:10:00:00 +0000
    assert_eq!(time.len(), 26, "{time}");
    assert!(time.ends_with(" +0000") && time[2..3] == *"/", "{time}");
    let expected = concat!(
        r#""GET /index.html?a=1&b=2 HTTP/1.1" 200 19 19 "http://example.com/from" "probe/1.0" "#,
        r#"GET /index.html a=1&b=2 HTTP/1.1 r-42 text/html; charset=utf-8 19 - "#,
    );
    assert!(rest.starts_with(expected), "{rest}");
    let timings: Vec<&str> = rest[expected.len()..].split(' ').collect();
    assert_eq!(timings.len(), 4, "{rest}");
    let micros: u64 = timings[0].parse().unwrap();
    let millis: u64 = timings[1].parse().unwrap();
    assert_eq!(millis, micros / 1000);
    assert!(timings[2].parse::<u64>().is_ok());
    assert_eq!(timings[3], "100%");

    // No body: '-' for %(b)s, 0 for %(B)s; absent request headers are '-'.
    let head = exchange(
        server.addr,
        b"HEAD /index.html HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.status, 200);
    let line = server.wait_for_log("\"HEAD /index.html HTTP/1.1\"", "200");
    assert!(
        line.contains("\"HEAD /index.html HTTP/1.1\" 200 - 0 \"-\" \"-\" HEAD /index.html  HTTP/1.1 - text/html; charset=utf-8 19 - "),
        "{line}"
    );
}

#[test]
fn the_default_access_line_is_unchanged_without_a_format() {
    let site = site();
    let server = Server::start(&["serve", "-r", &site.root_str()]);
    assert_eq!(get_status(server.addr, "/index.html", ""), 200);
    let line = server.wait_for_log("\"GET /index.html HTTP/1.1\"", "200");
    let access = line.splitn(4, ' ').nth(3).unwrap();
    let rest = access
        .strip_prefix("127.0.0.1 \"GET /index.html HTTP/1.1\" 200 19 ")
        .unwrap_or_else(|| panic!("{line}"));
    let micros = rest.strip_suffix("us").unwrap();
    assert!(micros.parse::<u64>().is_ok(), "{line}");
}

#[test]
fn an_unknown_atom_stops_the_server_at_start_up_naming_it() {
    let site = site();
    for (args, env) in [
        (vec!["--access-log-format", "%(h)s %(x)s"], None),
        (vec![], Some("%(h)s %(x)s")),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
        command
            .args(["serve", "-r", &site.root_str(), "--port", "0"])
            .args(&args)
            .stdin(Stdio::null());
        if let Some(format) = env {
            command.env("TERN_ACCESS_LOG_FORMAT", format);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--access-log-format") && stderr.contains("unknown atom %(x)s"),
            "{stderr}"
        );
    }
}

#[test]
fn json_lines_are_one_object_each_with_escaped_strings() {
    let site = site();
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--log-format",
        "json",
        "--access-log-format",
        r#"%(h)s "%(r)s" %(a)s"#,
    ]);
    // A quote and a backslash in the target, a Latin-1 byte and a quote in a header.
    let mut request =
        b"GET /a\"b\\c HTTP/1.1\r\nHost: test\r\nUser-Agent: caf\xe9 \"x\"\r\n".to_vec();
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    // (403: the static server refuses a backslash in a path.)
    assert_eq!(exchange(server.addr, &request).status, 403);
    // A refused request: an INFO line with the reason, and an access line without a request.
    assert_eq!(exchange(server.addr, b"GARBAGE\r\n\r\n").status, 400);
    server.wait_for_log("\"request\":\"-\"", "\"status\":400");
    let log = server.log();
    let objects: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    for object in &objects {
        assert!(object["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert!(object["level"].is_string());
        assert!(object["pid"].is_u64());
    }
    let access = objects
        .iter()
        .find(|o| o["status"] == 403)
        .expect("an access object");
    assert_eq!(access["remote"], "127.0.0.1");
    assert_eq!(access["request"], "GET /a\"b\\c HTTP/1.1");
    assert_eq!(access["level"], "INFO");
    assert!(access["bytes"].as_u64().unwrap() > 0);
    assert!(access["duration_us"].is_u64());
    assert_eq!(
        access["message"],
        "127.0.0.1 \"GET /a\"b\\c HTTP/1.1\" café \"x\""
    );
    assert!(
        objects.iter().any(|o| o["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening on"))),
        "{log}"
    );
    assert!(
        objects.iter().any(|o| o["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("rejected request from 127.0.0.1"))),
        "{log}"
    );
}

#[test]
fn access_lines_go_to_their_own_file_or_to_stdout() {
    let site = site();
    let access_file = site.dir.path().join("access.log");
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--access-logfile",
        access_file.to_str().unwrap(),
    ]);
    numbered_requests(server.addr, 0, 3);
    eventually("three access lines in the access file", || {
        numbered_access_lines(&read(&access_file)).len() == 3
    });
    assert!(
        !server.log().contains("GET /?n="),
        "access lines stay out of the log:\n{}",
        server.log()
    );

    // `-`: standard output, while the rest of the log stays on stderr.
    let stdout_file = site.dir.path().join("stdout.txt");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["serve", "-r", &site.root_str(), "--port", "0"])
        .env("TERN_ACCESS_LOGFILE", "-")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_file).unwrap())
        .stderr(Stdio::piped());
    let server = Server::from_command(command);
    numbered_requests(server.addr, 10, 2);
    eventually("two access lines on stdout", || {
        numbered_access_lines(&read(&stdout_file)) == [10, 11]
    });
    assert!(!server.log().contains("GET /?n="), "{}", server.log());
    assert!(!read(&stdout_file).contains("listening on"));
}

#[test]
fn sigusr1_reopens_a_renamed_logfile_without_losing_a_line() {
    let site = site();
    let log = site.dir.path().join("tern.log");
    let rotated = site.dir.path().join("tern.log.1");
    let server = FileLogged::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "-w",
        "2",
        "--logfile",
        log.to_str().unwrap(),
    ]);
    // Answered just before the rotation: their lines are still in the workers' buffers (written
    // once a second) when the signal comes, and must reach the old file.
    numbered_requests(server.addr, 0, 40);
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(libc::SIGUSR1);
    // Meanwhile: old file or new, each line whole in one of them.
    numbered_requests(server.addr, 40, 40);
    eventually("the supervisor and both workers reopen", || {
        read(&log).matches("reopened").count() == 3
    });
    numbered_requests(server.addr, 80, 40);
    assert_eq!(server.stop(), Some(0));

    let old = read(&rotated);
    let new = read(&log);
    assert!(old.contains("listening on"), "{old}");
    let mut numbers = numbered_access_lines(&old);
    let after = numbered_access_lines(&new);
    assert!(
        (80..120).all(|n| after.contains(&n)),
        "lines after every process reopened are in the new file:\n{new}"
    );
    numbers.extend(after);
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (0..120).collect::<Vec<_>>(),
        "every request has exactly one line"
    );
}

#[test]
fn sigusr1_reopens_the_access_logfile_too() {
    let site = site();
    let access = site.dir.path().join("access.log");
    let rotated = site.dir.path().join("access.log.1");
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "-w",
        "2",
        "--access-logfile",
        access.to_str().unwrap(),
    ]);
    numbered_requests(server.addr, 0, 30);
    std::fs::rename(&access, &rotated).unwrap();
    server.signal(libc::SIGUSR1);
    eventually("the supervisor and both workers reopen", || {
        server.log().matches("reopened").count() == 3
    });
    numbered_requests(server.addr, 30, 30);
    eventually("every line written out", || {
        numbered_access_lines(&read(&rotated)).len() + numbered_access_lines(&read(&access)).len()
            == 60
    });
    let mut numbers = numbered_access_lines(&read(&rotated));
    let after = numbered_access_lines(&read(&access));
    assert!((30..60).all(|n| after.contains(&n)), "{after:?}");
    numbers.extend(after);
    numbers.sort_unstable();
    assert_eq!(numbers, (0..60).collect::<Vec<_>>());
}
