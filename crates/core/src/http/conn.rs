//! One HTTP/1.x connection from accept to close: read a head, frame the body, route, respond,
//! and repeat while keep-alive allows.
//!
//! Pipelined requests are answered in order; their responses collect in the write buffer and go out
//! in one write when no further complete request is buffered. While a connection waits for its next
//! request it holds no buffers, so an idle keep-alive connection costs little memory; while it waits
//! for the rest of a head (or body) it keeps only the bytes received, so a slow client costs memory
//! in proportion to what it sent. Timeouts: the keep-alive timeout between requests, the header
//! timeout from the first byte of a head to its end, the I/O timeout for each body read or write
//! that makes no progress, and the minimum data rate of heads and bodies
//! ([`crate::http::data_rate`]).

use std::future::{poll_fn, Future};
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::access_format::AccessFormat;
use crate::config::HttpConfig;
use crate::connection::{ConnectionHandler, Ended};
use crate::error::RequestError;
use crate::http::access_log::{self, AccessRecord, Captured};
use crate::http::body::{BodyDecoder, Decoded};
use crate::http::body_budget::BodyBudget;
use crate::http::buffers;
use crate::http::data_rate::RateMeter;
use crate::http::forwarded;
use crate::http::idle_clock::{Expiry, IdleClock};
use crate::http::request;
use crate::http::response::{status_has_body, write_head};
use crate::http::router::Router;
use crate::http::transmit;
use crate::logging;
use crate::message::forwarded::Forwarded;
use crate::message::request::{Method, RequestHead};
use crate::message::response::{Body, Response};
use crate::metrics::{self, Mount};
use crate::service::Service;
use crate::shutdown::ShutdownWatch;
use crate::socket::{Peer, Socket};

mod app;
mod http2;
mod websocket;

/// Bytes requested from the socket per read: a head and a 10 KB form post arrive in one read.
const READ_CHUNK: usize = 16 * 1024;
/// Room a read of a head needs at least. Half a chunk, so that a pool buffer holding a partial
/// head still qualifies rather than being doubled.
const HEAD_READ_ROOM: usize = READ_CHUNK / 2;
/// While a body read waits, received bytes up to this many (a partial chunk-size line, say) move
/// to an allocation of their own size and the read buffer goes back; more stay where they are
/// (a body collected whole in the buffer: bounded by `--body-buffer-size`, or by the room it
/// took in `--body-memory`).
const BODY_WAIT_KEEP: usize = 1024;
/// Files up to this size are copied into the write buffer and sent with the head in one write;
/// larger ones go by sendfile.
const INLINE_FILE_LIMIT: u64 = 16 * 1024;
/// Write out buffered responses once they exceed this, even if more pipelined requests wait.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// After refusing a request, read and drop at most this much of what the client still sends, so
/// closing does not reset the connection before the client has read our answer.
const LINGER_BYTES: usize = 256 * 1024;
/// ...and for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// A keep-alive connection silent for this long leaves its task for the idle park
/// (`crate::idle_park`), where it costs about 16 bytes instead of about 1.5 KB. Parking and
/// resuming take a few microseconds, so a client that sends again within this time never pays
/// them, and one that pays them has been idle a thousand times longer.
const PARK_AFTER: Duration = Duration::from_millis(10);

/// Serves HTTP on every connection it is given.
#[derive(Debug)]
pub struct HttpHandler {
    router: Router,
    config: HttpConfig,
    /// The application that answers what no static mount serves (else: 404).
    service: Option<Arc<dyn Service>>,
    /// Memory lent to large request bodies while they are received whole (`--body-memory`).
    body_budget: BodyBudget,
    /// Deadlines of the connections waiting for their next request.
    idle_clock: Arc<IdleClock>,
    /// Requests begun and requests finished: their difference is what a forced stop cuts (for
    /// its log line and status); the finished ones count towards `--max-requests`.
    requests_begun: AtomicU64,
    requests_finished: AtomicU64,
}

impl std::fmt::Debug for dyn Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Service")
    }
}

