//! The client a trusted proxy names in its request headers: `X-Forwarded-For` with
//! `X-Forwarded-Proto` (the pair nginx, HAProxy, Caddy, Traefik and cloud load balancers send),
//! or the standard `Forwarded` (RFC 7239).
//!
//! The headers count only when the connection's peer is trusted ([`TrustedProxies`]). The client
//! is then found as uvicorn finds it: every proxy appends the address it received the request
//! from, so reading the list from the right, past the proxies we trust, the first address we do
//! not trust is the client; a client can write anything at the left of the list, never at the
//! right of what our proxies appended. If every address is trusted, the left-most is the client.
//! Where the client should be, an entry that is no address (`unknown`, an obfuscated `_hidden`
//! identifier, garbage) means the proxy hides the client: the peer's address stays.
//!
//! When both kinds arrive, `X-Forwarded-*` wins and `Forwarded` is ignored: that pair is what
//! gunicorn and uvicorn read, and most proxies set only it and pass a client's own `Forwarded`
//! header through untouched, so believing `Forwarded` there would let a client choose its address.
//! A proxy that sends only `Forwarded` is understood.
//!
//! Nothing here allocates: values are read where they lie in the request head. A malformed value
//! changes nothing; the caller logs it at debug level.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::http::grammar::{quoted_string_len, token_len};
use crate::message::forwarded::{Forwarded, ForwardedFor, Scheme};
use crate::message::request::RequestHead;
use crate::socket::Peer;
use crate::trusted_proxies::TrustedProxies;

/// The longest `for=` node read out of a quoted-string with escapes, in bytes: an IPv6 address
/// in brackets with a port is at most 47 bytes (`[` 39 `]` `:` 5); longer is no address.
const ESCAPED_NODE_MAX: usize = 64;

/// What the request's forwarding headers say, or None when there are none, when `peer` is not
/// trusted, or when they name neither a client nor a scheme. Cheap when the head has no such
/// header: the parser noted their presence.
pub fn resolve(head: &RequestHead, peer: Peer, trusted: &TrustedProxies) -> Option<Forwarded> {
    if !head.proxy_headers || !trusted.trusts_peer(peer) {
        return None;
    }
    let mut x_forwarded_for = Chain::<()>::default();
    let mut x_forwarded_proto = ProtoField::Absent;
    let mut forwarded = Chain::<Option<Scheme>>::default();
    let mut forwarded_error: Option<&'static str> = None;
    for (name, value) in head.headers() {
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            x_forwarded_for.seen = true;
            for entry in value.split(|&b| b == b',') {
                if let Some(hop) = x_forwarded_for_entry(entry) {
                    x_forwarded_for.push(hop, (), trusted);
                }
            }
        } else if name.eq_ignore_ascii_case("x-forwarded-proto") {
            x_forwarded_proto = x_forwarded_proto.and(value);
        } else if name.eq_ignore_ascii_case("forwarded") {
            forwarded.seen = true;
            if forwarded_error.is_none() {
                let parsed = forwarded_elements(value, |element| {
                    forwarded.push(element.hop, element.scheme, trusted)
                });
                forwarded_error = parsed.err();
            }
        }
    }
    let result = if x_forwarded_for.seen || x_forwarded_proto != ProtoField::Absent {
        if x_forwarded_proto == ProtoField::Invalid {
            tracing::debug!("ignored X-Forwarded-Proto from {peer}: not one value, http or https");
        }
        let client = x_forwarded_for.client();
        if x_forwarded_for.seen && client.is_none() {
            tracing::debug!("X-Forwarded-For from {peer} names no client address; kept the peer's");
        }
        Forwarded {
            client,
            scheme: x_forwarded_proto.scheme(),
        }
    } else if let Some(error) = forwarded_error {
        tracing::debug!("ignored the Forwarded header from {peer}: {error}");
        return None;
    } else if forwarded.seen {
        let (client, scheme) = forwarded
            .pick()
            .map_or((None, None), |(hop, scheme)| match hop {
                Hop::Address(client) => (Some(client), scheme),
                Hop::Hidden => (None, scheme),
            });
        if client.is_none() {
            tracing::debug!("Forwarded from {peer} names no client address; kept the peer's");
        }
        Forwarded { client, scheme }
    } else {
        return None;
    };
    (result != Forwarded::default()).then_some(result)
}

