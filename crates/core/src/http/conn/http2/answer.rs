//! What static and application streams share: sending a server-built response (a file, an
//! error page) whole, resetting a stream whose body could not be sent, and the access log's
//! view of the request's client.

use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::Reason;

use super::send::{self, Failure};
use crate::message::response::Response;
use crate::socket::Peer;

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

/// The request's client as the access log names it.
pub(super) fn client(forwarded: Option<crate::message::forwarded::Forwarded>, peer: Peer) -> Peer {
    forwarded.map_or(peer, |forwarded| forwarded.client_peer(peer))
}
