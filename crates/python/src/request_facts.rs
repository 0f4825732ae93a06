//! What both interfaces tell an application about a request beyond its head as sent: the client
//! (the peer, or the client a trusted proxy names), the server's name and port (from the request's
//! host, else the address the client connected to), and the decoded path.

use std::net::{IpAddr, SocketAddr};

use tern_core::message::forwarded::Forwarded;
use tern_core::socket::Peer;

/// The client's address and port: what a trusted proxy said (its port, else the peer's), else
/// the peer. None for a Unix socket's peer; a dual-stack socket's `::ffff:a.b.c.d` is `a.b.c.d`.
pub fn client(peer: Peer, forwarded: Option<&Forwarded>) -> (Option<IpAddr>, Option<u16>) {
    let (ip, port) = match (forwarded.and_then(|f| f.client), peer) {
        (Some(client), Peer::Tcp(addr)) => {
            (Some(client.ip), Some(client.port.unwrap_or(addr.port())))
        }
        (Some(client), Peer::Unix) => (Some(client.ip), client.port),
        (None, Peer::Tcp(addr)) => (Some(addr.ip()), Some(addr.port())),
        (None, Peer::Unix) => (None, None),
    };
    (ip.map(|ip| ip.to_canonical()), port)
}

/// The server's name and port as text: from the request's host if it names them, else the
/// address the client connected to, else `localhost:80`.
pub fn server(host: Option<&[u8]>, local_addr: Option<SocketAddr>) -> (String, String) {
    if let Some((name, port)) = host.and_then(server_name_and_port) {
        return (name.to_string(), port.to_string());
    }
    match local_addr {
        Some(addr) => (addr.ip().to_string(), addr.port().to_string()),
        None => ("localhost".to_string(), "80".to_string()),
    }
}

/// The name and port a host value names, if it has a usable one.
pub fn server_name_and_port(host: &[u8]) -> Option<(&str, &str)> {
    let host = std::str::from_utf8(host).ok()?.trim();
    // "[::1]:8000", "example.com:8000", "example.com"
    let (name, port) = match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => (&host[..colon], &host[colon + 1..]),
        _ => (host, "80"),
    };
    (!name.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .then_some((name, port))
}

/// Percent-decodes a path (no '+' rule: that is for query strings).
pub fn decode_path(raw: &str) -> std::borrow::Cow<'_, [u8]> {
    percent_encoding::percent_decode_str(raw).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_comes_from_the_host_or_the_local_address() {
        assert_eq!(server_name_and_port(b"[::1]:8000"), Some(("[::1]", "8000")));
        assert_eq!(
            server_name_and_port(b"example.com"),
            Some(("example.com", "80"))
        );
        let local = "127.0.0.1:9000".parse().ok();
        assert_eq!(server(None, local), ("127.0.0.1".into(), "9000".into()));
    }
}