/// One entry of a forwarding list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Address(ForwardedFor),
    /// `unknown`, an obfuscated identifier, or something that is no address.
    Hidden,
}

/// Finds the client in a list of hops read left to right: the right-most hop that is not a
/// trusted address, else (all trusted) the left-most. `T` travels with each hop (the `proto=`
/// of a `Forwarded` element).
struct Chain<T> {
    /// The header was present (even if empty).
    seen: bool,
    first: Option<(Hop, T)>,
    /// The last hop so far that is not a trusted address.
    last_untrusted: Option<(Hop, T)>,
}

impl<T> Default for Chain<T> {
    fn default() -> Self {
        Chain {
            seen: false,
            first: None,
            last_untrusted: None,
        }
    }
}

impl<T: Copy> Chain<T> {
    fn push(&mut self, hop: Hop, extra: T, trusted: &TrustedProxies) {
        if self.first.is_none() {
            self.first = Some((hop, extra));
        }
        let is_trusted = matches!(hop, Hop::Address(address) if trusted.trusts(address.ip));
        if !is_trusted {
            self.last_untrusted = Some((hop, extra));
        }
    }

    fn pick(&self) -> Option<(Hop, T)> {
        self.last_untrusted.or(self.first)
    }

    fn client(&self) -> Option<ForwardedFor> {
        match self.pick()? {
            (Hop::Address(client), _) => Some(client),
            (Hop::Hidden, _) => None,
        }
    }
}

/// The `X-Forwarded-Proto` fields seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProtoField {
    Absent,
    One(Scheme),
    /// Repeated, a list, or neither `http` nor `https` (as uvicorn, such a value is ignored).
    Invalid,
}

impl ProtoField {
    fn and(self, value: &[u8]) -> ProtoField {
        match (self, scheme_of(value.trim_ascii())) {
            (ProtoField::Absent, Some(scheme)) => ProtoField::One(scheme),
            _ => ProtoField::Invalid,
        }
    }

    fn scheme(self) -> Option<Scheme> {
        match self {
            ProtoField::One(scheme) => Some(scheme),
            _ => None,
        }
    }
}

/// `http` or `https`, in any case (URI schemes are case-insensitive, RFC 3986 §3.1).
fn scheme_of(value: &[u8]) -> Option<Scheme> {
    if value.eq_ignore_ascii_case(b"http") {
        Some(Scheme::Http)
    } else if value.eq_ignore_ascii_case(b"https") {
        Some(Scheme::Https)
    } else {
        None
    }
}

/// One comma-separated entry of `X-Forwarded-For`: an address, optionally with a port
/// (`192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`). None for an empty
/// entry, which lists may have (RFC 9110 §5.6.1.2).
fn x_forwarded_for_entry(entry: &[u8]) -> Option<Hop> {
    let entry = entry.trim_ascii();
    if entry.is_empty() {
        return None;
    }
    let Ok(text) = std::str::from_utf8(entry) else {
        return Some(Hop::Hidden);
    };
    let address = if let Ok(ip) = text.parse::<IpAddr>() {
        ForwardedFor { ip, port: None }
    } else if let Ok(addr) = text.parse::<SocketAddr>() {
        ForwardedFor {
            ip: addr.ip(),
            port: Some(addr.port()),
        }
    } else if let Some(ip) = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inside| inside.parse::<Ipv6Addr>().ok())
    {
        ForwardedFor {
            ip: IpAddr::V6(ip),
            port: None,
        }
    } else {
        return Some(Hop::Hidden);
    };
    Some(Hop::Address(address))
}

/// What one `forwarded-element` says about its hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    /// `for=`; an element without one hides its client.
    hop: Hop,
    /// `proto=`, when it is `http` or `https`.
    scheme: Option<Scheme>,
}

