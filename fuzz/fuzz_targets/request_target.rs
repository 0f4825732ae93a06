//! Fuzzes the request-target and host checks (`http::target::classify` and `is_valid_host`)
//! against the RFC grammar in `tern_fuzz::uri`, in both directions: what the RFC allows is
//! accepted, what it does not is refused, with the status and parts RFC 9112 §3.2 implies.
//!
//! An input is `METHOD SP target` (no space: the method is GET). Each input is also checked as a
//! Host value whole, and split at its first space.
//!
//! One known disagreement is tolerated unless `TERN_FUZZ_STRICT=1`: tern refuses IPvFuture
//! literals (`[v1.x]`), which are in RFC 3986's host grammar.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_core::http::target::{classify, is_valid_host, TargetParts};
use tern_core::message::request::TargetForm;
use tern_fuzz::strict;
use tern_fuzz::uri::{absolute_authority, is_host_and_port, split_port};

fuzz_target!(|data: &[u8]| {
    check_host(data);
    let (method, target) = match data.iter().position(|&b| b == b' ') {
        Some(space) => (&data[..space], &data[space + 1..]),
        None => (&b"GET"[..], data),
    };
    check_host(target);
    let (Ok(method), Ok(target)) = (std::str::from_utf8(method), std::str::from_utf8(target))
    else {
        return;
    };
    check_target(method, target);
});

/// `is_valid_host` is exactly `uri-host [ ":" port ]` with a non-empty host.
fn check_host(value: &[u8]) {
    let rfc = is_host_and_port(value, true);
    if rfc && !is_host_and_port(value, false) && !strict() {
        return; // an IPvFuture literal: the known disagreement
    }
    assert_eq!(
        is_valid_host(value),
        rfc,
        "is_valid_host({:?})",
        value.escape_ascii().to_string()
    );
}

/// What RFC 9112 §3.2 says of `target` with `method`, as tern applies it: Ok with the parts, or
/// the status of the refusal.
fn expected_classification(method: &str, target: &str) -> Result<TargetParts, u16> {
    let bytes = target.as_bytes();
    if method == "CONNECT" {
        // §3.2.3: authority-form = uri-host ":" port; tern opens no tunnels (501). An empty
        // port names no tunnel endpoint, so 400 is as right as 501 there (see `check_target`).
        let (_, port) = split_port(bytes);
        let authority_form = port.is_some() && is_host_and_port(bytes, true);
        return Err(if authority_form { 501 } else { 400 });
    }
    // A path that decodes to NUL is refused wherever the path starts (tern's rule: no file name
    // or application path may hold one).
    let nul_in_path = |path_start: usize| {
        let rest = &target[path_start..];
        let path = rest.split(['?', '#']).next().unwrap_or(rest);
        path.contains("%00")
    };
    if target.starts_with('/') {
        // §3.2.1: origin-form = absolute-path [ "?" query ].
        if nul_in_path(0) {
            return Err(400);
        }
        return Ok(TargetParts {
            form: TargetForm::Origin,
            path_start: 0,
            authority: None,
        });
    }
    if target == "*" {
        // §3.2.4: asterisk-form, for OPTIONS only.
        return if method == "OPTIONS" {
            Ok(TargetParts {
                form: TargetForm::Asterisk,
                path_start: 0,
                authority: None,
            })
        } else {
            Err(400)
        };
    }
    if let Some((start, end)) = absolute_authority(bytes) {
        // §3.2.2: absolute-form; an http(s) URI has a non-empty host and no userinfo (RFC 9110
        // §4.2.1, §4.2.4; '@' is outside the host grammar).
        if !is_host_and_port(&bytes[start..end], true) || nul_in_path(end) {
            return Err(400);
        }
        return Ok(TargetParts {
            form: TargetForm::Absolute,
            path_start: end,
            authority: Some((start, end)),
        });
    }
    Err(400)
}

/// `classify` gives the parts or the status RFC 9112 §3.2 implies.
fn check_target(method: &str, target: &str) {
    let expected = expected_classification(method, target);
    let got = classify(method, target).map_err(|error| error.status());
    if got == expected {
        return;
    }
    let bytes = target.as_bytes();
    let authority = absolute_authority(bytes).map_or(bytes, |(start, end)| &bytes[start..end]);
    let ipv_future = is_host_and_port(authority, true) && !is_host_and_port(authority, false);
    if ipv_future && !strict() {
        return; // the known disagreement
    }
    let empty_connect_port = method == "CONNECT" && split_port(bytes).1 == Some(&[]);
    if empty_connect_port && got == Err(400) {
        return; // either status is right
    }
    panic!("classify({method:?}, {target:?}) gave {got:?}, the RFC says {expected:?}");
}
