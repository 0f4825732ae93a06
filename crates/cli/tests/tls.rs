//! HTTPS: static files over TLS, plain and TLS listeners side by side, TLS versions, mutual TLS,
//! the certificate reloaded on SIGHUP (and kept when the new one is broken), and what is not TLS
//! on a TLS port.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::support::tls::{served_certificate, tls_connect, tls_exchange, tls_get, Pki};
use crate::support::{connect, get, raw_until_close, status_of, Server, Site, PATIENCE};

fn start(site: &Site, pki: &Pki, extra: &[&str]) -> Server {
    let mut args = vec!["serve".to_string(), "-r".into(), site.root_str()];
    args.extend(pki.server_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

fn site() -> Site {
    let site = Site::new();
    site.file("small.txt", b"hello over tls\n");
    let large: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    site.file("large.bin", &large);
    site
}

#[test]
fn https_serves_small_and_large_files_and_ranges() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    let client = pki.client(false, &[]);
    let small = tls_get(server.addr, &client, "/small.txt");
    assert_eq!(small.status, 200);
    assert_eq!(small.text(), "hello over tls\n");
    let large = tls_get(server.addr, &client, "/large.bin");
    assert_eq!(large.status, 200);
    assert_eq!(
        large.body,
        std::fs::read(site.root().join("large.bin")).unwrap()
    );

    // Keep-alive: a range of the large file, then the small one, on one connection.
    let mut stream = tls_connect(server.addr, &client).unwrap();
    let range = tls_exchange(
        &mut stream,
        "GET /large.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=100000-299999\r\n\r\n",
    )
    .unwrap();
    assert_eq!(range.status, 206);
    assert_eq!(range.body, large.body[100_000..300_000]);
    let again = tls_exchange(
        &mut stream,
        "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    assert_eq!(again.text(), "hello over tls\n");
}

#[test]
fn pipelined_requests_over_tls_are_all_answered() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    let mut stream = tls_connect(server.addr, &pki.client(false, &[])).unwrap();
    let one = "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let last = "GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    // Many requests in one write: more than one TLS record's worth of plaintext.
    let mut requests = one.repeat(400);
    requests.push_str(last);
    stream.write_all(requests.as_bytes()).unwrap();
    stream.flush().unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    let answered = String::from_utf8_lossy(&all)
        .matches("hello over tls")
        .count();
    assert_eq!(answered, 401);
}

#[test]
fn plain_and_tls_listeners_side_by_side() {
    let (site, pki) = (site(), Pki::new());
    let server = start(
        &site,
        &pki,
        &["--bind", "https://127.0.0.1:0", "--bind", "127.0.0.1:0"],
    );
    let addresses = server.addresses();
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    assert_eq!(addresses[0].0, "https");
    assert_eq!(addresses[1].0, "http");
    let tls = tls_get(addresses[0].1, &pki.client(false, &[]), "/small.txt");
    assert_eq!(tls.status, 200);
    let plain = get(addresses[1].1, "/small.txt");
    assert_eq!(plain.text(), "hello over tls\n");
}

#[test]
fn an_https_bind_without_a_certificate_stops_tern_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--bind", "https://127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs --certfile"), "{stderr}");
}

#[test]
fn a_broken_certificate_stops_tern_at_start() {
    let pki = Pki::new();
    pki.write("server.pem", "not a certificate\n");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--port", "0"])
        .args(pki.server_args())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--certfile"), "{stderr}");
}

#[test]
fn tls_1_2_and_1_3_are_both_accepted() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client = pki.client(false, &[version]);
        let stream = tls_connect(server.addr, &client).unwrap();
        assert_eq!(stream.conn.protocol_version(), Some(version.version));
        assert_eq!(stream.conn.alpn_protocol(), None);
        drop(stream);
        assert_eq!(tls_get(server.addr, &client, "/small.txt").status, 200);
    }
}

#[test]
fn tls_1_0_and_1_1_client_hellos_are_refused_with_an_alert() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    for version in [[3u8, 1u8], [3, 2]] {
        let mut stream = connect(server.addr);
        stream.write_all(&client_hello(version)).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        // An alert record (21), or nothing: never a ServerHello (handshake record, 22).
        assert!(
            answer.is_empty() || answer[0] == 21,
            "TLS {version:?}: {answer:?}"
        );
    }
    server.wait_for_log("TLS handshake with 127.0.0.1 failed", "");
    // Still serving.
    assert_eq!(
        tls_get(server.addr, &pki.client(false, &[]), "/small.txt").status,
        200
    );
}

/// A minimal ClientHello offering only `version` (`[3, 1]`: TLS 1.0) and two CBC suites.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0, 4, 0x00, 0x2f, 0x00, 0x35]); // AES128-SHA, AES256-SHA
    body.extend_from_slice(&[1, 0]); // null compression
    let mut handshake = vec![1, 0, 0, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 3, 1, 0, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn plain_http_to_the_tls_port_gets_400_in_plain_http() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    let raw = raw_until_close(
        server.addr,
        b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status_of(&raw), 400);
    assert!(String::from_utf8_lossy(&raw).contains("https://"));
    server.wait_for_log("plain HTTP sent to an HTTPS port", "127.0.0.1");
}

