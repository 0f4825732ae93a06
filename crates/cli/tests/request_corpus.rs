//! A corpus of raw requests that RFC 9112 and RFC 9110 say a server must refuse (and a few close
//! relatives it must accept), each sent over a real socket to `tern serve -r DIR`.
//!
//! Every row names the status the first response must have and whether the connection must close
//! after it. Each row is followed on the same connection by a pipelined request for a marker file:
//! a refusal that closes must leave it unanswered (whatever a lenient parser would have read as a
//! second request is never served), and an accepted request must let it through.

use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;

use crate::support::{connect, read_response, Response, Server, Site};

/// Sent after every row; its answer would carry [`FOLLOW_UP_BODY`].
const FOLLOW_UP: &[u8] = b"GET /follow-up.txt HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
const FOLLOW_UP_BODY: &[u8] = b"FOLLOW-UP";

/// What a row expects of the connection after the first response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The server closes: nothing more is answered, the next read is EOF.
    Closes,
    /// The server keeps the connection: the pipelined follow-up request is answered.
    KeepsOpen,
}

/// One raw request and what the server must make of it.
struct Case {
    /// What the row tests, for failure messages.
    what: &'static str,
    /// The bytes sent, before the pipelined follow-up.
    raw: Vec<u8>,
    /// The status of the first response.
    status: u16,
    after: After,
}

fn refused(what: &'static str, raw: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        what,
        raw: raw.into(),
        status,
        after: After::Closes,
    }
}

fn served(what: &'static str, raw: impl Into<Vec<u8>>, status: u16) -> Case {
    Case {
        what,
        raw: raw.into(),
        status,
        after: After::KeepsOpen,
    }
}

