//! The connection's side of a request answered by the application ([`Service`]), following the
//! conversation described in [`crate::service`].
//!
//! By default the whole request body is received before the application is called (in memory,
//! or in a temporary file when large: [`crate::http::spool`]), so a slow uploader holds no
//! application thread, and the application reads a body that is all there. With
//! `--stream-request-body`, only small Content-Length bodies are read first; larger and chunked
//! ones are read from the socket when the application asks.
//! The response is framed here: Content-Length when known (and then enforced: a body that is
//! shorter or longer closes the connection rather than corrupt the next response), chunked for
//! an HTTP/1.1 client otherwise, or ended by closing the connection for HTTP/1.0.
//! With `--request-timeout`, a wait on the application for its head or for the next piece of its
//! body is bounded: past it the client gets 504 (or, once the head is out, the connection closes)
//! and the application is told before the call is dropped.

use std::future::poll_fn;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{After, ConnError, Connection, READ_CHUNK};
use crate::error::RequestError;
use crate::http::access_log::AccessRecord;
use crate::http::body::{BodyDecoder, Decoded};
use crate::http::data_rate::RateMeter;
use crate::http::date;
use crate::http::response::{status_has_body, SERVER_NAME};
use crate::http::spool::{BodySpool, ReceivedBody};
use crate::http::transmit;
use crate::message::request::{BodyFraming, Method, RequestHead, Version};
use crate::message::response::{FileBody, Response};
use crate::metrics::{self, Mount};
use crate::service::{
    AppEvent, BodyReadError, RequestBody, RequestTimeout, ResponseHead, Service, ServiceCall,
    ServiceRequest, SpooledBody,
};
use crate::socket::Socket;

/// With `--stream-request-body`: Content-Length bodies up to this size are still read in full
/// before the application is called.
const PREFETCH_LIMIT: u64 = 64 * 1024;
/// When the application ignored the request body, at most this much is read and dropped to keep
/// the connection open; a larger remainder closes it instead.
const DISCARD_LIMIT: u64 = 256 * 1024;
/// Body pieces at least this large are written straight from the application's buffer (with what
/// is buffered before them, in one writev) instead of being copied behind the head.
const DIRECT_WRITE: usize = 16 * 1024;
/// Room for each socket read while a body streams into a temporary file: what it brings goes to
/// the file in one write. Measured on a 10 MB body (bench/NOTES.md, 2026-12-04): 16 KiB pieces
/// took about twice the CPU of 256 KiB ones, in reads and in writes. Held only while bytes flow:
/// a read that has to wait gives the buffer back first.
const SPOOL_READ: usize = 256 * 1024;
/// The status the access log and the metrics show for a request whose client went away before
/// any response was sent (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;
/// The interim answer to `Expect: 100-continue` (RFC 9110 §10.1.1).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body bytes go out: HEAD, 1xx, 204, 304.
    NoBody,
    /// This many bytes are still owed.
    Length(u64),
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    UntilClose,
}

/// How waiting for the application's next event ended.
enum Waited {
    /// The application's event, to handle.
    Event(AppEvent),
    /// `--request-timeout` passed first, after this long.
    TimedOut(Duration),
}

/// What the connection knows about the response so far.
struct Progress {
    /// None until the head is written.
    framing: Option<Framing>,
    status: u16,
    /// Body bytes written.
    sent: u64,
    continue_sent: bool,
}