#[test]
fn garbage_and_silence_on_the_tls_port_are_closed_without_leaking_descriptors() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &["--tls-handshake-timeout", "0.5"]);
    let worker = server.worker_pids()[0];
    let open_descriptors = || {
        std::fs::read_dir(format!("/proc/{worker}/fd"))
            .unwrap()
            .count()
    };
    // Settled: a first connection has been served.
    assert_eq!(
        tls_get(server.addr, &pki.client(false, &[]), "/small.txt").status,
        200
    );
    let before = open_descriptors();
    for i in 0..40u8 {
        let garbage = vec![i.wrapping_mul(37) | 0x80; 300];
        let answer = raw_until_close(server.addr, &garbage);
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    }
    // A handshake record cut short, then nothing: the handshake timeout closes it.
    let mut silent = connect(server.addr);
    silent.write_all(&[22, 3, 1, 0, 200, 1]).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(started.elapsed() < PATIENCE);
    server.wait_for_log("not a TLS handshake", "");
    server.wait_for_log("TLS handshake with 127.0.0.1 timed out", "");
    crate::support::eventually("the worker's descriptors back to where they were", || {
        open_descriptors() <= before
    });
}

#[test]
fn mutual_tls_required_refuses_clients_without_a_certificate() {
    let (site, pki) = (site(), Pki::new());
    let ca = pki.path("ca.pem");
    let server = start(
        &site,
        &pki,
        &["--ca-certs", &ca, "--client-cert", "required"],
    );
    let with = tls_get(server.addr, &pki.client(true, &[]), "/small.txt");
    assert_eq!(with.status, 200);
    // TLS 1.3: the client finishes its side first; the refusal comes with the first read.
    let refused = tls_connect(server.addr, &pki.client(false, &[])).and_then(|mut stream| {
        stream.write_all(b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte)
    });
    assert!(refused.is_err(), "served without a client certificate");
    server.wait_for_log("TLS handshake with 127.0.0.1 failed", "");
}

#[test]
fn mutual_tls_optional_serves_clients_with_and_without_a_certificate() {
    let (site, pki) = (site(), Pki::new());
    let ca = pki.path("ca.pem");
    let server = start(
        &site,
        &pki,
        &["--ca-certs", &ca, "--client-cert", "optional"],
    );
    for with_certificate in [true, false] {
        let response = tls_get(
            server.addr,
            &pki.client(with_certificate, &[]),
            "/small.txt",
        );
        assert_eq!(response.status, 200);
    }
}

#[test]
fn the_client_cert_flags_are_checked_together() {
    let pki = Pki::new();
    let ca = pki.path("ca.pem");
    for extra in [
        vec!["--client-cert", "required"],
        vec!["--ca-certs", ca.as_str()],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(["serve", "--port", "0"])
            .args(pki.server_args())
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{extra:?}");
    }
}

#[test]
fn sighup_serves_a_new_certificate_and_keeps_open_connections() {
    let (site, pki) = (site(), Pki::new());
    for workers in ["1", "2"] {
        pki.write("server.pem", &pki.server.pem);
        pki.write("server-key.pem", &pki.server.key_pem);
        let server = start(&site, &pki, &["-w", workers, "--drain-idle-window", "5"]);
        let client = pki.client(false, &[]);
        let mut open = tls_connect(server.addr, &client).unwrap();
        assert_eq!(served_certificate(&open), pki.server.der);
        let first = tls_exchange(
            &mut open,
            "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert_eq!(first.unwrap().status, 200);

        let renewed = pki.issue_server("tern test server, renewed");
        pki.write("server.pem", &renewed.pem);
        pki.write("server-key.pem", &renewed.key_pem);
        server.signal(libc::SIGHUP);
        server.wait_for_log("TLS: loaded the certificate", "again");
        server.wait_for_log("rolling restart done", "");

        let fresh = tls_connect(server.addr, &client).unwrap();
        assert_eq!(served_certificate(&fresh), renewed.der, "-w {workers}");
        // The connection opened before the reload is still served (by its draining worker).
        let later = tls_exchange(
            &mut open,
            "GET /small.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert_eq!(later.expect("the open connection answered").status, 200);
    }
}

#[test]
fn a_broken_certificate_on_sighup_is_logged_and_the_old_one_kept() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    let client = pki.client(false, &[]);
    // A key that is not the certificate's, then a certificate that is not PEM.
    let other = pki.issue_server("another");
    for (certificate, key) in [
        (pki.server.pem.clone(), other.key_pem.clone()),
        ("garbage\n".to_string(), pki.server.key_pem.clone()),
    ] {
        pki.write("server.pem", &certificate);
        pki.write("server-key.pem", &key);
        let before = server.log().matches("rolling restart done").count();
        server.signal(libc::SIGHUP);
        crate::support::eventually("the rolling restart", || {
            server.log().matches("rolling restart done").count() > before
        });
        server.wait_for_log(
            "cannot load the new certificate",
            "keeping the one loaded before",
        );
        let stream = tls_connect(server.addr, &client).unwrap();
        assert_eq!(served_certificate(&stream), pki.server.der);
        assert_eq!(tls_get(server.addr, &client, "/small.txt").status, 200);
    }
}

#[test]
fn a_slow_tls_client_is_still_served_a_large_file() {
    let (site, pki) = (site(), Pki::new());
    let server = start(&site, &pki, &[]);
    let mut stream = tls_connect(server.addr, &pki.client(false, &[])).unwrap();
    stream
        .write_all(b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    // Let the server fill the socket buffers and wait for the client to read.
    std::thread::sleep(Duration::from_millis(300));
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let expected = std::fs::read(site.root().join("large.bin")).unwrap();
    assert!(all.ends_with(&expected));
}
