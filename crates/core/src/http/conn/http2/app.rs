//! An HTTP/2 stream answered by the application: the conversation of [`crate::service`] over a
//! stream instead of a connection.
//!
//! The request body is received whole before the call by default (in memory up to
//! `--body-buffer-size`, else in a temporary file: [`crate::http::spool`]), or read from the
//! stream as the application asks (ASGI, `--stream-request-body`). The response needs no framing
//! of its own: its end is the stream's end, and a response shorter than its Content-Length, or an
//! application failing after its head, resets the stream so the client knows it is incomplete.
//! A client that resets the stream while the application works ends the call (it is dropped, as
//! for a client that closes an HTTP/1.1 connection), and `--request-timeout` bounds each wait on
//! the application as it does over HTTP/1.1.

use std::future::poll_fn;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};

use super::answer::{client, give_up, respond_with};
use super::send;
use super::ConnectionFacts;
use crate::http::access_log::AccessRecord;
use crate::http::conn::{log_access, HttpHandler};
use crate::http::forwarded;
use crate::http::response::status_has_body;
use crate::http::spool::{BodySpool, ReceivedBody};
use crate::message::request::{BodyFraming, Method, RequestHead};
use crate::message::response::Response;
use crate::metrics::{self, Mount};
use crate::service::{
    AppEvent, BodyReadError, RequestBody, RequestTimeout, Service, ServiceCall, ServiceRequest,
    SpooledBody,
};
use crate::socket::Peer;

/// The status logged for a request whose client reset its stream before any response (nginx's 499).
const CLIENT_CLOSED_REQUEST: u16 = 499;

/// Why the body could not be received whole.
enum BodyFailure {
    TooLarge,
    /// Nothing arrived for `--io-timeout`.
    Stalled,
    /// The client reset the stream or the connection failed.
    Client(h2::Error),
    /// The temporary file could not be made or written.
    Spool(std::io::Error),
}

/// How waiting for the application's next event ended.
enum Waited {
    Event(AppEvent),
    /// The client reset the stream (or the connection ended).
    ClientGone,
    /// `--request-timeout` passed first, after this long.
    TimedOut(Duration),
}

/// The request body as the application reads it piece by piece.
struct BodyReader {
    recv: RecvStream,
    /// What arrived beyond the last piece the application took.
    leftover: Bytes,
    received: u64,
    limit: u64,
}

