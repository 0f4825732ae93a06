//! What one request shares between the connection (through [`AsgiCall`]) and the application's
//! `receive` and `send`: the events waiting for the connection, how far the request body and the
//! response have come, and the futures the application awaits.
//!
//! The connection side never takes the interpreter: it resolves the application's futures by
//! handing jobs to the event loop ([`super::event_loop`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use tokio::sync::oneshot;

use tern_core::service::{AppEvent, BodyReadError, RequestTimeout, ResponseHead, ServiceCall};

use super::Asgi;

/// Response body bytes `send` may queue for the connection before it has to wait for them to be
/// written: a slow client holds at most this much.
pub const SEND_BUDGET: usize = 64 * 1024;
/// The most request body bytes one `receive` asks the connection for.
pub const RECEIVE_PIECE: usize = 64 * 1024;

pyo3::create_exception!(
    tern_server._native,
    ClientDisconnected,
    pyo3::exceptions::PyOSError,
    "send() after the client went away (ASGI 2.4: an OSError subclass)."
);

/// How far the request body has been handed to the application.
pub struct BodyProgress {
    /// Received before the call and not handed out yet; None once handed out.
    pub first: Option<Bytes>,
    /// More is to be read from the connection.
    pub more_to_read: bool,
    /// The declared Content-Length, to tell the last piece of it.
    pub content_length: Option<u64>,
    /// Bytes read from the connection after the call began.
    pub received: u64,
}

/// How far the response has come.
pub enum ResponseProgress {
    /// No `http.response.start` yet.
    NotStarted,
    /// Started; the head waits for the first body message (a single body sets the length).
    Started(ResponseHead),
    /// The head went to the connection; more body is coming.
    Sending,
    /// The last body message went to the connection.
    Done,
}

pub struct State {
    events: VecDeque<AppEvent>,
    /// The connection's task, while it waits for an event.
    waker: Option<Waker>,
    /// Response body bytes queued and not yet taken by the connection.
    queued_bytes: usize,
    /// The connection dropped the call: the client went away, or the response is over.
    pub gone: bool,
    pub body: BodyProgress,
    /// The connection's answer to the latest [`AppEvent::ReadBody`].
    reading: Option<oneshot::Receiver<Result<Bytes, BodyReadError>>>,
    /// The future a `receive` waits on: for body bytes, or for the disconnect.
    pub receive_waiter: Option<Py<PyAny>>,
    /// The future a `send` waits on until the queued bytes are written.
    pub send_waiter: Option<Py<PyAny>>,
    pub response: ResponseProgress,
    /// The application's task (to cancel and show on `--request-timeout`).
    pub task: Option<Py<PyAny>>,
}

/// One request's shared state.
pub struct Exchange {
    pub asgi: Arc<Asgi>,
    /// A HEAD request: a single empty body says nothing about the GET body's length.
    pub is_head: bool,
    state: Mutex<State>,
}