impl HttpHandler {
    pub fn new(config: HttpConfig) -> io::Result<Self> {
        Ok(HttpHandler {
            router: Router::new(
                &config.mounts,
                config.file_cache_validity,
                config.health_path.clone(),
            )?,
            body_budget: BodyBudget::new(config.bodies.memory_budget),
            config,
            service: None,
            idle_clock: Arc::default(),
            requests_begun: AtomicU64::new(0),
            requests_finished: AtomicU64::new(0),
        })
    }

    /// Sends every request outside the static mounts to `service`.
    pub fn with_service(mut self, service: Arc<dyn Service>) -> Self {
        self.service = Some(service);
        self.router.set_app_fallback();
        self
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The access log's format, when access lines are written in one.
    fn access_format(&self) -> Option<&AccessFormat> {
        let config = &self.config;
        config
            .access_format
            .as_deref()
            .filter(|_| config.access_log)
    }
}

impl ConnectionHandler for HttpHandler {
    async fn finish(&self) {
        if let Some(service) = &self.service {
            service.finish().await;
        }
    }

    fn proxy_header_timeout(&self) -> Duration {
        self.config.timeouts.header
    }

    fn requests_in_flight(&self) -> u64 {
        let finished = self.requests_finished.load(Ordering::Relaxed);
        self.requests_begun.load(Ordering::Relaxed) - finished
    }

    fn requests_served(&self) -> u64 {
        self.requests_finished.load(Ordering::Relaxed)
    }

    fn abandon(&self, bound: Duration) {
        if let Some(service) = &self.service {
            service.abandon(bound);
        }
    }

    fn handle<S: Socket>(
        self: Arc<Self>,
        socket: S,
        peer: Peer,
        shutdown: ShutdownWatch,
        resumed: bool,
    ) -> impl Future<Output = Ended<S>> + Send {
        // Built before the async block, so the task's future holds the connection once rather
        // than also keeping the arguments it was built from.
        let mut connection = Connection {
            socket,
            peer,
            handler: self,
            read_buf: BytesMut::new(),
            write_buf: Vec::new(),
            shutdown,
            // A resumed connection has served before: it is not fresh.
            requests_served: u64::from(resumed),
        };
        let http2 = connection.handler.config.http2.enabled
            && connection.socket.tls_session().is_some_and(|tls| tls.http2);
        async move {
            if http2 {
                // Boxed: only HTTP/2 connections need room for its state.
                Box::pin(connection.serve_http2(bytes::Bytes::new())).await;
                return Ended::Closed;
            }
            match connection.run().await {
                Some(until) => Ended::Idle {
                    socket: connection.socket,
                    until,
                },
                None => Ended::Closed,
            }
        }
    }
}

/// Why a connection stops.
enum ConnError {
    /// The client sent something we refuse; answer with its status, then close.
    Request(RequestError),
    /// The socket failed or timed out; nothing more can be sent.
    Io(io::Error),
}

impl From<RequestError> for ConnError {
    fn from(error: RequestError) -> Self {
        ConnError::Request(error)
    }
}

impl From<io::Error> for ConnError {
    fn from(error: io::Error) -> Self {
        ConnError::Io(error)
    }
}

/// What reading the next request head gave.
enum Next {
    Head(RequestHead),
    /// The client opened with the HTTP/2 preface (prior knowledge): it is buffered.
    Http2,
    Close,
    /// Idle: hand the connection to the park, closing it at this deadline.
    Park(Instant),
}

/// How waiting for the first byte of a request ended.
enum Wait {
    Request,
    Close,
    Park(Instant),
}

/// How waiting for more of a head or body ended.
enum Readable {
    Ready,
    /// The wait's own limit passed (header timeout, I/O timeout).
    TimedOut,
    /// The client's average rate fell below the minimum first.
    TooSlow,
}

/// What to do after a response.
#[derive(PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
    /// Close, but first let the client finish sending (it may still be sending a body we skipped).
    LingerAndClose,
}

struct Connection<S> {
    socket: S,
    peer: Peer,
    handler: Arc<HttpHandler>,
    /// Received bytes not yet parsed; empty (no allocation) while idle.
    read_buf: BytesMut,
    /// Responses not yet written; flushed before waiting for input.
    write_buf: Vec<u8>,
    shutdown: ShutdownWatch,
    requests_served: u64,
}