impl<S: Socket> Connection<S> {
    pub(super) async fn serve_app(
        &mut self,
        service: &dyn Service,
        head: RequestHead,
        mut body: BodyDecoder,
        mut after: After,
        started: Instant,
    ) -> Result<After, ConnError> {
        let is_head = head.method == Method::Head;
        let http11 = head.version == Version::Http11;
        let expect_continue = head.expect_continue;
        let request_timeout = self.handler.config.timeouts.request;
        let request_line = (self.handler.config.access_log || request_timeout.is_some())
            .then(|| head.request_line());
        let mut captured = self.capture_request(&head);
        let mut progress = Progress {
            framing: None,
            status: 0,
            sent: 0,
            continue_sent: false,
        };
        // How fast the client sends this body, over all the reads of it.
        let mut meter = RateMeter::default();
        let receiving = (!body.is_done()).then(metrics::BodyReceiving::start);
        let request_body = if self.handler.config.bodies.buffer && !service.streams_request_body() {
            match self
                .receive_whole_body(&mut body, head.framing, expect_continue, &mut meter)
                .await?
            {
                Some(whole) => whole,
                None => return Ok(After::LingerAndClose),
            }
        } else {
            self.prefetch_small_body(&mut body, head.framing, expect_continue, &mut meter)
                .await?
        };
        drop(receiving);
        progress.continue_sent = expect_continue && request_body.complete;
        let local_addr = if head.host().is_none() {
            self.socket.local_addr()
        } else {
            None
        };
        let forwarded = self.forwarded(&head);
        let request = ServiceRequest {
            head,
            peer: self.peer,
            forwarded,
            local_addr,
            tls: self.socket.tls_session().cloned(),
            body: request_body,
        };
        let mut call = service.call(request);
        let mut watch_client = service.watches_client();
        // The client went away (a failed write, or the watch saw it close): the call ends, and
        // the request is still logged and counted.
        let mut client_gone: Option<std::io::Error> = None;

        loop {
            // Only once the body is read: until then its bytes are the application's to ask for.
            let watching = watch_client && body.is_done() && self.read_buf.is_empty();
            let event = match self
                .next_app_event(call.as_mut(), watching.then_some(&mut watch_client))
                .await
            {
                Ok(Waited::Event(event)) => event,
                Err(ConnError::Io(error)) => {
                    client_gone = Some(error);
                    break;
                }
                Err(error) => return Err(error),
                Ok(Waited::TimedOut(waited)) => {
                    call.timed_out(RequestTimeout {
                        request_line: request_line.clone().unwrap_or_default(),
                        peer: self.peer,
                        waited,
                        elapsed: started.elapsed(),
                        head_sent: progress.framing.is_some(),
                    });
                    after = After::Close;
                    if progress.framing.is_none() {
                        // RFC 9110 §15.6.5: the server acting for the application got no
                        // answer from it in time.
                        progress.status = 504;
                        progress.sent = self
                            .write_response(Response::error_page(504), is_head, false)
                            .await?;
                    }
                    // Otherwise the body stops short: closing (no last chunk, or fewer bytes
                    // than the Content-Length) tells the client it is incomplete.
                    break;
                }
            };
            match event {
                AppEvent::Head(response) => {
                    if after == After::KeepAlive && self.shutdown.is_shutting_down() {
                        // The drain began during the call: this is the connection's last answer.
                        after = After::Close;
                    }
                    // Answering before the body is read: if what is left of it cannot be skipped
                    // afterwards, say now that the connection will close (RFC 9112 §9.6).
                    if !body.is_done()
                        && !can_discard(&body, expect_continue && !progress.continue_sent)
                    {
                        after = After::LingerAndClose;
                    }
                    let framing = if is_head || !status_has_body(response.status) {
                        Framing::NoBody
                    } else if let Some(length) = response.content_length {
                        Framing::Length(length)
                    } else if http11 {
                        Framing::Chunked
                    } else {
                        after = After::Close;
                        Framing::UntilClose
                    };
                    write_app_head(
                        &mut self.write_buf,
                        &response,
                        framing,
                        after == After::KeepAlive,
                    );
                    progress.framing = Some(framing);
                    progress.status = response.status;
                    if let Some(format) = &self.handler.config.access_format {
                        format.capture_app_response(captured.as_mut(), &response);
                    }
                }
                AppEvent::Data(bytes) => {
                    match self.write_app_body(&mut progress, bytes).await {
                        Ok(true) => {}
                        Ok(false) => {
                            after = After::Close;
                            break;
                        }
                        Err(ConnError::Io(error)) => {
                            client_gone = Some(error);
                            break;
                        }
                        Err(error) => return Err(error),
                    }
                    if self.write_buf.len() >= super::FLUSH_THRESHOLD {
                        if let Err(error) = self.flush().await {
                            client_gone = Some(error);
                            break;
                        }
                    }
                }
                AppEvent::File(file) => match self.send_app_file(&mut progress, file).await {
                    Ok(true) => {}
                    Ok(false) => {
                        after = After::Close;
                        break;
                    }
                    Err(ConnError::Io(error)) => {
                        client_gone = Some(error);
                        break;
                    }
                    Err(error) => return Err(error),
                },
                AppEvent::End => {
                    match progress.framing {
                        Some(Framing::Length(missing)) if missing > 0 => {
                            tracing::error!(
                                "application response for {} ended {missing} bytes short of its Content-Length; closing the connection",
                                self.peer
                            );
                            after = After::Close;
                        }
                        Some(Framing::Chunked) => self.write_buf.extend_from_slice(b"0\r\n\r\n"),
                        Some(_) => {}
                        None => {
                            // A service must send a head first; answer for it rather than hang.
                            tracing::error!("application ended without a response head");
                            return Err(RequestError::Internal.into());
                        }
                    }
                    break;
                }
                AppEvent::Abort => {
                    if progress.framing.is_none() {
                        return Err(RequestError::Internal.into());
                    }
                    after = After::Close;
                    break;
                }
                AppEvent::ReadBody { max, reply } => {
                    if expect_continue && !progress.continue_sent && progress.framing.is_none() {
                        self.write_buf.extend_from_slice(CONTINUE);
                        progress.continue_sent = true;
                    }
                    // What is buffered goes out before we wait on the client (it may wait on us).
                    self.flush().await?;
                    match self.read_body_piece(&mut body, max, &mut meter).await {
                        Ok(bytes) => {
                            let _ = reply.send(Ok(bytes));
                        }
                        Err(error) => {
                            let message = match &error {
                                ConnError::Request(RequestError::BodyTooLarge) => {
                                    "request body is larger than --max-body-size".to_string()
                                }
                                ConnError::Request(error) => error.to_string(),
                                ConnError::Io(error) => {
                                    format!("reading the request body failed: {error}")
                                }
                            };
                            let _ = reply.send(Err(BodyReadError(message)));
                            drop(call);
                            // The client caused this: one INFO line (the application's exception
                            // is not logged, see the WSGI bridge), never an error.
                            return match error {
                                // The client gets the status (and `reject` logs it) only if no
                                // response has started.
                                ConnError::Request(error) if progress.framing.is_none() => {
                                    Err(error.into())
                                }
                                ConnError::Request(error) => {
                                    tracing::info!(
                                        "request body from {} failed after the response started: {error}",
                                        self.peer
                                    );
                                    let _ = self.flush().await;
                                    Err(std::io::Error::other(
                                        "bad request body after the response started",
                                    )
                                    .into())
                                }
                                ConnError::Io(error) => {
                                    tracing::info!(
                                        "request body from {} failed: {error}",
                                        self.peer
                                    );
                                    Err(error.into())
                                }
                            };
                        }
                    }
                }
            }
        }
        // Done with the application: dropping the call lets it release the response (close()).
        drop(call);

        if let Some(error) = &client_gone {
            tracing::debug!(
                "client {} went away during its response: {error}",
                self.peer
            );
            after = After::Close;
            if progress.framing.is_none() {
                // nginx's "client closed request": no status was ever sent.
                progress.status = CLIENT_CLOSED_REQUEST;
            }
        } else if !body.is_done() {
            if after == After::KeepAlive
                && can_discard(&body, expect_continue && !progress.continue_sent)
            {
                // The answer goes out first: the client may not send the rest before it has it.
                self.flush().await?;
                self.discard_body(&mut body).await?;
            } else {
                // Unread body bytes would make closing reset the connection, and the reset can
                // destroy the response before the client reads it: drain for a moment first.
                after = After::LingerAndClose;
            }
        }
        self.requests_served += 1;
        metrics::record_request(
            Mount::App,
            progress.status,
            progress.sent,
            started.elapsed(),
        );
        if let Some(request_line) = request_line.filter(|_| self.handler.config.access_log) {
            let record = AccessRecord {
                peer: self.client(forwarded),
                request_line: &request_line,
                status: progress.status,
                body_bytes: progress.sent,
                started,
                head: None,
                captured: captured.as_ref(),
            };
            super::log_access(self.handler.config.access_format.as_deref(), &record);
        }
        Ok(after)
    }

