//! Restarts and shutdown that lose no request: SIGHUP under keep-alive load, the drain's idle
//! window, listeners closed as soon as nobody will accept, orphaned workers that free the port,
//! a second signal that stops at once, and `--grace-timeout 0`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::support::{
    connect, eventually, read_response, send_signal, wait_parked, Server, Site, PATIENCE,
};

/// A site with a small page and a file big enough that a client that stops reading keeps its
/// download in flight.
fn site() -> Site {
    let site = Site::new();
    site.file("index.html", b"hello from a worker");
    site.file("big.bin", &vec![7u8; 32 * 1024 * 1024]);
    site
}

/// Starts a download of big.bin and reads only its first bytes: the request stays in flight.
fn stalled_download(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    stream.read_exact(&mut first).unwrap();
    stream
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What one keep-alive client saw.
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    failed: AtomicU64,
    /// Responses that said `Connection: close` (the drain's last answers).
    closing: AtomicU64,
}

/// A keep-alive client that alternates GET and POST on one connection and opens a new one only
/// when the server said `Connection: close`, as a browser or `requests` session does. A request
/// that gets no complete, correct answer is a failure.
fn keepalive_client(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut reader: Option<BufReader<TcpStream>> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let conn = reader.get_or_insert_with(|| BufReader::new(connect(addr)));
        let is_get = n & 1 == 0;
        let request: Vec<u8> = if is_get {
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()
        } else {
            // Static files answer POST with 405 after reading the body; the body must not be
            // lost or taken for the next request.
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec()
        };
        let answer = conn
            .get_mut()
            .write_all(&request)
            .ok()
            .and_then(|_| read_response(conn, false));
        let expected = if is_get { 200 } else { 405 };
        match answer {
            Some(response) if response.status == expected => {
                tally.served.fetch_add(1, Ordering::Relaxed);
                if response
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    tally.closing.fetch_add(1, Ordering::Relaxed);
                    reader = None;
                }
            }
            _ => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
                reader = None;
            }
        }
    }
}

