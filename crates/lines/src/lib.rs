//! tern-lines: the line-protocol TCP services, served by tern-core beside HTTP. Each protocol is a
//! small module that turns one line into one reply, and [`LineHandler`] runs any of them over a
//! connection as tern-core's [`ConnectionHandler`]: the core accepts, limits, drains and shuts
//! down; this crate only speaks lines. Nothing in tern-core depends on it.
//!
//! A protocol plugs in by implementing [`LineProtocol`]; it never sees sockets, buffers or
//! timeouts, so it can be read (and tested) as a pure function of its input.
//!
//! - [`codec`] splits the byte stream into bounded lines; [`linger`] closes without losing the
//!   last answer.
//! - The protocols: [`echo`], [`calc`] (exact sums and products), [`eval`] (the safe
//!   [`arithmetic`] evaluator, with a work budget per line), [`hello`].
//! - [`client`] is the load client that drives any of them (`tern client`).

pub mod arithmetic;
pub mod calc;
pub mod client;
pub mod codec;
pub mod echo;
pub mod eval;
pub mod hello;
pub mod linger;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use tern_core::config::LineConfig;
use tern_core::connection::{ConnectionHandler, Ended};
use tern_core::logging::ACCESS_TARGET;
use tern_core::shutdown::ShutdownWatch;
use tern_core::socket::{Peer, Socket};

use codec::{LineEvent, LineReader};

/// Reply buffers larger than this are freed after use rather than kept for the next reply.
const OUT_BUFFER_KEEP: usize = 4096;
/// After this much time spent answering (not waiting), a connection lets the worker's other
/// connections run before its next line. Each `eval` line is bounded to a few milliseconds by
/// its work budget, but a client that sends many such lines at once would otherwise keep the
/// worker's one thread for all of them in a row.
const BUSY_SLICE: Duration = Duration::from_millis(2);

/// A text protocol: one reply per line, with optional per-connection state.
pub trait LineProtocol: Send + Sync + 'static {
    /// State kept for one connection (the calculator's mode, say).
    type Session: Send;

    /// Sent once when a client connects, if any.
    fn greeting(&self) -> Option<String> {
        None
    }

    fn start_session(&self) -> Self::Session;

    /// The answer to one line (without its line ending).
    fn respond(&self, session: &mut Self::Session, line: &str) -> Reply;

    /// How long each answer is held back (`eval --delay`); the connection waits, nobody else does.
    fn delay(&self) -> Option<Duration> {
        None
    }
}

/// One answer, and whether the connection ends after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub close: bool,
}

impl Reply {
    pub fn line(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            close: false,
        }
    }

    pub fn closing(text: impl Into<String>) -> Self {
        Reply {
            text: text.into(),
            close: true,
        }
    }
}

/// Serves a [`LineProtocol`] on every connection it is given.
pub struct LineHandler<P> {
    protocol: P,
    config: LineConfig,
}

impl<P: LineProtocol> LineHandler<P> {
    pub fn new(protocol: P, config: LineConfig) -> Self {
        LineHandler { protocol, config }
    }
}

impl<P: LineProtocol> ConnectionHandler for LineHandler<P> {
    /// A line client may stay silent this long at any time, so also before its PROXY header.
    fn proxy_header_timeout(&self) -> Duration {
        self.config.idle_timeout
    }

    async fn handle<S: Socket>(
        self: Arc<Self>,
        mut socket: S,
        peer: Peer,
        mut shutdown: ShutdownWatch,
        _resumed: bool,
    ) -> Ended<S> {
        let started = Instant::now();
        let mut lines_answered = 0u64;
        let outcome = self
            .converse(&mut socket, &mut shutdown, &mut lines_answered)
            .await;
        if let Err(error) = &outcome {
            tracing::debug!("connection from {peer} failed: {error}");
        }
        if self.config.access_log {
            tracing::info!(
                target: ACCESS_TARGET,
                "{peer} {lines_answered} lines in {:.3}s ({})",
                started.elapsed().as_secs_f64(),
                outcome.unwrap_or("connection error")
            );
        }
        // Line conversations are not parked: their clients rarely idle between lines.
        Ended::Closed
    }
}

impl<P: LineProtocol> LineHandler<P> {
    /// Runs the conversation; returns why it ended.
    async fn converse<S: Socket>(
        &self,
        socket: &mut S,
        shutdown: &mut ShutdownWatch,
        lines_answered: &mut u64,
    ) -> io::Result<&'static str> {
        let mut session = self.protocol.start_session();
        let mut reader = LineReader::new(self.config.max_line);
        let mut out = Vec::new();
        // Time spent in `respond` since this connection last stepped aside for the others.
        let mut busy = Duration::ZERO;
        if let Some(greeting) = self.protocol.greeting() {
            push_line(&mut out, &greeting);
        }
        loop {
            let line_buffered = reader.has_line();
            if !line_buffered {
                self.write_out(socket, &mut out).await?;
            }
            let event = tokio::select! {
                event = reader.next_line(socket, self.config.idle_timeout) => event?,
                _ = shutdown.recv(), if !line_buffered => return Ok("server shutting down"),
            };
            match event {
                LineEvent::Line(line) => {
                    if let Some(delay) = self.protocol.delay() {
                        self.write_out(socket, &mut out).await?;
                        tokio::time::sleep(delay).await;
                    }
                    let responding = Instant::now();
                    let reply = self.protocol.respond(&mut session, &line);
                    busy += responding.elapsed();
                    push_line(&mut out, &reply.text);
                    *lines_answered += 1;
                    if reply.close {
                        self.answer_and_close(socket, &mut out).await?;
                        return Ok("closed by request");
                    }
                    if busy >= BUSY_SLICE {
                        busy = Duration::ZERO;
                        tokio::task::yield_now().await;
                    }
                }
                LineEvent::InvalidUtf8 => push_line(&mut out, "error: invalid UTF-8"),
                LineEvent::TooLong => {
                    tracing::info!("line longer than {} bytes; closing", self.config.max_line);
                    push_line(
                        &mut out,
                        &format!(
                            "error: line too long (limit {} bytes)",
                            self.config.max_line
                        ),
                    );
                    // The rest of the line (and more) may still be coming: linger.
                    self.answer_and_close(socket, &mut out).await?;
                    return Ok("line too long");
                }
                LineEvent::Idle => {
                    push_line(&mut out, "error: idle timeout");
                    self.answer_and_close(socket, &mut out).await?;
                    return Ok("idle timeout");
                }
                LineEvent::Closed => {
                    self.write_out(socket, &mut out).await?;
                    return Ok("closed by client");
                }
            }
        }
    }

    /// Sends the last answers, then closes so that input still arriving cannot turn the close
    /// into a reset that destroys them (see [`linger`]).
    async fn answer_and_close<S: Socket>(
        &self,
        socket: &mut S,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.write_out(socket, out).await?;
        linger::linger_close(socket).await;
        Ok(())
    }

    async fn write_out<S: Socket>(&self, socket: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.config.io_timeout, socket.write_all(out)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client stopped reading",
                ))
            }
        }
        // Keep a small buffer for the next reply, but do not let one huge answer pin memory.
        if out.capacity() > OUT_BUFFER_KEEP {
            *out = Vec::new();
        } else {
            out.clear();
        }
        Ok(())
    }
}

/// Appends `text` and the CRLF every reply ends with.
fn push_line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}
