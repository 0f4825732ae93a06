//! `--metrics-bind`: Prometheus metrics of the whole server on a listener of their own, counted
//! by every worker in shared memory, kept across worker restarts, with restarts by cause.

use std::io::{BufReader, Write};
use std::net::SocketAddr;

use crate::support::{
    connect, eventually, exchange, get, read_response, scrape, send_signal, value, Server, Site,
};

/// Starts `tern serve` on a small site with metrics on a port of their own; returns the server
/// and the metrics address (from the start-up log).
fn serve_with_metrics(extra: &[&str]) -> (Server, SocketAddr, Site) {
    let site = Site::new();
    site.file("index.html", b"0123456789");
    let root = site.root_str();
    let mut args = vec![
        "serve",
        "-r",
        root.as_str(),
        "--no-access-log",
        "--metrics-bind",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let addr = server.metrics_addr();
    (server, addr, site)
}

fn static_2xx(samples: &[(String, f64)]) -> f64 {
    value(
        samples,
        "tern_http_requests_total{mount=\"static\",status=\"2xx\"}",
    )
}

#[test]
fn one_scrape_shows_every_worker_and_counts_survive_restarts() {
    let (server, metrics, _site) = serve_with_metrics(&["-w", "2", "--health-path", "/healthz"]);
    // Concurrent connections, so that both workers take some.
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                for _ in 0..5 {
                    assert_eq!(get(addr, "/").status, 200);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(get(server.addr, "/missing").status, 404);
    assert_eq!(get(server.addr, "/healthz").status, 200);
    let refused = exchange(server.addr, b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(refused.status, 400);

    // Whichever worker answers a scrape, it shows them all.
    let first = scrape(metrics);
    for _ in 0..10 {
        assert_eq!(static_2xx(&scrape(metrics)), 80.0);
    }
    assert_eq!(static_2xx(&first), 80.0);
    let series = |name: &str| value(&first, name);
    assert_eq!(
        series("tern_http_requests_total{mount=\"static\",status=\"4xx\"}"),
        1.0
    );
    assert_eq!(
        series("tern_http_requests_total{mount=\"health\",status=\"2xx\"}"),
        1.0
    );
    assert_eq!(
        series("tern_http_requests_total{mount=\"none\",status=\"4xx\"}"),
        1.0
    );
    assert_eq!(
        series("tern_http_requests_total{mount=\"app\",status=\"2xx\"}"),
        0.0
    );
    assert_eq!(
        series("tern_http_request_duration_seconds_count{mount=\"static\"}"),
        81.0
    );
    assert_eq!(
        series("tern_http_request_duration_seconds_bucket{mount=\"static\",le=\"+Inf\"}"),
        81.0
    );
    // 80 bodies of 10 bytes, and the 404 page.
    let bytes = series("tern_http_response_body_bytes_total{mount=\"static\"}");
    assert!(bytes > 800.0, "{bytes}");
    assert_eq!(series("tern_workers"), 2.0);
    assert_eq!(series("tern_worker_restarts_total{cause=\"reload\"}"), 0.0);

    // A rolling restart: new processes, the same counts, two restarts for reloading.
    let before = server.worker_pids();
    server.signal(libc::SIGHUP);
    server.wait_for_log("rolling restart done", "");
    eventually("the old workers gone", || {
        let now = server.worker_pids();
        now.len() == 2 && now.iter().all(|pid| !before.contains(pid))
    });
    let after = scrape(metrics);
    assert_eq!(static_2xx(&after), 80.0);
    assert_eq!(
        value(&after, "tern_worker_restarts_total{cause=\"reload\"}"),
        2.0
    );
    assert_eq!(get(server.addr, "/").status, 200);
    assert_eq!(static_2xx(&scrape(metrics)), 81.0);

    // A worker killed: counted as a crash, and its replacement goes on counting.
    let victim = server.worker_pids()[0];
    send_signal(victim, libc::SIGKILL);
    eventually("the crash counted and a replacement running", || {
        let samples = scrape(metrics);
        value(&samples, "tern_worker_restarts_total{cause=\"crash\"}") == 1.0
            && value(&samples, "tern_workers") == 2.0
    });
    assert_eq!(static_2xx(&scrape(metrics)), 81.0);
}

#[test]
fn open_and_parked_connections_are_gauges() {
    let (server, metrics, _site) = serve_with_metrics(&[]);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
    // Silent after its answer, the connection moves to the idle park.
    eventually("one open connection, parked", || {
        let samples = scrape(metrics);
        value(&samples, "tern_connections_open") == 1.0
            && value(&samples, "tern_connections_idle_parked") == 1.0
    });
    drop(reader);
    drop(stream);
    eventually("no connection left", || {
        let samples = scrape(metrics);
        value(&samples, "tern_connections_open") == 0.0
            && value(&samples, "tern_connections_idle_parked") == 0.0
    });
}

#[test]
fn the_metrics_listener_answers_only_metrics_and_the_app_port_never_does() {
    let (server, metrics, _site) = serve_with_metrics(&[]);
    assert_eq!(get(metrics, "/").status, 404);
    let refused = exchange(
        metrics,
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(refused.status, 405);
    assert_eq!(refused.header("allow"), Some("GET, HEAD"));
    let head = exchange(metrics, b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    // The server's own port serves the site, never the metrics.
    assert_eq!(get(server.addr, "/metrics").status, 404);
    // Scrapes are not requests of the server.
    let samples = scrape(metrics);
    assert_eq!(
        value(
            &samples,
            "tern_http_requests_total{mount=\"static\",status=\"4xx\"}"
        ),
        1.0
    );
}

#[test]
fn a_metrics_address_that_cannot_be_bound_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let site = Site::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "-r", &site.root_str(), "--port", "0"])
        .args(["--metrics-bind", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--metrics-bind"), "{stderr}");
    drop(taken);
}
