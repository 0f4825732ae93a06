//! What the protocol code needs from an accepted connection, whether TCP or Unix-domain.
//!
//! Besides async reads and writes, the static server sends file bytes with `sendfile(2)` straight
//! from the page cache, which needs the descriptor and tokio's readiness API. A TLS connection
//! (`crate::tls`) is a socket too, but one whose descriptor carries ciphertext: it says so with
//! [`Socket::RAW_DESCRIPTOR`], and the code that writes to descriptors directly (sendfile, the
//! idle park) leaves it alone. The constant is known at compile time, so plain connections pay
//! nothing for the choice.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::{TcpStream, UnixStream};

/// An accepted, non-blocking stream socket.
pub trait Socket: AsyncRead + AsyncWrite + AsFd + Unpin + Send + Sync + 'static {
    /// The bytes read from and written to the descriptor are the connection's own (no TLS layer
    /// between): `sendfile(2)`, raw `send`/`writev` and parking by descriptor are allowed. When
    /// false, [`Socket::try_io`] must not be used for writing, and the connection is never parked.
    const RAW_DESCRIPTOR: bool = true;
    /// The TLS session's facts, on a TLS connection.
    fn tls_session(&self) -> Option<&Arc<TlsSession>> {
        None
    }
    /// Waits until the socket may accept more bytes.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Waits until the socket has bytes (or EOF) to read, without reading them.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Polls read readiness without a stored future (an idle connection keeps no 150-byte
    /// readiness future in its task; the waker lives in the socket's registration).
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>>;
    /// Runs a raw syscall, clearing readiness when it reports `WouldBlock`.
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
    /// The address the client connected to (none for Unix-domain sockets).
    fn local_addr(&self) -> Option<std::net::SocketAddr>;
    /// Leaves the runtime: the bare descriptor, still non-blocking (for the idle park).
    fn into_owned_fd(self) -> io::Result<OwnedFd>;
    /// Joins the runtime again with a descriptor from [`Socket::into_owned_fd`].
    fn from_owned_fd(fd: OwnedFd) -> io::Result<(Self, Peer)>
    where
        Self: Sized;
}

impl Socket for TcpStream {
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::writable(self)
    }
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        TcpStream::try_io(self, interest, f)
    }
    fn local_addr(&self) -> Option<std::net::SocketAddr> {
        TcpStream::local_addr(self).ok()
    }
    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        Ok(self.into_std()?.into())
    }
    fn from_owned_fd(fd: OwnedFd) -> io::Result<(Self, Peer)> {
        let stream = std::net::TcpStream::from(fd);
        let peer = Peer::Tcp(stream.peer_addr()?);
        Ok((TcpStream::from_std(stream)?, peer))
    }
}

impl Socket for UnixStream {
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        UnixStream::writable(self)
    }
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        UnixStream::readable(self)
    }
    fn poll_read_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        UnixStream::try_io(self, interest, f)
    }
    fn local_addr(&self) -> Option<std::net::SocketAddr> {
        None
    }
    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        Ok(self.into_std()?.into())
    }
    fn from_owned_fd(fd: OwnedFd) -> io::Result<(Self, Peer)> {
        Ok((
            UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))?,
            Peer::Unix,
        ))
    }
}

/// Who is on the other end: shown in logs and, for WSGI, in REMOTE_ADDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Tcp(std::net::SocketAddr),
    /// Unix-domain peers have no useful address.
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{}", addr.ip()),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// What a TLS handshake established, for the application (HTTPS, SSL_CLIENT_S_DN, ...): taken
/// once per connection, shared by its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The cipher suite's IANA name (`TLS13_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
    /// The client certificate's subject as an RFC 4514 string (`CN=alice,O=Example`), when the
    /// client presented a certificate (verified against `--ca-certs` by the handshake).
    pub client_subject: Option<String>,
    /// That certificate's issuer, in the same form.
    pub client_issuer: Option<String>,
    /// The protocol's code point (0x0303 for TLS 1.2, 0x0304 for 1.3), for ASGI's `tls` extension.
    pub version_code: u16,
    /// The cipher suite's IANA code point (0x1301 for TLS_AES_128_GCM_SHA256).
    pub cipher_code: u16,
    /// The client's certificate chain (DER), its own certificate first; empty when it sent none.
    pub client_chain: Vec<Vec<u8>>,
    /// The client chose HTTP/2 by ALPN.
    pub http2: bool,
}

/// Waits until `socket` has bytes and copies up to `buf.len()` of them without taking them;
/// 0 means the peer closed.
pub(crate) async fn peek<S: Socket>(socket: &S, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        socket.readable().await?;
        let peeked = socket.try_io(Interest::READABLE, || {
            let (received, _) = rustix::net::recv(socket, &mut *buf, rustix::net::RecvFlags::PEEK)?;
            Ok(received)
        });
        match peeked {
            Ok(count) => return Ok(count),
            // Readiness was stale; `try_io` cleared it, so the next wait is for new bytes.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}
