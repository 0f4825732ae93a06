//! ASGI WebSocket sessions (spec 2.4): the application's `receive` and `send` for a `websocket`
//! scope, the state they share with the connection ([`WsCall`], which the core drives through
//! [`WebSocketCall`]), and the session's task.
//!
//! `receive` gives `websocket.connect`, then the client's messages as the connection reads them
//! (it reads only while fewer than [`INBOX_ROOM`] wait here), then `websocket.disconnect`.
//! `send` takes `websocket.accept`, `websocket.send`, `websocket.close` and the refusal
//! extension (`websocket.http.response.start` / `.body`); a `send` completes at once while the
//! bytes queued for the client stay within [`SEND_BUDGET`], else when they are written.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use tern_core::service::{ResponseHead, ServiceRequest};
use tern_core::websocket::{WebSocketCall, WsAppEvent, WsClientEvent, WsMessage, CLOSE_ABNORMAL};

use super::app_values::{message_type, task_error};
use super::exchange::{
    check_no_receive_waiting, fail_send, is_done, release_send, remember_waker, resolve,
    ClientDisconnected, SEND_BUDGET,
};
use super::ready::Ready;
use super::send::{add_headers, parse_start};
use super::Asgi;
use crate::py_bytes::body_bytes;
use crate::response_head::HeadBuilder;

/// What a `send` raises once the session is over.
const CLOSED: &str = "the WebSocket is closed";

/// Client events that may wait for the application's `receive` before the connection stops
/// reading from the client.
const INBOX_ROOM: usize = 16;

/// Where the session is, as the application has said.
enum Phase {
    /// Not accepted yet.
    Connecting,
    /// A refusal's head was sent; its body is being collected.
    Denying(ResponseHead, Vec<u8>),
    Accepted,
    /// Closed or refused by the application.
    Closed,
}

struct State {
    /// Events for the connection.
    events: VecDeque<WsAppEvent>,
    /// The connection's task, while it waits for an event.
    waker: Option<Waker>,
    /// Client events the application has not received yet.
    inbox: VecDeque<WsClientEvent>,
    /// The connection's task, while it waits for room in the inbox.
    room_waker: Option<Waker>,
    /// `websocket.connect` was received.
    connect_received: bool,
    phase: Phase,
    /// The connection is done with the session (it delivered the disconnect, or dropped it).
    gone: bool,
    /// The disconnect event was received by the application.
    disconnect_received: bool,
    queued_bytes: usize,
    receive_waiter: Option<Py<PyAny>>,
    send_waiter: Option<Py<PyAny>>,
}

/// What one session shares between the connection and the application.
pub struct WsExchange {
    asgi: Arc<Asgi>,
    state: Mutex<State>,
}