/// Reads one `Forwarded` field value (RFC 7239 §4) and hands each element to `element`, left to
/// right. The grammar is followed strictly (a parameter value is a token or a quoted-string, so
/// an address with a port must be quoted), except that whitespace is allowed around `;` as well
/// as around `,`. A syntax error or a repeated parameter (§4: "MUST NOT occur more than once per
/// forwarded-element") stops the reading: the header as a whole is then to be ignored.
fn forwarded_elements(value: &[u8], mut element: impl FnMut(Element)) -> Result<(), &'static str> {
    let mut rest = value;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(after) = rest.strip_prefix(b",") {
            // An empty list element (RFC 9110 §5.6.1.2).
            rest = after;
            continue;
        }
        let mut found = Element {
            hop: Hop::Hidden,
            scheme: None,
        };
        let mut seen_for = false;
        let mut seen_proto = false;
        // forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
        loop {
            rest = rest.trim_ascii_start();
            if !rest.is_empty() && rest[0] != b';' && rest[0] != b',' {
                let (name, value, after) = forwarded_pair(rest)?;
                rest = after;
                if name.eq_ignore_ascii_case(b"for") {
                    if std::mem::replace(&mut seen_for, true) {
                        return Err("a repeated for= parameter");
                    }
                    found.hop = node(value);
                } else if name.eq_ignore_ascii_case(b"proto") {
                    if std::mem::replace(&mut seen_proto, true) {
                        return Err("a repeated proto= parameter");
                    }
                    found.scheme = value.unquoted_scheme();
                }
                // by=, host= and extensions (§5.5) say nothing about the client.
                rest = rest.trim_ascii_start();
            }
            match rest.first() {
                Some(b';') => rest = &rest[1..],
                Some(b',') | None => break,
                Some(_) => return Err("a parameter not followed by ';' or ','"),
            }
        }
        element(found);
    }
}

/// A parameter value as written: a token, or a quoted-string with its quotes.
#[derive(Debug, Clone, Copy)]
struct Value<'a> {
    raw: &'a [u8],
    quoted: bool,
}

impl Value<'_> {
    fn unquoted_scheme(&self) -> Option<Scheme> {
        if self.quoted {
            scheme_of(self.raw.get(1..self.raw.len() - 1)?)
        } else {
            scheme_of(self.raw)
        }
    }
}

