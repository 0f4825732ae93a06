//! One request's journey through the application: calling it, turning its response iterable into
//! events for the connection, and calling the iterable's `close()` exactly once on every path
//! (normal end, application error, client gone).
//!
//! A streamed response is iterated by jobs on the thread pool, each sending at most
//! [`RUN_BUDGET`] bytes before it parks the iterator and frees its thread; the connection resumes
//! it once those bytes are written. So a slow client holds memory up to the budget and no thread.
//!
//! Each job records the Python thread it runs on, so a call that outlives `--request-timeout`
//! can be found on its thread and its stack shown ([`super::stuck`]).

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use tern_core::message::response::FileBody;
use tern_core::service::{AppEvent, RequestTimeout, ResponseHead, ServiceCall, ServiceRequest};

use super::environ;
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::shared::{CallShared, Response, Stream, RUN_BUDGET};
use super::start_response::StartResponse;
use crate::py_bytes::body_bytes;
use crate::threads::Wake;
use crate::traceback::log_exception;

/// [`RUN_BUDGET`] in chunks, so a generator of tiny chunks cannot queue a quarter-million events.
const RUN_CHUNKS: usize = 256;
/// The short body of a 500 answer.
const ERROR_BODY: &[u8] = b"Internal Server Error\n";

/// Running the application: the jobs of one call.
impl CallShared {
    fn submit_resume(self: &Arc<Self>, stream: Stream) {
        let call = self.clone();
        self.wsgi.pool().submit(Box::new(move |py| {
            let _running = call.running_here();
            call.iterate(py, stream);
        }));
    }

    fn finish(&self, response: Response) {
        self.lock().response = response;
    }

    /// Runs the application for `request` (a job on the pool).
    pub fn run_app(self: Arc<Self>, py: Python<'_>, request: ServiceRequest) {
        let _running = self.running_here();
        let start = match Py::new(py, StartResponse::new(self.clone())) {
            Ok(start) => start,
            Err(error) => return self.fail(py, error, "creating start_response"),
        };
        let content_length = request.body.content_length;
        let input = Input::new(self.clone(), request.body);
        let environ = match environ::build(
            py,
            &self.wsgi,
            &request.head,
            request.peer,
            request.forwarded,
            request.local_addr,
            request.tls.as_deref(),
            content_length,
            input,
        ) {
            Ok(environ) => environ,
            Err(error) => return self.fail(py, error, "building the environ"),
        };
        let result = match self.wsgi.app.bind(py).call1((environ, start)) {
            Ok(result) => result,
            Err(error) => return self.fail(py, error, "calling the application"),
        };
        if let Ok(list) = result.cast::<PyList>() {
            return self.send_whole(py, &result, list.iter());
        }
        if let Ok(tuple) = result.cast::<PyTuple>() {
            return self.send_whole(py, &result, tuple.iter());
        }
        if let Ok(wrapper) = result.cast::<FileWrapper>() {
            if let Some(file) = wrapper.get().as_file(py) {
                return self.send_file(py, &result, file);
            }
        }
        let iterator = match result.try_iter() {
            Ok(iterator) => iterator.unbind(),
            Err(error) => {
                self.fail(py, error, "iterating the response");
                return close_iterable(py, &result);
            }
        };
        self.iterate(
            py,
            Stream {
                iterable: result.unbind(),
                iterator,
                produced: false,
            },
        );
    }

