//! The connection's side of a WebSocket session (RFC 6455) with the application: the checks of
//! the upgrade request, the handshake's answer (101, or the application's refusal), then the
//! frames both ways through `tokio-tungstenite` until one side closes.
//!
//! tern answers pings and sends its own (`--ws-ping-interval`, dropping a client that stays
//! silent past `--ws-ping-timeout`), refuses oversized messages (`--ws-max-size`, close 1009),
//! frames a client did not mask or that break the protocol (1002) and text that is not UTF-8
//! (1007). A message is read from the client only when the application has room for it, so a
//! fast sender cannot fill the worker's memory. A worker that stops closes its sessions with
//! 1001 (going away).

use std::future::{poll_fn, Future};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::app::{write_app_head, Framing};
use super::{After, ConnError, Connection};
use crate::http::access_log::AccessRecord;
use crate::http::buffers;
use crate::message::request::{Method, RequestHead, Version};
use crate::message::response::Response;
use crate::metrics::{self, Mount};
use crate::service::{RequestBody, Service, ServiceRequest};
use crate::socket::Socket;
use crate::websocket::{
    WebSocketCall, WsAppEvent, WsClientEvent, WsMessage, CLOSE_ABNORMAL, CLOSE_NO_STATUS,
};

/// The read buffer each session holds for its whole life (tungstenite's default, 128 KiB, would
/// make ten thousand idle sessions cost over a gigabyte); larger messages take more reads.
const SESSION_READ_BUFFER: usize = 4 * 1024;
/// How long tern waits for the client's answer to its close frame before closing the socket.
const CLOSING_WAIT: Duration = Duration::from_secs(5);
/// The close codes tern sends (RFC 6455 §7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL_ERROR: u16 = 1002;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// Whether the request asks to become a WebSocket (`Upgrade: websocket`): such a request is the
/// session's, valid or not.
pub(super) fn asks_for_websocket(head: &RequestHead) -> bool {
    head.header("upgrade")
        .is_some_and(|value| has_token(value, b"websocket"))
}

/// Whether a comma-separated header value holds `token` (ignoring ASCII case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// Why an upgrade request is refused before the application sees it.
fn handshake_problem(head: &RequestHead) -> Option<(u16, &'static str)> {
    if head.method != Method::Get || head.version != Version::Http11 {
        return Some((400, "a WebSocket upgrade must be a GET over HTTP/1.1"));
    }
    if !head
        .header("connection")
        .is_some_and(|value| has_token(value, b"upgrade"))
    {
        return Some((400, "a WebSocket upgrade needs Connection: Upgrade"));
    }
    if head.header("sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
        return Some((426, "only WebSocket version 13 is spoken"));
    }
    // 16 bytes in base64: 22 characters and two '=' (RFC 6455 §4.2.1).
    let key_is_valid = head.header("sec-websocket-key").is_some_and(|key| {
        let key = key.trim_ascii();
        key.len() == 24
            && key.ends_with(b"==")
            && key[..22]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    });
    if !key_is_valid {
        return Some((400, "a WebSocket upgrade needs a valid Sec-WebSocket-Key"));
    }
    None
}

/// What one step of a session brought.
enum Step {
    /// The client's next message; None: the connection ended.
    Client(Option<Result<Message, WsError>>),
    App(WsAppEvent),
    /// A timer: ping due, pong overdue, or the closing handshake overdue.
    Timer,
    /// The worker is stopping.
    Shutdown,
}

/// Where the session is.
struct Session {
    /// When the next ping goes out.
    ping_due: Option<Instant>,
    /// A ping is unanswered: the connection is given up at this moment.
    pong_deadline: Option<Instant>,
    /// tern sent its close frame (with this code) and waits for the client's, until this moment.
    closing: Option<(u16, String, Instant)>,
    /// The application has ended (or been told the session is over).
    app_done: bool,
    /// The application was told the session is over.
    disconnect_sent: bool,
}

