//! The supervisor's process as a daemon manager sees it: systemd socket activation, the pid
//! file, the umask, and dropping root for --user/--group.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use crate::support::{eventually, get, send_signal, Server, Site, PATIENCE};

fn site() -> Site {
    let site = Site::new();
    site.file("index.html", b"managed");
    site
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn serves_on_sockets_passed_by_systemd_socket_activation() {
    let site = site();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut activator = Command::new("systemd-socket-activate")
        .args(["--listen", &addr.to_string()])
        .arg(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "-r", &site.root_str(), "--port", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate (Debian's systemd package)");
    let stderr = activator.stderr.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    eventually("the activator listens", || TcpStream::connect(addr).is_ok());
    // The first connection starts tern on the passed socket (not on port 1, which it never binds).
    let response = get(addr, "/");
    assert_eq!(response.body, b"managed");
    let log: Vec<String> = lines_rx.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("(sockets from systemd)")),
        "{log:#?}"
    );
    for pid in children(activator.id()) {
        // The tern this test started through the activator.
        send_signal(pid, libc::SIGTERM);
    }
    eventually("tern stopped", || children(activator.id()).is_empty());
    let _ = activator.kill();
    let _ = activator.wait();
}

#[test]
fn pid_file_names_the_supervisor_and_goes_away_on_exit() {
    let site = site();
    let pid_file = site.dir.path().join("tern.pid");
    let mut server = Server::start(&[
        "serve",
        "-r",
        &site.root_str(),
        "--pid",
        pid_file.to_str().unwrap(),
    ]);
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), server.pid().to_string());
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(PATIENCE).and_then(|s| s.code()), Some(0));
    assert!(!pid_file.exists());
}

#[test]
fn umask_applies_to_the_unix_socket_file() {
    use std::os::unix::fs::PermissionsExt;
    let site = site();
    let socket = site.dir.path().join("tern.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "-r", &site.root_str(), "--umask", "077"])
        .arg("--bind")
        .arg(format!("unix:{}", socket.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the socket file", || socket.exists());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "mode {mode:o}");
    send_signal(child.id(), libc::SIGTERM);
    child.wait().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["serve", "--umask", "999"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

/// Started as root, the server binds and then runs as the given user: its workers too.
#[test]
fn user_drops_root_after_binding() {
    let site = site();
    let root = rustix::process::geteuid().is_root();
    if !root {
        // Without root, switching users must fail with a clear line and exit status 2.
        let output = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args([
                "serve",
                "-r",
                &site.root_str(),
                "--port",
                "0",
                "--user",
                "nobody",
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("--"));
        return;
    }
    let server = Server::start(&["serve", "-r", &site.root_str(), "--user", "nobody"]);
    assert_eq!(get(server.addr, "/").body, b"managed");
    let uid_of = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .map(|l| l.split_whitespace().nth(2).unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        uid_of(server.pid()),
        "65534",
        "the supervisor runs as nobody"
    );
    for worker in server.worker_pids() {
        assert_eq!(uid_of(worker), "65534", "worker {worker} runs as nobody");
    }
}
