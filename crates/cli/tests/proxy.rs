//! Running behind a proxy, over real sockets on 127.0.0.1: the PROXY protocol (v1 and v2) in
//! front of the static server and a line service, the refusals (untrusted peer, missing or broken
//! header, silence), and X-Forwarded-For in the access log, with and without a trusted peer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv6Addr;
use std::time::Duration;

use crate::support::{read_response, wait_parked, Server, Site};

/// A v1 header naming 192.0.2.7:56324 as the client.
const V1_HEADER: &[u8] = b"PROXY TCP4 192.0.2.7 127.0.0.1 56324 9000\r\n";

/// The v2 signature (PROXY protocol §2.2).
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 PROXY (command 1) header for TCP over IPv6 from `[2001:db8::7]:4711`.
fn v2_tcp6_header() -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[0x21, 0x21, 0, 36]);
    let source: Ipv6Addr = "2001:db8::7".parse().unwrap();
    header.extend_from_slice(&source.octets());
    header.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    header.extend_from_slice(&4711u16.to_be_bytes());
    header.extend_from_slice(&9000u16.to_be_bytes());
    header
}

/// A v2 LOCAL header (command 0, a health check by the proxy itself): no client.
fn v2_local_header() -> Vec<u8> {
    [V2_SIGNATURE, &[0x20, 0x00, 0, 0]].concat()
}

fn site() -> Site {
    let site = Site::new();
    site.file("hello.txt", b"hello, proxy\n");
    site
}

fn serve(site: &Site, extra: &[&str]) -> Server {
    let root = site.root_str();
    let mut args = vec!["serve", "-r", &root];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Sends `bytes` on a new connection, closes the sending side, and returns all that comes back.
fn send_and_read_all(server: &Server, bytes: &[u8]) -> Vec<u8> {
    let mut stream = server.connect();
    stream.write_all(bytes).unwrap();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

#[test]
fn proxy_v1_static_files_are_logged_as_the_carried_client() {
    let site = site();
    let server = serve(&site, &["--proxy-protocol"]);
    let mut stream = server.connect();
    stream
        .write_all(&[V1_HEADER, get_request("/hello.txt").as_bytes()].concat())
        .unwrap();
    let mut reader = BufReader::new(stream);
    let response = read_response(&mut reader, false).expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello, proxy\n");
    let line = server.wait_for_log("\"GET /hello.txt HTTP/1.1\" 200", "");
    assert!(line.contains(" 192.0.2.7 \""), "{line}");
}

#[test]
fn a_proxied_connection_keeps_its_client_after_idling_in_the_park() {
    // After 10 ms of silence a keep-alive connection leaves its task for the idle park, and
    // resuming it asks the socket for its peer again: that would be the proxy's address.
    let site = site();
    let server = serve(
        &site,
        &["--proxy-protocol", "--metrics-bind", "127.0.0.1:0"],
    );
    let metrics = server.metrics_addr();
    let mut stream = server.connect();
    stream
        .write_all(&[V1_HEADER, get_request("/hello.txt?first").as_bytes()].concat())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
    wait_parked(metrics, 1);
    stream
        .write_all(get_request("/hello.txt?second").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut reader, false).unwrap().status, 200);
    let line = server.wait_for_log("GET /hello.txt?second", "");
    assert!(line.contains(" 192.0.2.7 \""), "{line}");
}

#[test]
fn proxy_v2_tcp6_static_files_are_logged_as_the_carried_client() {
    let site = site();
    let server = serve(&site, &["--proxy-protocol"]);
    let mut stream = server.connect();
    stream
        .write_all(&[v2_tcp6_header(), get_request("/hello.txt").into_bytes()].concat())
        .unwrap();
    let response = read_response(&mut BufReader::new(stream), false).expect("a response");
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("\"GET /hello.txt HTTP/1.1\" 200", "");
    assert!(line.contains(" 2001:db8::7 \""), "{line}");
}

#[test]
fn proxy_v2_local_is_served_as_the_real_peer() {
    let site = site();
    let server = serve(&site, &["--proxy-protocol"]);
    let mut stream = server.connect();
    stream
        .write_all(
            &[
                v2_local_header(),
                get_request("/hello.txt?health").into_bytes(),
            ]
            .concat(),
        )
        .unwrap();
    let response = read_response(&mut BufReader::new(stream), false).expect("a response");
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("GET /hello.txt?health", "");
    assert!(line.contains(" 127.0.0.1 \""), "{line}");
}

#[test]
fn proxy_header_in_pieces_is_waited_for() {
    let site = site();
    let server = serve(&site, &["--proxy-protocol"]);
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    // Cut inside the protocol name, and right after the space before the destination port (a
    // prefix the parser once took for a broken header).
    let port_space = V1_HEADER.len() - b"9000\r\n".len();
    for piece in [&V1_HEADER[..9], &V1_HEADER[9..port_space]] {
        stream.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    stream
        .write_all(
            &[
                &V1_HEADER[port_space..],
                get_request("/hello.txt?pieces").as_bytes(),
            ]
            .concat(),
        )
        .unwrap();
    let response = read_response(&mut BufReader::new(stream), false).expect("a response");
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("GET /hello.txt?pieces", "");
    assert!(line.contains(" 192.0.2.7 \""), "{line}");
}

#[test]
fn proxy_v1_in_front_of_the_echo_service() {
    let server = Server::start(&["echo", "--proxy-protocol"]);
    let mut stream = server.connect();
    stream
        .write_all(&[V1_HEADER, b"hi there\n"].concat())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "hi there\r\n");
    drop(reader);
    drop(stream);
    let logged = server.wait_for_log("192.0.2.7", "lines in");
    assert!(logged.contains("192.0.2.7 1 lines in"), "{logged}");
}

#[test]
fn proxy_v2_in_front_of_the_echo_service_from_the_environment() {
    let server = Server::start_with(&["echo"], &[("TERN_PROXY_PROTOCOL", "true")]);
    let mut stream = server.connect();
    stream
        .write_all(&[v2_tcp6_header(), b"two\n".to_vec()].concat())
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "two\r\n");
    drop(reader);
    drop(stream);
    server.wait_for_log("2001:db8::7 1 lines in", "");
}

