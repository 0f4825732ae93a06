//! The application's `send` for an HTTP request: `http.response.start`, `http.response.body`
//! (streamed with `more_body`) and `http.response.pathsend`, checked and turned into events for
//! the connection. A `send` completes at once while the bytes queued for the client stay within
//! [`SEND_BUDGET`](super::exchange::SEND_BUDGET), else when they are written; after the client
//! went away it raises [`ClientDisconnected`].

use std::borrow::Cow;
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict};

use tern_core::message::response::{reason_phrase, FileBody};
use tern_core::service::{AppEvent, ResponseHead};

use super::app_values::message_type;
use super::exchange::{ClientDisconnected, Exchange, ResponseProgress};
use super::ready::Ready;
use crate::py_bytes::body_bytes;
use crate::response_head::{FieldError, HeadBuilder};

#[pyclass(frozen, module = "tern_server._native")]
pub struct HttpSend {
    pub exchange: Arc<Exchange>,
}

#[pymethods]
impl HttpSend {
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
        match kind {
            "http.response.start" => self.start(py, message),
            "http.response.body" => self.body(py, message),
            "http.response.pathsend" => self.pathsend(py, message),
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?} for an HTTP request"
            ))),
        }
    }
}

impl HttpSend {
    fn start<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let head = parse_start(message)?;
        let mut state = self.exchange.lock();
        if !matches!(state.response, ResponseProgress::NotStarted) {
            return Err(PyRuntimeError::new_err(
                "http.response.start sent a second time",
            ));
        }
        if state.gone {
            return Err(ClientDisconnected::new_err("the client went away"));
        }
        state.response = ResponseProgress::Started(head);
        Ready::bound(py, py.None().into_bound(py))
    }

    fn body<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let body = match message.get_item(pyo3::intern!(py, "body"))? {
            None => bytes::Bytes::new(),
            Some(body) => {
                if let Ok(bytes) = body.cast::<PyBytes>() {
                    body_bytes(bytes)
                } else if let Ok(array) = body.cast::<PyByteArray>() {
                    bytes::Bytes::from(array.to_vec())
                } else {
                    return Err(PyTypeError::new_err("'body' must be bytes"));
                }
            }
        };
        let more = match message.get_item(pyo3::intern!(py, "more_body"))? {
            Some(more) => more.is_truthy()?,
            None => false,
        };
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        if state.gone {
            return Err(ClientDisconnected::new_err("the client went away"));
        }
        let mut events = Vec::with_capacity(3);
        match std::mem::replace(&mut state.response, ResponseProgress::Sending) {
            ResponseProgress::Started(mut head) => {
                if !more && head.content_length.is_none() && !exchange.is_head {
                    head.content_length = Some(body.len() as u64);
                }
                events.push(AppEvent::Head(head));
            }
            ResponseProgress::Sending => {}
            ResponseProgress::NotStarted => {
                state.response = ResponseProgress::NotStarted;
                return Err(PyRuntimeError::new_err(
                    "http.response.body sent before http.response.start",
                ));
            }
            ResponseProgress::Done => {
                state.response = ResponseProgress::Done;
                return Err(PyRuntimeError::new_err(
                    "http.response.body sent after the response was complete",
                ));
            }
        }
        if !body.is_empty() {
            events.push(AppEvent::Data(body));
        }
        if !more {
            events.push(AppEvent::End);
            state.response = ResponseProgress::Done;
        }
        if !exchange.push(&mut state, events) {
            return Err(ClientDisconnected::new_err("the client went away"));
        }
        if !Exchange::over_budget(&state) {
            return Ready::bound(py, py.None().into_bound(py));
        }
        let future = exchange.asgi.create_future(py)?;
        state.send_waiter = Some(future.clone().unbind());
        Ok(future)
    }

    /// `http.response.pathsend`: the whole file at `path`, sent with sendfile(2).
    fn pathsend<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let path = message
            .get_item(pyo3::intern!(py, "path"))?
            .ok_or_else(|| PyValueError::new_err("http.response.pathsend needs a 'path'"))?;
        let path: std::path::PathBuf = path.extract()?;
        let file = std::fs::File::open(&path)?;
        let len = file.metadata()?.len();
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        let mut head = match std::mem::replace(&mut state.response, ResponseProgress::Done) {
            ResponseProgress::Started(head) => head,
            other => {
                state.response = other;
                return Err(PyRuntimeError::new_err(
                    "http.response.pathsend must follow http.response.start alone",
                ));
            }
        };
        if head.content_length.is_none() {
            head.content_length = Some(len);
        }
        let file = FileBody {
            file: Arc::new(file),
            offset: 0,
            len,
        };
        let events = [AppEvent::Head(head), AppEvent::File(file), AppEvent::End];
        if !exchange.push(&mut state, events) {
            return Err(ClientDisconnected::new_err("the client went away"));
        }
        Ready::bound(py, py.None().into_bound(py))
    }
}

/// The head of `http.response.start`: a final status and `[name, value]` byte pairs. Hop-by-hop
/// fields are left out (the connection frames the response), with a debug line.
pub(super) fn parse_start(message: &Bound<'_, PyDict>) -> PyResult<ResponseHead> {
    let py = message.py();
    let status: u16 = message
        .get_item(pyo3::intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err("http.response.start needs a 'status'"))?
        .extract()
        .map_err(|_| PyTypeError::new_err("'status' must be an int"))?;
    if !(200..=599).contains(&status) {
        return Err(PyValueError::new_err(format!(
            "invalid status {status}: a response needs a final status, 200 to 599"
        )));
    }
    let mut head = HeadBuilder::new(status, Cow::Borrowed(reason_phrase(status)));
    if let Some(headers) = message.get_item(pyo3::intern!(py, "headers"))? {
        add_headers(&mut head, &headers)?;
    }
    Ok(head.finish())
}

/// Adds an ASGI message's `headers` (`[name, value]` byte pairs) to `head`, leaving out
/// hop-by-hop fields with a debug line.
pub(super) fn add_headers(head: &mut HeadBuilder, headers: &Bound<'_, PyAny>) -> PyResult<()> {
    {
        for pair in headers.try_iter()? {
            let pair = pair?;
            let mut items = pair.try_iter()?;
            let (Some(name), Some(value), None) = (items.next(), items.next(), items.next()) else {
                return Err(PyValueError::new_err(
                    "each header must be a [name, value] pair",
                ));
            };
            let (name, value) = (name?, value?);
            let (Ok(name), Ok(value)) = (name.cast::<PyBytes>(), value.cast::<PyBytes>()) else {
                return Err(PyTypeError::new_err(
                    "header names and values must be bytes",
                ));
            };
            match head.add(name.as_bytes(), value.as_bytes()) {
                Ok(()) => {}
                Err(FieldError::HopByHop) => tracing::debug!(
                    "left out the ASGI application's hop-by-hop header {}",
                    String::from_utf8_lossy(name.as_bytes())
                ),
                Err(FieldError::Invalid(message)) => return Err(PyValueError::new_err(message)),
            }
        }
    }
    Ok(())
}
