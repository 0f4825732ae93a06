//! Many connections on one worker: 10,000 keep-alive clients at once, running out of file
//! descriptors (the acceptor backs off and recovers), and the connection limit.

use std::io::{BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::support::{
    connect, get, raise_own_fd_limit, read_response, wait_parked, Server, Site, PATIENCE,
};

/// Sends one GET on an open connection and checks the 200 answer, leaving the connection open.
async fn request_on(
    stream: &mut tokio::io::BufReader<tokio::net::TcpStream>,
) -> std::io::Result<()> {
    stream
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await?;
    let mut content_length = None;
    let mut status_ok = false;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.starts_with("HTTP/1.1 200 ") {
            status_ok = true;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = value.trim().parse::<usize>().ok();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; content_length.unwrap_or(0)];
    stream.read_exact(&mut body).await?;
    if status_ok && body == b"ok" {
        Ok(())
    } else {
        Err(std::io::Error::other("unexpected response"))
    }
}

#[test]
fn one_worker_holds_ten_thousand_keepalive_connections() {
    const CLIENTS: usize = 10_000;
    let limit = raise_own_fd_limit();
    assert!(
        limit as usize > CLIENTS + 100,
        "this machine allows only {limit} descriptors per process"
    );
    let site = Site::new();
    site.file("index.html", b"ok");
    let server = Server::start(&["serve", "-r", &site.root_str(), "--no-access-log"]);
    let addr = server.addr;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut connections = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            let stream = tokio::time::timeout(PATIENCE, tokio::net::TcpStream::connect(addr))
                .await
                .unwrap()
                .unwrap();
            connections.push(tokio::io::BufReader::new(stream));
        }
        // Every connection makes one request and stays open (keep-alive).
        let mut first = Vec::new();
        for mut connection in connections {
            first.push(tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(120), request_on(&mut connection))
                    .await??;
                Ok::<_, std::io::Error>(connection)
            }));
        }
        let mut open = Vec::new();
        for task in first {
            open.push(
                task.await
                    .unwrap()
                    .expect("each of the 10,000 clients is served"),
            );
        }
        assert_eq!(open.len(), CLIENTS);

        // With all of them held open, a fresh client is still served.
        let fresh = tokio::task::spawn_blocking(move || get(addr, "/"))
            .await
            .unwrap();
        assert_eq!(fresh.status, 200);

        // And every held connection is still alive for a second request.
        let mut second = Vec::new();
        for mut connection in open {
            second.push(tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(120), request_on(&mut connection)).await?
            }));
        }
        let mut served = 0;
        for task in second {
            task.await
                .unwrap()
                .expect("second request on a kept-alive connection");
            served += 1;
        }
        assert_eq!(served, CLIENTS);
    });
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() {
    let site = Site::new();
    site.file("index.html", b"ok");
    // Start the server with a hard limit of 64 descriptors, so a few dozen clients exhaust it.
    let mut command = Command::new(env!("CARGO_BIN_EXE_tern"));
    command
        .args(["serve", "-r", &site.root_str(), "--port", "0"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let server = Server::from_command(command);

    // Hold more connections than the worker has descriptors.
    let held: Vec<_> = (0..120).map(|_| connect(server.addr)).collect();
    server.wait_for_log("backing off", "accept failed");
    // Still alive: no crash, no exit.
    assert!(server.worker_pids().len() == 1, "the worker survived");
    drop(held);
    // Once the connections are gone, a fresh client is served.
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let response = read_response(&mut BufReader::new(stream), false).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
}

#[test]
fn the_connection_limit_queues_newcomers_until_a_slot_frees() {
    let site = Site::new();
    site.file("index.html", b"ok");
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--max-connections",
        "2",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let metrics = server.metrics_addr();
    let mut first = connect(server.addr);
    let second = connect(server.addr);
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first_reader = BufReader::new(first.try_clone().unwrap());
    assert_eq!(read_response(&mut first_reader, false).unwrap().status, 200);

    // The first connection, silent after its answer, waits in the idle park: it still counts.
    wait_parked(metrics, 1);
    // A third client waits in the kernel's queue: its request is not answered yet...
    let mut third = connect(server.addr);
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut probe = [0u8; 1];
    let waiting = std::io::Read::read(&mut third, &mut probe);
    assert!(
        waiting.is_err(),
        "the third client must wait while two connections are open"
    );
    // ...until one of the two closes.
    drop(first_reader);
    drop(first);
    drop(second);
    third.set_read_timeout(Some(PATIENCE)).unwrap();
    let response = read_response(&mut BufReader::new(third), false).unwrap();
    assert_eq!(response.status, 200);
}
