//! HAProxy's PROXY protocol, version 1 (text) and 2 (binary): a proxy that relays raw TCP sends
//! one header naming the client it accepted, before any byte of the client's own. With
//! `--proxy-protocol` every connection must begin with one, from a peer in
//! `--forwarded-allow-ips` ([`TrustedProxies`]), and the client address it carries becomes the
//! connection's peer: REMOTE_ADDR, the access log, the line services' log lines.
//!
//! The `ppp` crate parses the header; this module adds what a server needs around it: the size
//! limits, what counts as the client (spec §2.1 and §2.2: LOCAL, UNKNOWN and families other than
//! TCP over IPv4/IPv6 mean "use the real connection's addresses"), and taking exactly the header
//! off the socket and no byte more, because what follows belongs to the HTTP or line handler,
//! which reads the socket itself. So the header is peeked at (`recv` with `MSG_PEEK`) and only its
//! own bytes are read; a header that arrives in pieces is read piece by piece (every byte before
//! its end is header), so waiting for the rest waits for new bytes instead of spinning.
//!
//! The specification: <https://www.haproxy.org/download/3.0/doc/proxy-protocol.txt>.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ppp::{v1, v2, PartialResult};
use tokio::io::AsyncReadExt;

use crate::shutdown::ShutdownWatch;
use crate::socket::{peek, Peer, Socket};
use crate::trusted_proxies::TrustedProxies;

/// A v1 header is at most 107 bytes, its CRLF included (spec §2.1: "a receiver ... must
/// therefore read no more than 107 bytes"); `ppp` enforces it.
pub const V1_MAX_BYTES: usize = 107;
/// The first 16 bytes of a v2 header: signature, version and command, family, length (§2.2).
const V2_FIXED_BYTES: usize = 16;
/// The 12-byte signature that starts every v2 header (§2.2).
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The largest v2 header taken, in bytes. The largest address block (two Unix paths) is 216
/// bytes; the rest leaves room for the TLVs proxies add (a cloud load balancer's endpoint id,
/// HAProxy's TLS details). The format allows 65,535 bytes of payload; a connection announcing
/// more than this is refused rather than buffered.
pub const V2_MAX_BYTES: usize = 4096;
/// How much the first look at the socket asks for: every v1 header, and every v2 header without
/// large TLVs, in one `recv`.
const FIRST_PEEK_BYTES: usize = 256;

/// What the bytes at the start of a connection are.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header of `length` bytes. `client`: the source address it carries, or None when
    /// the connection's own addresses stand (LOCAL, UNKNOWN, UNSPEC, Unix or datagram families).
    Complete {
        length: usize,
        client: Option<SocketAddr>,
    },
    /// A header has begun; more bytes are needed. `total`: its full length, once known (v2).
    Incomplete { total: Option<usize> },
    /// Not a header, or a broken one.
    Invalid(String),
}

/// Parses the header at the start of `bytes` (which may hold more than the header).
pub fn parse(bytes: &[u8]) -> Parsed {
    match bytes.first() {
        None => Parsed::Incomplete { total: None },
        // Only the v2 signature starts with CR; only the v1 header with 'P'.
        Some(b'\r') => parse_v2(bytes),
        Some(_) => parse_v1(bytes),
    }
}

/// The start of every v1 header.
const V1_PREFIX: &[u8] = b"PROXY ";

/// A v1 header is one line: it is handed to `ppp` only once its line end is in (`ppp` takes some
/// prefixes, such as one ending in the space before a port, for a broken header).
fn parse_v1(bytes: &[u8]) -> Parsed {
    let window = &bytes[..bytes.len().min(V1_MAX_BYTES)];
    let Some(line_feed) = memchr::memchr(b'\n', window) else {
        let start = &window[..window.len().min(V1_PREFIX.len())];
        let carriage_return = memchr::memchr(b'\r', window);
        return if window.len() == V1_MAX_BYTES {
            Parsed::Invalid(format!("PROXY v1: no line end within {V1_MAX_BYTES} bytes"))
        } else if start != &V1_PREFIX[..start.len()] {
            Parsed::Invalid("PROXY v1: the header must start with 'PROXY '".into())
        } else if carriage_return.is_some_and(|at| at + 1 < window.len()) {
            Parsed::Invalid("PROXY v1: a CR not followed by LF".into())
        } else {
            Parsed::Incomplete { total: None }
        };
    };
    let header = v1::Header::try_from(&window[..=line_feed]);
    if header.is_incomplete() {
        return Parsed::Invalid("PROXY v1: the line ends before the header does".into());
    }
    match header {
        Ok(header) => Parsed::Complete {
            length: header.header.len(),
            client: match header.addresses {
                v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                // §2.1: UNKNOWN means the receiver uses the real connection's addresses.
                v1::Addresses::Unknown => None,
            },
        },
        Err(error) => Parsed::Invalid(format!("PROXY v1: {error}")),
    }
}

