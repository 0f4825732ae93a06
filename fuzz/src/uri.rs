//! The host grammar (RFC 3986 §3.2.2–§3.2.3) and the request-target forms (RFC 9112 §3.2), written
//! from the RFCs rather than from tern-core's `http::target`, so the fuzz targets can check the
//! parser against them instead of against itself.

/// Whether `value` is `uri-host [ ":" port ]` (RFC 9112 §3.2 for Host; RFC 3986 §3.2.2–§3.2.3):
///
/// ```text
/// uri-host    = IP-literal / IPv4address / reg-name
/// IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
/// port        = *DIGIT
/// ```
///
/// with a non-empty host: RFC 9110 §4.2.1 makes an http URI with an empty host invalid. An
/// IPv4address is made of the characters of a reg-name, so matching reg-name covers it.
/// `future_literals` says whether IPvFuture (`[v1.x]`) counts: it is in the grammar, but tern
/// refuses it (see [`crate::strict`]).
pub fn is_host_and_port(value: &[u8], future_literals: bool) -> bool {
    let (host, port) = split_port(value);
    let host_ok = match host {
        [b'[', literal @ .., b']'] => {
            is_ipv6_address(literal) || (future_literals && is_ipv_future(literal))
        }
        _ => !host.is_empty() && is_reg_name(host),
    };
    host_ok && port.is_none_or(|port| port.iter().all(u8::is_ascii_digit))
}

/// Splits `uri-host [ ":" port ]` at the colon that starts the port, if any: the one after an
/// IP-literal's ']', else the first (a reg-name has none).
pub fn split_port(value: &[u8]) -> (&[u8], Option<&[u8]>) {
    let colon = if value.first() == Some(&b'[') {
        match value.iter().position(|&b| b == b']') {
            Some(close) if value.get(close + 1) == Some(&b':') => Some(close + 1),
            _ => None,
        }
    } else {
        value.iter().position(|&b| b == b':')
    };
    match colon {
        Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
        None => (value, None),
    }
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&b) = name.get(at) {
        if b == b'%' {
            let encoded = name.get(at + 1..at + 3);
            if !encoded.is_some_and(|pair| pair.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            at += 3;
        } else if is_unreserved(b) || is_sub_delim(b) {
            at += 1;
        } else {
            return false;
        }
    }
    true
}

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`.
fn is_sub_delim(b: u8) -> bool {
    b"!$&'()*+,;=".contains(&b)
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ipv_future(literal: &[u8]) -> bool {
    let Some(rest) = literal.strip_prefix(b"v").or(literal.strip_prefix(b"V")) else {
        return false;
    };
    let version = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    match rest[version..].split_first() {
        Some((b'.', tail)) if version > 0 && !tail.is_empty() => tail
            .iter()
            .all(|&b| is_unreserved(b) || is_sub_delim(b) || b == b':'),
        _ => false,
    }
}

/// `IPv6address` (RFC 3986 §3.2.2): eight 16-bit pieces `h16 = 1*4HEXDIG` separated by ':', the
/// last two of which may be an IPv4address; or fewer pieces with one "::" standing for one or
/// more zero pieces.
fn is_ipv6_address(text: &[u8]) -> bool {
    let halves: Vec<&[u8]> = split_on_double_colon(text);
    match halves.as_slice() {
        [all] => pieces(all, true) == Some(8),
        [left, right] => match (pieces(left, false), pieces(right, true)) {
            (Some(left), Some(right)) => left + right <= 7,
            _ => false,
        },
        _ => false,
    }
}

/// `text` cut at each "::" (more than two parts: more than one "::").
fn split_on_double_colon(text: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + 1 < text.len() {
        if &text[at..at + 2] == b"::" {
            parts.push(&text[start..at]);
            at += 2;
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

/// How many 16-bit pieces `h16 *( ":" h16 )` makes (an empty text makes none), with a last
/// IPv4address counting as two when `ipv4_last` allows one there. None if it is anything else.
fn pieces(text: &[u8], ipv4_last: bool) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let groups: Vec<&[u8]> = text.split(|&b| b == b':').collect();
    let mut count = 0;
    for (index, group) in groups.iter().enumerate() {
        let last = index + 1 == groups.len();
        if (1..=4).contains(&group.len()) && group.iter().all(u8::is_ascii_hexdigit) {
            count += 1;
        } else if last && ipv4_last && is_ipv4_address(group) {
            count += 2;
        } else {
            return None;
        }
    }
    Some(count)
}

/// `IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet`, where a dec-octet is
/// 0 to 255 without leading zeros.
fn is_ipv4_address(text: &[u8]) -> bool {
    let octets: Vec<&[u8]> = text.split(|&b| b == b'.').collect();
    octets.len() == 4
        && octets.iter().all(|octet| {
            let digits = (1..=3).contains(&octet.len()) && octet.iter().all(u8::is_ascii_digit);
            let no_leading_zero = octet.len() == 1 || octet.first() != Some(&b'0');
            digits
                && no_leading_zero
                && std::str::from_utf8(octet)
                    .ok()
                    .and_then(|text| text.parse::<u16>().ok())
                    .is_some_and(|value| value <= 255)
        })
}

/// The schemes tern accepts an absolute-form target with, as they start the target
/// (case-insensitive, RFC 3986 §3.1): `http` and `https`, with an authority.
pub const ABSOLUTE_PREFIXES: [&[u8]; 2] = [b"http://", b"https://"];

/// The authority of an absolute-form target starting with one of [`ABSOLUTE_PREFIXES`], as
/// (start, end) byte offsets: from after the "//" to the first '/', '?' or '#' (RFC 3986 §3.2).
pub fn absolute_authority(target: &[u8]) -> Option<(usize, usize)> {
    let prefix = ABSOLUTE_PREFIXES.iter().find(|prefix| {
        target
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    })?;
    let start = prefix.len();
    let end = target[start..]
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(target.len(), |offset| start + offset);
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for valid in [
            &b"h"[..],
            b"h:",
            b"h:80",
            b"1.2.3.4:8",
            b"a%20b",
            b"[::]",
            b"[::1]:443",
            b"[1:2:3:4:5:6:7:8]",
            b"[1:2:3:4:5:6:1.2.3.4]",
            b"[::1.2.3.4]",
            b"[1::]",
            b"[1:2:3:4:5:6:7::]",
            b"[::2:3:4:5:6:7:8]",
        ] {
            assert!(is_host_and_port(valid, false), "{valid:?}");
        }
        for invalid in [
            &b""[..],
            b":80",
            b"h:x",
            b"a b",
            b"[::1",
            b"[::1]x",
            b"[1:2:3:4:5:6:7:8:9]",
            b"[1:2:3:4:5:6:7]",
            b"[1::2::3]",
            b"[1:2:3:4:5:6:7:8::]",
            b"[::1.2.3.04]",
            b"[::1.2.3.256]",
            b"[1.2.3.4]",
            b"[12345::]",
            b"[1.2.3.4::]",
            b"[::1.2..4]",
            b"[:1::]",
            b"[v1.x]",
            b"h%2",
        ] {
            assert!(!is_host_and_port(invalid, false), "{invalid:?}");
        }
        assert!(is_host_and_port(b"[v1.x:y]:80", true));
        assert!(!is_host_and_port(b"[v.x]", true));
    }
}
