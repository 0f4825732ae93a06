//! Parsing bind addresses and binding the listening sockets, once, before any worker is forked.
//!
//! Workers inherit these sockets, so all of them accept from one queue: a worker that stops
//! (SIGHUP, SIGTERM) leaves queued connections to its siblings instead of resetting them.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use socket2::{Domain, Socket, Type};

/// Length of the kernel's accept queue we ask for (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: i32 = 4096;

/// Where to listen: a TCP address or a Unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// What `--bind` says about a listener's protocol: `https://ADDR`, `http://ADDR`, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeMark {
    /// `http://`: plain HTTP, even with `--certfile`.
    Http,
    /// `https://`: TLS (needs `--certfile`).
    Https,
    /// No mark: TLS when `--certfile` is given and no bind is marked `https://`.
    Unmarked,
}

/// One address to listen on, as `--bind` gives it, with its scheme mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub addr: BindAddr,
    pub mark: SchemeMark,
}

impl Bind {
    /// Parses `[http://|https://]ADDR`, ADDR as [`BindAddr::parse`] takes it.
    pub fn parse(text: &str) -> Result<Bind, String> {
        let (mark, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (SchemeMark::Https, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (SchemeMark::Http, rest)
        } else {
            (SchemeMark::Unmarked, text)
        };
        let rest = if rest.starts_with("unix:") {
            rest
        } else {
            rest.trim_end_matches('/')
        };
        Ok(Bind {
            addr: BindAddr::parse(rest)?,
            mark,
        })
    }

    /// Whether this listener speaks TLS, given whether a certificate is configured and whether
    /// any bind is marked `https://` (then the unmarked ones stay plain).
    pub fn is_tls(&self, have_certificate: bool, any_marked_https: bool) -> bool {
        match self.mark {
            SchemeMark::Https => true,
            SchemeMark::Http => false,
            SchemeMark::Unmarked => have_certificate && !any_marked_https,
        }
    }
}

/// A listening socket handed to the workers, and whether its connections speak TLS.
#[derive(Debug)]
pub struct Endpoint {
    pub listener: Listener,
    /// Connections start with a TLS handshake (`https://`, `--certfile`).
    pub tls: bool,
}

impl Endpoint {
    /// Duplicates the socket (see [`Listener::try_clone`]).
    pub fn try_clone(&self) -> io::Result<Endpoint> {
        Ok(Endpoint {
            listener: self.listener.try_clone()?,
            tls: self.tls,
        })
    }
}

/// A bound, listening socket, still in blocking std form so it survives `fork`.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl BindAddr {
    /// Parses `HOST:PORT`, `[V6]:PORT` or `unix:/path.sock`; host names are resolved here.
    pub fn parse(text: &str) -> Result<BindAddr, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, as in unix:/run/tern.sock".into());
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        let mut addrs = text
            .to_socket_addrs()
            .map_err(|e| format!("cannot use '{text}' as HOST:PORT: {e}"))?;
        addrs
            .next()
            .map(BindAddr::Tcp)
            .ok_or_else(|| format!("'{text}' resolves to no address"))
    }

    /// The address made of `--host` and `--port`.
    pub fn from_host_port(host: &str, port: u16) -> Result<BindAddr, String> {
        let text = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        BindAddr::parse(&text)
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(addr) => write!(f, "{addr}"),
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Listener {
    /// The address actually bound (port 0 becomes the port the kernel chose).
    pub fn local_addr(&self) -> BindAddr {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(addr) => BindAddr::Tcp(addr),
                Err(_) => BindAddr::Unix(PathBuf::from("?")),
            },
            Listener::Unix(_, path) => BindAddr::Unix(path.clone()),
        }
    }

    /// Duplicates the socket (a new descriptor on the same listening socket).
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(listener) => Listener::Tcp(listener.try_clone()?),
            Listener::Unix(listener, path) => Listener::Unix(listener.try_clone()?, path.clone()),
        })
    }
}

/// The first descriptor systemd passes (sd_listen_fds(3)).
const SYSTEMD_FIRST_FD: RawFd = 3;