impl Session {
    fn next_timer(&self) -> Option<Instant> {
        [
            self.ping_due,
            self.pong_deadline,
            self.closing.as_ref().map(|c| c.2),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl<S: Socket> Connection<S> {
    /// Serves an upgrade request to the application: refused with 400/426 when it breaks RFC
    /// 6455, else the application accepts (101 and the session), refuses (403, or its own
    /// response) or fails (500). The connection closes afterwards.
    pub(super) async fn serve_websocket(
        &mut self,
        service: &dyn Service,
        head: RequestHead,
        started: Instant,
    ) -> Result<After, ConnError> {
        let request_line = head.request_line();
        let forwarded = self.forwarded(&head);
        let client = self.client(forwarded);
        let (status, sent) = match handshake_problem(&head) {
            Some((status, why)) => {
                tracing::info!("refused a WebSocket upgrade from {}: {why}", self.peer);
                let mut response = Response::error_page(status);
                if status == 426 {
                    response = response
                        .header("Sec-WebSocket-Version", "13")
                        .header("Upgrade", "websocket");
                }
                let sent = self.write_response(response, false, false).await?;
                (status, sent)
            }
            None => {
                let accept_key = head
                    .header("sec-websocket-key")
                    .map(|key| derive_accept_key(key.trim_ascii()))
                    .unwrap_or_default();
                let local_addr = if head.host().is_none() {
                    self.socket.local_addr()
                } else {
                    None
                };
                let request = ServiceRequest {
                    head,
                    peer: self.peer,
                    forwarded,
                    local_addr,
                    tls: self.socket.tls_session().cloned(),
                    body: RequestBody {
                        prefetched: bytes::Bytes::new(),
                        spooled: None,
                        complete: true,
                        content_length: None,
                    },
                };
                let mut call = service.websocket(request);
                self.handshake_and_run(call.as_mut(), &accept_key).await?
            }
        };
        self.requests_served += 1;
        metrics::record_request(Mount::App, status, sent, started.elapsed());
        if self.handler.config.access_log {
            let record = AccessRecord {
                peer: client,
                request_line: &request_line,
                status,
                body_bytes: sent,
                started,
                head: None,
                captured: None,
            };
            super::log_access(self.handler.config.access_format.as_deref(), &record);
        }
        Ok(After::Close)
    }

    /// Waits for the application's answer to the handshake and, if it accepts, runs the
    /// session. Returns the status and body bytes for the access line.
    async fn handshake_and_run(
        &mut self,
        call: &mut dyn WebSocketCall,
        accept_key: &str,
    ) -> Result<(u16, u64), ConnError> {
        let first = poll_fn(|cx| call.poll_event(cx)).await;
        let (subprotocol, header_lines) = match first {
            WsAppEvent::Accept {
                subprotocol,
                header_lines,
            } => (subprotocol, header_lines),
            WsAppEvent::Deny { head, body } => {
                write_app_head(
                    &mut self.write_buf,
                    &head,
                    Framing::Length(body.len() as u64),
                    false,
                );
                self.write_buf.extend_from_slice(&body);
                self.flush().await?;
                return Ok((head.status, body.len() as u64));
            }
            WsAppEvent::Close { .. } => {
                call.deliver(WsClientEvent::Disconnect {
                    code: CLOSE_ABNORMAL,
                    reason: String::new(),
                });
                let sent = self
                    .write_response(Response::error_page(403), false, false)
                    .await?;
                return Ok((403, sent));
            }
            WsAppEvent::Ended { .. } | WsAppEvent::Send(_) => {
                // The application failed before answering (its traceback is logged).
                let sent = self
                    .write_response(Response::error_page(500), false, false)
                    .await?;
                return Ok((500, sent));
            }
        };
        let out = &mut self.write_buf;
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
        out.extend_from_slice(accept_key.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(subprotocol) = &subprotocol {
            out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            out.extend_from_slice(subprotocol.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&header_lines);
        out.extend_from_slice(b"\r\n");
        self.flush().await?;
        let sent = self.run_session(call).await;
        Ok((101, sent))
    }

    /// Frames both ways until the session ends; returns the message bytes sent.
    async fn run_session(&mut self, call: &mut dyn WebSocketCall) -> u64 {
        let settings = self.handler.config.websocket;
        let config = WebSocketConfig::default()
            .read_buffer_size(SESSION_READ_BUFFER)
            .max_message_size(Some(settings.max_message))
            .max_frame_size(Some(settings.max_message))
            .write_buffer_size(0);
        // The session reads and writes through its own buffers: the connection's go back for
        // other connections rather than sit idle for the session's life.
        let received = self.read_buf.split().to_vec();
        buffers::give_back(
            std::mem::take(&mut self.read_buf),
            std::mem::take(&mut self.write_buf),
        );
        let mut shutdown = self.shutdown.signal();
        let mut ws = WebSocketStream::from_partially_read(
            &mut self.socket,
            received,
            Role::Server,
            Some(config),
        )
        .await;
        let mut session = Session {
            ping_due: settings.ping_interval.map(|every| Instant::now() + every),
            pong_deadline: None,
            closing: None,
            app_done: false,
            disconnect_sent: false,
        };
        let mut sent = 0u64;
        let io_timeout = self.handler.config.timeouts.io;
        loop {
            let step = {
                let mut timer = session
                    .next_timer()
                    .map(|at| Box::pin(tokio::time::sleep_until(at.into())));
                let mut stopping = Box::pin(shutdown.wait());
                let watch_shutdown = session.closing.is_none();
                poll_fn(|cx| {
                    if !session.app_done {
                        if let Poll::Ready(event) = call.poll_event(cx) {
                            return Poll::Ready(Step::App(event));
                        }
                    }
                    if session.disconnect_sent || call.poll_ready(cx).is_ready() {
                        if let Poll::Ready(message) = ws.poll_next_unpin(cx) {
                            return Poll::Ready(Step::Client(message));
                        }
                    }
                    if let Some(timer) = timer.as_mut() {
                        if timer.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Step::Timer);
                        }
                    }
                    if watch_shutdown && stopping.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Step::Shutdown);
                    }
                    Poll::Pending
                })
                .await
            };
            match step {
                Step::Client(Some(Ok(message))) => match message {
                    Message::Text(text) => call.deliver(WsClientEvent::Message(WsMessage::Text(
                        text.as_str().to_owned(),
                    ))),
                    Message::Binary(bytes) => {
                        call.deliver(WsClientEvent::Message(WsMessage::Binary(bytes)))
                    }
                    Message::Ping(_) => {
                        // The pong is queued by the protocol; send it now.
                        let _ = tokio::time::timeout(io_timeout, ws.flush()).await;
                    }
                    Message::Pong(_) => session.pong_deadline = None,
                    Message::Close(frame) => {
                        let (code, reason) = match (frame, &session.closing) {
                            (Some(frame), _) => (u16::from(frame.code), frame.reason.to_string()),
                            (None, Some((code, reason, _))) => (*code, reason.clone()),
                            (None, None) => (CLOSE_NO_STATUS, String::new()),
                        };
                        // The answering close frame is queued by the protocol.
                        let _ = tokio::time::timeout(io_timeout, ws.flush()).await;
                        tell(call, &mut session, code, reason);
                        break;
                    }
                    Message::Frame(_) => {}
                },
                Step::Client(Some(Err(error))) => {
                    let code = match &error {
                        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake)
                        | WsError::ConnectionClosed
                        | WsError::AlreadyClosed
                        | WsError::Io(_) => None,
                        WsError::Protocol(_) => Some(CLOSE_PROTOCOL_ERROR),
                        WsError::Utf8(_) => Some(CLOSE_INVALID_DATA),
                        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
                            Some(CLOSE_TOO_BIG)
                        }
                        _ => Some(CLOSE_PROTOCOL_ERROR),
                    };
                    match code {
                        Some(code) => {
                            tracing::info!(
                                "closing the WebSocket from {} with {code}: {error}",
                                self.peer
                            );
                            let frame = close_frame(code, "");
                            let _ = tokio::time::timeout(io_timeout, ws.close(Some(frame))).await;
                            tell(call, &mut session, code, String::new());
                        }
                        None => {
                            tracing::debug!("WebSocket from {} ended: {error}", self.peer);
                            let code = session.closing.as_ref().map_or(CLOSE_ABNORMAL, |c| c.0);
                            tell(call, &mut session, code, String::new());
                        }
                    }
                    break;
                }
                Step::Client(None) => {
                    let code = session.closing.as_ref().map_or(CLOSE_ABNORMAL, |c| c.0);
                    tell(call, &mut session, code, String::new());
                    break;
                }
                Step::App(event) => match event {
                    WsAppEvent::Send(message) => {
                        if session.closing.is_some() {
                            continue;
                        }
                        let message = match message {
                            WsMessage::Text(text) => {
                                sent += text.len() as u64;
                                Message::text(text)
                            }
                            WsMessage::Binary(bytes) => {
                                sent += bytes.len() as u64;
                                Message::Binary(bytes)
                            }
                        };
                        match tokio::time::timeout(io_timeout, ws.send(message)).await {
                            Ok(Ok(())) => {}
                            _ => {
                                tell(call, &mut session, CLOSE_ABNORMAL, String::new());
                                break;
                            }
                        }
                    }
                    WsAppEvent::Close { code, reason } => {
                        if session.closing.is_none() {
                            let frame = close_frame(code, &reason);
                            let _ = tokio::time::timeout(io_timeout, ws.close(Some(frame))).await;
                            session.closing = Some((code, reason, Instant::now() + CLOSING_WAIT));
                        }
                    }
                    WsAppEvent::Ended { failed } => {
                        session.app_done = true;
                        if session.closing.is_none() {
                            let code = if failed {
                                CLOSE_INTERNAL_ERROR
                            } else {
                                CLOSE_NORMAL
                            };
                            let frame = close_frame(code, "");
                            let _ = tokio::time::timeout(io_timeout, ws.close(Some(frame))).await;
                            session.closing =
                                Some((code, String::new(), Instant::now() + CLOSING_WAIT));
                        }
                        // Nobody listens any more.
                        session.disconnect_sent = true;
                    }
                    WsAppEvent::Accept { .. } | WsAppEvent::Deny { .. } => {}
                },
                Step::Timer => {
                    let now = Instant::now();
                    if session.closing.as_ref().is_some_and(|c| c.2 <= now) {
                        let code = session.closing.as_ref().map_or(CLOSE_ABNORMAL, |c| c.0);
                        tell(call, &mut session, code, String::new());
                        break;
                    }
                    if session.pong_deadline.is_some_and(|at| at <= now) {
                        tracing::info!(
                            "WebSocket from {} did not answer a ping in time; dropping it",
                            self.peer
                        );
                        tell(call, &mut session, CLOSE_ABNORMAL, String::new());
                        break;
                    }
                    if session.ping_due.is_some_and(|at| at <= now) {
                        session.ping_due = settings.ping_interval.map(|every| now + every);
                        if session.closing.is_none() {
                            let ping = Message::Ping(bytes::Bytes::from_static(b"tern"));
                            if !matches!(
                                tokio::time::timeout(io_timeout, ws.send(ping)).await,
                                Ok(Ok(()))
                            ) {
                                tell(call, &mut session, CLOSE_ABNORMAL, String::new());
                                break;
                            }
                            if session.pong_deadline.is_none() {
                                session.pong_deadline = Some(now + settings.ping_timeout);
                            }
                        }
                    }
                }
                Step::Shutdown => {
                    let frame = close_frame(CLOSE_GOING_AWAY, "server shutting down");
                    let _ = tokio::time::timeout(io_timeout, ws.close(Some(frame))).await;
                    session.closing = Some((
                        CLOSE_GOING_AWAY,
                        String::new(),
                        Instant::now() + CLOSING_WAIT,
                    ));
                }
            }
        }
        sent
    }
}

/// Tells the application the session is over, once.
fn tell(call: &mut dyn WebSocketCall, session: &mut Session, code: u16, reason: String) {
    if !session.disconnect_sent {
        session.disconnect_sent = true;
        call.deliver(WsClientEvent::Disconnect { code, reason });
    }
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::has_token;

    #[test]
    fn tokens_are_found_in_lists_ignoring_case() {
        assert!(has_token(b"keep-alive, Upgrade", b"upgrade"));
        assert!(has_token(b"WebSocket", b"websocket"));
        assert!(!has_token(b"websockets", b"websocket"));
        assert!(!has_token(b"", b"upgrade"));
    }
}