impl<S: Socket> Connection<S> {
    /// Serves requests until the connection closes (`None`) or idles long enough to be parked
    /// (`Some(deadline)`: close it then if the client stays silent).
    async fn run(&mut self) -> Option<Instant> {
        loop {
            let head = match self.next_head().await {
                Ok(Next::Head(head)) => head,
                Ok(Next::Close) => break,
                Ok(Next::Park(until)) => return Some(until),
                Ok(Next::Http2) => {
                    let buffered = std::mem::take(&mut self.read_buf).freeze();
                    Box::pin(self.serve_http2(buffered)).await;
                    return None;
                }
                Err(ConnError::Request(error)) => {
                    Box::pin(self.reject(error)).await;
                    return None;
                }
                Err(ConnError::Io(error)) => {
                    tracing::debug!("connection from {} failed: {error}", self.peer);
                    return None;
                }
            };
            // Boxed: serving needs a large state machine only while a request is in flight, and
            // an idle keep-alive connection should not carry it (measured: 1344 → 896 bytes per task;
            // waiting for readability through poll_read_ready took it on to 736).
            // Not counted as finished if the task is dropped mid-request: that happens only
            // when a forced stop drops the runtime, after it has read the counts.
            self.handler.requests_begun.fetch_add(1, Ordering::Relaxed);
            let served = Box::pin(self.serve(head)).await;
            self.handler
                .requests_finished
                .fetch_add(1, Ordering::Relaxed);
            match served {
                Ok(After::KeepAlive) => continue,
                Ok(After::Close) => break,
                Ok(After::LingerAndClose) => {
                    Box::pin(self.linger_close()).await;
                    return None;
                }
                Err(ConnError::Request(error)) => {
                    Box::pin(self.reject(error)).await;
                    return None;
                }
                Err(ConnError::Io(error)) => {
                    tracing::debug!("connection from {} failed: {error}", self.peer);
                    return None;
                }
            }
        }
        if self.flush().await.is_ok() && !S::RAW_DESCRIPTOR {
            // TLS: close_notify, so the client knows the response was not cut short.
            let io_timeout = self.handler.config.timeouts.io;
            let _ = tokio::time::timeout(io_timeout, self.socket.shutdown()).await;
        }
        None
    }

    /// Reads until a complete head is buffered, unless the client closed between requests, stayed
    /// idle too long, or the worker is shutting down (`Close`), or the connection should be parked.
    ///
    /// The header timeout runs from the first byte of a head; its timer is only set up when a
    /// read has to wait (usually the bytes are there: readiness is what woke us). While it waits,
    /// the partial head is kept in an allocation of its own size and the read buffer goes back:
    /// thousands of clients trickling heads cost what they sent, not 16 KiB each.
    async fn next_head(&mut self) -> Result<Next, ConnError> {
        let mut deadline: Option<Instant> = None;
        let mut meter = RateMeter::default();
        loop {
            let preface = self.http2_preface();
            if preface == Some(true) {
                return Ok(Next::Http2);
            }
            if !self.read_buf.is_empty() && preface.is_none() {
                if let Some(head) = request::parse(&mut self.read_buf, &self.handler.config.limits)?
                {
                    return Ok(Next::Head(head));
                }
                deadline
                    .get_or_insert_with(|| Instant::now() + self.handler.config.timeouts.header);
            }
            self.flush().await?;
            if self.read_buf.is_empty() {
                match self.wait_for_request().await? {
                    Wait::Request => {}
                    Wait::Close => return Ok(Next::Close),
                    Wait::Park(until) => return Ok(Next::Park(until)),
                }
            }
            self.make_read_room(HEAD_READ_ROOM);
            let mut read = std::pin::pin!(self.socket.read_buf(&mut self.read_buf));
            let read = poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
            match read {
                Poll::Ready(Ok(0)) if self.read_buf.is_empty() => return Ok(Next::Close),
                Poll::Ready(Ok(0)) => {
                    return Err(RequestError::Malformed(
                        "connection closed before the end of the head",
                    )
                    .into())
                }
                Poll::Ready(Ok(received)) => meter.received(received),
                Poll::Ready(Err(error)) => return Err(error.into()),
                Poll::Pending => {
                    self.keep_only_received(usize::MAX);
                    let header_deadline = *deadline.get_or_insert_with(|| {
                        Instant::now() + self.handler.config.timeouts.header
                    });
                    // The rate counts from the first byte of the head.
                    let rate_applies = !self.read_buf.is_empty();
                    // Boxed: only a partial head waits here, and every idle connection's task
                    // would otherwise carry this wait's state.
                    match Box::pin(self.wait_readable(&mut meter, header_deadline, rate_applies))
                        .await?
                    {
                        Readable::Ready => {}
                        // Nothing of a request arrived (a stale readiness woke us): close quietly.
                        _ if self.read_buf.is_empty() => return Ok(Next::Close),
                        Readable::TooSlow => {
                            return Err(RequestError::TooSlow(meter.bytes_per_second()).into())
                        }
                        Readable::TimedOut => return Err(RequestError::HeaderTimeout.into()),
                    }
                }
            }
        }
    }

