//! An established TLS connection as a [`Socket`]: reads and writes go through rustls (tokio-rustls),
//! and readiness accounts for plaintext rustls has already decrypted.
//!
//! rustls may hold decrypted bytes the connection has not read yet (a read takes one record's
//! worth at most, and a client may pipeline several records); the socket then has nothing to
//! report, so waiting on the descriptor alone could wait forever. [`Socket::poll_read_ready`]
//! says "ready" while rustls has such bytes (or the client's close_notify).
//!
//! Writes: tokio-rustls may keep encrypted bytes it could not hand to the kernel yet, until the
//! next write or a flush; the HTTP code flushes after its writes when [`Socket::RAW_DESCRIPTOR`]
//! is false.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio_rustls::server::TlsStream;

use crate::socket::{Peer, Socket, TlsSession};

/// A TLS connection over a TCP or Unix-domain socket.
pub struct TlsSocket<S> {
    /// Boxed: rustls's session is about a kilobyte, and the connection's future moves.
    stream: Box<TlsStream<S>>,
    /// What the handshake established, shared with every request of the connection.
    session: Arc<TlsSession>,
}

impl<S: Socket> TlsSocket<S> {
    pub(crate) fn new(stream: TlsStream<S>) -> Self {
        let (_, connection) = stream.get_ref();
        let certificate = connection
            .peer_certificates()
            .and_then(|chain| chain.first());
        let names = certificate.and_then(|der| super::subject::names(der));
        let session = TlsSession {
            protocol: match connection.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                _ => "TLS",
            },
            cipher: connection
                .negotiated_cipher_suite()
                .and_then(|suite| suite.suite().as_str())
                .unwrap_or("unknown"),
            client_subject: names.as_ref().map(|n| n.subject.clone()),
            client_issuer: names.map(|n| n.issuer),
            version_code: connection.protocol_version().map_or(0, u16::from),
            cipher_code: connection
                .negotiated_cipher_suite()
                .map_or(0, |suite| u16::from(suite.suite())),
            client_chain: connection
                .peer_certificates()
                .map(|chain| chain.iter().map(|der| der.as_ref().to_vec()).collect())
                .unwrap_or_default(),
            http2: connection.alpn_protocol() == Some(b"h2"),
        };
        TlsSocket {
            stream: Box::new(stream),
            session: Arc::new(session),
        }
    }

    fn tcp(&self) -> &S {
        self.stream.get_ref().0
    }
}

impl<S: Socket> AsyncRead for TlsSocket<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<S: Socket> AsyncWrite for TlsSocket<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().stream).poll_flush(cx)
    }

    /// Sends close_notify, then shuts down the socket's sending side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().stream).poll_shutdown(cx)
    }
}

impl<S: Socket> AsFd for TlsSocket<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tcp().as_fd()
    }
}

fn not_raw() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "a TLS connection's descriptor carries ciphertext",
    )
}

impl<S: Socket> Socket for TlsSocket<S> {
    const RAW_DESCRIPTOR: bool = false;

    fn tls_session(&self) -> Option<&Arc<TlsSession>> {
        Some(&self.session)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.tcp().writable()
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::poll_fn(|cx| self.poll_read_ready(cx))
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (socket, connection) = self.stream.get_ref();
        // False while decrypted bytes wait to be read, or once the client sent close_notify.
        if !connection.wants_read() {
            return Poll::Ready(Ok(()));
        }
        socket.poll_read_ready(cx)
    }

    fn try_io<R>(&self, _interest: Interest, _f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        Err(not_raw())
    }

    fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp().local_addr()
    }

    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        Err(not_raw())
    }

    fn from_owned_fd(_fd: OwnedFd) -> io::Result<(Self, Peer)> {
        Err(not_raw())
    }
}