impl WsExchange {
    pub fn new(asgi: Arc<Asgi>) -> Self {
        WsExchange {
            asgi,
            state: Mutex::new(State {
                events: VecDeque::new(),
                waker: None,
                inbox: VecDeque::new(),
                room_waker: None,
                connect_received: false,
                phase: Phase::Connecting,
                gone: false,
                disconnect_received: false,
                queued_bytes: 0,
                receive_waiter: None,
                send_waiter: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an event for the connection and wakes it.
    fn push(state: &mut State, event: WsAppEvent) {
        if let WsAppEvent::Send(message) = &event {
            state.queued_bytes += message_len(message);
        }
        state.events.push_back(event);
        if let Some(waker) = state.waker.take() {
            super::event_loop::wake_soon(waker);
        }
    }
}

fn message_len(message: &WsMessage) -> usize {
    match message {
        WsMessage::Text(text) => text.len(),
        WsMessage::Binary(bytes) => bytes.len(),
    }
}

/// A client event as an ASGI message.
fn client_message<'py>(py: Python<'py>, event: &WsClientEvent) -> PyResult<Bound<'py, PyDict>> {
    let message = PyDict::new(py);
    match event {
        WsClientEvent::Message(WsMessage::Text(text)) => {
            message.set_item(
                pyo3::intern!(py, "type"),
                pyo3::intern!(py, "websocket.receive"),
            )?;
            message.set_item(pyo3::intern!(py, "text"), PyString::new(py, text))?;
        }
        WsClientEvent::Message(WsMessage::Binary(bytes)) => {
            message.set_item(
                pyo3::intern!(py, "type"),
                pyo3::intern!(py, "websocket.receive"),
            )?;
            message.set_item(pyo3::intern!(py, "bytes"), PyBytes::new(py, bytes))?;
        }
        WsClientEvent::Disconnect { code, reason } => {
            message.set_item(
                pyo3::intern!(py, "type"),
                pyo3::intern!(py, "websocket.disconnect"),
            )?;
            message.set_item(pyo3::intern!(py, "code"), *code)?;
            message.set_item(pyo3::intern!(py, "reason"), reason.as_str())?;
        }
    }
    Ok(message)
}

/// The connection's handle on the session.
pub struct WsCall {
    pub exchange: Arc<WsExchange>,
}

impl WebSocketCall for WsCall {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<WsAppEvent> {
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        if let Some(event) = state.events.pop_front() {
            if let WsAppEvent::Send(message) = &event {
                state.queued_bytes -= message_len(message);
                if state.queued_bytes <= SEND_BUDGET {
                    release_send(&exchange.asgi, state.send_waiter.take());
                }
            }
            return Poll::Ready(event);
        }
        remember_waker(&mut state.waker, cx.waker());
        Poll::Pending
    }

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.exchange.lock();
        if state.inbox.len() < INBOX_ROOM {
            return Poll::Ready(());
        }
        state.room_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn deliver(&mut self, event: WsClientEvent) {
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        if matches!(event, WsClientEvent::Disconnect { .. }) {
            state.gone = true;
        }
        match state.receive_waiter.take() {
            Some(waiter) => {
                if matches!(event, WsClientEvent::Disconnect { .. }) {
                    state.disconnect_received = true;
                }
                let send_waiter = if state.gone {
                    state.send_waiter.take()
                } else {
                    None
                };
                drop(state);
                let job_exchange = exchange.clone();
                exchange.asgi.event_loop().submit(Box::new(move |py| {
                    if is_done(waiter.bind(py)) {
                        // Cancelled meanwhile: the next `receive` gets the event.
                        let mut state = job_exchange.lock();
                        if matches!(event, WsClientEvent::Disconnect { .. }) {
                            state.disconnect_received = false;
                        }
                        state.inbox.push_front(event);
                    } else if let Ok(message) = client_message(py, &event) {
                        resolve(waiter.bind(py), message.into_any());
                    }
                    fail_send(py, send_waiter, CLOSED);
                }));
            }
            None => {
                state.inbox.push_back(event);
                if state.gone {
                    let send_waiter = state.send_waiter.take();
                    drop(state);
                    exchange
                        .asgi
                        .event_loop()
                        .submit(Box::new(move |py| fail_send(py, send_waiter, CLOSED)));
                }
            }
        }
    }
}

impl Drop for WsCall {
    fn drop(&mut self) {
        let mut state = self.exchange.lock();
        let already_told = state.gone;
        state.gone = true;
        state.events.clear();
        state.waker = None;
        if !already_told {
            state.inbox.push_back(WsClientEvent::Disconnect {
                code: CLOSE_ABNORMAL,
                reason: String::new(),
            });
        }
        let receive_waiter = state.receive_waiter.take();
        let event = receive_waiter
            .is_some()
            .then(|| state.inbox.pop_front())
            .flatten();
        let send_waiter = state.send_waiter.take();
        drop(state);
        if receive_waiter.is_none() && send_waiter.is_none() {
            return;
        }
        self.exchange.asgi.event_loop().submit(Box::new(move |py| {
            if let (Some(waiter), Some(event)) = (receive_waiter, event) {
                if let Ok(message) = client_message(py, &event) {
                    resolve(waiter.bind(py), message.into_any());
                }
            }
            fail_send(py, send_waiter, CLOSED);
        }));
    }
}

#[pyclass(frozen, module = "tern_server._native")]
pub struct WsReceive {
    exchange: Arc<WsExchange>,
}

#[pymethods]
impl WsReceive {
    fn __call__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        check_no_receive_waiting(py, state.receive_waiter.as_ref())?;
        if !state.connect_received {
            state.connect_received = true;
            let message = PyDict::new(py);
            message.set_item(
                pyo3::intern!(py, "type"),
                pyo3::intern!(py, "websocket.connect"),
            )?;
            return Ready::bound(py, message.into_any());
        }
        if let Some(event) = state.inbox.pop_front() {
            if matches!(event, WsClientEvent::Disconnect { .. }) {
                state.disconnect_received = true;
            }
            if let Some(waker) = state.room_waker.take() {
                super::event_loop::wake_soon(waker);
            }
            drop(state);
            return Ready::bound(py, client_message(py, &event)?.into_any());
        }
        if state.disconnect_received {
            return Err(PyRuntimeError::new_err(
                "receive() after websocket.disconnect: the session is over",
            ));
        }
        let future = exchange.asgi.create_future(py)?;
        state.receive_waiter = Some(future.clone().unbind());
        Ok(future)
    }
}

#[pyclass(frozen, module = "tern_server._native")]
pub struct WsSend {
    exchange: Arc<WsExchange>,
}

#[pymethods]
impl WsSend {
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let message = message
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("an ASGI message must be a dict"))?;
        let kind = message_type(message)?;
        let kind = kind.to_str()?;
        let exchange = &self.exchange;
        match kind {
            "websocket.accept" => {
                let subprotocol: Option<String> = message
                    .get_item(pyo3::intern!(py, "subprotocol"))?
                    .filter(|value| !value.is_none())
                    .map(|value| value.extract())
                    .transpose()?;
                let mut head = HeadBuilder::new(101, Cow::Borrowed("Switching Protocols"));
                if let Some(headers) = message.get_item(pyo3::intern!(py, "headers"))? {
                    add_headers(&mut head, &headers)?;
                }
                if let Some(subprotocol) = &subprotocol {
                    if subprotocol.is_empty()
                        || !subprotocol
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b',')
                    {
                        return Err(PyValueError::new_err(format!(
                            "invalid subprotocol {subprotocol:?}"
                        )));
                    }
                }
                let header_lines = head.finish().header_lines;
                let mut state = exchange.lock();
                self.connecting(&state, kind)?;
                state.phase = Phase::Accepted;
                WsExchange::push(
                    &mut state,
                    WsAppEvent::Accept {
                        subprotocol,
                        header_lines,
                    },
                );
                Ready::bound(py, py.None().into_bound(py))
            }
            "websocket.send" => {
                let text = message.get_item(pyo3::intern!(py, "text"))?;
                let bytes = message.get_item(pyo3::intern!(py, "bytes"))?;
                let outgoing = match (
                    text.filter(|t| !t.is_none()),
                    bytes.filter(|b| !b.is_none()),
                ) {
                    (Some(text), None) => WsMessage::Text(
                        text.cast::<PyString>()
                            .map_err(|_| PyTypeError::new_err("'text' must be a str"))?
                            .to_str()?
                            .to_owned(),
                    ),
                    (None, Some(bytes)) => WsMessage::Binary(
                        bytes
                            .cast::<PyBytes>()
                            .map(body_bytes)
                            .map_err(|_| PyTypeError::new_err("'bytes' must be bytes"))?,
                    ),
                    _ => {
                        return Err(PyValueError::new_err(
                            "websocket.send needs exactly one of 'text' and 'bytes'",
                        ))
                    }
                };
                let mut state = exchange.lock();
                if state.gone {
                    return Err(ClientDisconnected::new_err(CLOSED));
                }
                match state.phase {
                    Phase::Accepted => {}
                    Phase::Closed => return Err(ClientDisconnected::new_err(CLOSED)),
                    _ => {
                        return Err(PyRuntimeError::new_err(
                            "websocket.send before websocket.accept",
                        ))
                    }
                }
                WsExchange::push(&mut state, WsAppEvent::Send(outgoing));
                if state.queued_bytes <= SEND_BUDGET {
                    return Ready::bound(py, py.None().into_bound(py));
                }
                let future = exchange.asgi.create_future(py)?;
                state.send_waiter = Some(future.clone().unbind());
                Ok(future)
            }
            "websocket.close" => {
                let code: u16 = match message.get_item(pyo3::intern!(py, "code"))? {
                    Some(code) if !code.is_none() => code.extract()?,
                    _ => 1000,
                };
                let reason: String = match message.get_item(pyo3::intern!(py, "reason"))? {
                    Some(reason) if !reason.is_none() => reason.extract()?,
                    _ => String::new(),
                };
                let mut state = exchange.lock();
                match state.phase {
                    Phase::Connecting | Phase::Accepted => {
                        state.phase = Phase::Closed;
                        if !state.gone {
                            WsExchange::push(&mut state, WsAppEvent::Close { code, reason });
                        }
                        Ready::bound(py, py.None().into_bound(py))
                    }
                    Phase::Denying(..) => Err(PyRuntimeError::new_err(
                        "websocket.close during websocket.http.response",
                    )),
                    Phase::Closed => Err(ClientDisconnected::new_err(CLOSED)),
                }
            }
            "websocket.http.response.start" => {
                let head = parse_start(message)?;
                let mut state = exchange.lock();
                self.connecting(&state, kind)?;
                state.phase = Phase::Denying(head, Vec::new());
                Ready::bound(py, py.None().into_bound(py))
            }
            "websocket.http.response.body" => {
                let body = match message.get_item(pyo3::intern!(py, "body"))? {
                    Some(body) => body
                        .cast::<PyBytes>()
                        .map_err(|_| PyTypeError::new_err("'body' must be bytes"))?
                        .as_bytes()
                        .to_vec(),
                    None => Vec::new(),
                };
                let more = match message.get_item(pyo3::intern!(py, "more_body"))? {
                    Some(more) => more.is_truthy()?,
                    None => false,
                };
                let mut state = exchange.lock();
                let Phase::Denying(_, collected) = &mut state.phase else {
                    return Err(PyRuntimeError::new_err(
                        "websocket.http.response.body without websocket.http.response.start",
                    ));
                };
                collected.extend_from_slice(&body);
                if !more {
                    let Phase::Denying(mut head, body) =
                        std::mem::replace(&mut state.phase, Phase::Closed)
                    else {
                        unreachable!("checked above");
                    };
                    head.content_length = Some(body.len() as u64);
                    WsExchange::push(
                        &mut state,
                        WsAppEvent::Deny {
                            head,
                            body: Bytes::from(body),
                        },
                    );
                }
                Ready::bound(py, py.None().into_bound(py))
            }
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?} for a WebSocket"
            ))),
        }
    }
}

