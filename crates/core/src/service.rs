//! The trait an HTTP application implements, so the core can hand it every request that no static
//! mount answers. The WSGI bridge (crate tern-python) is one; the core knows nothing of Python.
//!
//! An application runs elsewhere (on its own threads), so the conversation is a stream of
//! [`AppEvent`]s that the connection pulls one at a time with [`ServiceCall::poll_event`]:
//! the response head, body pieces, the end; and, whenever the application wants more of the
//! request body, a [`AppEvent::ReadBody`] the connection answers by reading the socket. The
//! connection asks for the next event only after it has written the previous one, so a slow
//! client slows the application down instead of filling memory. Dropping the call means the
//! connection gave up on it (the client went away, a write failed): the application must then
//! release what it holds (for WSGI: call the iterable's `close()`).
//!
//! With `--request-timeout`, a connection that waits on the application too long for its next
//! event calls [`ServiceCall::timed_out`] before it drops the call, so the application can say
//! where it is stuck.

pub use crate::message::response::ResponseHead;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::message::forwarded::Forwarded;
use crate::message::request::RequestHead;
use crate::message::response::FileBody;
use crate::socket::{Peer, TlsSession};

/// An HTTP application.
pub trait Service: Send + Sync + 'static {
    /// Starts handling one request. Runs on the worker's event loop, so it must not block.
    fn call(&self, request: ServiceRequest) -> Box<dyn ServiceCall>;

    /// On shutdown, after the last connection ended: completes what the application still has
    /// to do (for WSGI: `close()` of responses cut short), bounded by the worker's grace timeout.
    fn finish(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }

    /// After a forced stop (grace timeout, second signal) dropped the calls still in progress:
    /// releases what the application holds for them (for WSGI: `close()` of their iterables),
    /// blocking for at most `bound`. Runs with no event loop left.
    fn abandon(&self, bound: std::time::Duration) {
        let _ = bound;
    }

    /// In each worker, after the fork and before it serves: starts what the application needs in
    /// every process (for ASGI: its event loop and the lifespan startup). An error stops the
    /// worker; its message (with the application's traceback) is logged.
    fn start(&self) -> Result<(), String> {
        Ok(())
    }

    /// The application reads every request body as it arrives (ASGI's `receive`), so the
    /// connection does not receive it whole before the call, whatever `--stream-request-body`
    /// says. Only small Content-Length bodies are still read first.
    fn streams_request_body(&self) -> bool {
        false
    }

    /// While the application works on a request whose body was read whole, the connection
    /// watches the client and drops the call when it goes away (closes or resets), so the
    /// application hears of it (ASGI's `http.disconnect`). A client that half-closes its side
    /// after the request counts as gone, as in uvicorn.
    fn watches_client(&self) -> bool {
        false
    }

    /// The application takes WebSocket sessions: an upgrade request (RFC 6455 §4.2.1) goes to
    /// [`Service::websocket`] instead of [`Service::call`].
    fn takes_websockets(&self) -> bool {
        false
    }

    /// Starts a WebSocket session for a valid upgrade request (only when
    /// [`Service::takes_websockets`]). Runs on the worker's event loop, so it must not block.
    fn websocket(&self, request: ServiceRequest) -> Box<dyn crate::websocket::WebSocketCall> {
        let _ = request;
        unreachable!("a service that takes no WebSocket sessions is never asked for one")
    }
}

/// One request, as the application gets it.
#[derive(Debug)]
pub struct ServiceRequest {
    pub head: RequestHead,
    /// The connection's peer (the client a PROXY protocol header named, with `--proxy-protocol`).
    pub peer: Peer,
    /// What a trusted proxy's X-Forwarded-For / X-Forwarded-Proto / Forwarded headers say about
    /// the client, when it sent any.
    pub forwarded: Option<Forwarded>,
    /// The address the client connected to, when the request has no Host header to say it.
    pub local_addr: Option<SocketAddr>,
    /// The connection's TLS session (HTTPS listeners): the scheme is https, and the client's
    /// certificate subject, if it sent one, is here.
    pub tls: Option<std::sync::Arc<TlsSession>>,
    pub body: RequestBody,
}