/// Regression: a draining worker answered in-flight requests with `Connection: keep-alive` and
/// then closed the connection without reading the request its client had already sent, so
/// about one request per connection failed at every restart.
#[test]
fn sighup_under_keepalive_load_fails_no_request() {
    let site = site();
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "-w",
        "2",
        "--no-access-log",
    ]);
    eventually("two workers", || server.worker_pids().len() == 2);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (addr, stop, tally) = (server.addr, stop.clone(), tally.clone());
            std::thread::spawn(move || keepalive_client(addr, stop, tally))
        })
        .collect();
    eventually("load running", || {
        tally.served.load(Ordering::Relaxed) > 500
    });
    for restart in 1..=4 {
        let before = server.worker_pids();
        server.signal(libc::SIGHUP);
        eventually("the old workers gone", || {
            let pids = server.worker_pids();
            pids.len() == 2 && before.iter().all(|old| !pids.contains(old))
        });
        let served = tally.served.load(Ordering::Relaxed);
        eventually("load served by the new workers", || {
            tally.served.load(Ordering::Relaxed) > served + 300
        });
        assert!(
            server.log().matches("rolling restart done").count() >= restart,
            "{}",
            server.log()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(
        tally.failed.load(Ordering::Relaxed),
        0,
        "requests failed across the restarts ({} served)",
        tally.served.load(Ordering::Relaxed)
    );
    assert!(
        tally.closing.load(Ordering::Relaxed) >= 16,
        "draining workers said Connection: close on their last answers"
    );
}

#[test]
fn a_request_sent_during_the_drain_window_is_answered_with_connection_close() {
    let site = site();
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--drain-idle-window",
        "30",
        "--grace-timeout",
        "60",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let metrics = server.metrics_addr();
    let mut reader = BufReader::new(connect(server.addr));
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let first = read_response(&mut reader, false).unwrap();
    assert_eq!(first.header("connection"), Some("keep-alive"));
    // Silent after its answer, it waits in the idle park, outside its task.
    wait_parked(metrics, 1);
    server.signal(libc::SIGTERM);
    server.wait_for_log("stopping", "in-flight");
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let last = read_response(&mut reader, false).expect("the request is served, not dropped");
    assert_eq!(last.status, 200);
    assert_eq!(last.body, b"hello from a worker");
    assert_eq!(last.header("connection"), Some("close"));
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the server closed after its last answer");
}

/// Regression: after SIGTERM the kernel kept accepting connections that nobody would ever
/// serve, and reset them when the process exited.
#[test]
fn a_draining_server_refuses_new_connections_at_once() {
    let site = site();
    let mut server = Server::start(&["serve", "-r", &site.root_str(), "-w", "2"]);
    eventually("two workers", || server.worker_pids().len() == 2);
    let download = stalled_download(server.addr);
    server.signal(libc::SIGTERM);
    server.wait_for_log("shutting down", "");
    eventually("connections refused", || {
        matches!(
            TcpStream::connect(server.addr),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused
        )
    });
    drop(download);
    assert!(server.wait_exit(PATIENCE).is_some());
}

/// Regression: workers orphaned by `kill -9` of the supervisor kept the port while they
/// drained, so a restarted server failed with "Address already in use" for up to the grace
/// timeout.
#[test]
fn orphaned_workers_free_the_port_at_once() {
    let site = site();
    let port = free_port().to_string();
    let start = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(["serve", "-r", &site.root_str(), "--port", &port])
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = start(&["-w", "2", "--grace-timeout", "60"]);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let workers = || {
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", first.id()))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .collect::<Vec<_>>()
    };
    eventually("two workers", || workers().len() == 2);
    let orphans = workers();
    eventually("the server accepts", || TcpStream::connect(addr).is_ok());
    // A download in flight keeps one orphan draining for the whole grace timeout.
    let download = stalled_download(addr);
    first.kill().unwrap();
    first.wait().unwrap();

    let mut second = None;
    let deadline = Instant::now() + PATIENCE;
    while second.is_none() && Instant::now() < deadline {
        let mut child = start(&[]);
        let mut log = String::new();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        while reader.read_line(&mut log).unwrap_or(0) > 0 && !log.contains("listening on") {}
        if log.contains("listening on") {
            second = Some(child);
        } else {
            assert!(log.contains("Address already in use"), "{log}");
            child.wait().unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(download);
    for pid in orphans {
        // The workers of the server this test started.
        send_signal(pid, libc::SIGKILL);
    }
    let mut second = second.expect("a new server binds the port while the orphans drain");
    send_signal(second.id(), libc::SIGTERM);
    second.wait().unwrap();
}

/// Regression: a second SIGTERM during the drain was ignored until the grace timeout.
#[test]
fn a_second_sigterm_stops_at_once_and_reports_the_cut_request() {
    let site = site();
    let mut server = Server::start(&["serve", "-r", &site.root_str(), "--grace-timeout", "60"]);
    let download = stalled_download(server.addr);
    server.signal(libc::SIGTERM);
    server.wait_for_log("stopping", "in-flight");
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
        .expect("the second signal stops the server long before the 60 s grace timeout");
    assert_eq!(status.code(), Some(1));
    server.wait_for_log("stopping at once", "cutting 1 request");
    drop(download);
}

/// Ctrl-C in a terminal reaches every process of the group: the first drains, the second stops.
#[test]
fn ctrl_c_twice_to_the_process_group_stops_at_once() {
    use std::os::unix::process::CommandExt;
    let site = site();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["serve", "-r", &site.root_str(), "--grace-timeout", "60"])
        .args(["--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut server = Server::from_command(command);
    let download = stalled_download(server.addr);
    // The server this test started leads a process group of its own.
    let group = Pid::from_raw(server.pid() as i32).expect("a process id");
    kill_process_group(group, Signal::INT).unwrap();
    server.wait_for_log("stopping", "in-flight");
    assert!(
        !server.log().contains("stopping at once"),
        "one Ctrl-C drains:\n{}",
        server.log()
    );
    kill_process_group(group, Signal::INT).unwrap();
    let status = server
        .wait_exit(PATIENCE)
        .expect("the second Ctrl-C stops the server long before the grace timeout");
    assert_eq!(status.code(), Some(1));
    server.wait_for_log("stopping at once", "cutting 1 request");
    drop(download);
}

#[test]
fn grace_timeout_zero_does_not_wait() {
    let site = site();
    let mut server = Server::start(&["serve", "-r", &site.root_str(), "--grace-timeout", "0"]);
    let download = stalled_download(server.addr);
    server.signal(libc::SIGTERM);
    let status = server.wait_exit(PATIENCE).expect("exits at once");
    assert_eq!(status.code(), Some(1));
    server.wait_for_log("grace timeout reached", "cutting 1 request");
    drop(download);
}

#[test]
fn the_health_check_is_answered_by_the_server_for_any_method() {
    let site = site();
    let server = Server::start(&["serve", "-r", &site.root_str(), "--health-path", "/healthz"]);
    for method in ["GET", "HEAD", "POST", "OPTIONS"] {
        let mut reader = BufReader::new(connect(server.addr));
        write!(
            reader.get_mut(),
            "{method} /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let response = read_response(&mut reader, method == "HEAD").unwrap();
        assert_eq!(response.status, 200, "{method}");
        assert_eq!(response.header("cache-control"), Some("no-store"));
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{method}"
        );
    }
    assert_eq!(crate::support::get(server.addr, "/healthz").body, b"ok\n");
    // Only the exact path.
    assert_eq!(crate::support::get(server.addr, "/healthz/x").status, 404);
}

/// The Kubernetes pattern: on SIGTERM the health check fails first while everything is still
/// served, and only after --drain-delay do the listeners close.
#[test]
fn drain_delay_fails_the_health_check_before_the_listeners_close() {
    let site = site();
    let mut server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "-w",
        "2",
        "--health-path",
        "/healthz",
        "--drain-delay",
        "30",
    ]);
    eventually("two workers", || server.worker_pids().len() == 2);
    server.signal(libc::SIGTERM);
    server.wait_for_log("health checks answer 503", "draining in 30s");
    // Every worker hears of it; new connections are still accepted and served meanwhile.
    eventually("the health check fails on every worker", || {
        (0..8).all(|_| crate::support::get(server.addr, "/healthz").status == 503)
    });
    assert_eq!(
        crate::support::get(server.addr, "/").body,
        b"hello from a worker"
    );
    // A second signal cuts the delay short and stops at once.
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
        .expect("stops long before the 30 s delay");
    assert_eq!(status.code(), Some(0), "nothing was in flight");
}

/// A redeploy behind a load balancer: SIGUSR2 to the server fails the health check of every
/// worker while everything else is still served; the workers that SIGHUP starts are healthy.
#[test]
fn sigusr2_fails_the_health_check_until_sighup_replaces_the_workers() {
    let site = site();
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "-w",
        "2",
        "--health-path",
        "/healthz",
    ]);
    eventually("two workers", || server.worker_pids().len() == 2);
    let healthy = || (0..8).all(|_| crate::support::get(server.addr, "/healthz").status == 200);
    assert!(healthy());
    server.signal(libc::SIGUSR2);
    eventually("the health check fails on every worker", || {
        (0..8).all(|_| crate::support::get(server.addr, "/healthz").status == 503)
    });
    assert_eq!(
        crate::support::get(server.addr, "/").body,
        b"hello from a worker"
    );
    server.signal(libc::SIGHUP);
    server.wait_for_log("rolling restart done", "");
    eventually("the new workers are healthy", healthy);
}
