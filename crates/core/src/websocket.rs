//! What a WebSocket session (RFC 6455) says between the connection and the application, after
//! an upgrade request the application takes ([`crate::service::Service::websocket`]).
//!
//! The connection does the protocol (the handshake's answer, frames, masking, ping and pong,
//! the closing handshake: [`crate::http`]); the application sees whole messages and says
//! whether to accept, what to send and when to close.

use std::task::{Context, Poll};

use bytes::Bytes;

use crate::message::response::ResponseHead;

/// Default `--ws-max-size`: the largest message a client may send.
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Default `--ws-ping-interval`.
pub const DEFAULT_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(20);
/// Default `--ws-ping-timeout`.
pub const DEFAULT_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The status code of a close the client never sent: the connection was lost (RFC 6455 §7.1.5).
pub const CLOSE_ABNORMAL: u16 = 1006;
/// A close frame without a status code (RFC 6455 §7.1.5).
pub const CLOSE_NO_STATUS: u16 = 1005;

/// How WebSocket sessions are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketSettings {
    /// The largest message (and frame) a client may send; a larger one closes the session with
    /// 1009.
    pub max_message: usize,
    /// How often tern pings the client; None: never.
    pub ping_interval: Option<std::time::Duration>,
    /// How long a ping may go unanswered before the connection is given up.
    pub ping_timeout: std::time::Duration,
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        WebSocketSettings {
            max_message: DEFAULT_MAX_MESSAGE,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            ping_timeout: DEFAULT_PING_TIMEOUT,
        }
    }
}

/// One message, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    Text(String),
    Binary(Bytes),
}

/// What the application tells the connection.
#[derive(Debug)]
pub enum WsAppEvent {
    /// Complete the handshake (101), with the subprotocol chosen and more header lines
    /// (`Name: value\r\n`, checked).
    Accept {
        subprotocol: Option<String>,
        header_lines: Vec<u8>,
    },
    /// Refuse the handshake with this HTTP response (ASGI's `websocket.http.response`); its
    /// `content_length` is the body's.
    Deny { head: ResponseHead, body: Bytes },
    /// A message for the client.
    Send(WsMessage),
    /// Close the session (before the handshake: refuse it with 403).
    Close { code: u16, reason: String },
    /// The application is done with the session without closing it; `failed`: it raised.
    /// Before the handshake the client gets 500; after it, a close with 1000 (or 1011).
    Ended { failed: bool },
}

/// What the connection tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsClientEvent {
    Message(WsMessage),
    /// The session is over: the client's close code (or the one tern closed with, or 1006 when
    /// the connection was lost).
    Disconnect {
        code: u16,
        reason: String,
    },
}

/// A WebSocket session in progress, owned by the connection.
pub trait WebSocketCall: Send {
    /// The application's next event.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<WsAppEvent>;
    /// Ready when the application has room for another client event; until then the
    /// connection reads no more messages (a client cannot fill the worker's memory).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    /// Hands the application a client event.
    fn deliver(&mut self, event: WsClientEvent);
}