pub(super) async fn serve(
    handler: &HttpHandler,
    service: &dyn Service,
    head: RequestHead,
    mut body: RecvStream,
    mut respond: SendResponse<Bytes>,
    facts: &ConnectionFacts,
    started: Instant,
) {
    let config = &handler.config;
    let peer = facts.peer;
    let io_timeout = config.timeouts.io;
    let is_head = head.method == Method::Head;
    let request_line = head.request_line();
    let mut captured = handler
        .access_format()
        .and_then(|format| format.capture_request(&head));
    let forwarded = forwarded::resolve(&head, peer, &config.forwarded_allow_ips);
    let declared = match head.framing {
        BodyFraming::Length(length) => Some(length),
        _ => None,
    };
    let (request_body, continue_sent) = match receive_body(
        handler,
        service,
        &head,
        declared,
        &mut body,
        &mut respond,
        peer,
    )
    .await
    {
        Ok(received) => received,
        Err(Refused { status, sent }) => {
            return finish(
                handler,
                facts,
                forwarded,
                &request_line,
                status,
                sent,
                started,
                None,
            )
        }
    };
    let expect_continue = head.expect_continue && !continue_sent;
    let local_addr = if head.host().is_none() {
        facts.local_addr
    } else {
        None
    };
    let request = ServiceRequest {
        head,
        peer,
        forwarded,
        local_addr,
        tls: facts.tls.clone(),
        body: request_body,
    };
    let mut call = service.call(request);
    let mut reader = BodyReader {
        recv: body,
        leftover: Bytes::new(),
        received: 0,
        limit: config.limits.max_body_size,
    };
    let mut continue_sent = !expect_continue;
    let mut status = 0;
    let mut sent = 0u64;
    // Once the head is out: the stream, unless it ended with the head (HEAD, 204, 304) or the
    // body is complete.
    let mut stream: Option<SendStream<Bytes>> = None;
    let mut head_sent = false;
    // The body bytes still owed under the response's Content-Length.
    let mut owed: Option<u64> = None;
    loop {
        let waited = next_event(
            call.as_mut(),
            &mut respond,
            stream.as_mut(),
            config.timeouts.request,
        )
        .await;
        let event = match waited {
            Waited::Event(event) => event,
            Waited::ClientGone => {
                tracing::debug!("HTTP/2 client {peer} reset its stream during its response");
                if !head_sent {
                    status = CLIENT_CLOSED_REQUEST;
                }
                break;
            }
            Waited::TimedOut(waited) => {
                call.timed_out(RequestTimeout {
                    request_line: request_line.clone(),
                    peer,
                    waited,
                    elapsed: started.elapsed(),
                    head_sent,
                });
                if let Some(page) = fail(
                    &mut respond,
                    stream.as_mut(),
                    head_sent,
                    504,
                    is_head,
                    io_timeout,
                    peer,
                )
                .await
                {
                    (status, sent) = (504, page);
                }
                break;
            }
        };
        match event {
            AppEvent::Head(response) => {
                let has_body = !is_head && status_has_body(response.status);
                let ends_at_head = !has_body || response.content_length == Some(0);
                status = response.status;
                head_sent = true;
                owed = response.content_length.filter(|_| has_body);
                if let Some(format) = &config.access_format {
                    format.capture_app_response(captured.as_mut(), &response);
                }
                match respond.send_response(send::app_head(&response), ends_at_head) {
                    Ok(opened) if !ends_at_head => stream = Some(opened),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!("HTTP/2 response to {peer} not sent: {error}");
                        break;
                    }
                }
            }
            AppEvent::Data(mut bytes) => {
                let Some(open) = &mut stream else {
                    continue; // No body goes out (HEAD, 204, 304), or it is complete.
                };
                let mut overlong = false;
                if let Some(left) = &mut owed {
                    if bytes.len() as u64 > *left {
                        bytes.truncate(*left as usize);
                        overlong = true;
                    }
                    *left -= bytes.len() as u64;
                }
                let length = bytes.len() as u64;
                let ends = owed == Some(0);
                if let Err(failure) = send::data(open, bytes, ends, io_timeout).await {
                    give_up(open, failure, peer);
                    break;
                }
                sent += length;
                if overlong {
                    tracing::error!(
                        "application response for {peer} was longer than its Content-Length; the rest was not sent"
                    );
                    break;
                }
                if ends {
                    stream = None;
                }
            }
            AppEvent::File(file) => {
                let Some(open) = &mut stream else {
                    continue;
                };
                let mut len = file.len;
                if let Some(left) = owed {
                    len = len.min(left);
                }
                let ends = owed.is_some_and(|left| left == len);
                if let Err(failure) =
                    send::file(open, &file.file, file.offset, len, ends, io_timeout).await
                {
                    give_up(open, failure, peer);
                    break;
                }
                sent += len;
                if let Some(left) = &mut owed {
                    *left -= len;
                }
                if ends {
                    stream = None;
                }
            }
            AppEvent::End => {
                if !head_sent {
                    tracing::error!("application ended without a response head");
                    status = 500;
                    sent = respond_with(
                        &mut respond,
                        Response::error_page(500),
                        is_head,
                        io_timeout,
                        peer,
                    )
                    .await;
                } else if let Some(open) = &mut stream {
                    match owed {
                        Some(missing) if missing > 0 => {
                            tracing::error!(
                                "application response for {peer} ended {missing} bytes short of its Content-Length; stream reset"
                            );
                            open.send_reset(Reason::INTERNAL_ERROR);
                        }
                        _ => {
                            let _ = open.send_data(Bytes::new(), true);
                        }
                    }
                }
                break;
            }
            AppEvent::Abort => {
                if let Some(page) = fail(
                    &mut respond,
                    stream.as_mut(),
                    head_sent,
                    500,
                    is_head,
                    io_timeout,
                    peer,
                )
                .await
                {
                    (status, sent) = (500, page);
                }
                break;
            }
            AppEvent::ReadBody { max, reply } => {
                if !continue_sent && !head_sent {
                    continue_sent = send_continue(&mut respond);
                }
                match reader.next_piece(max, io_timeout).await {
                    Ok(piece) => {
                        let _ = reply.send(Ok(piece));
                    }
                    Err((message, too_large)) => {
                        tracing::info!("request body from {peer} failed: {message}");
                        let _ = reply.send(Err(BodyReadError(message)));
                        drop(call);
                        if too_large && !head_sent {
                            status = 413;
                            sent = respond_with(
                                &mut respond,
                                Response::error_page(413),
                                is_head,
                                io_timeout,
                                peer,
                            )
                            .await;
                        } else {
                            if !head_sent {
                                status = CLIENT_CLOSED_REQUEST;
                            }
                            respond.send_reset(Reason::CANCEL);
                        }
                        return finish(
                            handler,
                            facts,
                            forwarded,
                            &request_line,
                            status,
                            sent,
                            started,
                            captured.as_ref(),
                        );
                    }
                }
            }
        }
    }
    // Done with the application: dropping the call lets it release the response (close()).
    drop(call);
    finish(
        handler,
        facts,
        forwarded,
        &request_line,
        status,
        sent,
        started,
        captured.as_ref(),
    );
}

