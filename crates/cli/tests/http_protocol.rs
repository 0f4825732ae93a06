//! The HTTP/1.x protocol layer, end to end: methods, malformed and oversized requests, body framing
//! and request smuggling, the headers every response carries, HEAD, keep-alive and pipelining,
//! timeouts, the access log, and the limit flags (and their environment variables).

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{
    connect, exchange, get, get_with, parked, raw_until_close, read_response, wait_parked,
    Response, Server, Site,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A complete request hidden where a body belongs; its answer would contain "SMUGGLED".
const SMUGGLED: &str = "GET /secret.txt HTTP/1.1\r\nHost: test\r\n\r\n";

/// A site with a few files of different types, and a server on it (extra flags appended).
fn site_and_server(extra: &[&str]) -> (Site, Server) {
    let site = Site::new();
    site.file("index.html", b"<h1>home</h1>")
        .file("a.txt", b"alpha")
        .file("b.txt", b"bravo!")
        .file("c.css", b"body{}")
        .file("d.json", b"{\"d\":1}")
        .file("e.bin", b"\x00\x01\x02")
        .file("noext", b"no extension")
        .file("empty.txt", b"")
        .file("dir/index.html", b"<p>dir</p>")
        .file("secret.txt", b"SMUGGLED");
    let large: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    site.file("large.bin", &large);
    let root = site.root_str();
    let mut args = vec!["serve", "-r", root.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    (site, server)
}

/// Writes `request` without closing our side, and reads until the *server* closes the connection.
fn until_server_closes(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .expect("the server closes the connection (read_to_end ends)");
    out
}

/// Parses every response in a connection's output; `heads[i]` says whether request i was HEAD.
fn parse_responses(raw: &[u8], heads: &[bool]) -> Vec<Response> {
    let mut reader = BufReader::new(raw);
    let mut responses = Vec::new();
    while let Some(response) = read_response(
        &mut reader,
        heads.get(responses.len()).copied().unwrap_or(false),
    ) {
        responses.push(response);
    }
    responses
}

/// Exactly one response in `raw`, which must be a refusal with `status` that closes the connection.
fn assert_single_refusal(raw: &[u8], status: u16, what: &str) {
    let responses = parse_responses(raw, &[]);
    assert_eq!(
        responses.len(),
        1,
        "{what}: expected exactly one response, got {:?}",
        String::from_utf8_lossy(raw)
    );
    let response = &responses[0];
    assert_eq!(response.status, status, "{what}: {:?}", response.head);
    assert_eq!(
        response.header("connection"),
        Some("close"),
        "{what}: {:?}",
        response.head
    );
    assert_common_headers(response);
}

/// A keep-alive connection: write on `stream`, read responses from `reader`.
struct Conn {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = connect(addr);
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn response(&mut self, head_request: bool) -> Response {
        read_response(&mut self.reader, head_request)
            .expect("a response before the connection closed")
    }

    /// Asserts the server closes the connection without sending anything more.
    fn expect_closed_by_server(&mut self) {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("the server closes the connection (read_to_end ends)");
        assert!(
            rest.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// Server, Date (a current IMF-fixdate) and Connection are present on every response.
fn assert_common_headers(response: &Response) {
    let server = response
        .header("server")
        .unwrap_or_else(|| panic!("no Server header: {:?}", response.head));
    assert!(server.starts_with("tern/"), "Server: {server}");
    let date = response
        .header("date")
        .unwrap_or_else(|| panic!("no Date header: {:?}", response.head));
    assert_imf_fixdate(date);
    let connection = response
        .header("connection")
        .unwrap_or_else(|| panic!("no Connection header: {:?}", response.head));
    assert!(
        connection == "keep-alive" || connection == "close",
        "Connection: {connection}"
    );
}

/// Checks `value` is an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") naming a real day, with the
/// right weekday, within a day of this machine's clock.
fn assert_imf_fixdate(value: &str) {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    assert!(
        value.is_ascii() && value.len() == 29 && value.ends_with(" GMT"),
        "Date {value:?} is not an IMF-fixdate"
    );
    let bytes = value.as_bytes();
    let separators = [
        (3, b','),
        (4, b' '),
        (7, b' '),
        (11, b' '),
        (16, b' '),
        (19, b':'),
        (22, b':'),
    ];
    for (at, expected) in separators {
        assert_eq!(
            bytes[at], expected,
            "Date {value:?}: expected {:?} at {at}",
            expected as char
        );
    }
    let number = |from: usize, to: usize| -> i64 {
        let digits = &value[from..to];
        assert!(
            digits.bytes().all(|b| b.is_ascii_digit()),
            "Date {value:?}: {digits:?} is not a number"
        );
        digits.parse().unwrap()
    };
    let weekday = DAYS
        .iter()
        .position(|d| *d == &value[0..3])
        .unwrap_or_else(|| panic!("Date {value:?}: bad weekday"));
    let month = MONTHS
        .iter()
        .position(|m| *m == &value[8..11])
        .unwrap_or_else(|| panic!("Date {value:?}: bad month")) as i64
        + 1;
    let (day, year) = (number(5, 7), number(12, 16));
    let (hour, minute, second) = (number(17, 19), number(20, 22), number(23, 25));
    assert!(
        (1..=31).contains(&day) && hour < 24 && minute < 60 && second < 61,
        "Date {value:?} out of range"
    );
    let days = days_from_civil(year, month, day);
    assert_eq!(
        DAYS[(days + 4).rem_euclid(7) as usize],
        &value[0..3],
        "Date {value:?}: weekday does not match"
    );
    let stamp = days * 86_400 + hour * 3600 + minute * 60 + second;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (stamp - now).abs() < 86_400,
        "Date {value:?} is not today (weekday index {weekday})"
    );
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Headers except Date, in order, names lower-cased: what HEAD and GET must agree on.
fn headers_without_date(response: &Response) -> Vec<(String, String)> {
    response
        .headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("date"))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}

/// `GET /a.txt` with `extra` header lines, padded with an `X-Pad` header to exactly `total` bytes.
fn head_of_exact_size(total: usize, extra: &str) -> String {
    let fixed =
        format!("GET /a.txt HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\nX-Pad: \r\n\r\n");
    assert!(total > fixed.len(), "head too small for its fixed part");
    let head = format!(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(total - fixed.len())
    );
    assert_eq!(head.len(), total);
    head
}

/// A request with `count` header fields in all (Host, Connection and numbered fillers).
fn request_with_header_count(count: usize) -> String {
    assert!(count >= 2);
    let mut request = String::from("GET /a.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for i in 0..count - 2 {
        request.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// A request line of exactly `length` bytes (without its CRLF).
fn request_line_of_length(length: usize) -> String {
    let fixed = "GET / HTTP/1.1".len();
    format!("GET /{} HTTP/1.1", "x".repeat(length - fixed))
}

// ---------------------------------------------------------------------------------------------
// 1. Methods, versions, malformed and oversized requests, bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn get_and_head_answer_200_over_http_1_1_and_http_1_0() {
    let (_site, server) = site_and_server(&[]);
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let get = exchange(
            server.addr,
            format!("GET /a.txt {version}\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(get.status, 200, "{version} GET");
        assert_eq!(get.body, b"alpha", "{version} GET");
        assert!(
            get.head.starts_with("HTTP/1.1 200 OK\r\n"),
            "{version}: {:?}",
            get.head
        );
        let head = exchange(
            server.addr,
            format!("HEAD /a.txt {version}\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(head.status, 200, "{version} HEAD");
        assert_eq!(head.header("content-length"), Some("5"), "{version} HEAD");
    }
}

#[test]
fn every_other_method_gets_405_with_allow_get_head() {
    let (_site, server) = site_and_server(&[]);
    for method in [
        "POST",
        "PUT",
        "DELETE",
        "OPTIONS",
        "PATCH",
        "FROBNICATE",
        "get",
    ] {
        for path in ["/a.txt", "/missing.txt", "/"] {
            let response = exchange(
                server.addr,
                format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(response.status, 405, "{method} {path}");
            assert_eq!(
                response.header("allow"),
                Some("GET, HEAD"),
                "{method} {path}"
            );
            assert_common_headers(&response);
        }
    }
    // With a body: the body is skipped, the answer is still 405, and the connection stays usable.
    let mut conn = Conn::open(server.addr);
    conn.send(b"POST /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello worldGET /b.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    let post = conn.response(false);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let next = conn.response(false);
    assert_eq!((next.status, next.body.as_slice()), (200, &b"bravo!"[..]));
}

#[test]
fn malformed_requests_get_400_and_the_connection_is_closed() {
    let (_site, server) = site_and_server(&[]);
    let cases: &[(&str, &[u8])] = &[
        ("a bare LF", b"\n"),
        (
            "binary garbage (a TLS hello)",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff\r\n\r\n",
        ),
        ("garbage words", b"hello there how are you\r\n\r\n"),
        ("missing version", b"GET /\r\n\r\n"),
        (
            "missing version, with headers",
            b"GET /a.txt\r\nHost: test\r\n\r\n",
        ),
        (
            "space in a header name",
            b"GET /a.txt HTTP/1.1\r\nHost: test\r\nBad Header: x\r\n\r\n",
        ),
        (
            "header without a colon",
            b"GET /a.txt HTTP/1.1\r\nHost: test\r\nNoColonHere\r\n\r\n",
        ),
        (
            "obs-fold continuation line",
            b"GET /a.txt HTTP/1.1\r\nHost: test\r\nX-Long: one\r\n two\r\n\r\n",
        ),
        (
            "obs-fold with a tab",
            b"GET /a.txt HTTP/1.1\r\nHost: test\r\nX-Long: one\r\n\ttwo\r\n\r\n",
        ),
        (
            "invalid Content-Length",
            b"GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 12abc\r\n\r\n",
        ),
        (
            "negative Content-Length",
            b"GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: -1\r\n\r\n",
        ),
    ];
    for (what, request) in cases {
        // Our side stays open: the server itself must close after answering.
        let raw = until_server_closes(server.addr, request);
        assert_single_refusal(&raw, 400, what);
    }
}

#[test]
fn a_request_cut_off_before_the_blank_line_gets_400() {
    let (_site, server) = site_and_server(&[]);
    for partial in [
        &b"GET /a.txt HTTP/1.1\r\nHost: test\r\n"[..],
        b"GET /a.txt HTTP/1.1\r\nHost: te",
        b"GET /a.t",
    ] {
        // raw_until_close half-closes our side: the server sees EOF inside the head.
        let raw = raw_until_close(server.addr, partial);
        assert_single_refusal(&raw, 400, &String::from_utf8_lossy(partial));
    }
}

#[test]
fn a_request_line_over_8k_gets_414_and_shorter_ones_are_served() {
    let (_site, server) = site_and_server(&[]);
    let long = format!("GET /{} HTTP/1.1\r\nHost: test\r\n\r\n", "a".repeat(9000));
    assert_single_refusal(
        &until_server_closes(server.addr, long.as_bytes()),
        414,
        "9000-byte target",
    );

    // Refused as soon as the limit is passed, without waiting for the end of the line.
    let unterminated = format!("GET /{}", "a".repeat(20_000));
    assert_single_refusal(
        &until_server_closes(server.addr, unterminated.as_bytes()),
        414,
        "unterminated line",
    );

    // Just under 8 KiB is parsed and routed normally (404: no such file).
    let ok = format!(
        "GET /{} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        "a".repeat(8000)
    );
    assert_eq!(exchange(server.addr, ok.as_bytes()).status, 404);
}

#[test]
fn a_head_over_32k_gets_431_and_one_under_is_served() {
    let (_site, server) = site_and_server(&[]);
    let value = "v".repeat(1000);
    let head_with = |fields: usize| {
        let mut request =
            String::from("GET /a.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for i in 0..fields {
            request.push_str(&format!("X-Big-{i}: {value}\r\n"));
        }
        request + "\r\n"
    };
    let small = head_with(30); // about 30 KB
    assert!(small.len() < 32 * 1024);
    let response = exchange(server.addr, small.as_bytes());
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"alpha"[..])
    );

    let big = head_with(40); // about 40 KB, with far fewer than 100 fields
    assert!(big.len() > 32 * 1024);
    assert_single_refusal(
        &until_server_closes(server.addr, big.as_bytes()),
        431,
        "40 KB head",
    );

    // One enormous field counts too.
    let one_field = format!(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(40_000)
    );
    assert_single_refusal(
        &until_server_closes(server.addr, one_field.as_bytes()),
        431,
        "one 40 KB field",
    );
}

#[test]
fn more_than_100_header_fields_get_431_and_exactly_100_are_served() {
    let (_site, server) = site_and_server(&[]);
    let response = exchange(server.addr, request_with_header_count(100).as_bytes());
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"alpha"[..])
    );
    assert_single_refusal(
        &until_server_closes(server.addr, request_with_header_count(101).as_bytes()),
        431,
        "101 fields",
    );
    assert_single_refusal(
        &until_server_closes(server.addr, request_with_header_count(300).as_bytes()),
        431,
        "300 fields",
    );
}

#[test]
fn unsupported_http_versions_get_505() {
    let (_site, server) = site_and_server(&[]);
    for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/3.0", "HTTP/0.9"] {
        let request = format!("GET /a.txt {version}\r\nHost: test\r\n\r\n");
        assert_single_refusal(
            &until_server_closes(server.addr, request.as_bytes()),
            505,
            version,
        );
    }
}

#[test]
fn a_get_body_with_content_length_is_skipped_before_the_next_pipelined_request() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    // The body looks like a request: if it were not skipped, /secret.txt would be answered.
    let body = SMUGGLED.as_bytes();
    let mut request = format!(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request.extend_from_slice(b"GET /b.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    conn.send(&request);
    let first = conn.response(false);
    assert_eq!((first.status, first.body.as_slice()), (200, &b"alpha"[..]));
    let second = conn.response(false);
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"bravo!"[..])
    );
    conn.expect_closed_by_server();
}

#[test]
fn a_large_get_body_arriving_in_pieces_is_skipped() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    let body = vec![b'z'; 300_000];
    conn.send(
        format!(
            "GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    for piece in body.chunks(7_000) {
        conn.send(piece);
    }
    conn.send(b"GET /b.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(conn.response(false).body, b"alpha");
    assert_eq!(conn.response(false).body, b"bravo!");
}

#[test]
fn a_chunked_get_body_is_skipped_before_the_next_pipelined_request() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    // One chunk holds a whole request: if chunks were not skipped, /secret.txt would be answered.
    let request = format!(
        "GET /a.txt HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
         5;ext=1\r\nhello\r\n\
         {:x}\r\n{SMUGGLED}\r\n\
         0\r\nX-Trailer: t\r\n\r\n\
         GET /b.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        SMUGGLED.len()
    );
    conn.send(request.as_bytes());
    let first = conn.response(false);
    assert_eq!((first.status, first.body.as_slice()), (200, &b"alpha"[..]));
    let second = conn.response(false);
    assert_eq!(
        (second.status, second.body.as_slice()),
        (200, &b"bravo!"[..])
    );
    conn.expect_closed_by_server();
}

#[test]
fn content_length_with_transfer_encoding_is_refused_and_the_smuggled_request_is_not_answered() {
    let (_site, server) = site_and_server(&[]);
    let attacks = [
        // CL.TE: a hop honouring Content-Length forwards the smuggled GET as body; one honouring
        // chunked sees an empty body and then a second request.
        format!(
            "GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}",
            5 + SMUGGLED.len()
        ),
        // TE.CL: the other order of headers.
        format!("GET /a.txt HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n{SMUGGLED}"),
    ];
    for attack in &attacks {
        let raw = until_server_closes(server.addr, attack.as_bytes());
        assert_single_refusal(&raw, 400, attack);
        assert!(
            !String::from_utf8_lossy(&raw).contains("SMUGGLED"),
            "the smuggled request was answered"
        );
    }
}

#[test]
fn differing_content_lengths_are_refused_and_the_smuggled_request_is_not_answered() {
    let (_site, server) = site_and_server(&[]);
    let n = SMUGGLED.len();
    let attacks = [
        format!("GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: {n}\r\n\r\n{SMUGGLED}"),
        format!("GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: {n}\r\nContent-Length: 0\r\n\r\n{SMUGGLED}"),
        format!("GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 0, {n}\r\n\r\n{SMUGGLED}"),
    ];
    for attack in &attacks {
        let raw = until_server_closes(server.addr, attack.as_bytes());
        assert_single_refusal(&raw, 400, attack);
        assert!(
            !String::from_utf8_lossy(&raw).contains("SMUGGLED"),
            "the smuggled request was answered"
        );
    }
    // The same value twice is allowed (RFC 9110 §8.6) and the body is still skipped correctly.
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nxyzGET /b.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(conn.response(false).body, b"alpha");
    assert_eq!(conn.response(false).body, b"bravo!");
}

#[test]
fn http_1_1_without_host_gets_400_but_http_1_0_without_host_is_served() {
    let (_site, server) = site_and_server(&[]);
    let raw = until_server_closes(server.addr, b"GET /a.txt HTTP/1.1\r\nAccept: */*\r\n\r\n");
    assert_single_refusal(&raw, 400, "1.1 without Host");
    let response = exchange(server.addr, b"GET /a.txt HTTP/1.0\r\n\r\n");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"alpha"[..])
    );
}

#[test]
fn a_body_over_max_body_size_gets_413() {
    let (_site, server) = site_and_server(&["--max-body-size", "1K"]);
    // At the limit: skipped and served.
    let mut conn = Conn::open(server.addr);
    let mut request = b"GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 1024\r\n\r\n".to_vec();
    request.extend_from_slice(&[b'b'; 1024]);
    request.extend_from_slice(b"GET /b.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    conn.send(&request);
    assert_eq!(conn.response(false).body, b"alpha");
    assert_eq!(conn.response(false).body, b"bravo!");

    // One byte over, declared by Content-Length: refused before the body is read.
    let mut over = b"GET /a.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 1025\r\n\r\n".to_vec();
    over.extend_from_slice(&[b'b'; 1025]);
    assert_single_refusal(
        &until_server_closes(server.addr, &over),
        413,
        "Content-Length 1025",
    );

    // Chunked: the size is only known while reading, and the limit still holds.
    let mut chunked =
        b"GET /a.txt HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'c'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_single_refusal(
        &until_server_closes(server.addr, &chunked),
        413,
        "2 KiB chunked",
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Headers on every response; HEAD
// ---------------------------------------------------------------------------------------------

#[test]
fn every_response_has_server_date_and_connection_headers() {
    let (_site, server) = site_and_server(&["--max-body-size", "1K"]);
    let addr = server.addr;
    let ok = get(addr, "/a.txt");
    let etag = ok.header("etag").expect("ETag").to_string();
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let too_many = request_with_header_count(150);
    let cases: Vec<(u16, Vec<u8>)> = vec![
        (200, b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        (200, b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        (200, b"GET /a.txt HTTP/1.0\r\n\r\n".to_vec()),
        (301, b"GET /dir HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        (
            304,
            format!("GET /a.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n").into_bytes(),
        ),
        (400, b"GET /a.txt HTTP/1.1\r\n\r\n".to_vec()),
        (400, b"\n".to_vec()),
        (404, b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        (405, b"DELETE /a.txt HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        (
            413,
            b"GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".to_vec(),
        ),
        (414, long_line.into_bytes()),
        (431, too_many.into_bytes()),
        (505, b"GET /a.txt HTTP/2.0\r\nHost: t\r\n\r\n".to_vec()),
    ];
    for (status, request) in cases {
        // Send the request and take the first response (keep-alive connections just stay open).
        let mut stream = connect(addr);
        stream.write_all(&request).unwrap();
        let is_head = request.starts_with(b"HEAD ");
        let response = read_response(&mut BufReader::new(stream), is_head).expect("a response");
        assert_eq!(
            response.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
        assert_common_headers(&response);
    }
}

#[test]
fn every_200_to_get_or_head_has_content_length_and_content_type() {
    let (site, server) = site_and_server(&["--list-dirs"]);
    site.file("listed/one.txt", b"1");
    let expectations = [
        ("/", "text/html; charset=utf-8", &b"<h1>home</h1>"[..]),
        ("/index.html", "text/html; charset=utf-8", b"<h1>home</h1>"),
        ("/dir/", "text/html; charset=utf-8", b"<p>dir</p>"),
        ("/a.txt", "text/plain; charset=utf-8", b"alpha"),
        ("/c.css", "text/css; charset=utf-8", b"body{}"),
        ("/d.json", "application/json", b"{\"d\":1}"),
        ("/noext", "application/octet-stream", b"no extension"),
        ("/empty.txt", "text/plain; charset=utf-8", b""),
    ];
    for (path, content_type, body) in expectations {
        let response = get(server.addr, path);
        assert_eq!(response.status, 200, "GET {path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "GET {path}: {:?}",
            response.head
        );
        assert_eq!(
            response.header("content-length"),
            Some(body.len().to_string().as_str()),
            "GET {path}"
        );
        assert_eq!(response.body, body, "GET {path}");
        let head = exchange(
            server.addr,
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(head.status, 200, "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            Some(content_type),
            "HEAD {path}"
        );
        assert_eq!(
            head.header("content-length"),
            Some(body.len().to_string().as_str()),
            "HEAD {path}"
        );
    }
    // A large file (sent by sendfile) and a generated directory listing.
    let large = get(server.addr, "/large.bin");
    assert_eq!(large.status, 200);
    assert_eq!(large.header("content-length"), Some("100000"));
    assert!(large.header("content-type").is_some());
    assert_eq!(
        large.body,
        std::fs::read(site.root().join("large.bin")).unwrap()
    );
    let listing = get(server.addr, "/listed/");
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        listing.header("content-length"),
        Some(listing.body.len().to_string().as_str())
    );
    assert!(listing.text().contains("one.txt"));
}

#[test]
fn head_sends_exactly_the_headers_get_sends_and_no_body() {
    let (_site, server) = site_and_server(&[]);
    for path in [
        "/a.txt",
        "/",
        "/empty.txt",
        "/large.bin",
        "/missing.txt",
        "/dir",
    ] {
        let mut conn = Conn::open(server.addr);
        // HEAD then GET pipelined in one write: any body bytes after the HEAD's head would be
        // read as the GET's status line.
        conn.send(
            format!(
                "HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\nGET {path} HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            .as_bytes(),
        );
        let head = conn.response(true);
        let get = conn.response(false);
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(
            headers_without_date(&head),
            headers_without_date(&get),
            "{path}"
        );
        assert_common_headers(&head);
        assert_eq!(
            get.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "{path}"
        );
        // And the connection is still in step: a third request gets its own answer.
        conn.send(b"GET /b.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(conn.response(false).body, b"bravo!", "{path}");
        conn.expect_closed_by_server();
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Keep-alive, Connection: close, HTTP/1.0, pipelining, timeouts
// ---------------------------------------------------------------------------------------------

#[test]
fn keep_alive_is_the_default_in_http_1_1() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    for (path, body) in [
        ("/a.txt", &b"alpha"[..]),
        ("/b.txt", b"bravo!"),
        ("/missing", b""),
        ("/a.txt", b"alpha"),
    ] {
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let response = conn.response(false);
        assert_eq!(response.header("connection"), Some("keep-alive"), "{path}");
        if !body.is_empty() {
            assert_eq!(response.body, body);
        } else {
            assert_eq!(response.status, 404);
        }
    }
}

#[test]
fn connection_close_is_honoured() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        conn.response(false).header("connection"),
        Some("keep-alive")
    );
    conn.send(b"GET /b.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let last = conn.response(false);
    assert_eq!((last.status, last.body.as_slice()), (200, &b"bravo!"[..]));
    assert_eq!(last.header("connection"), Some("close"));
    // Our side is still open; the server must close.
    conn.expect_closed_by_server();

    // Requests pipelined after the one that said close are not answered.
    let raw = until_server_closes(
        server.addr,
        b"GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /secret.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let responses = parse_responses(&raw, &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"alpha");
}

#[test]
fn http_1_0_closes_after_the_response_by_default() {
    let (_site, server) = site_and_server(&[]);
    let raw = until_server_closes(server.addr, b"GET /a.txt HTTP/1.0\r\n\r\n");
    let responses = parse_responses(&raw, &[]);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].body, b"alpha");
    assert_eq!(responses[0].header("connection"), Some("close"));
}

#[test]
fn http_1_0_keeps_the_connection_when_it_asks_for_keep_alive() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    for (path, body) in [("/a.txt", &b"alpha"[..]), ("/b.txt", b"bravo!")] {
        conn.send(format!("GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").as_bytes());
        let response = conn.response(false);
        assert_eq!((response.status, response.body.as_slice()), (200, body));
        assert_eq!(response.header("connection"), Some("keep-alive"));
    }
    // A 1.0 request without keep-alive on the same connection ends it.
    conn.send(b"GET /a.txt HTTP/1.0\r\n\r\n");
    let last = conn.response(false);
    assert_eq!(last.header("connection"), Some("close"));
    conn.expect_closed_by_server();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_site, server) = site_and_server(&[]);
    let requests = [
        ("GET", "/a.txt", &b"alpha"[..]),
        ("GET", "/b.txt", b"bravo!"),
        ("HEAD", "/c.css", b""),
        ("GET", "/d.json", b"{\"d\":1}"),
        ("GET", "/noext", b"no extension"),
        ("GET", "/c.css", b"body{}"),
        ("GET", "/index.html", b"<h1>home</h1>"),
    ];
    let mut all = String::new();
    for (method, path, _) in requests {
        all.push_str(&format!("{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    let mut conn = Conn::open(server.addr);
    conn.send(all.as_bytes());
    for (method, path, body) in requests {
        let response = conn.response(method == "HEAD");
        assert_eq!(response.status, 200, "{method} {path}");
        assert_eq!(response.body, body, "{method} {path}");
        assert_eq!(response.header("connection"), Some("keep-alive"));
    }
    // Still usable afterwards.
    conn.send(b"GET /e.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response(false).body, b"\x00\x01\x02");
}

#[test]
fn many_pipelined_requests_including_large_files_stay_in_order() {
    let (site, server) = site_and_server(&[]);
    let large = std::fs::read(site.root().join("large.bin")).unwrap();
    let paths = ["/a.txt", "/large.bin", "/b.txt", "/large.bin", "/missing"];
    let mut all = String::new();
    for _ in 0..20 {
        for path in paths {
            all.push_str(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
        }
    }
    all.push_str("GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let raw = until_server_closes(server.addr, all.as_bytes());
    let responses = parse_responses(&raw, &[]);
    assert_eq!(responses.len(), 101);
    for (i, response) in responses.iter().take(100).enumerate() {
        match paths[i % paths.len()] {
            "/a.txt" => assert_eq!(response.body, b"alpha", "#{i}"),
            "/b.txt" => assert_eq!(response.body, b"bravo!", "#{i}"),
            "/large.bin" => assert!(response.body == large, "#{i}: large body differs"),
            _ => assert_eq!(response.status, 404, "#{i}"),
        }
    }
}

#[test]
fn a_parked_keep_alive_connection_serves_its_next_requests() {
    let (_site, server) = site_and_server(&["--metrics-bind", "127.0.0.1:0"]);
    let metrics = server.metrics_addr();
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response(false).body, b"alpha");
    // Silent after each answer, it is parked (an answer comes from a task, so the park is empty
    // until then); each next request resumes it.
    for _ in 0..3 {
        wait_parked(metrics, 1);
        conn.send(b"GET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = conn.response(false);
        assert_eq!(response.body, b"bravo!");
        assert_eq!(response.header("connection"), Some("keep-alive"));
    }
    // Half a head wakes a parked connection; the rest follows later.
    wait_parked(metrics, 1);
    conn.send(b"GET /a.txt HTTP/1.1\r\n");
    wait_parked(metrics, 0);
    // Far longer than the 10 ms of silence that park an idle connection, so the resumed task
    // reads the half on its own, and would have parked it (losing it) if it parked partial heads.
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(parked(metrics), 0, "a partial head stays with its task");
    conn.send(b"Host: t\r\n\r\n");
    assert_eq!(conn.response(false).body, b"alpha");
    // Two pipelined requests wake a parked connection; both are answered, in order.
    wait_parked(metrics, 1);
    conn.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.response(false).body, b"alpha");
    assert_eq!(conn.response(false).body, b"bravo!");
    // A client that closes its side while parked: the server closes too.
    wait_parked(metrics, 1);
    conn.stream.shutdown(std::net::Shutdown::Write).unwrap();
    conn.expect_closed_by_server();
    // Many parked connections at once, all resumed.
    let mut conns: Vec<Conn> = (0..50).map(|_| Conn::open(server.addr)).collect();
    for conn in &mut conns {
        conn.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.response(false).body, b"alpha");
    }
    wait_parked(metrics, 50);
    for conn in &mut conns {
        conn.send(b"GET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for conn in &mut conns {
        assert_eq!(conn.response(false).body, b"bravo!");
    }
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout() {
    // Idle for a second, it is parked first: the park enforces the timeout.
    let (_site, server) = site_and_server(&["--keepalive-timeout", "1"]);
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = conn.response(false);
    assert_eq!(response.header("connection"), Some("keep-alive"));
    // Send nothing more: the server closes (well within our 20 s read timeout).
    conn.expect_closed_by_server();
}

#[test]
fn a_client_sending_half_a_head_is_cut_after_the_header_timeout_while_others_are_served() {
    let (_site, server) = site_and_server(&["--header-timeout", "1"]);
    let mut slow: Vec<TcpStream> = (0..3).map(|_| connect(server.addr)).collect();
    for stream in &mut slow {
        stream
            .write_all(b"GET /a.txt HTTP/1.1\r\nHost: te")
            .unwrap();
    }
    // Meanwhile, another client is served normally, several times over one connection.
    let mut conn = Conn::open(server.addr);
    for _ in 0..3 {
        conn.send(b"GET /b.txt HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.response(false).body, b"bravo!");
    }
    assert_eq!(get(server.addr, "/a.txt").body, b"alpha");
    // The slow clients never finish their heads: each gets 408 (or is closed), never a 200.
    for stream in slow {
        let mut out = Vec::new();
        let mut stream = stream;
        stream
            .read_to_end(&mut out)
            .expect("the server closes the slow connection");
        if !out.is_empty() {
            assert_single_refusal(&out, 408, "half a head");
        }
    }
}

#[test]
fn a_client_trickling_its_head_is_cut_by_the_header_timeout() {
    let (_site, server) = site_and_server(&["--header-timeout", "1"]);
    let stream = connect(server.addr);
    let mut reading = stream.try_clone().unwrap();
    let answered = Arc::new(AtomicBool::new(false));
    let answered_flag = answered.clone();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reading.read_to_end(&mut out);
        answered_flag.store(true, Ordering::SeqCst);
        out
    });
    // A complete, valid request sent one byte every 150 ms (about 9 s in all): bytes keep
    // arriving, but the head as a whole takes far longer than the 1 s header timeout. If the
    // server did not enforce it, the request would complete and be answered with 200.
    let head = b"GET /a.txt HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaa\r\nConnection: close\r\n\r\n";
    let mut writer = &stream;
    for byte in head {
        if answered.load(Ordering::SeqCst) || writer.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let out = reader.join().unwrap();
    assert!(answered.load(Ordering::SeqCst));
    if !out.is_empty() {
        assert_single_refusal(&out, 408, "trickled head");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Access log
// ---------------------------------------------------------------------------------------------

#[test]
fn the_access_log_has_one_line_per_request_with_client_method_path_status_and_bytes() {
    let (_site, server) = site_and_server(&[]);
    let mut conn = Conn::open(server.addr);
    conn.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nHEAD /b.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /nothing-here HTTP/1.1\r\nHost: t\r\n\r\n");
    conn.response(false);
    conn.response(true);
    conn.response(false);
    let line = server.wait_for_log("\"GET /a.txt HTTP/1.1\"", "127.0.0.1");
    assert!(
        line.contains("127.0.0.1 \"GET /a.txt HTTP/1.1\" 200 5 "),
        "{line}"
    );
    let line = server.wait_for_log("\"HEAD /b.txt HTTP/1.1\"", "127.0.0.1");
    assert!(line.contains(" 200 0 "), "HEAD sends no body bytes: {line}");
    let line = server.wait_for_log("\"GET /nothing-here HTTP/1.1\"", "127.0.0.1");
    assert!(line.contains(" 404 "), "{line}");
    // One line per request, not more.
    let log = server.log();
    assert_eq!(
        log.lines().filter(|l| l.contains("/a.txt")).count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains("/b.txt")).count(),
        1,
        "{log}"
    );
}

#[test]
fn no_access_log_removes_the_request_lines() {
    for quiet in [false, true] {
        let (_site, server) = site_and_server(if quiet { &["--no-access-log"] } else { &[] });
        assert_eq!(get(server.addr, "/a.txt").status, 200);
        // A refused request is logged at once, and buffered access lines are written before any
        // other line: once the refusal shows, any access line for /a.txt would be there too.
        let raw = until_server_closes(server.addr, b"GET /b.txt HTTP/1.1\r\n\r\n");
        assert_eq!(crate::support::status_of(&raw), 400);
        server.wait_for_log("rejected request", "missing Host");
        let logged = server
            .log()
            .lines()
            .any(|l| l.contains("\"GET /a.txt HTTP/1.1\" 200"));
        assert_eq!(
            logged,
            !quiet,
            "access line present with quiet={quiet}; log:\n{}",
            server.log()
        );
    }
}

#[test]
fn refused_and_rejected_requests_are_logged_with_the_reason() {
    let (_site, server) = site_and_server(&[]);
    let raw = until_server_closes(server.addr, b"GET /a.txt HTTP/1.1\r\n\r\n");
    let refusal = &parse_responses(&raw, &[])[0];
    assert_eq!(refusal.status, 400);
    let line = server.wait_for_log("rejected request", "missing Host header");
    assert!(line.contains("127.0.0.1"), "{line}");
    // The refusal also gets an access line, with the body bytes actually sent.
    let access = server.wait_for_log("127.0.0.1 \"-\" 400", "us");
    assert!(
        access.contains(&format!(" 400 {} ", refusal.body.len())),
        "{access}"
    );

    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    until_server_closes(server.addr, long.as_bytes());
    server.wait_for_log("rejected request", "request line too long");

    until_server_closes(server.addr, b"GET /a.txt HTTP/3.0\r\nHost: t\r\n\r\n");
    server.wait_for_log("rejected request", "unsupported HTTP version");

    assert_eq!(get_with(server.addr, "/a.txt", "").status, 200);
    let response = exchange(
        server.addr,
        b"PUT /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(response.status, 405);
    let line = server.wait_for_log("refused PUT /a.txt", "method not allowed");
    assert!(line.contains("127.0.0.1"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// 5. Limit flags and their environment variables
// ---------------------------------------------------------------------------------------------

#[test]
fn max_request_line_flag_moves_the_414_limit() {
    let (_site, server) = site_and_server(&["--max-request-line", "100"]);
    // Exactly at the limit (the CRLF does not count): routed (404, no such file).
    let at_limit = format!(
        "{}\r\nHost: t\r\nConnection: close\r\n\r\n",
        request_line_of_length(100)
    );
    assert_eq!(exchange(server.addr, at_limit.as_bytes()).status, 404);
    let over = format!("{}\r\nHost: t\r\n\r\n", request_line_of_length(101));
    assert_single_refusal(
        &until_server_closes(server.addr, over.as_bytes()),
        414,
        "101-byte line",
    );
    let well_over = format!("{}\r\nHost: t\r\n\r\n", request_line_of_length(500));
    assert_single_refusal(
        &until_server_closes(server.addr, well_over.as_bytes()),
        414,
        "500-byte line",
    );
}

#[test]
fn max_header_size_flag_moves_the_431_limit() {
    // The head must have room for a whole request line, so that limit comes down too.
    let (_site, server) =
        site_and_server(&["--max-header-size", "512", "--max-request-line", "256"]);
    let response = exchange(server.addr, head_of_exact_size(512, "").as_bytes());
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"alpha"[..])
    );
    assert_single_refusal(
        &until_server_closes(server.addr, head_of_exact_size(513, "").as_bytes()),
        431,
        "513-byte head",
    );
    assert_single_refusal(
        &until_server_closes(server.addr, head_of_exact_size(2000, "").as_bytes()),
        431,
        "2000-byte head",
    );
}

#[test]
fn max_headers_flag_moves_the_431_limit() {
    let (_site, server) = site_and_server(&["--max-headers", "5"]);
    let response = exchange(server.addr, request_with_header_count(5).as_bytes());
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"alpha"[..])
    );
    assert_single_refusal(
        &until_server_closes(server.addr, request_with_header_count(6).as_bytes()),
        431,
        "6 fields",
    );
}

#[test]
fn limits_can_be_set_through_environment_variables() {
    let site = Site::new();
    site.file("a.txt", b"alpha");
    let server = Server::start_with(
        &["serve", "-r", &site.root_str()],
        &[
            ("TERN_MAX_HEADERS", "5"),
            ("TERN_MAX_REQUEST_LINE", "100"),
            ("TERN_MAX_HEADER_SIZE", "512"),
            ("TERN_MAX_BODY_SIZE", "16"),
        ],
    );
    let addr = server.addr;
    assert_eq!(
        exchange(addr, request_with_header_count(5).as_bytes()).status,
        200
    );
    assert_single_refusal(
        &until_server_closes(addr, request_with_header_count(6).as_bytes()),
        431,
        "TERN_MAX_HEADERS",
    );
    let over = format!("{}\r\nHost: t\r\n\r\n", request_line_of_length(150));
    assert_single_refusal(
        &until_server_closes(addr, over.as_bytes()),
        414,
        "TERN_MAX_REQUEST_LINE",
    );
    assert_eq!(
        exchange(addr, head_of_exact_size(500, "").as_bytes()).status,
        200
    );
    assert_single_refusal(
        &until_server_closes(addr, head_of_exact_size(600, "").as_bytes()),
        431,
        "TERN_MAX_HEADER_SIZE",
    );
    let body = b"GET /a.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n01234567890123456";
    assert_single_refusal(&until_server_closes(addr, body), 413, "TERN_MAX_BODY_SIZE");
}
