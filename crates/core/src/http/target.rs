//! The request target (RFC 9112 §3.2) and the host a request names (RFC 9112 §3.2, RFC 3986
//! §3.2.2): which form a target has, where its path starts, and whether a host is
//! `uri-host [ ":" port ]`.
//!
//! Checked once, while the head is parsed, so nothing past the parser (the router, the static
//! files, an application's PATH_INFO and HTTP_HOST) sees a target that is not a path or a host
//! that is not a host.

use std::net::Ipv6Addr;

use crate::error::RequestError;
use crate::message::request::TargetForm;

/// Where the parts of an accepted target lie, as byte offsets into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetParts {
    pub form: TargetForm,
    /// Where the path (and query) starts: 0, or the end of an absolute-form target's authority.
    /// What follows may be empty (`http://host`), which means the path `/`.
    pub path_start: usize,
    /// The authority (`host[:port]`) of an absolute-form target, as (start, end).
    pub authority: Option<(usize, usize)>,
}

/// Schemes an absolute-form target may have: tern serves `http` (and `https` behind a proxy
/// that terminates TLS and forwards the target unchanged).
const SCHEMES: [&[u8]; 2] = [b"http://", b"https://"];

/// Sorts `target` into one of the forms `method` allows, or says why it is refused.
pub fn classify(method: &str, target: &str) -> Result<TargetParts, RequestError> {
    let bytes = target.as_bytes();
    if method == "CONNECT" {
        // RFC 9112 §3.2.3: CONNECT takes authority-form (host and port) and nothing else.
        return Err(if is_authority_form(bytes) {
            RequestError::TunnelNotSupported
        } else {
            RequestError::Malformed("CONNECT without an authority-form target")
        });
    }
    if bytes.first() == Some(&b'/') {
        let parts = TargetParts {
            form: TargetForm::Origin,
            path_start: 0,
            authority: None,
        };
        return check_path(bytes, parts);
    }
    if bytes == b"*" {
        return if method == "OPTIONS" {
            Ok(TargetParts {
                form: TargetForm::Asterisk,
                path_start: 0,
                authority: None,
            })
        } else {
            Err(RequestError::Malformed(
                "'*' as the target of a method other than OPTIONS",
            ))
        };
    }
    if let Some(scheme_len) = SCHEMES
        .iter()
        .find(|scheme| {
            bytes.len() >= scheme.len() && bytes[..scheme.len()].eq_ignore_ascii_case(scheme)
        })
        .map(|scheme| scheme.len())
    {
        // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'.
        let authority_end = bytes[scheme_len..]
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .map_or(bytes.len(), |offset| scheme_len + offset);
        let authority = &bytes[scheme_len..authority_end];
        // RFC 9110 §4.2.4: userinfo in an http(s) URI is to be treated as an error.
        if authority.contains(&b'@') {
            return Err(RequestError::Malformed("userinfo in the request target"));
        }
        if !is_valid_host(authority) {
            return Err(RequestError::Malformed(
                "invalid host in the request target",
            ));
        }
        let parts = TargetParts {
            form: TargetForm::Absolute,
            path_start: authority_end,
            authority: Some((scheme_len, authority_end)),
        };
        return check_path(bytes, parts);
    }
    Err(if is_authority_form(bytes) {
        RequestError::Malformed("authority-form target without CONNECT")
    } else {
        RequestError::Malformed("request target is neither a path nor an absolute URI")
    })
}

/// Refuses a path that decodes to a NUL byte: no file name or application path may hold one.
/// httparse has already refused raw control bytes, so `%00` is the only way to spell it.
fn check_path(target: &[u8], parts: TargetParts) -> Result<TargetParts, RequestError> {
    let rest = &target[parts.path_start..];
    let path_end = rest
        .iter()
        .position(|&b| matches!(b, b'?' | b'#'))
        .unwrap_or(rest.len());
    let path = &rest[..path_end];
    let encoded_nul = memchr::memchr_iter(b'%', path).any(|at| path[at + 1..].starts_with(b"00"));
    if encoded_nul {
        return Err(RequestError::Malformed("NUL byte (%00) in the path"));
    }
    Ok(parts)
}

/// `uri-host ":" port` with a port present: what authority-form looks like.
fn is_authority_form(target: &[u8]) -> bool {
    let has_port = match target.iter().rposition(|&b| b == b':') {
        Some(colon) => !target[colon..].contains(&b']') && colon + 1 < target.len(),
        None => false,
    };
    has_port && is_valid_host(target)
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 9112 §3.2 for Host, RFC 3986 §3.2.2–§3.2.3):
/// a non-empty reg-name or IPv4 address, or an IPv6 literal in brackets, then optional digits.
/// An empty host is refused: an http URI must not have one (RFC 9110 §4.2.1).
pub fn is_valid_host(value: &[u8]) -> bool {
    let (host_valid, port) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(close) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let address = std::str::from_utf8(&literal[..close])
            .ok()
            .and_then(|text| text.parse::<Ipv6Addr>().ok());
        match &literal[close + 1..] {
            [] => (address.is_some(), &[][..]),
            [b':', port @ ..] => (address.is_some(), port),
            _ => return false,
        }
    } else {
        // A reg-name has no ':', so the first one starts the port.
        let (name, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon + 1..]),
            None => (value, &[][..]),
        };
        (!name.is_empty() && is_reg_name(name), port)
    };
    host_valid && port.iter().all(u8::is_ascii_digit)
}