/// A request refused before the application was called: the status logged and the body bytes
/// sent.
struct Refused {
    status: u16,
    sent: u64,
}

/// The request body as the application gets it, and whether `100 Continue` went out: received
/// whole first (the default), or left to be read as the application asks (ASGI,
/// `--stream-request-body`). A body over `--max-body-size` gets 413, one that cannot be kept 500;
/// one that stalls resets the stream (408 logged), and a client that resets it is logged as 499.
async fn receive_body(
    handler: &HttpHandler,
    service: &dyn Service,
    head: &RequestHead,
    declared: Option<u64>,
    body: &mut RecvStream,
    respond: &mut SendResponse<Bytes>,
    peer: Peer,
) -> Result<(RequestBody, bool), Refused> {
    let config = &handler.config;
    let is_head = head.method == Method::Head;
    let io_timeout = config.timeouts.io;
    if body.is_end_stream() {
        let empty = RequestBody {
            prefetched: Bytes::new(),
            spooled: None,
            complete: true,
            content_length: declared,
        };
        return Ok((empty, false));
    }
    let status = if declared.is_some_and(|length| length > config.limits.max_body_size) {
        tracing::info!("rejected HTTP/2 request from {peer}: request body too large");
        413
    } else if config.bodies.buffer && !service.streams_request_body() {
        let continue_sent = head.expect_continue && send_continue(respond);
        let receiving = metrics::BodyReceiving::start();
        let received = receive_whole(body, declared, handler).await;
        drop(receiving);
        match received {
            Ok(whole) => return Ok((whole, continue_sent)),
            Err(BodyFailure::TooLarge) => {
                tracing::info!("rejected HTTP/2 request from {peer}: request body too large");
                413
            }
            Err(BodyFailure::Spool(error)) => {
                tracing::error!(
                    "could not keep the request body from {peer} in {}: {error}",
                    config.bodies.temp_dir.display()
                );
                500
            }
            Err(BodyFailure::Stalled) => {
                tracing::info!("HTTP/2 request body from {peer} stalled; stream reset");
                respond.send_reset(Reason::CANCEL);
                return Err(Refused {
                    status: 408,
                    sent: 0,
                });
            }
            Err(BodyFailure::Client(error)) => {
                tracing::debug!("HTTP/2 client {peer} went away during its request body: {error}");
                return Err(Refused {
                    status: CLIENT_CLOSED_REQUEST,
                    sent: 0,
                });
            }
        }
    } else {
        let streamed = RequestBody {
            prefetched: Bytes::new(),
            spooled: None,
            complete: false,
            content_length: declared,
        };
        return Ok((streamed, false));
    };
    let page = Response::error_page(status);
    let sent = respond_with(respond, page, is_head, io_timeout, peer).await;
    Err(Refused { status, sent })
}

/// Ends a response the application failed to complete: with the error page of `status` if no
/// head went out yet (the body bytes sent are returned), else by resetting the stream, so the
/// client knows the body it has is incomplete.
async fn fail(
    respond: &mut SendResponse<Bytes>,
    stream: Option<&mut SendStream<Bytes>>,
    head_sent: bool,
    status: u16,
    is_head: bool,
    io_timeout: Duration,
    peer: Peer,
) -> Option<u64> {
    if head_sent {
        if let Some(stream) = stream {
            stream.send_reset(Reason::INTERNAL_ERROR);
        }
        return None;
    }
    let page = Response::error_page(status);
    Some(respond_with(respond, page, is_head, io_timeout, peer).await)
}

