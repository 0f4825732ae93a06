//! Starting the real `tern` binary on a free port and talking to it over real sockets.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{getrlimit, setrlimit, Pid, Resource, Rlimit, Signal};

pub mod scrape;
pub mod tls;

pub use scrape::{parked, scrape, value, wait_parked};

/// How long a test waits for anything (server start, a response) before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls until `condition` holds; panics with `what` after [`PATIENCE`].
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `tern` process (the supervisor), stopped when dropped.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Everything the server logged so far.
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Runs `tern <args> --port 0` and waits for its "listening on" line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
        command
            .args(args)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        Server::from_command(command)
    }

    /// Spawns a prepared command (stderr must be piped) and waits for its "listening on" line.
    pub fn from_command(mut command: Command) -> Server {
        let mut child = command.spawn().expect("start tern");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (found_tx, found_rx) = std::sync::mpsc::channel();
        let log_for_thread = log.clone();
        std::thread::spawn(move || {
            let mut found_tx = Some(found_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or("");
                    let addr = addr
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .trim_start_matches("tcp://")
                        .trim_end_matches(',');
                    if let (Some(tx), Ok(addr)) = (found_tx.take(), addr.parse::<SocketAddr>()) {
                        let _ = tx.send(addr);
                    }
                }
                let mut log = log_for_thread.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match found_rx.recv_timeout(PATIENCE) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("tern did not start; log:\n{}", log.lock().unwrap());
            }
        };
        let server = Server {
            child: Some(child),
            addr,
            log,
        };
        server.wait_for_log("worker", "started");
        server
    }

    /// The address of the metrics listener (`--metrics-bind`), from the start-up log line
    /// `metrics on http://ADDR/metrics`.
    pub fn metrics_addr(&self) -> SocketAddr {
        let line = self.wait_for_log("metrics on", "/metrics");
        line.split("http://")
            .nth(1)
            .and_then(|rest| rest.split("/metrics").next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
    }

    /// Every address of the start-up line `listening on http://A, https://B (...)`, with its
    /// scheme.
    pub fn addresses(&self) -> Vec<(String, SocketAddr)> {
        let line = self.wait_for_log("listening on", "worker");
        let list = line.split("listening on ").nth(1).unwrap();
        let list = list.split(" (").next().unwrap();
        list.split(", ")
            .filter_map(|entry| {
                let (scheme, addr) = entry.split_once("://")?;
                Some((scheme.to_string(), addr.parse().ok()?))
            })
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line contains both `a` and `b`; panics after [`PATIENCE`].
    pub fn wait_for_log(&self, a: &str, b: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(a) && l.contains(b)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {a:?} and {b:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pids of the worker processes (children of the supervisor).
    pub fn worker_pids(&self) -> Vec<u32> {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid()))
            .unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the supervisor to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Workers follow it.
            send_signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Raises this test process's soft descriptor limit to its hard limit; returns the new limit.
pub fn raise_own_fd_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    // `None` is RLIM_INFINITY.
    limit.maximum.unwrap_or(u64::MAX)
}

/// Sends `signal` (a `libc::SIG…` number) to `pid`: a process this test started, or one of its
/// workers. One that has exited already is no error.
pub fn send_signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .expect("a process id");
    let signal = Signal::from_named_raw(signal).expect("a named signal");
    let _ = rustix::process::kill_process(pid, signal);
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from `reader`. `head_request`: the request was HEAD (no body follows).
pub fn read_response<R: BufRead>(reader: &mut R, head_request: bool) -> Option<Response> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return if head.is_empty() {
                None
            } else {
                panic!("connection closed inside a response head: {head:?}")
            };
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(':').expect("header line");
            (name.to_string(), value.trim().to_string())
        })
        .collect();
    let mut response = Response {
        status,
        head: head.clone(),
        headers,
        body: Vec::new(),
    };
    if head_request || status == 304 || status == 204 || status < 200 {
        return Some(response);
    }
    if let Some(length) = response.header("content-length") {
        let length: usize = length.parse().unwrap();
        response.body = vec![0; length];
        reader.read_exact(&mut response.body).expect("body");
    } else if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).unwrap();
            let size =
                usize::from_str_radix(size_line.trim().split(';').next().unwrap(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            if size == 0 {
                break;
            }
            response.body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut response.body).unwrap();
    }
    Some(response)
}

/// Sends raw bytes on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    let head_request = request.starts_with(b"HEAD ");
    read_response(&mut BufReader::new(stream), head_request).expect("a response")
}

/// `GET path` with `extra` header lines ("Name: value\r\n" each), on a fresh connection.
pub fn get_with(addr: SocketAddr, path: &str, extra: &str) -> Response {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    )
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    get_with(addr, path, "")
}

/// Sends raw bytes and returns everything the server sends until it closes.
pub fn raw_until_close(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Status code of the first response in raw bytes.
pub fn status_of(raw: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(raw);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// A temporary folder with a `root/` document root and space beside it for files outside the root.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        Site { dir }
    }

    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    pub fn root_str(&self) -> String {
        self.root().to_string_lossy().into_owned()
    }

    /// Writes a file below the root (creating folders).
    pub fn file(&self, relative: &str, contents: &[u8]) -> &Site {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }
}