    /// On a connection's first request, with HTTP/2 on: whether what is buffered is the HTTP/2
    /// preface (`Some(true)`), or so far a beginning of it (`Some(false)`: read more before
    /// parsing). None: an HTTP/1.x request (or nothing yet).
    fn http2_preface(&self) -> Option<bool> {
        if self.requests_served > 0
            || !self.handler.config.http2.enabled
            || self.read_buf.is_empty()
        {
            return None;
        }
        let seen = self.read_buf.len().min(http2::PREFACE.len());
        (self.read_buf[..seen] == http2::PREFACE[..seen]).then_some(seen == http2::PREFACE.len())
    }

    /// Serves the connection as HTTP/2 to its end, reading `buffered` (what was read of it as
    /// HTTP/1.1, starting with the preface) first.
    async fn serve_http2(&mut self, buffered: bytes::Bytes) {
        let facts = http2::ConnectionFacts {
            peer: self.peer,
            local_addr: self.socket.local_addr(),
            tls: self.socket.tls_session().cloned(),
        };
        let handler = self.handler.clone();
        let io = http2::Prefixed::new(buffered, &mut self.socket);
        http2::serve(handler, io, facts, &mut self.shutdown).await;
        let io_timeout = self.handler.config.timeouts.io;
        let _ = tokio::time::timeout(io_timeout, self.socket.shutdown()).await;
    }

    /// Makes room in the read buffer for a read of at least `room` bytes: in its own allocation
    /// if nothing else holds a part of it any more, else from the spare-buffer pool when what is
    /// buffered is small (a partial head kept at its own size while waiting), else by growing it.
    fn make_read_room(&mut self, room: usize) {
        if self.read_buf.capacity() - self.read_buf.len() >= room
            || (self.read_buf.capacity() > 0 && self.read_buf.try_reclaim(room))
        {
            return;
        }
        if self.read_buf.len() + room <= buffers::READ_CAPACITY {
            let mut pooled = buffers::read_buffer();
            pooled.extend_from_slice(&self.read_buf);
            let mut old = std::mem::replace(&mut self.read_buf, pooled);
            old.clear();
            buffers::give_back_read(old);
        } else {
            self.read_buf.reserve(room.max(READ_CHUNK));
        }
    }

    /// Before waiting on the client: if at most `up_to` bytes are buffered, moves them to an
    /// allocation of their own size and gives the read buffer back to the pool.
    fn keep_only_received(&mut self, up_to: usize) {
        let len = self.read_buf.len();
        if len > up_to || self.read_buf.capacity() == len {
            return;
        }
        let kept = BytesMut::from(&self.read_buf[..]);
        let mut old = std::mem::replace(&mut self.read_buf, kept);
        old.clear();
        buffers::give_back_read(old);
    }