/// reg-name = *( unreserved / pct-encoded / sub-delims ) (RFC 3986 §3.2.2). Dotted IPv4
/// addresses are made of the same characters.
fn is_reg_name(name: &[u8]) -> bool {
    let mut rest = name;
    while let Some((&first, after)) = rest.split_first() {
        match first {
            b'%' => match after {
                [high, low, tail @ ..] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    rest = tail;
                }
                _ => return false,
            },
            b if b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~')
                || matches!(
                    b,
                    b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
                ) =>
            {
                rest = after;
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(method: &str, target: &str) -> Result<TargetForm, u16> {
        classify(method, target)
            .map(|parts| parts.form)
            .map_err(|error| error.status())
    }

    #[test]
    fn origin_form_is_a_path() {
        assert_eq!(form("GET", "/"), Ok(TargetForm::Origin));
        assert_eq!(form("GET", "/a/b?c=d"), Ok(TargetForm::Origin));
        assert_eq!(form("POST", "//x"), Ok(TargetForm::Origin));
    }

    #[test]
    fn anything_that_is_not_a_path_or_a_uri_is_refused() {
        // RFC 9112 §3.2: a bare word would otherwise reach an application as its path.
        for target in ["admin", "a.txt", "admin/x", "?x", "#x", ".", "..", "%2F"] {
            assert_eq!(form("GET", target), Err(400), "{target}");
        }
    }

    #[test]
    fn asterisk_form_is_only_for_options() {
        // RFC 9112 §3.2.4.
        assert_eq!(form("OPTIONS", "*"), Ok(TargetForm::Asterisk));
        assert_eq!(form("GET", "*"), Err(400));
        assert_eq!(form("OPTIONS", "*/x"), Err(400));
        assert_eq!(form("OPTIONS", "**"), Err(400));
    }

    #[test]
    fn authority_form_is_only_for_connect_which_is_not_supported() {
        // RFC 9112 §3.2.3.
        assert_eq!(form("CONNECT", "example.com:443"), Err(501));
        assert_eq!(form("CONNECT", "[::1]:443"), Err(501));
        assert_eq!(form("CONNECT", "example.com"), Err(400));
        assert_eq!(form("CONNECT", "/"), Err(400));
        assert_eq!(form("CONNECT", "http://example.com/"), Err(400));
        assert_eq!(form("GET", "example.com:443"), Err(400));
    }

    #[test]
    fn absolute_form_carries_a_valid_host_and_no_userinfo() {
        // RFC 9112 §3.2.2, RFC 9110 §4.2.1 and §4.2.4.
        let parts = classify("GET", "http://example.com:8080/a?b").unwrap();
        assert_eq!(parts.form, TargetForm::Absolute);
        assert_eq!(parts.authority, Some((7, 23)));
        assert_eq!(parts.path_start, 23);
        let parts = classify("GET", "HTTPS://h?q").unwrap();
        assert_eq!((parts.authority, parts.path_start), (Some((8, 9)), 9));
        for target in [
            "http://",
            "http:///a",
            "http://user@h/",
            "http://user:pw@h/",
            "http://[::1/",
            "http://a b/",
            "http://h:x/",
            "ftp://h/",
            "http:/h/",
            "mailto:x@y",
        ] {
            assert_eq!(form("GET", target), Err(400), "{target}");
        }
    }

    #[test]
    fn a_decoded_nul_in_the_path_is_refused_but_not_in_the_query() {
        assert_eq!(form("GET", "/a%00b"), Err(400));
        assert_eq!(form("GET", "/%00"), Err(400));
        assert_eq!(form("GET", "http://h/x%00"), Err(400));
        assert_eq!(form("GET", "/a?x=%00"), Ok(TargetForm::Origin));
        assert_eq!(form("GET", "/a%000"), Err(400));
        assert_eq!(form("GET", "/a%0"), Ok(TargetForm::Origin));
    }

    #[test]
    fn hosts_are_uri_host_and_an_optional_port() {
        for valid in [
            "example.com",
            "example.com:8080",
            "EXAMPLE.com:",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8000",
            "[2001:db8::ffff:1.2.3.4]",
            "xn--bcher-kva.example",
            "a%41b",
            "a_b~c-d",
            "!$&'()*+,;=",
        ] {
            assert!(is_valid_host(valid.as_bytes()), "{valid}");
        }
        for invalid in [
            "",
            ":80",
            "a b",
            "a, b",
            "evil.com/../x",
            "a\\b",
            "[::1",
            "[::1]x",
            "[::1]:8o",
            "[not-v6]",
            "[]",
            "[fe80::1%25eth0]",
            "user@x",
            "x:8o",
            "x:1:2",
            "x%4",
            "x%zz",
            "a\"b",
            "a<b>",
            "caf\u{e9}",
            "a\tb",
        ] {
            assert!(!is_valid_host(invalid.as_bytes()), "{invalid:?}");
        }
    }
}