impl Exchange {
    pub fn new(asgi: Arc<Asgi>, is_head: bool, body: BodyProgress) -> Self {
        Exchange {
            asgi,
            is_head,
            state: Mutex::new(State {
                events: VecDeque::with_capacity(4),
                waker: None,
                queued_bytes: 0,
                gone: false,
                body,
                reading: None,
                receive_waiter: None,
                send_waiter: None,
                response: ResponseProgress::NotStarted,
                task: None,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues events for the connection and wakes it. False: the connection is gone.
    pub fn push(&self, state: &mut State, events: impl IntoIterator<Item = AppEvent>) -> bool {
        if state.gone {
            return false;
        }
        for event in events {
            if let AppEvent::Data(bytes) = &event {
                state.queued_bytes += bytes.len();
            }
            state.events.push_back(event);
        }
        if let Some(waker) = state.waker.take() {
            super::event_loop::wake_soon(waker);
        }
        true
    }

    /// The body bytes queued for the connection are over the budget: a `send` should wait.
    pub fn over_budget(state: &State) -> bool {
        state.queued_bytes > SEND_BUDGET
    }

    /// A body read asked of the connection has not been answered yet.
    pub fn body_read_pending(state: &State) -> bool {
        state.reading.is_some()
    }

    /// Asks the connection for more of the request body.
    pub fn ask_for_body(&self, state: &mut State) {
        let (reply, answer) = oneshot::channel();
        state.reading = Some(answer);
        self.push(
            state,
            [AppEvent::ReadBody {
                max: RECEIVE_PIECE,
                reply,
            }],
        );
    }
}

/// An `http.request` message.
pub fn request_message<'py>(
    py: Python<'py>,
    body: &[u8],
    more_body: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let message = PyDict::new(py);
    message.set_item(pyo3::intern!(py, "type"), pyo3::intern!(py, "http.request"))?;
    message.set_item(pyo3::intern!(py, "body"), PyBytes::new(py, body))?;
    message.set_item(pyo3::intern!(py, "more_body"), more_body)?;
    Ok(message)
}

/// An `http.disconnect` message.
pub fn disconnect_message(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let message = PyDict::new(py);
    message.set_item(
        pyo3::intern!(py, "type"),
        pyo3::intern!(py, "http.disconnect"),
    )?;
    Ok(message)
}

/// Hands a piece of the body to the `receive` waiting for it; if that was cancelled meanwhile, the
/// piece waits for the next `receive`.
fn deliver_piece(py: Python<'_>, exchange: &Exchange, piece: Bytes, more: bool) {
    let mut state = exchange.lock();
    match state.receive_waiter.take() {
        Some(waiter) if !is_done(waiter.bind(py)) => {
            drop(state);
            if let Ok(message) = request_message(py, &piece, more) {
                resolve(waiter.bind(py), message.into_any());
            }
        }
        _ => state.body.first = Some(piece),
    }
}

/// Whether a future is done (resolved or cancelled); an error counts as done.
pub fn is_done(future: &Bound<'_, PyAny>) -> bool {
    future
        .call_method0(pyo3::intern!(future.py(), "done"))
        .and_then(|done| done.is_truthy())
        .unwrap_or(true)
}

/// Keeps `waker` in `slot` unless the one there wakes the same task already.
pub fn remember_waker(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|kept| kept.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

/// Lets a `send` that waited for room go on (on the loop's thread).
pub fn release_send(asgi: &Asgi, waiter: Option<Py<PyAny>>) {
    if let Some(waiter) = waiter {
        asgi.event_loop().submit(Box::new(move |py| {
            resolve(waiter.bind(py), py.None().into_bound(py));
        }));
    }
}

/// Makes a waiting `send` raise [`ClientDisconnected`] with `why`, unless it is done already.
pub fn fail_send(py: Python<'_>, waiter: Option<Py<PyAny>>, why: &str) {
    if let Some(waiter) = waiter {
        let waiter = waiter.bind(py);
        if !is_done(waiter) {
            let error = ClientDisconnected::new_err(why.to_owned());
            let _ = waiter.call_method1("set_exception", (error.value(py),));
        }
    }
}

/// A `receive` may not be called while an earlier one still waits (one cancelled with its
/// task, by a timeout around it, is no obstacle).
pub fn check_no_receive_waiting(py: Python<'_>, waiter: Option<&Py<PyAny>>) -> PyResult<()> {
    if waiter.is_some_and(|waiter| !is_done(waiter.bind(py))) {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "receive() called again before the previous call completed",
        ));
    }
    Ok(())
}

/// Sets a future's result unless it is done already (cancelled with its task, say).
pub fn resolve(future: &Bound<'_, PyAny>, value: Bound<'_, PyAny>) {
    if is_done(future) {
        return;
    }
    let _ = future.call_method1(pyo3::intern!(future.py(), "set_result"), (value,));
}

/// The connection's handle on the request.
pub struct AsgiCall {
    pub exchange: Arc<Exchange>,
}

impl ServiceCall for AsgiCall {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<AppEvent> {
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        if let Some(answer) = state.reading.as_mut() {
            if let Poll::Ready(answer) = Pin::new(answer).poll(cx) {
                state.reading = None;
                // An error: the connection drops the call next, which tells the application.
                if let Ok(Ok(piece)) = answer {
                    let more = if piece.is_empty() {
                        false
                    } else {
                        state.body.received += piece.len() as u64;
                        state
                            .body
                            .content_length
                            .is_none_or(|length| state.body.received < length)
                    };
                    state.body.more_to_read = more;
                    let job_exchange = exchange.clone();
                    exchange.asgi.event_loop().submit(Box::new(move |py| {
                        deliver_piece(py, &job_exchange, piece, more);
                    }));
                }
            }
        }
        if let Some(event) = state.events.pop_front() {
            if let AppEvent::Data(bytes) = &event {
                state.queued_bytes -= bytes.len();
                if !Exchange::over_budget(&state) {
                    release_send(&exchange.asgi, state.send_waiter.take());
                }
            }
            return Poll::Ready(event);
        }
        remember_waker(&mut state.waker, cx.waker());
        Poll::Pending
    }

    fn timed_out(&mut self, timeout: RequestTimeout) {
        let Some(task) = self.exchange.lock().task.take() else {
            return;
        };
        let line = String::from_utf8_lossy(&timeout.request_line).into_owned();
        self.exchange.asgi.event_loop().submit(Box::new(move |py| {
            super::timeout::report_and_cancel(py, task.bind(py), &line, timeout.waited);
        }));
    }
}

impl Drop for AsgiCall {
    fn drop(&mut self) {
        let mut state = self.exchange.lock();
        state.gone = true;
        state.events.clear();
        state.waker = None;
        state.reading = None;
        let receive_waiter = state.receive_waiter.take();
        let send_waiter = state.send_waiter.take();
        drop(state);
        if receive_waiter.is_none() && send_waiter.is_none() {
            return;
        }
        self.exchange.asgi.event_loop().submit(Box::new(move |py| {
            if let Some(waiter) = receive_waiter {
                if let Ok(message) = disconnect_message(py) {
                    resolve(waiter.bind(py), message.into_any());
                }
            }
            fail_send(py, send_waiter, "the client went away");
        }));
    }
}