    /// The application's next event. What is ready is taken without waiting; what is buffered
    /// is written out only when the application has nothing more for now (a whole small
    /// response goes in one write). Only then, with `--request-timeout`, is a timer set up: it
    /// measures the wait on the application alone, not the time the client took to read.
    ///
    /// With `watch_client` (see [`Service::watches_client`]), a client that goes away meanwhile
    /// ends the wait with an error (the call is then dropped); one that sends more (a pipelined
    /// request) is still there, so the watch stops for this request and its bytes wait.
    async fn next_app_event(
        &mut self,
        call: &mut dyn ServiceCall,
        watch_client: Option<&mut bool>,
    ) -> Result<Waited, ConnError> {
        if let Poll::Ready(event) = poll_fn(|cx| Poll::Ready(call.poll_event(cx))).await {
            return Ok(Waited::Event(event));
        }
        self.flush().await?;
        let socket = &self.socket;
        let mut watch_client = watch_client;
        let next = poll_fn(|cx| {
            if let Poll::Ready(event) = call.poll_event(cx) {
                return Poll::Ready(Ok(event));
            }
            if let Some(watching) = watch_client.as_deref_mut().filter(|w| **w) {
                match client_presence(socket, cx) {
                    Poll::Ready(Presence::Gone(error)) => return Poll::Ready(Err(error)),
                    Poll::Ready(Presence::SentMore) => *watching = false,
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        });
        let Some(limit) = self.handler.config.timeouts.request else {
            return Ok(Waited::Event(next.await?));
        };
        let waiting_since = Instant::now();
        match tokio::time::timeout(limit, next).await {
            Ok(event) => Ok(Waited::Event(event?)),
            Err(_) => Ok(Waited::TimedOut(waiting_since.elapsed())),
        }
    }

    /// Receives the whole body before the application is called (the default): in memory up to
    /// `--body-buffer-size`, larger ones in memory too if the worker's `--body-memory` has room
    /// for their Content-Length (waiting for it a moment: [`crate::http::body_budget`]), the rest
    /// in a temporary file. `Expect: 100-continue` is answered once that is settled, as nginx
    /// does when it starts reading a body (a body over `--max-body-size` was refused before this,
    /// without one). None: the body could not be stored; a 500 went out.
    async fn receive_whole_body(
        &mut self,
        body: &mut BodyDecoder,
        framing: BodyFraming,
        expect_continue: bool,
        meter: &mut RateMeter,
    ) -> Result<Option<RequestBody>, ConnError> {
        let content_length = match framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        if body.is_done() {
            return Ok(Some(RequestBody {
                prefetched: Bytes::new(),
                spooled: None,
                complete: true,
                content_length,
            }));
        }
        let handler = self.handler.clone();
        let memory_limit = handler.config.bodies.memory_limit as u64;
        let room = match content_length {
            Some(length) if length > memory_limit => handler.body_budget.reserve(length).await,
            _ => None,
        };
        if expect_continue {
            self.write_buf.extend_from_slice(CONTINUE);
            self.flush().await?;
        }
        let (prefetched, spooled) = match (content_length, room) {
            (Some(length), None) if length <= memory_limit => {
                let bytes = self.read_whole_body(body, length as usize, meter).await?;
                (bytes, None)
            }
            (Some(length), Some(room)) => {
                let bytes = self.read_whole_body(body, length as usize, meter).await?;
                self.let_go_of_body_allocation();
                (Bytes::new(), Some(SpooledBody::Memory(room.hold(bytes))))
            }
            _ => {
                let Some(received) = self.spool_body(body, content_length, meter).await? else {
                    return Ok(None);
                };
                match received {
                    ReceivedBody::Memory(bytes) => (bytes, None),
                    ReceivedBody::File(file, len) => {
                        (Bytes::new(), Some(SpooledBody::File { file, len }))
                    }
                }
            }
        };
        // A chunked body received whole has a length now (as nginx passes it on).
        let len = spooled
            .as_ref()
            .map_or(prefetched.len() as u64, SpooledBody::len);
        Ok(Some(RequestBody {
            prefetched,
            spooled,
            complete: true,
            content_length: Some(len),
        }))
    }

    /// Receives a body that memory does not take whole: a chunked one (in memory while it stays
    /// within `--body-buffer-size`), or one too large for `--body-memory` or that found no room
    /// there. Past memory, each read asks the socket for up to [`SPOOL_READ`] bytes and what it
    /// brings goes to the file in one write. None: the file could not be made or written; a 500
    /// went out.
    async fn spool_body(
        &mut self,
        body: &mut BodyDecoder,
        content_length: Option<u64>,
        meter: &mut RateMeter,
    ) -> Result<Option<ReceivedBody>, ConnError> {
        let handler = self.handler.clone();
        let config = &handler.config.bodies;
        let mut spool = BodySpool::new(config, content_length);
        loop {
            match body.decode(&mut self.read_buf, usize::MAX)? {
                Decoded::Data(piece) => {
                    if let Err(error) = spool.push(&piece) {
                        tracing::error!(
                            "could not keep the request body from {} in {}: {error}",
                            self.peer,
                            config.temp_dir.display()
                        );
                        let response = Response::error_page(500);
                        self.write_response(response, false, false).await?;
                        return Ok(None);
                    }
                }
                Decoded::Done => break,
                Decoded::NeedMore if spool.in_file() => self.read_more(meter, SPOOL_READ).await?,
                Decoded::NeedMore => self.read_more(meter, READ_CHUNK).await?,
            }
        }
        Ok(Some(spool.finish()))
    }

    /// After a large body was split off the read buffer, whatever follows it (a pipelined
    /// request) moves to an allocation of its own: the body's allocation is freed with the body
    /// rather than kept by the connection's next reads.
    fn let_go_of_body_allocation(&mut self) {
        let rest = std::mem::take(&mut self.read_buf);
        if !rest.is_empty() {
            self.read_buf = BytesMut::from(&rest[..]);
        }
    }

    /// With `--stream-request-body`: reads a small Content-Length body (unless the client waits
    /// for `100 Continue`); the rest of any body is read when the application asks.
    async fn prefetch_small_body(
        &mut self,
        body: &mut BodyDecoder,
        framing: BodyFraming,
        expect_continue: bool,
        meter: &mut RateMeter,
    ) -> Result<RequestBody, ConnError> {
        let content_length = match framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        let mut prefetched = Bytes::new();
        if let Some(length) =
            content_length.filter(|&n| n > 0 && n <= PREFETCH_LIMIT && !expect_continue)
        {
            prefetched = self.read_whole_body(body, length as usize, meter).await?;
        }
        Ok(RequestBody {
            prefetched,
            spooled: None,
            complete: body.is_done(),
            content_length,
        })
    }

    /// Reads a whole Content-Length body of `length` bytes as one piece: the bytes collect in the
    /// read buffer (grown at most once to hold them) and are split off it without a copy. A small
    /// body that came with its head is already there: no read, no copy.
    async fn read_whole_body(
        &mut self,
        body: &mut BodyDecoder,
        length: usize,
        meter: &mut RateMeter,
    ) -> Result<Bytes, ConnError> {
        while self.read_buf.len() < length {
            let missing = length - self.read_buf.len();
            self.read_more(meter, missing).await?;
        }
        match body.decode(&mut self.read_buf, length)? {
            Decoded::Data(piece) => Ok(piece),
            Decoded::Done | Decoded::NeedMore => Ok(Bytes::new()),
        }
    }

    /// The next piece of the body, at most `max` bytes; empty at its end.
    async fn read_body_piece(
        &mut self,
        body: &mut BodyDecoder,
        max: usize,
        meter: &mut RateMeter,
    ) -> Result<Bytes, ConnError> {
        loop {
            match body.decode(&mut self.read_buf, max.max(1))? {
                Decoded::Data(piece) => return Ok(piece),
                Decoded::Done => return Ok(Bytes::new()),
                Decoded::NeedMore => self.read_more(meter, READ_CHUNK).await?,
            }
        }
    }

    /// Buffers one piece of the body in the response's framing. False: the application sent
    /// more than its Content-Length; what fitted is buffered and the connection must close.
    async fn write_app_body(
        &mut self,
        progress: &mut Progress,
        bytes: Bytes,
    ) -> Result<bool, ConnError> {
        match progress.framing {
            None => {
                tracing::error!("application sent body bytes before its head");
                Err(RequestError::Internal.into())
            }
            Some(Framing::NoBody) => Ok(true),
            Some(Framing::Length(remaining)) => {
                let fits = (bytes.len() as u64).min(remaining) as usize;
                self.put_body(&bytes[..fits]).await?;
                progress.sent += fits as u64;
                progress.framing = Some(Framing::Length(remaining - fits as u64));
                if fits < bytes.len() {
                    self.log_overlong();
                    return Ok(false);
                }
                Ok(true)
            }
            Some(Framing::Chunked) => {
                if !bytes.is_empty() {
                    append_chunk_size(&mut self.write_buf, bytes.len() as u64);
                    self.put_body(&bytes).await?;
                    self.write_buf.extend_from_slice(b"\r\n");
                    progress.sent += bytes.len() as u64;
                }
                Ok(true)
            }
            Some(Framing::UntilClose) => {
                self.put_body(&bytes).await?;
                progress.sent += bytes.len() as u64;
                Ok(true)
            }
        }
    }

    /// Sends a file range in the response's framing (sendfile(2), or a copy through TLS). False: as for
    /// [`Self::write_app_body`].
    async fn send_app_file(
        &mut self,
        progress: &mut Progress,
        file: FileBody,
    ) -> Result<bool, ConnError> {
        let mut len = file.len;
        let mut fits_whole = true;
        match progress.framing {
            None => {
                tracing::error!("application sent a file before its head");
                return Err(RequestError::Internal.into());
            }
            Some(Framing::NoBody) => return Ok(true),
            Some(Framing::Length(remaining)) => {
                if len > remaining {
                    len = remaining;
                    fits_whole = false;
                }
                progress.framing = Some(Framing::Length(remaining - len));
            }
            Some(Framing::Chunked) if len > 0 => append_chunk_size(&mut self.write_buf, len),
            Some(_) => {}
        }
        let stall = self.handler.config.timeouts.io;
        if len > 0 {
            transmit::head_and_file(
                &mut self.socket,
                &self.write_buf,
                &file.file,
                file.offset,
                len,
                stall,
            )
            .await?;
            self.write_buf.clear();
            progress.sent += len;
            if progress.framing == Some(Framing::Chunked) {
                self.write_buf.extend_from_slice(b"\r\n");
            }
        }
        if !fits_whole {
            self.log_overlong();
        }
        Ok(fits_whole)
    }

    /// Appends body bytes to the write buffer, or sends a large piece directly after it.
    async fn put_body(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.len() < DIRECT_WRITE {
            self.write_buf.extend_from_slice(bytes);
            return Ok(());
        }
        transmit::two(
            &mut self.socket,
            &self.write_buf,
            bytes,
            self.handler.config.timeouts.io,
        )
        .await?;
        self.write_buf.clear();
        Ok(())
    }

    fn log_overlong(&self) {
        tracing::error!(
            "application response for {} is longer than its Content-Length; sent the declared bytes and closing the connection",
            self.peer
        );
    }
}

/// What a look at an otherwise quiet client's socket showed.
enum Presence {
    /// It closed its side, or the connection failed.
    Gone(ConnError),
    /// It sent bytes (left in the socket for the next request).
    SentMore,
}

/// Peeks at the socket when it is readable, without taking anything from it.
fn client_presence<S: Socket>(socket: &S, cx: &mut std::task::Context<'_>) -> Poll<Presence> {
    loop {
        match socket.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(error)) => return Poll::Ready(Presence::Gone(error.into())),
            Poll::Ready(Ok(())) => {}
        }
        let mut byte = [0u8; 1];
        let peeked = socket.try_io(tokio::io::Interest::READABLE, || {
            rustix::net::recv(socket, &mut byte[..], rustix::net::RecvFlags::PEEK)
                .map(|(read, _)| read)
                .map_err(std::io::Error::from)
        });
        match peeked {
            Ok(0) => {
                let gone = std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the client went away while the application worked",
                );
                return Poll::Ready(Presence::Gone(gone.into()));
            }
            Ok(_) => return Poll::Ready(Presence::SentMore),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Poll::Ready(Presence::Gone(error.into())),
        }
    }
}

/// Whether the rest of an unread body is small enough to read and drop to keep the connection.
/// Not when the client still waits for `100 Continue`: it would only send the body if asked.
fn can_discard(body: &BodyDecoder, awaiting_continue: bool) -> bool {
    !awaiting_continue
        && body
            .declared_remaining()
            .is_some_and(|n| n <= DISCARD_LIMIT)
}

fn append_chunk_size(out: &mut Vec<u8>, size: u64) {
    use std::io::Write;
    let _ = write!(out, "{size:x}\r\n");
}

/// Appends the status line and headers of an application's response.
pub(super) fn write_app_head(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    framing: Framing,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(number.format(head.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !head.has_server {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(SERVER_NAME.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !head.has_date {
        out.extend_from_slice(b"Date: ");
        date::append_now(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&head.header_lines);
    let counted_length = head
        .content_length
        .filter(|_| !head.length_in_headers && status_has_body(head.status));
    if let Some(length) = counted_length {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(number.format(length).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
}