/// Counts and logs the request.
#[allow(clippy::too_many_arguments)]
fn finish(
    handler: &HttpHandler,
    facts: &ConnectionFacts,
    forwarded: Option<crate::message::forwarded::Forwarded>,
    request_line: &[u8],
    status: u16,
    sent: u64,
    started: Instant,
    captured: Option<&crate::http::access_log::Captured>,
) {
    metrics::record_request(Mount::App, status, sent, started.elapsed());
    if handler.config.access_log {
        let record = AccessRecord {
            peer: client(forwarded, facts.peer),
            request_line,
            status,
            body_bytes: sent,
            started,
            head: None,
            captured,
        };
        log_access(handler.config.access_format.as_deref(), &record);
    }
}

/// `100 Continue` for a client that waits for it before sending its body; false if it could not
/// be sent.
fn send_continue(respond: &mut SendResponse<Bytes>) -> bool {
    let mut interim = http::Response::new(());
    *interim.status_mut() = http::StatusCode::CONTINUE;
    respond.send_informational(interim).is_ok()
}

/// The application's next event, unless the client resets the stream or `--request-timeout`
/// passes first.
async fn next_event(
    call: &mut dyn ServiceCall,
    respond: &mut SendResponse<Bytes>,
    mut stream: Option<&mut SendStream<Bytes>>,
    request_timeout: Option<Duration>,
) -> Waited {
    let next = poll_fn(|cx| {
        if let Poll::Ready(event) = call.poll_event(cx) {
            return Poll::Ready(Waited::Event(event));
        }
        let reset = match stream.as_deref_mut() {
            Some(stream) => stream.poll_reset(cx),
            None => respond.poll_reset(cx),
        };
        match reset {
            Poll::Ready(_) => Poll::Ready(Waited::ClientGone),
            Poll::Pending => Poll::Pending,
        }
    });
    let Some(limit) = request_timeout else {
        return next.await;
    };
    let waiting_since = Instant::now();
    tokio::time::timeout(limit, next)
        .await
        .unwrap_or_else(|_| Waited::TimedOut(waiting_since.elapsed()))
}

/// Receives the whole body before the application is called.
async fn receive_whole(
    body: &mut RecvStream,
    declared: Option<u64>,
    handler: &HttpHandler,
) -> Result<RequestBody, BodyFailure> {
    let config = &handler.config;
    let mut spool = BodySpool::new(&config.bodies, declared);
    let mut received = 0u64;
    loop {
        let piece = match tokio::time::timeout(config.timeouts.io, body.data()).await {
            Err(_) => return Err(BodyFailure::Stalled),
            Ok(None) => break,
            Ok(Some(Err(error))) => return Err(BodyFailure::Client(error)),
            Ok(Some(Ok(piece))) => piece,
        };
        let _ = body.flow_control().release_capacity(piece.len());
        received += piece.len() as u64;
        if received > config.limits.max_body_size {
            return Err(BodyFailure::TooLarge);
        }
        spool.push(&piece).map_err(BodyFailure::Spool)?;
    }
    let (prefetched, spooled) = match spool.finish() {
        ReceivedBody::Memory(bytes) => (bytes, None),
        ReceivedBody::File(file, len) => (Bytes::new(), Some(SpooledBody::File { file, len })),
    };
    Ok(RequestBody {
        prefetched,
        spooled,
        complete: true,
        content_length: Some(received),
    })
}

impl BodyReader {
    /// The next piece of the body, at most `max` bytes; empty at its end. The error says why
    /// and whether the body was too large.
    async fn next_piece(
        &mut self,
        max: usize,
        io_timeout: Duration,
    ) -> Result<Bytes, (String, bool)> {
        while self.leftover.is_empty() {
            let data = match tokio::time::timeout(io_timeout, self.recv.data()).await {
                Err(_) => return Err(("request body stalled".into(), false)),
                Ok(None) => return Ok(Bytes::new()),
                Ok(Some(Err(error))) => {
                    return Err((format!("reading the request body failed: {error}"), false))
                }
                Ok(Some(Ok(data))) => data,
            };
            let _ = self.recv.flow_control().release_capacity(data.len());
            self.received += data.len() as u64;
            if self.received > self.limit {
                return Err(("request body is larger than --max-body-size".into(), true));
            }
            self.leftover = data;
        }
        let take = max.max(1).min(self.leftover.len());
        Ok(self.leftover.split_to(take))
    }
}