#[test]
fn proxy_protocol_from_an_untrusted_peer_is_refused() {
    let site = site();
    let server = serve(
        &site,
        &["--proxy-protocol", "--forwarded-allow-ips", "10.0.0.1"],
    );
    let answer = send_and_read_all(
        &server,
        &[V1_HEADER, get_request("/hello.txt").as_bytes()].concat(),
    );
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    let line = server.wait_for_log("closed a connection from 127.0.0.1", "");
    assert!(line.contains("not in --forwarded-allow-ips"), "{line}");
}

#[test]
fn proxy_protocol_untrusted_peer_of_a_line_service_is_refused() {
    let server = Server::start_with(
        &["echo", "--proxy-protocol"],
        &[("TERN_FORWARDED_ALLOW_IPS", "192.0.2.0/24")],
    );
    let answer = send_and_read_all(&server, &[V1_HEADER, b"hi\n"].concat());
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    server.wait_for_log(
        "closed a connection from 127.0.0.1",
        "not in --forwarded-allow-ips",
    );
}

#[test]
fn a_connection_without_a_proxy_header_is_refused() {
    let site = site();
    let server = serve(&site, &["--proxy-protocol"]);
    let answer = send_and_read_all(&server, get_request("/hello.txt").as_bytes());
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    server.wait_for_log(
        "closed a connection from 127.0.0.1",
        "no valid PROXY protocol header",
    );
}

#[test]
fn a_broken_proxy_header_is_refused() {
    let server = Server::start(&["echo", "--proxy-protocol"]);
    let answer = send_and_read_all(&server, b"PROXY TCP4 192.0.2.7 nonsense 1 2\r\nhi\n");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    server.wait_for_log(
        "closed a connection from 127.0.0.1",
        "no valid PROXY protocol header",
    );
}

#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    let site = site();
    let server = serve(&site, &["--proxy-protocol", "--header-timeout", "0.5"]);
    let mut stream = server.connect();
    let mut out = Vec::new();
    // The server closes; the read ends (within the support's patience) with nothing.
    let _ = stream.read_to_end(&mut out);
    assert!(out.is_empty());
    server.wait_for_log(
        "closed a connection from 127.0.0.1",
        "no PROXY protocol header within",
    );
}

#[test]
fn without_the_flag_a_proxy_header_is_a_bad_request() {
    let site = site();
    let server = serve(&site, &[]);
    let answer = send_and_read_all(
        &server,
        &[V1_HEADER, get_request("/hello.txt").as_bytes()].concat(),
    );
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn x_forwarded_for_from_a_trusted_peer_is_the_logged_client() {
    let site = site();
    let server = serve(&site, &[]);
    let response = crate::support::get_with(
        server.addr,
        "/hello.txt?forwarded",
        "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n",
    );
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("GET /hello.txt?forwarded", "");
    assert!(line.contains(" 203.0.113.9 \""), "{line}");
}

#[test]
fn x_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let site = site();
    let server = serve(&site, &["--forwarded-allow-ips", "10.0.0.1"]);
    let response = crate::support::get_with(
        server.addr,
        "/hello.txt?spoofed",
        "X-Forwarded-For: 203.0.113.9\r\nForwarded: for=198.51.100.1\r\n",
    );
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("GET /hello.txt?spoofed", "");
    assert!(line.contains(" 127.0.0.1 \""), "{line}");
}

#[test]
fn forwarded_from_a_trusted_peer_is_the_logged_client() {
    let site = site();
    let server = serve(&site, &[]);
    let response = crate::support::get_with(
        server.addr,
        "/hello.txt?rfc7239",
        "Forwarded: for=\"[2001:db8::1]:4711\";proto=https\r\n",
    );
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("GET /hello.txt?rfc7239", "");
    assert!(line.contains(" 2001:db8::1 \""), "{line}");
}

#[test]
fn a_malformed_forwarded_header_is_ignored_not_an_error() {
    let site = site();
    let server = serve(&site, &[]);
    let response = crate::support::get_with(
        server.addr,
        "/hello.txt?malformed",
        "Forwarded: for=2001:db8::1;;==\r\nX-Forwarded-Proto: gopher\r\n",
    );
    assert_eq!(response.status, 200);
    let line = server.wait_for_log("GET /hello.txt?malformed", "");
    assert!(line.contains(" 127.0.0.1 \""), "{line}");
}

#[test]
fn a_bad_forwarded_allow_ips_stops_the_server_with_a_clear_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "echo",
            "--port",
            "0",
            "--forwarded-allow-ips",
            "10.0.0.1,proxy.local",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--forwarded-allow-ips: 'proxy.local'"),
        "{stderr}"
    );
}