impl WsSend {
    /// `kind` may only come before the session is accepted or refused.
    fn connecting(&self, state: &State, kind: &str) -> PyResult<()> {
        if state.gone {
            return Err(ClientDisconnected::new_err("the client went away"));
        }
        match state.phase {
            Phase::Connecting => Ok(()),
            _ => Err(PyRuntimeError::new_err(format!(
                "{kind} after the handshake was answered"
            ))),
        }
    }
}

/// Starts the application's task for a WebSocket session (a job on the loop's thread).
pub fn start(py: Python<'_>, exchange: Arc<WsExchange>, request: ServiceRequest) {
    let asgi = exchange.asgi.clone();
    let started = (|| -> PyResult<()> {
        let scope = asgi.scope.build(py, &asgi, &request, true)?;
        let receive = WsReceive {
            exchange: exchange.clone(),
        };
        let send = WsSend {
            exchange: exchange.clone(),
        };
        let done = WsTaskDone {
            exchange: exchange.clone(),
        };
        asgi.spawn(
            py,
            scope,
            Bound::new(py, receive)?.into_any(),
            Bound::new(py, send)?.into_any(),
            Bound::new(py, done)?.into_any(),
        )?;
        Ok(())
    })();
    if let Err(error) = started {
        settle(py, &exchange, Some(error));
    }
}

