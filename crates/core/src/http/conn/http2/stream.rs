//! One HTTP/2 stream from its HEADERS frame to its last DATA frame: the head is checked as an
//! HTTP/1.1 head would be, then the router's static answer or the application's ([`super::app`])
//! goes out, and the request is counted, logged and measured like any other.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;

use super::answer::{client, respond_with};
use super::{app, head, ConnectionFacts};
use crate::error::RequestError;
use crate::http::access_log::AccessRecord;
use crate::http::conn::{log_access, HttpHandler};
use crate::http::forwarded;
use crate::message::request::{Method, RequestHead};
use crate::message::response::Response;
use crate::metrics::{self, Mount};

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
    let captured = handler
        .access_format()
        .and_then(|format| format.capture_static_response(&routed.response));
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