    /// Waits, holding no buffers, for the first byte of the next request.
    ///
    /// A keep-alive connection silent for [`PARK_AFTER`] is parked for the rest of its timeout.
    /// While the worker drains, a silent connection stays open until the drain's idle deadline
    /// (its client may be sending a request right now, unaware that we are about to close); a
    /// request that arrives meanwhile is served and answered with `Connection: close`.
    ///
    /// The buffers go back before the wait, not when parking: keeping them through the first
    /// 10 ms made 10,000 connections answered in one burst hold 20 KB each at once, and the
    /// freed memory stayed in the heap (idle memory per connection went from about 100 bytes to
    /// 1.5 KB in bench/run.sh).
    async fn wait_for_request(&mut self) -> io::Result<Wait> {
        let fresh = self.requests_served == 0;
        buffers::give_back(
            std::mem::take(&mut self.read_buf),
            std::mem::take(&mut self.write_buf),
        );
        loop {
            let timeouts = &self.handler.config.timeouts;
            let idle_limit = if fresh {
                timeouts.header
            } else {
                timeouts.keepalive
            };
            let (wait, park) = match self.shutdown.idle_deadline() {
                Some(until) => (
                    until
                        .saturating_duration_since(Instant::now())
                        .min(idle_limit),
                    false,
                ),
                // A TLS connection's session is not in its descriptor: it cannot be parked.
                None if S::RAW_DESCRIPTOR && !fresh && PARK_AFTER < idle_limit => {
                    (PARK_AFTER, true)
                }
                None => (idle_limit, false),
            };
            let socket = &self.socket;
            let expiry = self.handler.idle_clock.start(wait, &self.shutdown);
            let waited = tokio::select! {
                biased;
                ready = poll_fn(|cx| socket.poll_read_ready(cx)) => return ready.map(|_| Wait::Request),
                why = poll_fn(|cx| expiry.poll_expired(cx)) => why,
            };
            match waited {
                // The drain may have begun after the wait did (the clock has not yet told its
                // waits): a draining worker's park takes no connections.
                Expiry::Deadline if park && self.shutdown.is_shutting_down() => continue,
                Expiry::Deadline if park => {
                    return Ok(Wait::Park(Instant::now() + (idle_limit - wait)))
                }
                Expiry::Deadline => {
                    tracing::debug!("closing idle connection from {}", self.peer);
                    return Ok(Wait::Close);
                }
                // The drain began: wait again, until its idle deadline.
                Expiry::Shutdown => continue,
            }
        }
    }

    async fn serve(&mut self, head: RequestHead) -> Result<After, ConnError> {
        let started = Instant::now();
        if self.write_buf.capacity() == 0 {
            self.write_buf = buffers::write_buffer();
        }
        let mut after = if head.keep_alive && !self.shutdown.is_shutting_down() {
            After::KeepAlive
        } else {
            After::Close
        };
        let mut body = BodyDecoder::new(head.framing, self.handler.config.limits.max_body_size);
        if body
            .declared_remaining()
            .is_some_and(|n| n > self.handler.config.limits.max_body_size)
        {
            return Err(RequestError::BodyTooLarge.into());
        }
        if let Some(service) = &self.handler.service {
            if !self.handler.router.answers(&head) {
                let service = service.clone();
                if service.takes_websockets() && websocket::asks_for_websocket(&head) {
                    return self.serve_websocket(service.as_ref(), head, started).await;
                }
                return self
                    .serve_app(service.as_ref(), head, body, after, started)
                    .await;
            }
        }
        if !body.is_done() {
            if head.expect_continue {
                // Static handlers have no use for the body: answer now instead of inviting it.
                after = After::LingerAndClose;
            } else {
                self.discard_body(&mut body).await?;
            }
        }

        let routed = self.handler.router.respond(&head);
        let captured = self
            .access_format()
            .and_then(|format| format.capture_static_response(&routed.response));
        if let Some(why) = routed.rejection {
            tracing::info!(
                "refused {} {} from {}: {why}",
                head.method_str(),
                head.target(),
                self.peer
            );
        }
        let status = routed.response.status;
        let mount = if self.handler.router.is_health_check(head.path_and_query().0) {
            Mount::Health
        } else {
            Mount::Static
        };
        if after == After::KeepAlive && self.shutdown.is_shutting_down() {
            // The drain began while the body was read: this is the connection's last answer.
            after = After::Close;
        }
        let sent = self
            .write_response(
                routed.response,
                head.method == Method::Head,
                after == After::KeepAlive,
            )
            .await?;
        self.requests_served += 1;
        metrics::record_request(mount, status, sent, started.elapsed());
        if self.handler.config.access_log {
            let record = AccessRecord {
                peer: self.client(self.forwarded(&head)),
                request_line: head.request_line_bytes(),
                status,
                body_bytes: sent,
                started,
                head: Some(&head),
                captured: captured.as_ref(),
            };
            log_access(self.handler.config.access_format.as_deref(), &record);
        }
        Ok(after)
    }

