//! Clients that send their request slowly: what each costs the worker while it waits, and what
//! the worker keeps once they are gone.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{connect, get, raise_own_fd_limit, Server, Site};

/// The worker's resident memory, in bytes (VmRSS of /proc/PID/status).
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("worker status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .expect("VmRSS line");
    kib * 1024
}

/// Polls for up to `patience` until the worker's memory is at most `limit`; returns the last reading.
fn wait_for_resident_at_most(pid: u32, limit: u64, patience: Duration) -> u64 {
    let deadline = Instant::now() + patience;
    loop {
        let resident = resident_bytes(pid);
        if resident <= limit || Instant::now() >= deadline {
            return resident;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn partial_heads_cost_memory_in_proportion_and_give_it_back_when_closed() {
    const CLIENTS: usize = 3_000;
    /// A partial head here is under 100 bytes; allow for the task and socket around it.
    const PER_CONNECTION_BOUND: u64 = 6 * 1024;
    const RETURNED_WITHIN: u64 = 10 * 1024 * 1024;
    let limit = raise_own_fd_limit();
    assert!(
        limit as usize > CLIENTS + 100,
        "this machine allows only {limit} descriptors per process"
    );
    let site = Site::new();
    site.file("index.html", b"ok");
    let server = Server::start(&["serve", "-r", &site.root_str(), "--no-access-log"]);
    assert_eq!(get(server.addr, "/").status, 200);
    let worker = server.worker_pids()[0];
    let before = resident_bytes(worker);

    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(server.addr)).collect();
    // Two pieces, so each connection reads again while its head is incomplete.
    for client in &mut clients {
        client.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    for client in &mut clients {
        client.write_all(b"X-Slow: 1\r\n").unwrap();
    }
    // Served, so the worker has been through its event queue since the second pieces were sent.
    assert_eq!(get(server.addr, "/").status, 200);
    std::thread::sleep(Duration::from_millis(500));
    let during = resident_bytes(worker);
    drop(clients);
    let after = wait_for_resident_at_most(worker, before + RETURNED_WITHIN, Duration::from_secs(5));
    eprintln!(
        "worker RSS: {} KiB before, {} KiB with {CLIENTS} partial heads, {} KiB after they closed",
        before / 1024,
        during / 1024,
        after / 1024
    );
    assert!(
        during <= before + CLIENTS as u64 * PER_CONNECTION_BOUND,
        "{CLIENTS} partial heads took the worker from {before} to {during} bytes"
    );
    assert!(
        after <= before + RETURNED_WITHIN,
        "after the partial heads closed the worker still holds {after} bytes (started at {before})"
    );
    // And it still serves.
    assert_eq!(get(server.addr, "/").status, 200);
}
