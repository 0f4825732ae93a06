//! Worker processes and signals: -w N, replacing a killed worker, SIGHUP rolling restart under
//! load, SIGTERM draining in-flight downloads, and the grace timeout.

use std::io::{BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::support::{
    connect, eventually, get, read_response, send_signal, wait_parked, Server, Site, PATIENCE,
};

fn site_with_index() -> Site {
    let site = Site::new();
    site.file("index.html", b"hello from a worker");
    site
}

#[test]
fn runs_the_requested_number_of_workers() {
    let site = site_with_index();
    let server = Server::start(&["serve", "-r", &site.root_str(), "-w", "3"]);
    eventually("three workers", || server.worker_pids().len() == 3);
    for _ in 0..20 {
        assert_eq!(get(server.addr, "/").body, b"hello from a worker");
    }
    assert!(
        server.log().contains("3 workers"),
        "start line names the worker count:\n{}",
        server.log()
    );
}

#[test]
fn a_killed_worker_is_replaced_and_logged() {
    let site = site_with_index();
    let server = Server::start(&["serve", "-r", &site.root_str(), "-w", "2"]);
    eventually("two workers", || server.worker_pids().len() == 2);
    let victim = server.worker_pids()[0];
    send_signal(victim, libc::SIGKILL);
    server.wait_for_log(&format!("worker {victim} died"), "replacement");
    eventually("a replacement worker", || {
        let pids = server.worker_pids();
        pids.len() == 2 && !pids.contains(&victim)
    });
    assert_eq!(get(server.addr, "/").status, 200);
}

#[test]
fn sighup_replaces_every_worker_without_failing_a_request() {
    let site = site_with_index();
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "-w",
        "2",
        "--no-access-log",
    ]);
    eventually("two workers", || server.worker_pids().len() == 2);
    let old_pids = server.worker_pids();

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let hammers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, failures, addr) =
                (stop.clone(), served.clone(), failures.clone(), server.addr);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut stream = connect(addr);
                    let ok = stream
                        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .is_ok()
                        && read_response(&mut BufReader::new(stream), false)
                            .is_some_and(|r| r.status == 200 && r.body == b"hello from a worker");
                    if ok {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    eventually("load running", || served.load(Ordering::Relaxed) > 200);
    server.signal(libc::SIGHUP);
    server.wait_for_log("rolling restart done", "");
    eventually("old workers gone", || {
        let pids = server.worker_pids();
        pids.len() == 2 && old_pids.iter().all(|old| !pids.contains(old))
    });
    let after_restart = served.load(Ordering::Relaxed);
    eventually("load still served after the restart", || {
        served.load(Ordering::Relaxed) > after_restart + 200
    });
    stop.store(true, Ordering::Relaxed);
    for hammer in hammers {
        hammer.join().unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during the rolling restart"
    );
}

#[test]
fn sigterm_finishes_a_download_in_flight_then_exits_zero() {
    let site = Site::new();
    let size = 64 * 1024 * 1024;
    let contents: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    site.file("big.bin", &contents);
    let mut server = Server::start(&["serve", "-r", &site.root_str()]);

    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // Read only a little, so the server is still sending when the signal arrives.
    let mut first = vec![0u8; 64 * 1024];
    stream.read_exact(&mut first).unwrap();
    server.signal(libc::SIGTERM);
    server.wait_for_log("stopping", "in-flight");

    let mut reader = BufReader::new(first.as_slice().chain(stream));
    let response = read_response(&mut reader, false).expect("the response");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), size, "the whole file arrived");
    assert!(response.body == contents, "byte-exact");
    let status = server
        .wait_exit(PATIENCE)
        .expect("server exits after the drain");
    assert_eq!(status.code(), Some(0));
}

