//! Fuzzes the forwarding headers (`http::forwarded::resolve`) through a parsed request head: the
//! input's lines become X-Forwarded-For, X-Forwarded-Proto and Forwarded values in turn.
//!
//! Checks, besides "no panic": an untrusted peer changes nothing; a result names a client or a
//! scheme (otherwise it is None); a client with a port came from a header that has digits; the
//! answer does not depend on whether the peer is trusted by address or by being a Unix socket.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::config::HttpLimits;
use tern_core::http::forwarded::resolve;
use tern_core::message::forwarded::Forwarded;
use tern_core::http::request;
use tern_core::socket::Peer;
use tern_core::trusted_proxies::TrustedProxies;

const NAMES: [&str; 3] = ["X-Forwarded-For", "X-Forwarded-Proto", "Forwarded"];

fuzz_target!(|data: &[u8]| {
    let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for (i, value) in data.split(|&b| b == b'\n').take(16).enumerate() {
        head.extend_from_slice(NAMES[i % NAMES.len()].as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let mut buf = BytesMut::from(&head[..]);
    let Ok(Some(head)) = request::parse(&mut buf, &HttpLimits::default()) else {
        return;
    };
    let untrusted = Peer::Tcp("192.0.2.1:1000".parse().unwrap());
    let trusted_peer = Peer::Tcp("127.0.0.1:1000".parse().unwrap());
    let list = TrustedProxies::default();
    assert_eq!(resolve(&head, untrusted, &list), None);
    let by_address = resolve(&head, trusted_peer, &list);
    assert_eq!(by_address, resolve(&head, Peer::Unix, &list));
    if let Some(found) = by_address {
        assert_ne!(found, Forwarded::default());
        if found.client.is_some_and(|client| client.port.is_some()) {
            assert!(data.iter().any(u8::is_ascii_digit));
        }
    }
    let _ = resolve(&head, untrusted, &TrustedProxies::parse("*").unwrap());
});