/// `GET /a.txt` with `headers` ("Name: value\r\n" each, Host included where wanted) and `body`.
fn get_a(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("GET /a.txt HTTP/1.1\r\n{headers}\r\n").into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// A chunked `GET /a.txt` with `body` as its chunked body.
fn chunked(body: &[u8]) -> Vec<u8> {
    get_a("Host: test\r\nTransfer-Encoding: chunked\r\n", body)
}

/// A request line with `target` and a valid Host.
fn target(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// A request for /a.txt with one Host field of `value`.
fn host(value: &str) -> Vec<u8> {
    get_a(&format!("Host: {value}\r\n"), b"")
}

fn request_targets() -> Vec<Case> {
    vec![
        // RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT), asterisk (OPTIONS).
        served("origin-form", target("GET", "/a.txt"), 200),
        served("absolute-form", target("GET", "http://test/a.txt"), 200),
        served(
            "absolute-form, upper-case scheme, port",
            target("GET", "HTTP://test:80/a.txt"),
            200,
        ),
        served(
            "absolute-form with an empty path is /",
            target("GET", "http://test"),
            200,
        ),
        served("OPTIONS *", target("OPTIONS", "*"), 200),
        refused("a bare word", target("GET", "admin"), 400),
        refused("a relative path", target("GET", "a.txt"), 400),
        refused("a bare word with a slash", target("GET", "admin/x"), 400),
        refused("* with GET", target("GET", "*"), 400),
        refused("*/x with OPTIONS", target("OPTIONS", "*/x"), 400),
        refused("authority-form with GET", target("GET", "test:80"), 400),
        refused(
            "CONNECT (authority-form): no tunnels here",
            target("CONNECT", "example.com:443"),
            501,
        ),
        refused(
            "CONNECT with an origin-form target",
            target("CONNECT", "/a.txt"),
            400,
        ),
        refused("another scheme", target("GET", "ftp://test/a.txt"), 400),
        refused(
            "absolute-form with userinfo",
            target("GET", "http://user@test/a.txt"),
            400,
        ),
        refused(
            "absolute-form with an empty host",
            target("GET", "http:///a.txt"),
            400,
        ),
        refused(
            "absolute-form with a broken IPv6 literal",
            target("GET", "http://[::1/a.txt"),
            400,
        ),
        refused(
            "a space inside the target",
            b"GET /a b HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
        // A decoded NUL in the path (RFC 3986 §7.3: no NUL may reach a file name or an app).
        refused("%00 in the path", target("GET", "/a.txt%00"), 400),
        refused("%00 mid-path", target("GET", "/sub/%00/a.txt"), 400),
        refused(
            "%00 in an absolute-form path",
            target("GET", "http://test/a.txt%00.html"),
            400,
        ),
    ]
}

fn hosts() -> Vec<Case> {
    vec![
        // RFC 9112 §3.2 and RFC 3986 §3.2.2: Host = uri-host [ ":" port ].
        served("a name", host("test"), 200),
        served("a name and port", host("example.com:8080"), 200),
        served("an IPv4 address", host("127.0.0.1:80"), 200),
        served("an IPv6 literal", host("[::1]:8080"), 200),
        served("an IPv6 literal without port", host("[2001:db8::7]"), 200),
        served("pct-encoded and sub-delims", host("a%41b!$&'()*+;=.x"), 200),
        served(
            "absolute-form ignores the Host field's value",
            b"GET http://test/a.txt HTTP/1.1\r\nHost: other\r\n\r\n".to_vec(),
            200,
        ),
        refused("a space in Host", host("a b"), 400),
        refused("a list in Host", host("a, b"), 400),
        refused("a path in Host", host("evil.com/../x"), 400),
        refused("an unclosed IPv6 literal", host("[::1"), 400),
        refused("an IPv6 literal that is not one", host("[not:v6]"), 400),
        refused("junk after an IPv6 literal", host("[::1]x"), 400),
        refused("userinfo in Host", host("user@x"), 400),
        refused("an empty Host", host(""), 400),
        refused("a port that is not digits", host("x:8o"), 400),
        refused("two ports", host("x:1:2"), 400),
        refused("a backslash in Host", host("x\\y"), 400),
        refused("a broken pct-encoding", host("x%4"), 400),
        refused(
            "two Host fields",
            get_a("Host: test\r\nHost: other\r\n", b""),
            400,
        ),
        refused("HTTP/1.1 without Host", get_a("Accept: */*\r\n", b""), 400),
    ]
}

fn framing() -> Vec<Case> {
    let follow_up_len = FOLLOW_UP.len();
    vec![
        // RFC 9112 §6.1 and §6.3: one framing, chunked last, none of it in HTTP/1.0.
        refused(
            "Content-Length with Transfer-Encoding: chunked",
            get_a(
                &format!(
                    "Host: test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                    5 + follow_up_len
                ),
                b"0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "Transfer-Encoding: chunked, identity (chunked not last)",
            get_a(
                "Host: test\r\nTransfer-Encoding: chunked, identity\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "Transfer-Encoding: identity",
            get_a("Host: test\r\nTransfer-Encoding: identity\r\n", b""),
            400,
        ),
        refused(
            "Transfer-Encoding: xchunked",
            get_a(
                "Host: test\r\nTransfer-Encoding: xchunked\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "Transfer-Encoding: chunked, chunked",
            get_a(
                "Host: test\r\nTransfer-Encoding: chunked, chunked\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "Transfer-Encoding: gzip, chunked (a coding tern does not decode)",
            get_a(
                "Host: test\r\nTransfer-Encoding: gzip, chunked\r\n",
                b"0\r\n\r\n",
            ),
            501,
        ),
        refused(
            "Transfer-Encoding folded onto a continuation line",
            get_a(
                "Host: test\r\nTransfer-Encoding:\r\n chunked\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        refused(
            "Transfer-Encoding in HTTP/1.0",
            b"GET /a.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "two Transfer-Encoding fields",
            get_a(
                "Host: test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                b"0\r\n\r\n",
            ),
            400,
        ),
        served(
            "Transfer-Encoding: Chunked (coding names ignore case)",
            get_a("Host: test\r\nTransfer-Encoding: Chunked\r\n", b"0\r\n\r\n"),
            200,
        ),
        // RFC 9110 §8.6: Content-Length = 1*DIGIT; a repeat must be the same number.
        served(
            "the same Content-Length twice",
            get_a(
                "Host: test\r\nContent-Length: 5\r\nContent-Length: 5\r\n",
                b"hello",
            ),
            200,
        ),
        refused(
            "conflicting Content-Length fields",
            get_a(
                "Host: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n",
                b"hello!",
            ),
            400,
        ),
        refused(
            "conflicting Content-Length list",
            get_a("Host: test\r\nContent-Length: 5, 6\r\n", b"hello!"),
            400,
        ),
        refused(
            "Content-Length: +5",
            get_a("Host: test\r\nContent-Length: +5\r\n", b"hello"),
            400,
        ),
        refused(
            "Content-Length: 0x5",
            get_a("Host: test\r\nContent-Length: 0x5\r\n", b"hello"),
            400,
        ),
        refused(
            "Content-Length: 5 5",
            get_a("Host: test\r\nContent-Length: 5 5\r\n", b"hello"),
            400,
        ),
        refused(
            "Content-Length: -1",
            get_a("Host: test\r\nContent-Length: -1\r\n", b""),
            400,
        ),
        refused(
            "an empty Content-Length",
            get_a("Host: test\r\nContent-Length: \r\n", b""),
            400,
        ),
        refused(
            "Content-Length over 64 bits",
            get_a(
                "Host: test\r\nContent-Length: 99999999999999999999\r\n",
                b"",
            ),
            400,
        ),
    ]
}

fn header_syntax() -> Vec<Case> {
    vec![
        // RFC 9112 §5.1, §5.2, §2.2.
        refused(
            "obs-fold continuation line",
            get_a("Host: test\r\nX-Long: one\r\n two\r\n", b""),
            400,
        ),
        refused(
            "obs-fold with a tab",
            get_a("Host: test\r\nX-Long: one\r\n\ttwo\r\n", b""),
            400,
        ),
        refused(
            "a space before the colon",
            get_a("Host : test\r\n", b""),
            400,
        ),
        refused(
            "a tab before the colon",
            get_a("Host: test\r\nX-A\t: 1\r\n", b""),
            400,
        ),
        refused(
            "'@' in a header name",
            get_a("Host: test\r\nX@Y: 1\r\n", b""),
            400,
        ),
        refused(
            "'(' in a header name",
            get_a("Host: test\r\nX(Y): 1\r\n", b""),
            400,
        ),
        refused(
            "a control byte in a header name",
            get_a("Host: test\r\nX\x01Y: 1\r\n", b""),
            400,
        ),
        refused(
            "a non-ASCII header name",
            get_a("Host: test\r\nX-\u{e9}: 1\r\n", b""),
            400,
        ),
        refused(
            "an empty header name",
            get_a("Host: test\r\n: 1\r\n", b""),
            400,
        ),
        refused(
            "a header line without a colon",
            get_a("Host: test\r\nNoColon\r\n", b""),
            400,
        ),
        refused(
            "NUL in a header value",
            get_a("Host: test\r\nX-A: a\0b\r\n", b""),
            400,
        ),
        refused(
            "a bare CR in a header value",
            get_a("Host: test\r\nX-A: a\rb\r\n", b""),
            400,
        ),
        refused(
            "bare CR line endings",
            b"GET /a.txt HTTP/1.1\rHost: test\r\r".to_vec(),
            400,
        ),
        refused(
            "a bare CR ending the request line",
            b"GET /a.txt HTTP/1.1\rHost: test\r\n\r\n".to_vec(),
            400,
        ),
        // RFC 9112 §2.2: a recipient MAY take a bare LF as a line terminator (httparse does).
        served(
            "bare LF line endings",
            b"GET /a.txt HTTP/1.1\nHost: test\n\n".to_vec(),
            200,
        ),
        refused(
            "whitespace before the method",
            b" GET /a.txt HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "a method that is not a token",
            b"G@T /a.txt HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "two spaces after the method",
            b"GET  /a.txt HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
    ]
}

fn versions() -> Vec<Case> {
    let with_version =
        |version: &str| format!("GET /a.txt {version}\r\nHost: test\r\n\r\n").into_bytes();
    vec![
        // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
        refused("HTTP/2.0 (well-formed)", with_version("HTTP/2.0"), 505),
        refused("HTTP/3.0 (well-formed)", with_version("HTTP/3.0"), 505),
        // Regression (found by fuzzing): after an empty line the version was looked for on
        // that line, and HTTP/2.0 got 400.
        refused(
            "HTTP/2.0 after an empty line",
            [b"\r\n".as_slice(), &with_version("HTTP/2.0")].concat(),
            505,
        ),
        refused("HTTP/1.10", with_version("HTTP/1.10"), 400),
        refused("HTTP/9", with_version("HTTP/9"), 400),
        refused("HTTP/1", with_version("HTTP/1"), 400),
        refused("HTTP/11", with_version("HTTP/11"), 400),
        refused("http/1.1 (lower case)", with_version("http/1.1"), 400),
        refused("a space after the version", with_version("HTTP/1.1 "), 400),
        refused(
            "no version",
            b"GET /a.txt\r\nHost: test\r\n\r\n".to_vec(),
            400,
        ),
    ]
}

fn chunked_bodies() -> Vec<Case> {
    let many_extensions = {
        // Five chunks of one byte, each carrying a 4000-byte extension: 20 KB of extensions.
        let mut body = Vec::new();
        for _ in 0..5 {
            body.extend_from_slice(format!("1;x={}\r\na\r\n", "v".repeat(4000)).as_bytes());
        }
        body.extend_from_slice(b"0\r\n\r\n");
        body
    };
    vec![
        // RFC 9112 §7.1: chunk-size, chunk-ext, trailer-section.
        served(
            "chunk extensions (token, quoted-string, bare name)",
            chunked(b"3;name=value;flag ; q=\"a \\\"b\\\"\"\r\nabc\r\n0\r\n\r\n"),
            200,
        ),
        served(
            "a chunk size with leading zeros",
            chunked(b"00000000000000000000003\r\nabc\r\n0\r\n\r\n"),
            200,
        ),
        served(
            "trailer fields",
            chunked(b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other:\tv v\r\n\r\n"),
            200,
        ),
        refused(
            "a chunk size over 64 bits",
            chunked(b"10000000000000000\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused("a chunk size that is not hex", chunked(b"zz\r\n"), 400),
        // Regression (found by fuzzing): whitespace at the end of a chunk line was accepted;
        // RFC 9112 §7.1.1 allows it only before a ';'.
        refused(
            "whitespace at the end of a chunk line",
            chunked(b"3 \r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "a negative chunk size",
            chunked(b"-3\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused("a 0x chunk size", chunked(b"0x3\r\nabc\r\n0\r\n\r\n"), 400),
        refused(
            "a bare CR in a chunk extension",
            chunked(b"3;a=b\rc\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "NUL in a chunk extension",
            chunked(b"3;a=\0\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "a control byte in a chunk extension",
            chunked(b"3;a\x01=b\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "a chunk extension without its name",
            chunked(b"3;=b\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "an unterminated quoted chunk extension",
            chunked(b"3;a=\"b\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "junk after the chunk size",
            chunked(b"3 x\r\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "too many chunk-extension bytes",
            chunked(&many_extensions),
            400,
        ),
        refused(
            "a bare LF after the chunk size",
            chunked(b"3\nabc\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "chunk data longer than its size",
            chunked(b"3\r\nabcd\r\n0\r\n\r\n"),
            400,
        ),
        refused(
            "a bare CR in a trailer field",
            chunked(b"0\r\nX-T: a\rb\r\n\r\n"),
            400,
        ),
        refused(
            "NUL in a trailer field",
            chunked(b"0\r\nX-T: a\0b\r\n\r\n"),
            400,
        ),
        refused(
            "a folded trailer field",
            chunked(b"0\r\nX-T: a\r\n b\r\n\r\n"),
            400,
        ),
        refused(
            "a trailer line without a colon",
            chunked(b"0\r\nnocolon\r\n\r\n"),
            400,
        ),
        refused(
            "a space before a trailer field's colon",
            chunked(b"0\r\nX-T : a\r\n\r\n"),
            400,
        ),
    ]
}

fn limits() -> Vec<Case> {
    let mut many_headers = String::from("Host: test\r\n");
    for i in 0..101 {
        many_headers.push_str(&format!("X-H-{i}: {i}\r\n"));
    }
    vec![
        refused(
            "a request line over 8 KiB",
            target("GET", &format!("/{}", "a".repeat(9000))),
            414,
        ),
        // Regression (found by fuzzing): the limit was measured on the empty line before the
        // request line, so a long request line after a CRLF escaped it.
        refused(
            "a request line over 8 KiB after an empty line",
            [
                b"\r\n".as_slice(),
                &target("GET", &format!("/{}", "a".repeat(9000))),
            ]
            .concat(),
            414,
        ),
        refused("101 header fields", get_a(&many_headers, b""), 431),
        refused(
            "a 40 KB header field",
            get_a(
                &format!("Host: test\r\nX-Big: {}\r\n", "b".repeat(40_000)),
                b"",
            ),
            431,
        ),
    ]
}

/// Sends the row and its follow-up on one connection and reads until the server closes.
fn run(addr: SocketAddr, case: &Case) -> Result<(), String> {
    let mut stream = connect(addr);
    let mut bytes = case.raw.clone();
    bytes.extend_from_slice(FOLLOW_UP);
    // A server that refuses early may close before taking everything: what matters is its answer.
    let _ = stream.write_all(&bytes);
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("the server did not close the connection: {e}"))?;
    let mut reader = BufReader::new(raw.as_slice());
    let mut responses: Vec<Response> = Vec::new();
    while let Some(response) = read_response(&mut reader, false) {
        responses.push(response);
    }
    let text = || String::from_utf8_lossy(&raw).into_owned();
    let first = responses
        .first()
        .ok_or_else(|| "no response at all".to_string())?;
    if first.status != case.status {
        return Err(format!(
            "status {} instead of {}: {:?}",
            first.status, case.status, first.head
        ));
    }
    match case.after {
        After::Closes => {
            if first.header("connection") != Some("close") {
                return Err(format!("no Connection: close: {:?}", first.head));
            }
            if responses.len() != 1
                || raw
                    .windows(FOLLOW_UP_BODY.len())
                    .any(|w| w == FOLLOW_UP_BODY)
            {
                return Err(format!("the pipelined request was answered: {:?}", text()));
            }
        }
        After::KeepsOpen => {
            let follow_up = responses.get(1).map(|r| (r.status, r.body.as_slice()));
            if responses.len() != 2 || follow_up != Some((200, FOLLOW_UP_BODY)) {
                return Err(format!(
                    "the pipelined request was not answered once: {:?}",
                    text()
                ));
            }
        }
    }
    Ok(())
}

/// Runs every case on its own connection, all at once, and reports every failing row.
fn run_all(server: &Server, cases: Vec<Case>) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(move || run(server.addr, case)))
            .collect();
        runs.into_iter()
            .zip(&cases)
            .filter_map(|(run, case)| match run.join() {
                Ok(Ok(())) => None,
                Ok(Err(why)) => Some(format!("{}: {why}", case.what)),
                Err(_) => Some(format!("{}: the check panicked", case.what)),
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn site_and_server(extra: &[&str]) -> (Site, Server) {
    let site = Site::new();
    site.file("index.html", b"index")
        .file("a.txt", b"alpha")
        .file("sub/a.txt", b"sub alpha")
        .file("follow-up.txt", FOLLOW_UP_BODY);
    let root = site.root_str();
    let mut args = vec!["serve", "-r", root.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    (site, server)
}

#[test]
fn request_targets_outside_origin_absolute_authority_and_asterisk_form_are_refused() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, request_targets());
}

#[test]
fn host_fields_that_are_not_uri_host_and_port_are_refused() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, hosts());
}

#[test]
fn conflicting_or_malformed_body_framing_is_refused() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, framing());
}

#[test]
fn malformed_header_fields_and_line_endings_are_refused() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, header_syntax());
}

#[test]
fn only_http_1_0_and_1_1_are_served_and_malformed_versions_get_400() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, versions());
}

#[test]
fn malformed_chunk_sizes_extensions_and_trailers_are_refused() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, chunked_bodies());
}

#[test]
fn the_request_line_and_header_limits_hold() {
    let (_site, server) = site_and_server(&[]);
    run_all(&server, limits());
}

#[test]
fn options_asterisk_is_answered_for_the_server_as_a_whole() {
    let (_site, server) = site_and_server(&[]);
    let mut stream = connect(server.addr);
    stream.write_all(&target("OPTIONS", "*")).unwrap();
    let mut reader = BufReader::new(stream);
    let response = read_response(&mut reader, false).expect("a response");
    assert_eq!(response.status, 200, "{:?}", response.head);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    assert_eq!(response.header("content-length"), Some("0"));
}

#[test]
fn a_chunk_declared_larger_than_max_body_size_is_refused_before_its_data_arrives() {
    // A short I/O timeout: a server waiting for the chunk's data gives up (without an answer)
    // long before the test's patience runs out.
    let (_site, server) = site_and_server(&["--max-body-size", "1K", "--io-timeout", "2"]);
    let mut second_chunk_over = chunked(b"400\r\n");
    second_chunk_over.extend_from_slice(&[b'x'; 0x400]);
    second_chunk_over.extend_from_slice(b"\r\n1\r\n");
    for (what, raw) in [
        ("one chunk over the limit", chunked(b"401\r\nabc")),
        ("a second chunk taking the total over", second_chunk_over),
    ] {
        let mut stream = connect(server.addr);
        stream.write_all(&raw).unwrap();
        let mut reader = BufReader::new(stream);
        let response = read_response(&mut reader, false);
        assert_eq!(
            response.map(|r| r.status),
            Some(413),
            "{what}: the declared size alone must be refused"
        );
    }
    // At the limit exactly, still served.
    let mut at_limit = chunked(b"400\r\n");
    at_limit.extend_from_slice(&[b'x'; 0x400]);
    at_limit.extend_from_slice(b"\r\n0\r\n\r\n");
    let exactly = served("a body of exactly --max-body-size", at_limit, 200);
    assert_eq!(run(server.addr, &exactly), Ok(()));
}