fn parse_v2(bytes: &[u8]) -> Parsed {
    if let Some(length) = bytes.get(V2_FIXED_BYTES - 2..V2_FIXED_BYTES) {
        let total = V2_FIXED_BYTES + usize::from(u16::from_be_bytes([length[0], length[1]]));
        if bytes.starts_with(V2_SIGNATURE) && total > V2_MAX_BYTES {
            return Parsed::Invalid(format!(
                "PROXY v2: a {total}-byte header, over the {V2_MAX_BYTES}-byte limit"
            ));
        }
    }
    let header = v2::Header::try_from(bytes);
    match header {
        Ok(header) => Parsed::Complete {
            length: header.len(),
            client: v2_client(&header),
        },
        Err(v2::ParseError::Partial(_, payload)) => Parsed::Incomplete {
            total: Some(V2_FIXED_BYTES + payload),
        },
        Err(error) if error.is_incomplete() => Parsed::Incomplete { total: None },
        Err(error) => Parsed::Invalid(format!("PROXY v2: {error}")),
    }
}

/// §2.2: only PROXY over a stream of IPv4 or IPv6 names a client; LOCAL (the proxy's own health
/// check) and the other families and protocols fall back to the connection's own addresses.
fn v2_client(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command != v2::Command::Proxy || header.protocol != v2::Protocol::Stream {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(a) => {
            Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
        }
        v2::Addresses::IPv6(a) => {
            Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
        }
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

/// Why a connection was closed instead of served.
#[derive(Debug)]
pub enum Refusal {
    /// The peer is not in `--forwarded-allow-ips`: its header would not be believed.
    Untrusted,
    /// The connection did not start with a valid header.
    Invalid(String),
    /// The peer closed before the header was complete.
    Closed,
    /// No complete header within the timeout (or before the worker's drain deadline).
    TimedOut(Duration),
    Io(io::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Untrusted => f.write_str(
                "it is not in --forwarded-allow-ips, so its PROXY protocol header is not trusted",
            ),
            Refusal::Invalid(why) => write!(f, "no valid PROXY protocol header ({why})"),
            Refusal::Closed => {
                f.write_str("it closed before sending a whole PROXY protocol header")
            }
            Refusal::TimedOut(after) => write!(
                f,
                "no PROXY protocol header within {:.1}s",
                after.as_secs_f64()
            ),
            Refusal::Io(error) => write!(f, "reading its PROXY protocol header failed: {error}"),
        }
    }
}

impl From<io::Error> for Refusal {
    fn from(error: io::Error) -> Self {
        Refusal::Io(error)
    }
}

/// Takes the PROXY header off a newly accepted connection and returns the peer to serve it as:
/// the client the header names, or `peer` itself when it names none. Refused when `peer` is not
/// trusted, when the header is missing or broken, or when it takes longer than `timeout`; a
/// drain that begins meanwhile shortens the wait to its idle deadline.
pub async fn read_peer<S: Socket>(
    socket: &mut S,
    peer: Peer,
    trusted: &TrustedProxies,
    timeout: Duration,
    shutdown: &mut ShutdownWatch,
) -> Result<Peer, Refusal> {
    if !trusted.trusts_peer(peer) {
        return Err(Refusal::Untrusted);
    }
    let started = Instant::now();
    let mut deadline = started + timeout;
    let mut draining = false;
    let read = read_header(socket);
    tokio::pin!(read);
    loop {
        tokio::select! {
            client = &mut read => return Ok(client?.map_or(peer, Peer::Tcp)),
            _ = tokio::time::sleep_until(deadline.into()) => {
                return Err(Refusal::TimedOut(started.elapsed()));
            }
            _ = shutdown.recv(), if !draining => {
                draining = true;
                if let Some(until) = shutdown.idle_deadline() {
                    deadline = deadline.min(until);
                }
            }
        }
    }
}

/// Reads exactly one header off `socket` (see the module's comment) and returns its client.
async fn read_header<S: Socket>(socket: &mut S) -> Result<Option<SocketAddr>, Refusal> {
    let mut window = vec![0u8; FIRST_PEEK_BYTES];
    // Header bytes already read off the socket, at the start of `window`.
    let mut taken = 0;
    loop {
        if taken == window.len() {
            return Err(Refusal::Invalid("the header does not end".into()));
        }
        let peeked = peek(socket, &mut window[taken..]).await?;
        if peeked == 0 {
            return Err(Refusal::Closed);
        }
        let available = taken + peeked;
        match parse(&window[..available]) {
            Parsed::Complete { length, client } => {
                // Already received (it was peeked at): this read does not wait.
                socket.read_exact(&mut window[taken..length]).await?;
                return Ok(client);
            }
            Parsed::Incomplete { total } => {
                socket.read_exact(&mut window[taken..available]).await?;
                taken = available;
                if let Some(total) = total.filter(|&total| total > window.len()) {
                    window.resize(total, 0);
                }
            }
            Parsed::Invalid(why) => return Err(Refusal::Invalid(why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn complete(bytes: &[u8]) -> (usize, Option<SocketAddr>) {
        match parse(bytes) {
            Parsed::Complete { length, client } => (length, client),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    fn is_invalid(bytes: &[u8]) -> bool {
        matches!(parse(bytes), Parsed::Invalid(_))
    }

    /// A v2 header: version/command byte, family/protocol byte, payload.
    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.push(command);
        header.push(family);
        header.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        header.extend_from_slice(payload);
        header
    }

    /// The address block of TCP over IPv4 (§2.2: source, destination, source port, destination
    /// port).
    fn ipv4_block(source: [u8; 4], source_port: u16) -> Vec<u8> {
        let mut block = source.to_vec();
        block.extend_from_slice(&[10, 0, 0, 1]);
        block.extend_from_slice(&source_port.to_be_bytes());
        block.extend_from_slice(&80u16.to_be_bytes());
        block
    }

    // --- v1 (§2.1) ---

    #[test]
    fn v1_tcp4_gives_the_source_and_its_length() {
        let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n";
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            complete(&bytes),
            (header.len(), Some(addr("192.0.2.7:56324")))
        );
    }

    #[test]
    fn v1_tcp6_gives_the_source() {
        let header = b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n";
        assert_eq!(
            complete(header),
            (header.len(), Some(addr("[2001:db8::7]:4711")))
        );
    }

    #[test]
    fn v1_unknown_keeps_the_connection_addresses() {
        // "the receiver must ignore anything presented before the CRLF is found"
        assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (15, None));
        let header = b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
        assert_eq!(complete(header), (header.len(), None));
    }

    #[test]
    fn v1_partial_headers_need_more() {
        for partial in [
            &b"P"[..],
            b"PROXY",
            b"PROXY TCP4 192.0.2.7",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r",
        ] {
            assert_eq!(
                parse(partial),
                Parsed::Incomplete { total: None },
                "{:?}",
                String::from_utf8_lossy(partial)
            );
        }
    }

    #[test]
    fn v1_at_most_107_bytes() {
        // The longest real header: TCP6 with full-length addresses and 5-digit ports.
        let longest =
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(longest.len(), 104);
        assert_eq!(complete(longest).0, 104);
        // 107 bytes without a line end can never become a header.
        let endless = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 93]].concat();
        assert_eq!(endless.len(), V1_MAX_BYTES);
        assert!(is_invalid(&endless));
    }

    #[test]
    fn v1_malformed_headers_are_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"proxy TCP4 192.0.2.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP5 192.0.2.7 10.0.0.1 1 2\r\n",
            // TCP4 with IPv6 addresses, and the other way round.
            b"PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n",
            b"PROXY TCP6 192.0.2.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 65536 2\r\n",
            // Ports have no leading zeros.
            b"PROXY TCP4 192.0.2.7 10.0.0.1 080 2\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\rX",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2 3\r\n",
        ] {
            assert!(is_invalid(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    // --- v2 (§2.2) ---

    #[test]
    fn v2_proxy_tcp4_gives_the_source_and_its_length() {
        let header = v2(0x21, 0x11, &ipv4_block([192, 0, 2, 7], 56324));
        let mut bytes = header.clone();
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            complete(&bytes),
            (header.len(), Some(addr("192.0.2.7:56324")))
        );
    }

    #[test]
    fn v2_proxy_tcp6_gives_the_source() {
        let source: std::net::Ipv6Addr = "2001:db8::7".parse().unwrap();
        let mut block = source.octets().to_vec();
        block.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        block.extend_from_slice(&4711u16.to_be_bytes());
        block.extend_from_slice(&443u16.to_be_bytes());
        let header = v2(0x21, 0x21, &block);
        assert_eq!(
            complete(&header),
            (16 + 36, Some(addr("[2001:db8::7]:4711")))
        );
    }

    #[test]
    fn v2_tlvs_after_the_addresses_are_skipped() {
        let mut payload = ipv4_block([192, 0, 2, 7], 1000);
        // PP2_TYPE_AUTHORITY "example.com".
        payload.extend_from_slice(&[0x02, 0x00, 0x0b]);
        payload.extend_from_slice(b"example.com");
        let header = v2(0x21, 0x11, &payload);
        assert_eq!(
            complete(&header),
            (header.len(), Some(addr("192.0.2.7:1000")))
        );
    }

    #[test]
    fn v2_local_keeps_the_connection_addresses() {
        // "the receiver must accept this connection as valid and must use the real connection
        // endpoints"
        assert_eq!(complete(&v2(0x20, 0x00, &[])), (16, None));
        let with_family = v2(0x20, 0x11, &ipv4_block([192, 0, 2, 7], 1));
        assert_eq!(complete(&with_family), (28, None));
    }

    #[test]
    fn v2_unspec_unix_and_datagram_fall_back_to_the_connection() {
        assert_eq!(complete(&v2(0x21, 0x00, &[])), (16, None));
        assert_eq!(complete(&v2(0x21, 0x31, &[0u8; 216])), (16 + 216, None));
        let datagram = v2(0x21, 0x12, &ipv4_block([192, 0, 2, 7], 1));
        assert_eq!(complete(&datagram), (28, None));
    }

    #[test]
    fn v2_needs_the_whole_signature() {
        let header = v2(0x21, 0x11, &ipv4_block([192, 0, 2, 7], 1));
        for cut in [1, 5, 11, 12, 15] {
            assert_eq!(
                parse(&header[..cut]),
                Parsed::Incomplete { total: None },
                "{cut}"
            );
        }
        assert_eq!(parse(&header[..20]), Parsed::Incomplete { total: Some(28) });
        // A wrong byte in the signature is no header.
        let mut wrong = header.clone();
        wrong[8] = b'X';
        assert!(is_invalid(&wrong));
        assert!(is_invalid(b"\r\nGET / HTTP/1.1\r\n"));
    }

    #[test]
    fn v2_bad_version_command_or_family_is_refused() {
        let block = ipv4_block([192, 0, 2, 7], 1);
        // Version 1 in the binary format, command 2, family 4, protocol 3.
        for (command, family) in [(0x11, 0x11), (0x22, 0x11), (0x21, 0x41), (0x21, 0x13)] {
            assert!(
                is_invalid(&v2(command, family, &block)),
                "{command:x} {family:x}"
            );
        }
        // A length too short for the family's addresses.
        assert!(is_invalid(&v2(0x21, 0x11, &[0u8; 4])));
    }

    #[test]
    fn v2_over_the_size_limit_is_refused_before_it_arrives() {
        let mut start = V2_SIGNATURE.to_vec();
        start.extend_from_slice(&[0x21, 0x11]);
        start.extend_from_slice(&(V2_MAX_BYTES as u16).to_be_bytes());
        assert!(is_invalid(&start));
    }

    #[test]
    fn every_prefix_of_a_header_needs_more() {
        // The reader takes a header that arrives in pieces only if no prefix looks broken.
        let mut tlv = ipv4_block([192, 0, 2, 7], 1);
        tlv.extend_from_slice(&[0x04, 0x00, 0x02, 0, 0]);
        let headers = [
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n".to_vec(),
            b"PROXY TCP6 2001:db8::7 2001:db8::1 4711 443\r\n".to_vec(),
            b"PROXY UNKNOWN\r\n".to_vec(),
            b"PROXY UNKNOWN 1 2 3 4\r\n".to_vec(),
            v2(0x21, 0x11, &tlv),
            v2(0x20, 0x00, &[]),
        ];
        for header in headers {
            assert_eq!(complete(&header).0, header.len());
            for cut in 0..header.len() {
                assert!(
                    matches!(parse(&header[..cut]), Parsed::Incomplete { .. }),
                    "{:?}",
                    String::from_utf8_lossy(&header[..cut])
                );
            }
        }
    }

    // --- reading off a socket ---

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Sends `pieces` one after another into a socket pair, reads the header from the other end,
    /// and returns the result and what the socket still holds.
    fn read_from(pieces: Vec<Vec<u8>>) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
        runtime().block_on(async {
            let (mut client, mut server) = tokio::net::UnixStream::pair().unwrap();
            let writer = tokio::spawn(async move {
                for piece in pieces {
                    client.write_all(&piece).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                client.shutdown().await.unwrap();
            });
            let result = read_header(&mut server).await.map_err(|e| e.to_string());
            writer.await.unwrap();
            let mut rest = Vec::new();
            server.read_to_end(&mut rest).await.unwrap();
            (result, rest)
        })
    }

    #[test]
    fn reading_takes_the_header_and_nothing_after_it() {
        let (client, rest) = read_from(vec![
            b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n\r\n".to_vec(),
        ]);
        assert_eq!(client, Ok(Some(addr("192.0.2.7:56324"))));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn reading_a_header_sent_in_pieces() {
        let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n";
        let (client, rest) = read_from(vec![
            header[..3].to_vec(),
            header[3..20].to_vec(),
            header[20..header.len() - 1].to_vec(),
            [&header[header.len() - 1..], b"hello\n"].concat(),
        ]);
        assert_eq!(client, Ok(Some(addr("192.0.2.7:56324"))));
        assert_eq!(rest, b"hello\n");
        let v2_header = v2(0x21, 0x11, &ipv4_block([192, 0, 2, 9], 9));
        let (client, rest) = read_from(vec![
            v2_header[..14].to_vec(),
            v2_header[14..20].to_vec(),
            [&v2_header[20..], b"next"].concat(),
        ]);
        assert_eq!(client, Ok(Some(addr("192.0.2.9:9"))));
        assert_eq!(rest, b"next");
    }

    #[test]
    fn reading_a_large_v2_header() {
        let mut payload = ipv4_block([192, 0, 2, 7], 7);
        // A NOOP TLV (PP2_TYPE_NOOP) of 1000 bytes: the header outgrows the first look.
        payload.extend_from_slice(&[0x04, 0x03, 0xe8]);
        payload.extend_from_slice(&[0u8; 1000]);
        let header = v2(0x21, 0x11, &payload);
        let (client, rest) = read_from(vec![[header.as_slice(), b"after"].concat()]);
        assert_eq!(client, Ok(Some(addr("192.0.2.7:7"))));
        assert_eq!(rest, b"after");
    }

    #[test]
    fn reading_refuses_a_missing_header_and_an_early_close() {
        let (client, _) = read_from(vec![b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()]);
        assert!(client.unwrap_err().contains("no valid PROXY"));
        let (client, _) = read_from(vec![b"PROXY TCP4 192.0".to_vec()]);
        assert!(client.unwrap_err().contains("closed"));
    }

    #[test]
    fn an_untrusted_peer_is_refused_without_reading() {
        runtime().block_on(async {
            let (_client, mut server) = tokio::net::UnixStream::pair().unwrap();
            let shutdown = crate::shutdown::Shutdown::new();
            let mut watch = shutdown.watch();
            let peer = Peer::Tcp(addr("192.0.2.1:1000"));
            let trusted = TrustedProxies::default();
            let refused = read_peer(
                &mut server,
                peer,
                &trusted,
                Duration::from_secs(5),
                &mut watch,
            )
            .await
            .unwrap_err();
            assert!(matches!(refused, Refusal::Untrusted));
        });
    }

    #[test]
    fn a_silent_peer_times_out() {
        runtime().block_on(async {
            let (_client, mut server) = tokio::net::UnixStream::pair().unwrap();
            let shutdown = crate::shutdown::Shutdown::new();
            let mut watch = shutdown.watch();
            let trusted = TrustedProxies::default();
            let timeout = Duration::from_millis(50);
            let refused = read_peer(&mut server, Peer::Unix, &trusted, timeout, &mut watch)
                .await
                .unwrap_err();
            assert!(matches!(refused, Refusal::TimedOut(_)));
        });
    }
}
