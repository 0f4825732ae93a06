//! HTTP/2 connections (RFC 9113), through the `h2` crate: a TLS client that chose `h2` by ALPN,
//! or a plain-text client that opened with the HTTP/2 preface (prior knowledge).
//!
//! Each stream is one request, served by the same router, static files and application as an
//! HTTP/1.1 request ([`stream`]); its head becomes an ordinary [`RequestHead`] ([`head`]), and its
//! body goes out under flow control ([`send`]). The streams of a connection run inside its task,
//! polled together with the connection, so they end with it and are counted like HTTP/1.1
//! requests.
//!
//! Protections: at most `--h2-max-streams` streams at once (more are refused), the header list
//! no larger than `--max-header-size` (a larger one gets 431, however small its HPACK encoding),
//! and h2's own limits on streams a client resets at once (rapid reset) or makes the server
//! reset, on CONTINUATION frames, and on pending PING and SETTINGS answers: a client past them
//! gets GOAWAY. A stream that waits for window longer than `--io-timeout` is reset, a connection
//! with no stream for `--keepalive-timeout` gets GOAWAY and closes, and one that does not take
//! its last frames within `--io-timeout` after that is dropped.
//!
//! [`RequestHead`]: crate::message::request::RequestHead

mod answer;
mod app;
mod head;
mod prefixed;
mod send;
mod stream;

use bytes::Bytes;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};

pub(super) use prefixed::Prefixed;

use super::HttpHandler;
use crate::shutdown::ShutdownWatch;
use crate::socket::{Peer, TlsSession};

/// The 24 bytes an HTTP/2 client with prior knowledge opens with (RFC 9113 §3.4).
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A stream's receive window: what a client may send of one body before the server reads it.
const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window, shared by its streams: the most request body bytes one
/// connection can make the server hold unread.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Response bytes a stream may queue before waiting for the client to take them.
const SEND_BUFFER: usize = 256 * 1024;
/// Streams a client may reset before the server has accepted them (rapid reset, CVE-2023-44487);
/// more at once is a GOAWAY with ENHANCE_YOUR_CALM.
const PENDING_RESETS: usize = 20;
/// Streams the server may reset because of the client's errors before it gives up on the
/// connection (the variant of rapid reset that provokes the server's resets).
const LOCAL_RESETS: usize = 1024;

/// What every stream of a connection shares about it.
#[derive(Debug, Clone)]
pub(super) struct ConnectionFacts {
    pub(super) peer: Peer,
    pub(super) local_addr: Option<std::net::SocketAddr>,
    pub(super) tls: Option<Arc<TlsSession>>,
}

/// Serves one HTTP/2 connection to its end.
pub(super) async fn serve<T>(
    handler: Arc<HttpHandler>,
    io: T,
    facts: ConnectionFacts,
    shutdown: &mut ShutdownWatch,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let config = &handler.config;
    let timeouts = config.timeouts;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(config.http2.max_streams)
        .max_header_list_size(u32::try_from(config.limits.max_header_size).unwrap_or(u32::MAX))
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_RESETS)
        .max_local_error_reset_streams(Some(LOCAL_RESETS));
    let facts = Arc::new(facts);
    let peer = facts.peer;
    let mut connection =
        match tokio::time::timeout(timeouts.header, builder.handshake::<_, Bytes>(io)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => {
                tracing::info!("HTTP/2 connection from {peer} failed to start: {error}");
                return;
            }
            Err(_) => {
                tracing::info!("HTTP/2 connection from {peer} sent no preface in time");
                return;
            }
        };
    let mut streams = FuturesUnordered::new();
    // Once GOAWAY went out: the connection ends when its streams have.
    let mut going_away = false;
    // An idle connection that was sent GOAWAY must take it (and close) within the I/O timeout.
    let mut closing_by: Option<tokio::time::Instant> = None;
    // The last time the connection was seen with a stream open.
    let mut last_busy = tokio::time::Instant::now();
    let idle = tokio::time::sleep(timeouts.keepalive);
    tokio::pin!(idle);
    loop {
        // Every stream already received is taken before any runs, and every stream that can
        // run does before the connection is polled again: the responses to a batch of requests
        // leave in one write (polling the connection writes out what is queued). Taking one
        // stream per turn made one write per response (measured with strace, 2026-12-04:
        // about 8 writes per read at h2load -m 10).
        let drive = std::future::poll_fn(|cx| loop {
            loop {
                match connection.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        let serving =
                            stream::serve(handler.clone(), request, respond, facts.clone());
                        streams.push(serving);
                    }
                    Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(error)),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => break,
                }
            }
            if streams.is_empty() {
                return Poll::Pending;
            }
            last_busy = tokio::time::Instant::now();
            let mut finished = false;
            while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {
                finished = true;
            }
            if !finished {
                return Poll::Pending;
            }
        });
        tokio::select! {
            ended = drive => {
                if let Some(error) = ended {
                    log_connection_error(peer, &error);
                }
                break;
            }
            () = shutdown.recv(), if !going_away => {
                connection.graceful_shutdown();
                going_away = true;
            }
            () = &mut idle, if !going_away => {
                let quiet_until = last_busy + timeouts.keepalive;
                if !streams.is_empty() || quiet_until > tokio::time::Instant::now() {
                    idle.as_mut().reset(quiet_until.max(tokio::time::Instant::now() + Duration::from_millis(1)));
                    continue;
                }
                tracing::debug!("closing idle HTTP/2 connection from {peer}");
                connection.graceful_shutdown();
                going_away = true;
            }
            () = sleep_until(closing_by), if closing_by.is_some() => {
                tracing::debug!("HTTP/2 connection from {peer} did not take its GOAWAY in time");
                break;
            }
        }
        if going_away && closing_by.is_none() && streams.is_empty() {
            // Every stream is done: the last frames must go out within the I/O timeout.
            closing_by = Some(tokio::time::Instant::now() + timeouts.io);
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One line for a connection that ended in an error: INFO for what the server refused (a
/// protocol violation, a flood), DEBUG for a client that just went away.
fn log_connection_error(peer: Peer, error: &h2::Error) {
    if error.is_io() || error.is_go_away() && error.is_remote() {
        tracing::debug!("HTTP/2 connection from {peer} ended: {error}");
    } else {
        tracing::info!("HTTP/2 connection from {peer} closed: {error}");
    }
}