/// The request body as far as the connection has read it before calling the application.
///
/// Unless bodies are streamed (`--stream-request-body`), the whole body has been received: in
/// `prefetched` when small (`--body-buffer-size`), else in `spooled`.
#[derive(Debug)]
pub struct RequestBody {
    /// Body bytes already received: the whole body when `complete` and nothing is spooled.
    pub prefetched: Bytes,
    /// The whole body, when larger than `--body-buffer-size` (then `prefetched` is empty): the
    /// application should keep it only while the call lasts, so what it holds (room in the
    /// worker's body memory, or a file) goes back as soon as the connection is done with it.
    pub spooled: Option<SpooledBody>,
    /// Nothing more follows what was received; otherwise ask with [`AppEvent::ReadBody`].
    pub complete: bool,
    /// The body's length: the declared Content-Length, or the length of a chunked body
    /// received whole (none for a chunked body still to be read, or no body).
    pub content_length: Option<u64>,
}

/// A large request body received whole before the application is called, read by offset.
#[derive(Debug)]
pub enum SpooledBody {
    /// In memory, holding room in the worker's `--body-memory` until dropped.
    Memory(Bytes),
    /// In an unlinked temporary file (closing it frees the space), from its start.
    File {
        file: std::fs::File,
        /// Body bytes in the file.
        len: u64,
    },
}

impl SpooledBody {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            SpooledBody::Memory(bytes) => bytes.len() as u64,
            SpooledBody::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buffer` with the body's bytes from `offset` on; an error if the body ends first.
    pub fn read_exact_at(&self, buffer: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            SpooledBody::Memory(bytes) => {
                let range = usize::try_from(offset)
                    .ok()
                    .and_then(|start| Some(start..start.checked_add(buffer.len())?))
                    .filter(|range| range.end <= bytes.len())
                    .ok_or(std::io::ErrorKind::UnexpectedEof)?;
                buffer.copy_from_slice(&bytes[range]);
                Ok(())
            }
            SpooledBody::File { file, .. } => {
                std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
            }
        }
    }
}

/// A request in progress, owned by the connection.
pub trait ServiceCall: Send {
    /// The application's next event. Called again only after the previous event was handled.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<AppEvent>;

    /// The connection waited `--request-timeout` for the next event and gives up on the call (it
    /// drops it next). Runs on the event loop, so it must not block: report where the call is
    /// stuck (WSGI: its thread's Python stack) from elsewhere.
    fn timed_out(&mut self, timeout: RequestTimeout) {
        let _ = timeout;
    }
}

/// What the connection knows about a call it gave up on after `--request-timeout`.
#[derive(Debug, Clone)]
pub struct RequestTimeout {
    /// The request line, as the client sent it (`GET /slow HTTP/1.1`).
    pub request_line: Bytes,
    /// Who sent it.
    pub peer: Peer,
    /// How long the connection waited for this event: the `--request-timeout`, or a little more.
    pub waited: Duration,
    /// Since the request head was received.
    pub elapsed: Duration,
    /// The response head had been sent (the connection closes instead of answering 504).
    pub head_sent: bool,
}

/// What an application tells the connection.
#[derive(Debug)]
pub enum AppEvent {
    /// The status and headers; comes before any body event.
    Head(ResponseHead),
    /// A piece of the body, to be sent now.
    Data(Bytes),
    /// A range of a file, sent with sendfile(2).
    File(FileBody),
    /// The body is complete.
    End,
    /// The application failed after its head went out: the response cannot be completed, so the
    /// connection must close rather than leave the client waiting for bytes that never come.
    Abort,
    /// The application wants up to `max` more request body bytes. The reply carries at least one
    /// byte, or none at the end of the body.
    ReadBody {
        max: usize,
        reply: oneshot::Sender<Result<Bytes, BodyReadError>>,
    },
}

/// Why a request body could not be read.
#[derive(Debug, Clone)]
pub struct BodyReadError(pub String);

impl std::fmt::Display for BodyReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn a_spooled_body_reads_the_same_from_memory_and_from_a_file() {
        let text = b"0123456789";
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(text).unwrap();
        let bodies = [
            SpooledBody::Memory(Bytes::from_static(text)),
            SpooledBody::File { file, len: 10 },
        ];
        for body in &bodies {
            assert_eq!(body.len(), 10);
            let mut buffer = [0u8; 4];
            body.read_exact_at(&mut buffer, 3).unwrap();
            assert_eq!(&buffer, b"3456");
            body.read_exact_at(&mut buffer, 6).unwrap();
            assert_eq!(&buffer, b"6789");
            let past_the_end = body.read_exact_at(&mut buffer, 7).unwrap_err();
            assert_eq!(past_the_end.kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(body.read_exact_at(&mut buffer, u64::MAX - 1).is_err());
        }
    }
}