/// Closed after the drain's idle window (1.5 s by default), long before the grace timeout.
#[test]
fn sigterm_closes_idle_keepalive_connections_soon() {
    let site = site_with_index();
    let mut server = Server::start(&["serve", "-r", &site.root_str(), "--grace-timeout", "60"]);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
    server.signal(libc::SIGTERM);
    // The idle connection is closed by the server (EOF), long before the 60 s grace period
    // (the test harness gives up after 20 s).
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(server.wait_exit(PATIENCE).and_then(|s| s.code()), Some(0));
}

#[test]
fn sigterm_closes_parked_keepalive_connections_soon() {
    let site = site_with_index();
    let mut server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--grace-timeout",
        "60",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let metrics = server.metrics_addr();
    let mut readers = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(server.addr);
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut reader = BufReader::new(stream);
        assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
        readers.push(reader);
    }
    // Silent after their answers, all of them wait in the idle park, outside their tasks.
    wait_parked(metrics, 20);
    server.signal(libc::SIGTERM);
    for mut reader in readers {
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
    assert_eq!(server.wait_exit(PATIENCE).and_then(|s| s.code()), Some(0));
}

#[test]
fn grace_timeout_bounds_the_drain() {
    let site = Site::new();
    site.file("big.bin", &vec![7u8; 32 * 1024 * 1024]);
    let mut server = Server::start(&["serve", "-r", &site.root_str(), "--grace-timeout", "1"]);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    stream.read_exact(&mut first).unwrap();
    // This client never reads again: only the grace timeout can end the drain.
    server.signal(libc::SIGTERM);
    let status = server
        .wait_exit(PATIENCE)
        .expect("exits once the grace timeout passes");
    // A request was cut: the log says how many, and the exit status is not 0.
    assert_eq!(status.code(), Some(1));
    server.wait_for_log("grace timeout reached", "cutting 1 request");
    drop(stream);
}

#[test]
fn logs_carry_time_level_and_pid_and_go_to_logfile() {
    let site = site_with_index();
    let logfile = site.dir.path().join("tern.log");
    // The start-up line goes to the log file too, so find a free port here instead of reading it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "serve",
            "-r",
            &site.root_str(),
            "--port",
            &port.to_string(),
            "--logfile",
            logfile.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually("the server accepts", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    assert_eq!(get(addr, "/").status, 200);
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
    let worker: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    eventually("the access line in the log file", || {
        std::fs::read_to_string(&logfile)
            .unwrap_or_default()
            .contains("\"GET / HTTP/1.1\" 200")
    });
    let text = std::fs::read_to_string(&logfile).unwrap();
    let access = text
        .lines()
        .find(|l| l.contains("\"GET / HTTP/1.1\" 200"))
        .unwrap();
    // 2026-11-23T08:40:01.123Z INFO [1234] 127.0.0.1 "GET / HTTP/1.1" 200 19 57us
    let fields: Vec<&str> = access.split(' ').collect();
    assert!(
        fields[0].len() == 24 && fields[0].ends_with('Z'),
        "timestamp: {access}"
    );
    assert_eq!(fields[1], "INFO");
    assert_eq!(fields[2], format!("[{worker}]"));
    assert_eq!(fields[3], "127.0.0.1");
    assert!(fields.last().unwrap().ends_with("us"), "duration: {access}");
    assert!(
        text.contains("listening on http://"),
        "the start-up line is in the file too"
    );
    send_signal(child.id(), libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn unix_socket_bind_and_warning_level_hide_info_lines() {
    use std::os::unix::net::UnixStream;
    use std::process::{Command, Stdio};

    let site = site_with_index();
    let socket = site.dir.path().join("tern.sock");
    let bind = format!("unix:{}", socket.display());
    let child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "serve",
            "-r",
            &site.root_str(),
            "--bind",
            &bind,
            "--log",
            "warning",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the socket file", || UnixStream::connect(&socket).is_ok());
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let response = read_response(&mut BufReader::new(stream), false).unwrap();
    assert_eq!(response.body, b"hello from a worker");
    send_signal(child.id(), libc::SIGTERM);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        !log.contains(" INFO "),
        "no info lines at --log warning:\n{log}"
    );
    assert!(!socket.exists(), "the socket file is removed on exit");
}