    /// The access log's format, when access lines are written in one.
    fn access_format(&self) -> Option<&AccessFormat> {
        self.handler.access_format()
    }

    /// The request header values the access line will show, if the access log format shows any.
    fn capture_request(&self, head: &RequestHead) -> Option<Captured> {
        self.access_format()?.capture_request(head)
    }

    /// What a trusted proxy's headers say about this request's client (None for most requests:
    /// no such header, or an untrusted peer).
    fn forwarded(&self, head: &RequestHead) -> Option<Forwarded> {
        forwarded::resolve(head, self.peer, &self.handler.config.forwarded_allow_ips)
    }

    /// The request's client as the access log names it.
    fn client(&self, forwarded: Option<Forwarded>) -> Peer {
        forwarded.map_or(self.peer, |forwarded| forwarded.client_peer(self.peer))
    }

    /// Reads and drops a request body the handler does not want.
    async fn discard_body(&mut self, body: &mut BodyDecoder) -> Result<(), ConnError> {
        let mut meter = RateMeter::default();
        loop {
            match body.decode(&mut self.read_buf, usize::MAX)? {
                Decoded::Data(_) => continue,
                Decoded::Done => return Ok(()),
                Decoded::NeedMore => self.read_more(&mut meter, READ_CHUNK).await?,
            }
        }
    }

    /// Reads at least one more byte of a body into room for `room`, or fails on EOF, a stall
    /// (`--io-timeout` without progress) or a client below the minimum data rate, as `meter`
    /// measures it for this body.
    ///
    /// The read is tried first without a timer; only a read that has to wait sets one up, with
    /// the earlier of the two deadlines. While it waits, a nearly empty read buffer goes back to
    /// the pool (see [`BODY_WAIT_KEEP`]).
    async fn read_more(&mut self, meter: &mut RateMeter, room: usize) -> Result<(), ConnError> {
        loop {
            self.make_read_room(room);
            let mut read = std::pin::pin!(self.socket.read_buf(&mut self.read_buf));
            match poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await {
                Poll::Ready(Ok(0)) => {
                    return Err(RequestError::Malformed(
                        "connection closed in the middle of the body",
                    )
                    .into())
                }
                Poll::Ready(Ok(received)) => {
                    meter.received(received);
                    return Ok(());
                }
                Poll::Ready(Err(error)) => return Err(error.into()),
                Poll::Pending => {}
            }
            self.keep_only_received(BODY_WAIT_KEEP);
            let stalled = Instant::now() + self.handler.config.timeouts.io;
            match self.wait_readable(meter, stalled, true).await? {
                Readable::Ready => {}
                Readable::TooSlow => {
                    return Err(RequestError::TooSlow(meter.bytes_per_second()).into())
                }
                Readable::TimedOut => {
                    return Err(
                        io::Error::new(io::ErrorKind::TimedOut, "request body stalled").into(),
                    )
                }
            }
        }
    }

    /// Waits until the client sends more, at most until `limit`, or (if `rate_applies`) until
    /// its average rate falls below `--min-data-rate`, whichever comes first: one timer either
    /// way. The time waited counts towards the rate in `meter`.
    async fn wait_readable(
        &self,
        meter: &mut RateMeter,
        limit: Instant,
        rate_applies: bool,
    ) -> Result<Readable, ConnError> {
        let now = Instant::now();
        let too_slow = rate_applies
            .then(|| meter.deadline(self.handler.config.min_data_rate, now))
            .flatten()
            .filter(|&deadline| deadline < limit);
        let socket = &self.socket;
        let ready = tokio::time::timeout_at(
            too_slow.unwrap_or(limit).into(),
            poll_fn(|cx| socket.poll_read_ready(cx)),
        )
        .await;
        meter.waited(now.elapsed());
        match ready {
            Ok(Ok(())) => Ok(Readable::Ready),
            Ok(Err(error)) => Err(error.into()),
            Err(_) if too_slow.is_some() => Ok(Readable::TooSlow),
            Err(_) => Ok(Readable::TimedOut),
        }
    }

