//! A new HTTPS connection's TLS handshake, run in the connection's own task.
//!
//! Bounded: the handshake must finish within `--tls-handshake-timeout` of the accept (a client
//! that opens connections and sends nothing holds no more than that), and at most
//! `--tls-max-handshakes` run at once per worker (more wait their turn, within their timeout).
//! A connection whose first byte is not a TLS handshake record is turned away before rustls sees
//! it: plain HTTP gets a short `400` in plain HTTP saying to use https, anything else is closed;
//! either way with one INFO line. A failed handshake (no shared version or cipher, a client
//! certificate that does not verify, garbage) is an INFO line too, and the socket is closed
//! when it drops.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::stream::TlsSocket;
use crate::shutdown::ShutdownWatch;
use crate::socket::{peek, Peer, Socket};

/// The content type of a TLS handshake record (RFC 8446 §5.1), the first byte a client sends.
const HANDSHAKE_RECORD: u8 = 22;
/// The answer to plain HTTP on an HTTPS port (nginx answers such requests with 400 too).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 52\r\n\
Connection: close\r\n\r\n\
This port speaks HTTPS: use an https:// URL instead\n";
/// After that answer, how long (and how much of) the rest of the plain request is read and
/// dropped, so closing does not reset the connection before the answer is read.
const PLAIN_HTTP_LINGER: Duration = Duration::from_secs(1);
const PLAIN_HTTP_LINGER_BYTES: usize = 64 * 1024;

/// Runs the handshakes of one worker.
pub struct Handshaker {
    acceptor: TlsAcceptor,
    /// One per handshake in progress (`--tls-max-handshakes`).
    permits: Semaphore,
    /// `--tls-handshake-timeout`.
    timeout: Duration,
}

impl Handshaker {
    /// For the TLS configuration in force in this process (see [`super::current`]); None if
    /// there is none.
    pub fn from_current() -> Option<Handshaker> {
        let (server, config) = super::current::get()?;
        Some(Handshaker {
            acceptor: TlsAcceptor::from(server),
            permits: Semaphore::new(config.max_handshakes.max(1)),
            timeout: config.handshake_timeout,
        })
    }

    /// Completes the handshake of a connection just accepted from `peer`, or returns None
    /// (logged) if it fails, times out or the worker begins to drain meanwhile.
    pub async fn accept<S: Socket>(
        self: Arc<Self>,
        socket: S,
        peer: Peer,
        shutdown: &mut ShutdownWatch,
    ) -> Option<TlsSocket<S>> {
        let started = Instant::now();
        let handshake = async {
            let mut first = [0u8; 1];
            let mut socket = socket;
            if peek(&socket, &mut first).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before the handshake",
                ));
            }
            if first[0] != HANDSHAKE_RECORD {
                return Err(turn_away(&mut socket, first[0]).await);
            }
            // Taken once the client has begun: a silent connection holds no turn.
            let _permit = self.permits.acquire().await.map_err(io::Error::other)?;
            self.acceptor.accept(socket).await
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.timeout, handshake) => outcome,
            _ = shutdown.recv() => return None,
        };
        match outcome {
            Ok(Ok(stream)) => Some(TlsSocket::new(stream)),
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => {
                tracing::debug!("TLS handshake with {peer}: the client closed: {error}");
                None
            }
            Ok(Err(error)) => {
                tracing::info!("TLS handshake with {peer} failed: {error}");
                None
            }
            Err(_) => {
                tracing::info!(
                    "TLS handshake with {peer} timed out after {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                None
            }
        }
    }
}

/// A connection that does not start with a handshake record: answers plain HTTP with a 400 (in
/// plain HTTP) and returns the error to log.
async fn turn_away<S: Socket>(socket: &mut S, first: u8) -> io::Error {
    if !first.is_ascii_uppercase() {
        return io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a TLS handshake (first byte 0x{first:02x})"),
        );
    }
    if socket.write_all(PLAIN_HTTP_ANSWER).await.is_ok() && socket.shutdown().await.is_ok() {
        let mut scratch = vec![0u8; 4096];
        let mut drained = 0;
        let deadline = tokio::time::Instant::now() + PLAIN_HTTP_LINGER;
        while drained < PLAIN_HTTP_LINGER_BYTES {
            match tokio::time::timeout_at(deadline, socket.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => break,
            }
        }
    }
    io::Error::new(
        io::ErrorKind::InvalidData,
        "plain HTTP sent to an HTTPS port (answered 400)",
    )
}