/// The listening sockets systemd passed by socket activation (`LISTEN_PID` is this process,
/// `LISTEN_FDS` their count), or `None` without activation. The variables are removed, so the
/// application and its children do not take the sockets for theirs.
pub fn from_systemd() -> Option<Result<Vec<Listener>, String>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").ok()?.parse::<RawFd>().ok()?;
    // SAFETY: nothing else in this process reads or writes the environment at start-up.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if !for_us || count <= 0 {
        return None;
    }
    Some(
        (SYSTEMD_FIRST_FD..SYSTEMD_FIRST_FD + count)
            .map(adopt_listening_socket)
            .collect(),
    )
}

/// Takes ownership of an inherited listening socket, TCP or Unix.
fn adopt_listening_socket(fd: RawFd) -> Result<Listener, String> {
    // SAFETY: systemd hands these descriptors to this process, and nothing else owns them.
    let socket = unsafe { Socket::from_raw_fd(fd) };
    let address = socket
        .local_addr()
        .map_err(|e| format!("descriptor {fd} from systemd is not a socket: {e}"))?;
    if !socket.is_listener().unwrap_or(false) {
        return Err(format!("descriptor {fd} from systemd is not listening"));
    }
    // Workers are forked, never exec'd: the descriptor must not leak into the app's programs.
    socket
        .set_cloexec(true)
        .map_err(|e| format!("descriptor {fd} from systemd: {e}"))?;
    if address.as_socket().is_some() {
        return Ok(Listener::Tcp(socket.into()));
    }
    let path = address
        .as_pathname()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("(unnamed)"));
    Ok(Listener::Unix(socket.into(), path))
}

/// Binds every address; the first failure is returned with the address it concerns.
pub fn bind_all(addrs: &[BindAddr]) -> Result<Vec<Listener>, String> {
    addrs
        .iter()
        .map(|addr| bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}")))
        .collect()
}

fn bind(addr: &BindAddr) -> io::Result<Listener> {
    match addr {
        BindAddr::Tcp(addr) => {
            let socket = Socket::new(Domain::for_address(*addr), Type::STREAM, None)?;
            socket.set_reuse_address(true)?;
            if addr.is_ipv6() {
                socket.set_only_v6(true)?;
            }
            socket.bind(&(*addr).into())?;
            socket.listen(LISTEN_BACKLOG)?;
            Ok(Listener::Tcp(socket.into()))
        }
        BindAddr::Unix(path) => {
            remove_stale_socket(path)?;
            let listener = UnixListener::bind(path)?;
            Ok(Listener::Unix(listener, path.clone()))
        }
    }
}

/// Removes a socket file left by an earlier run, but never a regular file of the user's.
fn remove_stale_socket(path: &PathBuf) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        )),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unmarked_bind_is_tls_only_with_a_certificate_and_no_https_mark() {
        let unmarked = Bind::parse("127.0.0.1:1").unwrap();
        assert!(unmarked.is_tls(true, false));
        assert!(!unmarked.is_tls(true, true));
        assert!(!unmarked.is_tls(false, false));
        assert!(!Bind::parse("http://127.0.0.1:1")
            .unwrap()
            .is_tls(true, false));
        assert!(Bind::parse("https://127.0.0.1:1")
            .unwrap()
            .is_tls(true, true));
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            BindAddr::parse("127.0.0.1:80").unwrap(),
            BindAddr::Tcp("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            BindAddr::parse("[::1]:80").unwrap(),
            BindAddr::Tcp("[::1]:80".parse().unwrap())
        );
        assert_eq!(
            BindAddr::parse("unix:/tmp/t.sock").unwrap(),
            BindAddr::Unix("/tmp/t.sock".into())
        );
        assert!(BindAddr::parse("unix:").is_err());
        assert!(BindAddr::parse("nonsense").is_err());
        assert_eq!(
            Bind::parse("https://127.0.0.1:443").unwrap(),
            Bind {
                addr: BindAddr::Tcp("127.0.0.1:443".parse().unwrap()),
                mark: SchemeMark::Https
            }
        );
        assert_eq!(
            Bind::parse("http://[::1]:80/").unwrap().mark,
            SchemeMark::Http
        );
        assert_eq!(
            Bind::parse("https://unix:/tmp/t.sock").unwrap().addr,
            BindAddr::Unix("/tmp/t.sock".into())
        );
        assert!(Bind::parse("https://").is_err());
        assert_eq!(
            BindAddr::from_host_port("::1", 8).unwrap(),
            BindAddr::Tcp("[::1]:8".parse().unwrap())
        );
    }
}