    /// A list or tuple: the whole body is known, so it goes with a Content-Length in one batch.
    fn send_whole<'py>(
        &self,
        py: Python<'py>,
        result: &Bound<'py, PyAny>,
        mut items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    ) {
        let body = if items.len() == 1 {
            // (The list could shrink under us if another thread holds it: then it is empty.)
            match items.next() {
                Some(single) => match single.cast::<PyBytes>() {
                    Ok(bytes) => Ok(body_bytes(bytes)),
                    Err(_) => Err(not_bytes(&single)),
                },
                None => Ok(Bytes::new()),
            }
        } else {
            let mut body = BytesMut::new();
            let mut failure = None;
            for item in items {
                match item.cast::<PyBytes>() {
                    Ok(bytes) => body.extend_from_slice(bytes.as_bytes()),
                    Err(_) => {
                        failure = Some(not_bytes(&item));
                        break;
                    }
                }
            }
            failure.map_or_else(|| Ok(body.freeze()), Err)
        };
        let body = match body {
            Ok(body) => body,
            Err(error) => {
                self.fail(py, error, "reading the response");
                return close_iterable(py, result);
            }
        };
        // A plain list or tuple has no close(); asking would raise (and format) an AttributeError.
        if !(result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>()) {
            close_iterable(py, result);
        }
        let counted = (!(self.is_head && body.is_empty())).then_some(body.len() as u64);
        let head = match self.take_head(counted) {
            Ok(head) => head.map(AppEvent::Head),
            Err(error) => return self.fail(py, error, "sending the response"),
        };
        let data = (!body.is_empty()).then(|| AppEvent::Data(body));
        // The whole response in one hand-over (one lock, one wake-up).
        self.push_all(
            [head, data, Some(AppEvent::End)].into_iter().flatten(),
            Wake::WithBatch,
        );
        self.finish(Response::Done);
    }

    /// A wsgi.file_wrapper around a regular file: sent with sendfile, closed when sent.
    fn send_file(&self, py: Python<'_>, result: &Bound<'_, PyAny>, mut file: FileBody) {
        match self.send_head(Some(file.len), Wake::WithBatch) {
            // PEP 3333: a file_wrapper response stops at the application's Content-Length.
            Ok(Some(declared)) => file.len = file.len.min(declared),
            Ok(None) => {}
            Err(error) => {
                self.fail(py, error, "sending the response");
                return close_iterable(py, result);
            }
        }
        self.finish(Response::CloseWhenDone(result.clone().unbind()));
        self.push(AppEvent::File(file), Wake::WithBatch);
        self.push(AppEvent::End, Wake::WithBatch);
        if self.is_cancelled() {
            // The connection left before it could take the file: it will not close it.
            let mut state = self.lock();
            if let Response::CloseWhenDone(iterable) =
                std::mem::replace(&mut state.response, Response::Done)
            {
                drop(state);
                close_iterable(py, iterable.bind(py));
            }
        }
    }

    /// Iterates a streamed response until it ends, fails, or has sent its budget for this job.
    fn iterate(self: &Arc<Self>, py: Python<'_>, mut stream: Stream) {
        let mut sent = 0;
        let mut chunks = 0;
        loop {
            if self.is_cancelled() {
                return close_iterable(py, stream.iterable.bind(py));
            }
            if sent >= RUN_BUDGET || chunks >= RUN_CHUNKS {
                match self.park(stream) {
                    Some(back) => {
                        stream = back;
                        sent = 0;
                        chunks = 0;
                        continue;
                    }
                    None => return,
                }
            }
            let next = stream.iterator.bind(py).clone().next();
            match next {
                None => {
                    close_iterable(py, stream.iterable.bind(py));
                    let empty_length = (!stream.produced && !self.is_head).then_some(0);
                    if let Err(error) = self.send_head(empty_length, Wake::WithBatch) {
                        return self.fail(py, error, "ending the response");
                    }
                    self.push(AppEvent::End, Wake::WithBatch);
                    return self.finish(Response::Done);
                }
                Some(Err(error)) => {
                    self.fail(py, error, "iterating the response");
                    return close_iterable(py, stream.iterable.bind(py));
                }
                Some(Ok(chunk)) => {
                    let Ok(chunk_bytes) = chunk.cast::<PyBytes>() else {
                        self.fail(py, not_bytes(&chunk), "iterating the response");
                        return close_iterable(py, stream.iterable.bind(py));
                    };
                    let bytes = chunk_bytes.as_bytes();
                    if bytes.is_empty() {
                        continue;
                    }
                    if let Err(error) = self.send_head(None, Wake::Now) {
                        self.fail(py, error, "iterating the response");
                        return close_iterable(py, stream.iterable.bind(py));
                    }
                    stream.produced = true;
                    sent += bytes.len();
                    chunks += 1;
                    self.push(AppEvent::Data(body_bytes(chunk_bytes)), Wake::Now);
                }
            }
        }
    }

    /// Logs an application error and answers 500 if no head went out, else aborts the response.
    ///
    /// After the request body failed through the client's fault (the connection has logged that
    /// in one line), the exception is only a debug line: it is the application giving up on a
    /// body it could not read, and a traceback for each would bury real errors.
    fn fail(&self, py: Python<'_>, error: PyErr, doing: &str) {
        if self.lock().body_failed {
            tracing::debug!(
                "application raised {} while {doing}, after the request body failed",
                error
                    .get_type(py)
                    .name()
                    .map(|name| name.to_string())
                    .unwrap_or_default()
            );
        } else {
            log_exception(py, &error, &format!("application error while {doing}"));
        }
        if self.head_sent() {
            self.push(AppEvent::Abort, Wake::WithBatch);
        } else {
            let head = ResponseHead {
                status: 500,
                reason: "Internal Server Error".into(),
                header_lines: b"Content-Type: text/plain; charset=utf-8\r\n".to_vec(),
                content_length: Some(ERROR_BODY.len() as u64),
                length_in_headers: false,
                has_server: false,
                has_date: false,
            };
            self.push(AppEvent::Head(head), Wake::WithBatch);
            self.push(
                AppEvent::Data(Bytes::from_static(ERROR_BODY)),
                Wake::WithBatch,
            );
            self.push(AppEvent::End, Wake::WithBatch);
        }
        self.finish(Response::Done);
    }
}