    /// Buffers (or sends) one response; returns the body bytes sent.
    async fn write_response(
        &mut self,
        response: Response,
        is_head: bool,
        keep_alive: bool,
    ) -> io::Result<u64> {
        let has_body = status_has_body(response.status);
        let length = response.body.len();
        let response_start = self.write_buf.len();
        write_head(
            &mut self.write_buf,
            response.status,
            &response.headers,
            has_body.then_some(length),
            keep_alive,
        );
        if is_head || !has_body {
            return Ok(0);
        }
        match response.body {
            Body::Empty => {}
            Body::Bytes(bytes) => self.write_buf.extend_from_slice(&bytes),
            Body::File(file) if file.len <= INLINE_FILE_LIMIT => {
                let start = self.write_buf.len();
                self.write_buf.resize(start + file.len as usize, 0);
                if let Err(error) = file
                    .file
                    .read_exact_at(&mut self.write_buf[start..], file.offset)
                {
                    // The promised length cannot be honoured: drop this response (keeping the
                    // answers to earlier pipelined requests), send what is complete, and close.
                    self.write_buf.truncate(response_start);
                    let _ = self.flush().await;
                    return Err(error);
                }
            }
            Body::File(file) => {
                let io_timeout = self.handler.config.timeouts.io;
                transmit::head_and_file(
                    &mut self.socket,
                    &self.write_buf,
                    &file.file,
                    file.offset,
                    file.len,
                    io_timeout,
                )
                .await?;
                self.write_buf.clear();
            }
        }
        if self.write_buf.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(length)
    }

    /// Writes out the buffered responses. The socket usually takes them in one write; the I/O
    /// timeout's timer is only set up when it does not.
    async fn flush(&mut self) -> io::Result<()> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let socket = &mut self.socket;
        let buffer = &self.write_buf;
        let written =
            match poll_fn(|cx| Poll::Ready(Pin::new(&mut *socket).poll_write(cx, buffer))).await {
                Poll::Ready(result) => result?,
                Poll::Pending => 0,
            };
        if written < self.write_buf.len() {
            let rest = self.socket.write_all(&self.write_buf[written..]);
            match tokio::time::timeout(self.handler.config.timeouts.io, rest).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading",
                    ))
                }
            }
        }
        self.write_buf.clear();
        if !S::RAW_DESCRIPTOR {
            // TLS: records the kernel did not take yet wait in rustls until flushed.
            transmit::flush_within(&mut self.socket, self.handler.config.timeouts.io).await?;
        }
        Ok(())
    }

    /// Answers a refused request with its status and closes the connection.
    async fn reject(&mut self, error: RequestError) {
        tracing::info!("rejected request from {}: {error}", self.peer);
        let status = error.status();
        let response = Response::error_page(status);
        if let Ok(sent) = self.write_response(response, false, false).await {
            metrics::record_request(Mount::None, status, sent, Duration::ZERO);
            if self.handler.config.access_log {
                let record = AccessRecord {
                    peer: self.peer,
                    request_line: b"-",
                    status,
                    body_bytes: sent,
                    started: Instant::now(),
                    head: None,
                    captured: None,
                };
                log_access(self.handler.config.access_format.as_deref(), &record);
            }
            self.linger_close().await;
        }
    }

    /// Sends what is buffered, half-closes, and drains the client's leftovers for a moment, so the
    /// kernel does not answer unread data with a reset that destroys our last response.
    async fn linger_close(&mut self) {
        if self.flush().await.is_err() {
            return;
        }
        let _ = self.socket.shutdown().await;
        let mut drained = 0;
        // On the heap: an array here would enlarge every connection's task, idle or not.
        let mut scratch = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + LINGER_TIME;
        while drained < LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.socket.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            }
        }
    }
}

