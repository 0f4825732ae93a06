//! Which peers may speak for their clients (`--forwarded-allow-ips`).
//!
//! A proxy in front of tern knows the real client and says so, in a PROXY protocol header
//! ([`crate::proxy_protocol`]) or in `X-Forwarded-For` / `Forwarded` headers
//! ([`crate::http::forwarded`]). Anyone can write those, so they count only when the connection
//! comes from an address on this list (the rule of gunicorn's and uvicorn's option of the same
//! name). A Unix-domain peer is always trusted, as gunicorn does: only processes that may open
//! the socket file can connect, and a proxy on the same machine is what uses one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::socket::Peer;

/// The default list: the proxy runs on the same machine (gunicorn's and uvicorn's default).
pub const DEFAULT_FORWARDED_ALLOW_IPS: &str = "127.0.0.1,::1";

/// The addresses and networks whose forwarding headers are believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    /// `*`: every peer is trusted.
    everyone: bool,
    /// Single addresses are stored as /32 or /128 networks.
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of IP addresses and CIDR networks (`10.0.0.0/8`,
    /// `2001:db8::/32`), or `*` for everyone. Empty entries are skipped, so `""` trusts no TCP
    /// peer.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut trusted = TrustedProxies {
            everyone: false,
            networks: Vec::new(),
        };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                trusted.everyone = true;
            } else if let Ok(network) = entry.parse::<IpNet>() {
                trusted.networks.push(canonical_network(network.trunc()));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                trusted.networks.push(IpNet::from(ip.to_canonical()));
            } else {
                return Err(format!(
                    "--forwarded-allow-ips: '{entry}' is not an IP address or network \
                     (examples: 10.0.0.1, 10.0.0.0/8, ::1, *)"
                ));
            }
        }
        Ok(trusted)
    }

    /// Whether `peer` may speak for its clients.
    pub fn trusts_peer(&self, peer: Peer) -> bool {
        match peer {
            Peer::Tcp(addr) => self.trusts(addr.ip()),
            Peer::Unix => true,
        }
    }

    /// Whether the address is on the list (an IPv4 address seen as `::ffff:a.b.c.d` on a
    /// dual-stack socket counts as `a.b.c.d`).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        if self.everyone {
            return true;
        }
        let ip = ip.to_canonical();
        self.networks.iter().any(|network| network.contains(&ip))
    }
}

impl Default for TrustedProxies {
    fn default() -> Self {
        // What DEFAULT_FORWARDED_ALLOW_IPS says (a test checks that they agree).
        TrustedProxies {
            everyone: false,
            networks: vec![
                IpNet::from(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ],
        }
    }
}

/// `::ffff:10.0.0.0/104` is written `10.0.0.0/8` here, so that it matches what
/// [`IpAddr::to_canonical`] makes of the peers.
fn canonical_network(network: IpNet) -> IpNet {
    match network {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(network),
            None => network,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_default_trusts_loopback_only() {
        let trusted = TrustedProxies::default();
        assert!(trusted.trusts(ip("127.0.0.1")));
        assert!(trusted.trusts(ip("::1")));
        assert!(trusted.trusts(ip("::ffff:127.0.0.1")));
        assert!(!trusted.trusts(ip("127.0.0.2")));
        assert!(!trusted.trusts(ip("10.0.0.1")));
        assert_eq!(
            TrustedProxies::parse(DEFAULT_FORWARDED_ALLOW_IPS).unwrap(),
            trusted
        );
    }

    #[test]
    fn networks_and_addresses() {
        let trusted = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,2001:db8::/32").unwrap();
        assert!(trusted.trusts(ip("10.200.3.4")));
        assert!(trusted.trusts(ip("192.168.1.7")));
        assert!(!trusted.trusts(ip("192.168.1.8")));
        assert!(trusted.trusts(ip("2001:db8::1")));
        assert!(!trusted.trusts(ip("2001:db9::1")));
        assert!(!trusted.trusts(ip("127.0.0.1")));
    }

    #[test]
    fn host_bits_in_a_network_are_ignored() {
        let trusted = TrustedProxies::parse("10.1.2.3/16").unwrap();
        assert!(trusted.trusts(ip("10.1.99.99")));
    }

    #[test]
    fn mapped_networks_match_ipv4_peers() {
        let trusted = TrustedProxies::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(trusted.trusts(ip("10.9.9.9")));
    }

    #[test]
    fn star_trusts_everyone() {
        let trusted = TrustedProxies::parse("*").unwrap();
        assert!(trusted.trusts(ip("203.0.113.9")));
    }

    #[test]
    fn an_empty_list_trusts_only_unix_peers() {
        let trusted = TrustedProxies::parse("").unwrap();
        assert!(!trusted.trusts(ip("127.0.0.1")));
        assert!(trusted.trusts_peer(Peer::Unix));
    }

    #[test]
    fn bad_entries_are_refused_with_the_flag_named() {
        let error = TrustedProxies::parse("10.0.0.1,proxy.local").unwrap_err();
        assert!(error.contains("--forwarded-allow-ips"), "{error}");
        assert!(error.contains("proxy.local"), "{error}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