fn not_bytes(item: &Bound<'_, PyAny>) -> PyErr {
    let name = item
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    PyTypeError::new_err(format!(
        "the response iterable yielded {name}, but WSGI bodies are bytes"
    ))
}

/// Calls `close()` on a response iterable that has one, logging what it raises.
pub fn close_iterable(py: Python<'_>, iterable: &Bound<'_, PyAny>) {
    if let Ok(close) = iterable.getattr(pyo3::intern!(py, "close")) {
        if let Err(error) = close.call0() {
            log_exception(py, &error, "the response's close() failed");
        }
    }
}

/// The connection's handle on a call.
pub struct WsgiCall {
    pub shared: Arc<CallShared>,
}

impl ServiceCall for WsgiCall {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<AppEvent> {
        let mut state = self.shared.lock();
        if let Some(event) = self.shared.take_event(&mut state) {
            return Poll::Ready(event);
        }
        if matches!(state.response, Response::Parked(_)) {
            if let Response::Parked(stream) =
                std::mem::replace(&mut state.response, Response::InJob)
            {
                drop(state);
                self.shared.submit_resume(stream);
                state = self.shared.lock();
                if let Some(event) = self.shared.take_event(&mut state) {
                    return Poll::Ready(event);
                }
            }
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    fn timed_out(&mut self, timeout: RequestTimeout) {
        super::stuck::report(self.shared.clone(), timeout);
    }
}

impl Drop for WsgiCall {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.cancelled = true;
        // Pending body-read replies are dropped too, so an application blocked on one wakes up.
        state.events.clear();
        state.waker = None;
        state.spooled_body = None;
        let writer_waiting = state.writer_waiting;
        let to_close = match std::mem::replace(&mut state.response, Response::Done) {
            Response::Parked(stream) => Some(stream.iterable),
            Response::CloseWhenDone(iterable) => Some(iterable),
            other => {
                state.response = other;
                None
            }
        };
        drop(state);
        if writer_waiting {
            self.shared.drained.notify_all();
        }
        if let Some(iterable) = to_close {
            self.shared.wsgi.close_abandoned(iterable);
        }
    }
}
