//! One HTTP/2 stream from its HEADERS frame to its last DATA frame: the head is checked as an
//! HTTP/1.1 head would be, then the router's static answer or the application's ([`super::app`])
//! goes out, and the request is counted, logged and measured like any other.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};

use super::send::{self, Failure};
use super::{app, head, ConnectionFacts};
use crate::access_format::AccessFormat;
use crate::error::RequestError;
use crate::http::access_log::AccessRecord;
use crate::http::conn::{log_access, HttpHandler};
use crate::http::forwarded;
use crate::message::request::{Method, RequestHead};
use crate::message::response::Response;
use crate::metrics::{self, Mount};
use crate::socket::Peer;

/// Serves the request of one stream.
pub(super) async fn serve(
    handler: Arc<HttpHandler>,
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    facts: Arc<ConnectionFacts>,
) {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let head = match head::request_head(&parts, body.is_end_stream(), &handler.config.limits) {
        Ok(head) => head,
        Err(error) => return reject(&handler, respond, &facts, error).await,
    };
    drop(parts);
    handler.requests_begun.fetch_add(1, Ordering::Relaxed);
    let service = handler
        .service
        .clone()
        .filter(|_| !handler.router.answers(&head));
    match service {
        Some(service) => {
            app::serve(
                &handler,
                service.as_ref(),
                head,
                body,
                respond,
                &facts,
                started,
            )
            .await;
        }
        None => {
            // Static handlers have no use for a body: dropping its stream discards the rest.
            drop(body);
            serve_static(&handler, head, respond, &facts, started).await;
        }
    }
    handler.requests_finished.fetch_add(1, Ordering::Relaxed);
}

/// Answers from the static mounts (or the server itself: health checks, `OPTIONS *`).
async fn serve_static(
    handler: &HttpHandler,
    head: RequestHead,
    mut respond: SendResponse<Bytes>,
    facts: &ConnectionFacts,
    started: Instant,
) {
    let config = &handler.config;
    let routed = handler.router.respond(&head);
    let format = access_format(handler);
    let mut captured = format.and_then(AccessFormat::capture_response_only);
    if let Some(format) = format {
        format.capture_response(captured.as_mut(), &routed.response);
    }
    if let Some(why) = routed.rejection {
        tracing::info!(
            "refused {} {} from {}: {why}",
            head.method_str(),
            head.target(),
            facts.peer
        );
    }
    let status = routed.response.status;
    let mount = if handler.router.is_health_check(head.path_and_query().0) {
        Mount::Health
    } else {
        Mount::Static
    };
    let is_head = head.method == Method::Head;
    let sent = respond_with(
        &mut respond,
        routed.response,
        is_head,
        config.timeouts.io,
        facts.peer,
    )
    .await;
    metrics::record_request(mount, status, sent, started.elapsed());
    if config.access_log {
        let forwarded = forwarded::resolve(&head, facts.peer, &config.forwarded_allow_ips);
        let record = AccessRecord {
            peer: client(forwarded, facts.peer),
            request_line: head.request_line_bytes(),
            status,
            body_bytes: sent,
            started,
            head: Some(&head),
            captured: captured.as_ref(),
        };
        log_access(config.access_format.as_deref(), &record);
    }
}

/// Answers a stream whose head was refused with its status (and logs it, as HTTP/1.1 does).
async fn reject(
    handler: &HttpHandler,
    mut respond: SendResponse<Bytes>,
    facts: &ConnectionFacts,
    error: RequestError,
) {
    tracing::info!("rejected HTTP/2 request from {}: {error}", facts.peer);
    let status = error.status();
    let page = Response::error_page(status);
    let sent = respond_with(
        &mut respond,
        page,
        false,
        handler.config.timeouts.io,
        facts.peer,
    )
    .await;
    metrics::record_request(Mount::None, status, sent, Duration::ZERO);
    if handler.config.access_log {
        let record = AccessRecord {
            peer: facts.peer,
            request_line: b"-",
            status,
            body_bytes: sent,
            started: Instant::now(),
            head: None,
            captured: None,
        };
        log_access(handler.config.access_format.as_deref(), &record);
    }
}

/// Sends a server-built response whole; the body bytes sent (its length, or 0 if it failed).
pub(super) async fn respond_with(
    respond: &mut SendResponse<Bytes>,
    response: Response,
    is_head: bool,
    io_timeout: Duration,
    peer: Peer,
) -> u64 {
    let length = response.body.len();
    let ends_at_head = is_head || length == 0;
    let mut stream = match respond.send_response(send::static_head(&response), ends_at_head) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!("HTTP/2 response to {peer} not sent: {error}");
            return 0;
        }
    };
    if ends_at_head {
        return 0;
    }
    match send::static_body(&mut stream, response.body, io_timeout).await {
        Ok(()) => length,
        Err(failure) => {
            give_up(&mut stream, failure, peer);
            0
        }
    }
}

/// Resets a stream whose body could not be sent, with one log line saying why.
pub(super) fn give_up(stream: &mut h2::SendStream<Bytes>, failure: Failure, peer: Peer) {
    match failure {
        Failure::Stalled => {
            tracing::info!(
                "HTTP/2 client {peer} took no response bytes within --io-timeout; stream reset"
            );
            stream.send_reset(Reason::CANCEL);
        }
        Failure::File(error) => {
            tracing::error!("reading a file for {peer} failed mid-response: {error}");
            stream.send_reset(Reason::INTERNAL_ERROR);
        }
        Failure::Gone(error) => tracing::debug!("HTTP/2 client {peer} went away: {error}"),
        Failure::Closed => tracing::debug!("HTTP/2 client {peer} reset its stream"),
    }
}

/// The access log's format, when access lines are written in one.
pub(super) fn access_format(handler: &HttpHandler) -> Option<&AccessFormat> {
    let config = &handler.config;
    config
        .access_format
        .as_deref()
        .filter(|_| config.access_log)
}

/// The request's client as the access log names it.
pub(super) fn client(forwarded: Option<crate::message::forwarded::Forwarded>, peer: Peer) -> Peer {
    forwarded.map_or(peer, |forwarded| forwarded.client_peer(peer))
}
