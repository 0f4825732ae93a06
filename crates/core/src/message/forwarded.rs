//! What a trusted proxy said about a request's client: its address and the scheme it used.
//!
//! [`crate::http::forwarded`] reads it from the request's headers; an application gets it with the
//! request ([`crate::service::ServiceRequest`]).

use std::net::{IpAddr, SocketAddr};

use crate::socket::Peer;

/// The scheme the client used to reach the proxy (`wsgi.url_scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A client address that a proxy reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardedFor {
    pub ip: IpAddr,
    /// The client's port, when the proxy gave one (`Forwarded: for="[2001:db8::1]:4711"`).
    pub port: Option<u16>,
}

/// What a trusted proxy said about a request's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forwarded {
    /// The client's address, when the headers name one.
    pub client: Option<ForwardedFor>,
    /// How the client reached the proxy, when the headers say so.
    pub scheme: Option<Scheme>,
}

impl Forwarded {
    /// The client as the logs name it: the forwarded address (with the peer's port when the proxy
    /// gave none), else the connection's peer.
    pub fn client_peer(&self, peer: Peer) -> Peer {
        match self.client {
            Some(client) => {
                let peer_port = match peer {
                    Peer::Tcp(addr) => addr.port(),
                    Peer::Unix => 0,
                };
                Peer::Tcp(SocketAddr::new(client.ip, client.port.unwrap_or(peer_port)))
            }
            None => peer,
        }
    }
}