/// Called by the session's task when it ends.
#[pyclass(frozen, module = "tern_server._native")]
struct WsTaskDone {
    exchange: Arc<WsExchange>,
}

#[pymethods]
impl WsTaskDone {
    fn __call__(&self, py: Python<'_>, task: &Bound<'_, PyAny>) {
        settle(py, &self.exchange, task_error(task));
    }
}

/// The application is done with the session: the connection closes it (or answers the
/// handshake with 500 if it was never answered); an error is logged with its traceback.
fn settle(py: Python<'_>, exchange: &WsExchange, error: Option<PyErr>) {
    exchange.asgi.task_ended();
    let mut state = exchange.lock();
    let answered = !matches!(state.phase, Phase::Connecting | Phase::Denying(..));
    let client_gone = state.gone
        || error
            .as_ref()
            .is_some_and(|e| e.is_instance_of::<ClientDisconnected>(py));
    match &error {
        Some(error) if client_gone => {
            tracing::info!("ASGI WebSocket application raised after the client went away: {error}")
        }
        Some(error) => {
            crate::traceback::log_exception(py, error, "ASGI WebSocket application error")
        }
        None if !answered => {
            tracing::error!("ASGI WebSocket application returned without answering the handshake")
        }
        None => {}
    }
    if !state.gone {
        WsExchange::push(
            &mut state,
            WsAppEvent::Ended {
                failed: error.is_some(),
            },
        );
    }
}
