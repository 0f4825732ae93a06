//! Worker recycling: --max-requests (with jitter) and --worker-lifetime replace a worker with a
//! fresh one under keep-alive load without failing a request. (--max-worker-memory is tested
//! with a leaking WSGI app in tests/python/test_recycling.py.)

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::support::{connect, eventually, read_response, Server, Site};

/// Keep-alive GETs until `stop`; reconnects only after `Connection: close`. Counts failures.
fn client(addr: SocketAddr, stop: Arc<AtomicBool>, served: Arc<AtomicU64>, failed: Arc<AtomicU64>) {
    let mut reader: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        let conn = reader.get_or_insert_with(|| BufReader::new(connect(addr)));
        let answer = conn
            .get_mut()
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .ok()
            .and_then(|_| read_response(conn, false));
        match answer {
            Some(response) if response.status == 200 && response.body == b"recycled" => {
                served.fetch_add(1, Ordering::Relaxed);
                if response.header("connection") == Some("close") {
                    reader = None;
                }
            }
            _ => {
                failed.fetch_add(1, Ordering::Relaxed);
                reader = None;
            }
        }
    }
}

/// Runs 8 keep-alive clients until `workers_seen` distinct worker pids have served; returns
/// the failures and the server's log.
fn load_until_replaced(args: &[&str], workers_seen: usize) -> (u64, String) {
    let site = Site::new();
    site.file("index.html", b"recycled");
    let root = site.root_str();
    let mut all = vec!["serve", "-r", root.as_str(), "--no-access-log"];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            let addr = server.addr;
            std::thread::spawn(move || client(addr, stop, served, failed))
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    eventually("workers replaced", || {
        seen.extend(server.worker_pids());
        seen.len() >= workers_seen
    });
    let total = served.load(Ordering::Relaxed);
    eventually("load served after the replacements", || {
        served.load(Ordering::Relaxed) > total + 100
    });
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    (failed.load(Ordering::Relaxed), server.log())
}

#[test]
fn max_requests_replaces_the_worker_without_failing_a_request() {
    let (failed, log) =
        load_until_replaced(&["--max-requests", "300", "--max-requests-jitter", "50"], 3);
    assert_eq!(
        failed, 0,
        "requests failed while workers were recycled:\n{log}"
    );
    assert!(
        log.contains("asking for a replacement: served"),
        "the worker says why:\n{log}"
    );
    assert!(log.contains("asked to be replaced"), "{log}");
}

#[test]
fn worker_lifetime_replaces_the_worker_without_failing_a_request() {
    let (failed, log) = load_until_replaced(&["--worker-lifetime", "0.5", "-w", "2"], 4);
    assert_eq!(
        failed, 0,
        "requests failed while workers were recycled:\n{log}"
    );
    assert!(
        log.contains("asking for a replacement: running for"),
        "{log}"
    );
}

#[test]
fn recycling_flags_are_validated() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--max-worker-memory", "lots"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-worker-memory"));
}
