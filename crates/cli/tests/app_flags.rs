//! `tern serve APP` and the static-mount flags, as far as the pure-Rust binary goes: it cannot host
//! Python, so an APP is a clear usage error; the mounts it can serve (with --static) work.
//! The WSGI bridge itself is tested end to end in tests/python against the pip-installed package.

use std::process::Command;

use crate::support::{get, Server, Site};

fn tern(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .output()
        .expect("run tern");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_app_needs_the_python_package_and_says_so_in_one_line() {
    let (code, stderr) = tern(&["serve", "myproject.wsgi:application", "--port", "0"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("pip install"),
        "says how to get a tern that runs Python apps: {stderr}"
    );
}

#[test]
fn a_charset_must_be_a_plain_name() {
    for bad in ["utf-8; x=1", "utf 8", "\"utf-8\""] {
        let (code, stderr) = tern(&["serve", "--charset", bad, "--port", "0"]);
        assert_eq!(code, Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("--charset"), "{bad:?}: {stderr}");
    }
}

#[test]
fn websocket_limits_are_checked_at_start_up() {
    for (flag, value) in [
        ("--ws-max-size", "0"),
        ("--ws-max-size", "lots"),
        ("--ws-ping-interval", "-1"),
        ("--ws-ping-timeout", "0"),
    ] {
        let (code, stderr) = tern(&["serve", flag, value, "--port", "0"]);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(&flag[2..]), "{flag} {value}: {stderr}");
    }
}

#[test]
fn the_http2_stream_limit_is_checked_at_start_up() {
    for value in ["0", "-3", "many"] {
        let flag = format!("--h2-max-streams={value}");
        let (code, stderr) = tern(&["serve", &flag, "--port", "0"]);
        assert_eq!(code, Some(2), "{value}: {stderr}");
        assert!(stderr.contains("h2-max-streams"), "{value}: {stderr}");
    }
}

#[test]
fn a_static_mount_needs_prefix_and_directory() {
    let (code, stderr) = tern(&["serve", "--static", "no-equals-sign", "--port", "0"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("PREFIX=DIR"), "{stderr}");
    let (code, stderr) = tern(&[
        "serve",
        "--static",
        "/media/=/definitely/not/here",
        "--port",
        "0",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not a directory"), "{stderr}");
    let (code, stderr) = tern(&["serve", "--static", "media=/tmp", "--port", "0"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("URL path prefix"), "{stderr}");
}

#[test]
fn extra_static_mounts_serve_beside_the_docroot_and_the_longest_prefix_wins() {
    let site = Site::new();
    site.file("index.html", b"root");
    let media = Site::new();
    media.file("a.txt", b"from media");
    let server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--static",
        &format!("/media/={}", media.root_str()),
    ]);
    assert_eq!(get(server.addr, "/").body, b"root");
    assert_eq!(get(server.addr, "/media/a.txt").body, b"from media");
    assert_eq!(get(server.addr, "/media/missing.txt").status, 404);
}

#[test]
fn reload_needs_an_app_and_its_options_need_reload() {
    let (code, stderr) = tern(&["serve", "--reload", "--port", "0"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--reload needs an APP"), "{stderr}");
    let (code, stderr) = tern(&["serve", "--reload-exclude", "*.txt", "--port", "0"]);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--reload-exclude needs --reload"),
        "{stderr}"
    );
}

/// Regression: a port already in use exited 1, unlike every other start-up error (2).
#[test]
fn a_port_in_use_is_a_start_up_error_with_status_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for command in ["serve", "echo"] {
        let (code, stderr) = tern(&[command, "--port", &port]);
        assert_eq!(code, Some(2), "{command}: {stderr}");
        assert!(stderr.contains("Address already in use"), "{stderr}");
    }
}

/// Regression: a negative number of seconds was taken for an unknown flag and got clap's
/// multi-line usage error.
#[test]
fn a_negative_number_of_seconds_is_refused_in_one_line() {
    for (command, flag) in [
        ("serve", "--grace-timeout"),
        ("serve", "--keepalive-timeout"),
        ("echo", "--idle-timeout"),
        ("eval", "--delay"),
    ] {
        let (code, stderr) = tern(&[command, flag, "-1", "--port", "0"]);
        assert_eq!(code, Some(2), "{command} {flag}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(flag), "names the flag: {stderr}");
    }
}