/// Logs one access line: by default `127.0.0.1 "GET / HTTP/1.1" 200 13 42us`, else in the
/// `--access-log-format` (and as JSON with `--log-format json`): see [`access_log::append_line`].
fn log_access(format: Option<&AccessFormat>, record: &AccessRecord<'_>) {
    logging::access_line(format.is_some(), |out, style| {
        access_log::append_line(out, style, format, record, |out| {
            append_peer(out, record.peer)
        });
    });
}

/// The client's address as the access log shows it. The text of the last address a thread
/// wrote is kept: a connection's requests (and a proxy's many connections) repeat one address,
/// and copying its text costs a tenth of formatting it (callgrind, 2026-12-04: about 230
/// instructions per IPv4 request before).
fn append_peer(out: &mut Vec<u8>, peer: Peer) {
    use std::cell::RefCell;
    use std::net::IpAddr;
    /// Room for the longest address text (an IPv4-mapped IPv6 address is 45 bytes).
    const TEXT_ROOM: usize = 48;
    thread_local! {
        static LAST: RefCell<(Option<IpAddr>, [u8; TEXT_ROOM], u8)> =
            const { RefCell::new((None, [0; TEXT_ROOM], 0)) };
    }
    let Peer::Tcp(addr) = peer else {
        out.extend_from_slice(b"unix");
        return;
    };
    let ip = addr.ip();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != Some(ip) {
            let mut text = Vec::with_capacity(TEXT_ROOM);
            append_ip(&mut text, ip);
            let len = text.len().min(TEXT_ROOM);
            last.1[..len].copy_from_slice(&text[..len]);
            last.0 = Some(ip);
            last.2 = len as u8;
        }
        out.extend_from_slice(&last.1[..last.2 as usize]);
    });
}

/// An address's text: IPv4 digit by digit (through `Display` it was about 1% of a WSGI
/// hello-world request), IPv6 through `Display`.
fn append_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(ip) => {
            let mut number = itoa::Buffer::new();
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(number.format(octet).as_bytes());
            }
        }
        std::net::IpAddr::V6(ip) => {
            use std::io::Write;
            let _ = write!(out, "{ip}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_text_follows_the_address_each_time() {
        let text = |peer: Peer| {
            let mut out = b"x".to_vec();
            append_peer(&mut out, peer);
            String::from_utf8(out).unwrap()
        };
        let v4 = Peer::Tcp("10.1.22.255:80".parse().unwrap());
        let v6 = Peer::Tcp("[2001:db8::1]:443".parse().unwrap());
        let mapped = Peer::Tcp("[::ffff:192.0.2.128]:1".parse().unwrap());
        for _ in 0..2 {
            assert_eq!(text(v4), "x10.1.22.255");
            assert_eq!(text(v4), "x10.1.22.255");
            assert_eq!(text(v6), "x2001:db8::1");
            assert_eq!(text(Peer::Unix), "xunix");
            assert_eq!(text(mapped), "x::ffff:192.0.2.128");
        }
    }

    /// Every connection's task is at least this big, even in the moments between requests before
    /// it is parked; keep it small.
    #[test]
    fn an_idle_connection_task_stays_small() {
        let config = HttpConfig {
            limits: Default::default(),
            timeouts: Default::default(),
            mounts: vec![],
            access_log: false,
            access_format: None,
            file_cache_validity: Duration::from_secs(1),
            bodies: Default::default(),
            min_data_rate: Default::default(),
            health_path: None,
            forwarded_allow_ips: Default::default(),
            websocket: Default::default(),
            http2: Default::default(),
        };
        let handler = Arc::new(HttpHandler::new(config).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (socket, _peer) = tokio::net::UnixStream::pair().unwrap();
            let shutdown = crate::shutdown::Shutdown::new();
            let task = handler.handle(socket, Peer::Unix, shutdown.watch(), false);
            let size = std::mem::size_of_val(&task);
            assert!(size <= 640, "connection task is {size} bytes");
        });
    }
}