/// `forwarded-pair = token "=" value` at the start of `bytes`; returns the name, the value and
/// what follows.
fn forwarded_pair(bytes: &[u8]) -> Result<(&[u8], Value<'_>, &[u8]), &'static str> {
    let name_len = token_len(bytes);
    if name_len == 0 {
        return Err("a parameter without a name");
    }
    let (name, rest) = bytes.split_at(name_len);
    let rest = rest.strip_prefix(b"=").ok_or("a parameter without '='")?;
    let (value_len, quoted) = if rest.first() == Some(&b'"') {
        (
            quoted_string_len(rest).ok_or("an unterminated quoted-string")?,
            true,
        )
    } else {
        (token_len(rest), false)
    };
    if value_len == 0 {
        return Err("a parameter without a value");
    }
    let (raw, rest) = rest.split_at(value_len);
    Ok((name, Value { raw, quoted }, rest))
}

/// A `for=` node (RFC 7239 §6): `IPv4`, `"[IPv6]"`, either with `:port`, `unknown`, or an
/// obfuscated `_identifier` (with an obfuscated `:_port` ignored).
fn node(value: Value<'_>) -> Hop {
    let mut unescaped = [0u8; ESCAPED_NODE_MAX];
    let text: &[u8] = if value.quoted {
        let inside = &value.raw[1..value.raw.len() - 1];
        if inside.contains(&b'\\') {
            match unescape(inside, &mut unescaped) {
                Some(len) => &unescaped[..len],
                None => return Hop::Hidden,
            }
        } else {
            inside
        }
    } else {
        value.raw
    };
    node_address(text).map_or(Hop::Hidden, Hop::Address)
}

/// Undoes quoted-pairs (`\x` → `x`) into `out`; None if the result does not fit.
fn unescape(inside: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut bytes = inside.iter();
    while let Some(&b) = bytes.next() {
        let b = if b == b'\\' { *bytes.next()? } else { b };
        *out.get_mut(len)? = b;
        len += 1;
    }
    Some(len)
}

/// The address in a node's text, if it names one (§6: `nodename [ ":" node-port ]`).
fn node_address(text: &[u8]) -> Option<ForwardedFor> {
    let text = std::str::from_utf8(text).ok()?;
    // §6.1: an IPv6 address is always in brackets.
    let (ip, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        (IpAddr::V6(inside.parse::<Ipv6Addr>().ok()?), after)
    } else {
        let end = text.find(':').unwrap_or(text.len());
        // `unknown` (§6.2) and obfuscated names (§6.3) fail here: they are no address.
        (
            IpAddr::V4(text[..end].parse::<Ipv4Addr>().ok()?),
            &text[end..],
        )
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => None,
        None => return None,
        // An obfuscated port (§6.3) hides only the port.
        Some(obfuscated) if obfuscated.starts_with('_') => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some(ForwardedFor { ip, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn address(text: &str, port: Option<u16>) -> Hop {
        Hop::Address(ForwardedFor {
            ip: text.parse().unwrap(),
            port,
        })
    }

    /// The client `X-Forwarded-For` names, with `list` trusted.
    fn xff_client(values: &[&str], list: &str) -> Option<ForwardedFor> {
        let trusted = trusted(list);
        let mut chain = Chain::<()>::default();
        for value in values {
            for entry in value.as_bytes().split(|&b| b == b',') {
                if let Some(hop) = x_forwarded_for_entry(entry) {
                    chain.push(hop, (), &trusted);
                }
            }
        }
        chain.client()
    }

    /// The elements of one `Forwarded` value.
    fn elements(value: &str) -> Result<Vec<Element>, &'static str> {
        let mut found = Vec::new();
        forwarded_elements(value.as_bytes(), |element| found.push(element))?;
        Ok(found)
    }

    /// The client and scheme `Forwarded` names, with `list` trusted.
    fn forwarded_client(value: &str, list: &str) -> Option<(Hop, Option<Scheme>)> {
        let trusted = trusted(list);
        let mut chain = Chain::<Option<Scheme>>::default();
        forwarded_elements(value.as_bytes(), |e| chain.push(e.hop, e.scheme, &trusted)).unwrap();
        chain.pick()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    // --- X-Forwarded-For ---

    #[test]
    fn xff_the_right_most_untrusted_address_is_the_client() {
        let client = xff_client(&["203.0.113.7, 198.51.100.2, 10.0.0.5"], "10.0.0.0/8");
        assert_eq!(client.unwrap().ip, ip("198.51.100.2"));
    }

    #[test]
    fn xff_a_spoofed_left_part_is_not_believed() {
        // The client wrote "1.2.3.4"; our proxy appended the address it saw.
        let client = xff_client(&["1.2.3.4, 203.0.113.7"], "127.0.0.1");
        assert_eq!(client.unwrap().ip, ip("203.0.113.7"));
    }

    #[test]
    fn xff_all_trusted_gives_the_left_most() {
        let client = xff_client(&["10.0.0.1, 10.0.0.2"], "10.0.0.0/8");
        assert_eq!(client.unwrap().ip, ip("10.0.0.1"));
    }

    #[test]
    fn xff_repeated_fields_are_one_list_in_order() {
        // RFC 9110 §5.3: the lines combine in order, so the second line is further right.
        let client = xff_client(&["203.0.113.7", "198.51.100.2, 10.0.0.5"], "10.0.0.0/8");
        assert_eq!(client.unwrap().ip, ip("198.51.100.2"));
    }

    #[test]
    fn xff_entries_with_ports_and_ipv6() {
        assert_eq!(
            x_forwarded_for_entry(b" 192.0.2.1:4711 "),
            Some(address("192.0.2.1", Some(4711)))
        );
        assert_eq!(
            x_forwarded_for_entry(b"2001:db8::1"),
            Some(address("2001:db8::1", None))
        );
        assert_eq!(
            x_forwarded_for_entry(b"[2001:db8::1]"),
            Some(address("2001:db8::1", None))
        );
        assert_eq!(
            x_forwarded_for_entry(b"[2001:db8::1]:80"),
            Some(address("2001:db8::1", Some(80)))
        );
        assert_eq!(x_forwarded_for_entry(b"  "), None);
    }

    #[test]
    fn xff_garbage_where_the_client_is_hides_it() {
        assert_eq!(x_forwarded_for_entry(b"unknown"), Some(Hop::Hidden));
        assert_eq!(x_forwarded_for_entry(b"999.1.1.1"), Some(Hop::Hidden));
        assert_eq!(x_forwarded_for_entry(b"\xff\xfe"), Some(Hop::Hidden));
        assert_eq!(xff_client(&["203.0.113.7, garbage"], "127.0.0.1"), None);
        // Garbage left of the client does not matter.
        let client = xff_client(&["garbage, 203.0.113.7"], "127.0.0.1").unwrap();
        assert_eq!(client.ip, ip("203.0.113.7"));
    }

    #[test]
    fn xff_empty_entries_are_skipped() {
        let client = xff_client(&[",203.0.113.7, ,"], "127.0.0.1");
        assert_eq!(client.unwrap().ip, ip("203.0.113.7"));
        assert_eq!(xff_client(&[""], "127.0.0.1"), None);
    }

    // --- X-Forwarded-Proto ---

    #[test]
    fn xfp_one_value_http_or_https() {
        assert_eq!(
            ProtoField::Absent.and(b" HTTPS ").scheme(),
            Some(Scheme::Https)
        );
        assert_eq!(ProtoField::Absent.and(b"http").scheme(), Some(Scheme::Http));
        assert_eq!(ProtoField::Absent.and(b"ftp"), ProtoField::Invalid);
        assert_eq!(ProtoField::Absent.and(b"https, http"), ProtoField::Invalid);
        let twice = ProtoField::Absent.and(b"https").and(b"https");
        assert_eq!(twice, ProtoField::Invalid);
    }

    // --- Forwarded (RFC 7239) ---

    #[test]
    fn forwarded_section_4_examples_parse() {
        // The examples of RFC 7239 §4 and §7.1.
        for value in [
            "for=\"_gazonk\"",
            "For=\"[2001:db8:cafe::17]:4711\"",
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            "for=192.0.2.43, for=198.51.100.17",
            "for=192.0.2.43,for=\"[2001:db8:cafe::17]\",for=unknown",
        ] {
            assert!(elements(value).is_ok(), "{value}");
        }
    }

    #[test]
    fn forwarded_for_ipv4_with_proto() {
        let found = elements("for=192.0.2.60;proto=https;by=203.0.113.43").unwrap();
        assert_eq!(
            found,
            vec![Element {
                hop: address("192.0.2.60", None),
                scheme: Some(Scheme::Https)
            }]
        );
    }

    #[test]
    fn forwarded_quoted_ipv6_with_port() {
        // §6.1: an IPv6 address is in brackets, and with them (or a port) must be quoted.
        let found = elements("for=\"[2001:db8::1]:4711\"").unwrap();
        assert_eq!(found[0].hop, address("2001:db8::1", Some(4711)));
    }

    #[test]
    fn forwarded_quoted_ipv4_with_port() {
        let found = elements("for=\"192.0.2.43:47011\"").unwrap();
        assert_eq!(found[0].hop, address("192.0.2.43", Some(47011)));
    }

    #[test]
    fn forwarded_names_and_values_are_case_insensitive() {
        let found = elements("FOR=192.0.2.1;Proto=HTTPS").unwrap();
        assert_eq!(found[0].hop, address("192.0.2.1", None));
        assert_eq!(found[0].scheme, Some(Scheme::Https));
    }

    #[test]
    fn forwarded_unknown_and_obfuscated_identifiers_hide_the_client() {
        // §6.2 "unknown", §6.3 obfuscated names.
        assert_eq!(elements("for=unknown").unwrap()[0].hop, Hop::Hidden);
        assert_eq!(elements("for=_hidden").unwrap()[0].hop, Hop::Hidden);
        assert_eq!(elements("for=\"_SEVKISEK\"").unwrap()[0].hop, Hop::Hidden);
        // An obfuscated port hides only the port.
        let found = elements("for=\"192.0.2.1:_abc\"").unwrap();
        assert_eq!(found[0].hop, address("192.0.2.1", None));
        // Where the client should be, a hidden one keeps the peer's address...
        assert_eq!(
            forwarded_client("for=203.0.113.7, for=_hidden", "127.0.0.1"),
            Some((Hop::Hidden, None))
        );
        // ...and one left of the client does not matter.
        assert_eq!(
            forwarded_client("for=_hidden, for=203.0.113.7", "127.0.0.1"),
            Some((address("203.0.113.7", None), None))
        );
    }

    #[test]
    fn forwarded_an_element_without_for_hides_the_client_but_keeps_its_proto() {
        assert_eq!(
            forwarded_client("proto=https;host=example.com", "127.0.0.1"),
            Some((Hop::Hidden, Some(Scheme::Https)))
        );
    }

    #[test]
    fn forwarded_the_right_most_untrusted_element_is_the_client() {
        let value = "for=198.51.100.1;proto=http, for=203.0.113.7;proto=https, for=10.0.0.2";
        assert_eq!(
            forwarded_client(value, "10.0.0.0/8"),
            Some((address("203.0.113.7", None), Some(Scheme::Https)))
        );
        // All trusted: the left-most.
        assert_eq!(
            forwarded_client("for=10.0.0.1;proto=https, for=10.0.0.2", "10.0.0.0/8"),
            Some((address("10.0.0.1", None), Some(Scheme::Https)))
        );
    }

    #[test]
    fn forwarded_escapes_in_quoted_strings() {
        let found = elements(r#"for="192.0.2.\43""#).unwrap();
        assert_eq!(found[0].hop, address("192.0.2.43", None));
        let long = format!("for=\"\\{}\"", "1".repeat(100));
        assert_eq!(elements(&long).unwrap()[0].hop, Hop::Hidden);
    }

    #[test]
    fn forwarded_empty_elements_and_pairs_are_allowed() {
        let found = elements(" , for=192.0.2.1;;proto=http ,").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].hop, address("192.0.2.1", None));
    }

    #[test]
    fn forwarded_syntax_errors_are_reported() {
        for bad in [
            // ':' is no token character: an address with a port must be quoted (§6).
            "for=192.0.2.43:47011",
            // IPv6 unquoted and unbracketed.
            "for=2001:db8::1",
            "for",
            "for=",
            "=192.0.2.1",
            "for=\"192.0.2.1",
            "for=192.0.2.1 proto=http",
            // §4: a parameter at most once per element.
            "for=192.0.2.1;for=192.0.2.2",
            "proto=http;proto=https",
        ] {
            assert!(elements(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_bad_nodes_are_no_address() {
        for node_text in [
            "\"[2001:db8::1\"",
            "\"2001:db8::1\"",
            "\"[192.0.2.1]\"",
            "\"192.0.2.1:\"",
            "\"192.0.2.1:123456\"",
            "\"192.0.2.1:70000\"",
            "\"[2001:db8::1]x\"",
            "example.com",
        ] {
            let found = elements(&format!("for={node_text}")).unwrap();
            assert_eq!(found[0].hop, Hop::Hidden, "{node_text}");
        }
    }

    #[test]
    fn forwarded_other_protos_are_ignored() {
        assert_eq!(elements("for=192.0.2.1;proto=ftp").unwrap()[0].scheme, None);
        assert_eq!(
            elements("proto=\"https\"").unwrap()[0].scheme,
            Some(Scheme::Https)
        );
    }

    // --- resolve: trust, precedence, the parser's note ---

    fn head(fields: &str) -> RequestHead {
        let text = format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
        let mut buf = bytes::BytesMut::from(text.as_bytes());
        crate::http::request::parse(&mut buf, &Default::default())
            .unwrap()
            .unwrap()
    }

    const PROXY: &str = "127.0.0.1:40000";

    fn from_proxy(fields: &str) -> Option<Forwarded> {
        let peer = Peer::Tcp(PROXY.parse().unwrap());
        resolve(&head(fields), peer, &TrustedProxies::default())
    }

    #[test]
    fn resolve_reads_x_forwarded_for_and_proto_from_a_trusted_peer() {
        let found = from_proxy("X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n");
        assert_eq!(
            found,
            Some(Forwarded {
                client: Some(ForwardedFor {
                    ip: ip("203.0.113.7"),
                    port: None
                }),
                scheme: Some(Scheme::Https),
            })
        );
    }

    #[test]
    fn resolve_ignores_an_untrusted_peer() {
        let peer = Peer::Tcp("192.0.2.9:40000".parse().unwrap());
        let head = head("X-Forwarded-For: 203.0.113.7\r\n");
        assert_eq!(resolve(&head, peer, &TrustedProxies::default()), None);
    }

    #[test]
    fn resolve_trusts_a_unix_peer() {
        let head = head("X-Forwarded-For: 203.0.113.7\r\n");
        let found = resolve(&head, Peer::Unix, &TrustedProxies::parse("").unwrap());
        assert_eq!(found.unwrap().client.unwrap().ip, ip("203.0.113.7"));
    }

    #[test]
    fn resolve_without_forwarding_headers_is_none() {
        assert!(!head("Accept: */*\r\n").proxy_headers);
        assert_eq!(from_proxy("Accept: */*\r\n"), None);
    }

    #[test]
    fn resolve_reads_forwarded_when_alone() {
        let found = from_proxy("Forwarded: for=\"[2001:db8::1]:4711\";proto=https\r\n").unwrap();
        assert_eq!(
            found.client,
            Some(ForwardedFor {
                ip: ip("2001:db8::1"),
                port: Some(4711)
            })
        );
        assert_eq!(found.scheme, Some(Scheme::Https));
    }

    #[test]
    fn resolve_prefers_x_forwarded_over_forwarded() {
        let fields = "Forwarded: for=198.51.100.1;proto=https\r\nX-Forwarded-For: 203.0.113.7\r\n";
        let found = from_proxy(fields).unwrap();
        assert_eq!(found.client.unwrap().ip, ip("203.0.113.7"));
        // Forwarded is ignored whole, its proto too.
        assert_eq!(found.scheme, None);
        let found = from_proxy("Forwarded: for=198.51.100.1\r\nX-Forwarded-Proto: https\r\n");
        assert_eq!(found.unwrap().client, None);
    }

    #[test]
    fn resolve_ignores_a_malformed_forwarded_header_whole() {
        let fields = "Forwarded: for=198.51.100.1\r\nForwarded: for=2001:db8::1\r\n";
        assert_eq!(from_proxy(fields), None);
    }

    #[test]
    fn resolve_ignores_malformed_x_forwarded_values() {
        assert_eq!(from_proxy("X-Forwarded-For: nonsense\r\n"), None);
        assert_eq!(from_proxy("X-Forwarded-Proto: gopher\r\n"), None);
    }

    // --- the client as logs show it ---

    #[test]
    fn client_peer_takes_the_peer_port_when_none_is_given() {
        let peer = Peer::Tcp("127.0.0.1:5000".parse().unwrap());
        let forwarded = Forwarded {
            client: Some(ForwardedFor {
                ip: ip("203.0.113.7"),
                port: None,
            }),
            scheme: None,
        };
        assert_eq!(
            forwarded.client_peer(peer),
            Peer::Tcp("203.0.113.7:5000".parse().unwrap())
        );
        assert_eq!(Forwarded::default().client_peer(peer), peer);
    }
}
