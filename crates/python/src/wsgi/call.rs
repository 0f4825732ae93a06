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

use std::collections::VecDeque;
use std::ffi::c_ulong;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple};

use tern_core::message::response::FileBody;
use tern_core::service::{AppEvent, RequestTimeout, ResponseHead, ServiceCall, ServiceRequest};

use super::environ;
use super::errors::log_exception;
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::start_response::StartResponse;
use super::Wsgi;
use crate::threads::{python_thread_ident, Wake};

/// Body bytes one job may hand to the connection before it must wait for them to be written.
const RUN_BUDGET: usize = 256 * 1024;
/// Likewise in chunks, so a generator of tiny chunks cannot queue a quarter-million events.
const RUN_CHUNKS: usize = 256;
/// Bodies at least this large are handed to the connection without a copy (the connection holds
/// a reference to the Python bytes object instead); smaller ones are cheaper to copy.
const SHARE_FROM: usize = 4 * 1024;
/// The short body of a 500 answer.
const ERROR_BODY: &[u8] = b"Internal Server Error\n";

/// State shared by the connection (through [`WsgiCall`]) and the jobs of one request.
pub struct CallShared {
    wsgi: Arc<Wsgi>,
    /// A HEAD request: an empty body from the app says nothing about the GET body's length.
    is_head: bool,
    state: Mutex<CallState>,
    /// Signalled when the connection takes body bytes (a blocked `write()` may go on).
    drained: Condvar,
    /// Which pool thread runs a job of this call now (a lock of its own: taken twice per job,
    /// never while waiting).
    job: Mutex<RunningJob>,
}

/// The job of a call that is running now, if any.
struct RunningJob {
    /// The Python thread ident of the pool thread running it (the app call, or the iteration
    /// producing the next chunks); [`NO_THREAD`] between jobs.
    thread: c_ulong,
    /// The connection timed out on it: it is counted in [`Wsgi::stuck_jobs`] until it ends.
    counted_stuck: bool,
}

/// [`RunningJob::thread`] when no job of the call is running (no Python thread has ident 0).
const NO_THREAD: c_ulong = 0;

/// Marks the pool thread that created it as the one running its call, until dropped.
struct RunningHere<'a> {
    call: &'a CallShared,
}

impl Drop for RunningHere<'_> {
    fn drop(&mut self) {
        let mut job = self.call.lock_job();
        job.thread = NO_THREAD;
        if std::mem::take(&mut job.counted_stuck) {
            self.call.wsgi.stuck_jobs.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct CallState {
    events: VecDeque<AppEvent>,
    /// The connection task, while it waits for an event.
    waker: Option<Waker>,
    /// Body bytes queued and not yet taken by the connection.
    queued_bytes: usize,
    response: Response,
    /// The connection gave up: stop iterating, close, and drop further events.
    cancelled: bool,
    /// A `write()` waits on `drained` (notifying costs a syscall, so only then).
    writer_waiting: bool,
    /// The request body's temporary file, if it was spooled: closed when the connection is done
    /// with the call, rather than whenever Python frees the environ (a reference cycle can put
    /// that off until a garbage collection).
    spooled_body: Option<Arc<std::fs::File>>,
    /// Reading the request body failed through the client's fault; what the application raises
    /// next is a consequence, not an application error.
    body_failed: bool,
}

/// Where the response iterable is.
enum Response {
    /// A job has it (or has not produced it yet).
    InJob,
    /// Parked between jobs until the connection wants more.
    Parked(Stream),
    /// Sent, but to be closed only when the connection is done (a file being sent).
    CloseWhenDone(Py<PyAny>),
    /// Closed, or never needed closing.
    Done,
}

/// A response iterable being iterated.
pub struct Stream {
    iterable: Py<PyAny>,
    iterator: Py<PyIterator>,
    start: Py<StartResponse>,
    /// Whether any body byte was produced (to count an empty body's length as 0).
    produced: bool,
}

impl CallShared {
    pub fn new(wsgi: Arc<Wsgi>, is_head: bool) -> Self {
        CallShared {
            wsgi,
            is_head,
            state: Mutex::new(CallState {
                // Room for a whole small response: head, body, end.
                events: VecDeque::with_capacity(4),
                waker: None,
                queued_bytes: 0,
                response: Response::InJob,
                cancelled: false,
                writer_waiting: false,
                spooled_body: None,
                body_failed: false,
            }),
            drained: Condvar::new(),
            job: Mutex::new(RunningJob {
                thread: NO_THREAD,
                counted_stuck: false,
            }),
        }
    }

    fn lock_job(&self) -> MutexGuard<'_, RunningJob> {
        self.job
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the calling pool thread as the one running this call, for the job's duration.
    fn running_here(&self) -> RunningHere<'_> {
        self.lock_job().thread = python_thread_ident();
        RunningHere { call: self }
    }

    /// The Python thread ident of the thread running a job of this call; None between jobs
    /// (the next one waits for a free thread).
    pub fn thread_ident(&self) -> Option<c_ulong> {
        Some(self.lock_job().thread).filter(|&ident| ident != NO_THREAD)
    }

    /// The connection timed out on this call: its running job, if any, is counted as stuck
    /// (a drain does not wait for it) until it ends. Returns that job's thread.
    pub fn count_as_stuck(&self) -> Option<c_ulong> {
        let mut job = self.lock_job();
        if job.thread == NO_THREAD {
            return None;
        }
        if !job.counted_stuck {
            job.counted_stuck = true;
            self.wsgi.stuck_jobs.fetch_add(1, Ordering::SeqCst);
        }
        Some(job.thread)
    }

    fn lock(&self) -> MutexGuard<'_, CallState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands an event to the connection. False: the connection is gone.
    pub fn push(&self, event: AppEvent, when: Wake) -> bool {
        self.push_all([event], when)
    }

    /// Hands several events to the connection at once. False: the connection is gone.
    pub fn push_all(&self, events: impl IntoIterator<Item = AppEvent>, when: Wake) -> bool {
        let mut state = self.lock();
        if state.cancelled {
            return false;
        }
        for event in events {
            if let AppEvent::Data(bytes) = &event {
                state.queued_bytes += bytes.len();
            }
            state.events.push_back(event);
        }
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            self.wsgi.pool().wake(waker, when);
        }
        true
    }

    /// The next event for the connection, with the byte accounting a blocked `write()` waits on.
    fn take_event(&self, state: &mut CallState) -> Option<AppEvent> {
        let event = state.events.pop_front()?;
        if let AppEvent::Data(bytes) = &event {
            state.queued_bytes -= bytes.len();
            if state.writer_waiting && state.queued_bytes <= RUN_BUDGET {
                self.drained.notify_all();
            }
        }
        Some(event)
    }

    pub fn is_cancelled(&self) -> bool {
        self.lock().cancelled
    }

    /// Keeps the spooled request body's file for `wsgi.input` while the call lasts.
    pub fn keep_spooled_body(&self, file: std::fs::File) {
        let mut state = self.lock();
        if !state.cancelled {
            state.spooled_body = Some(Arc::new(file));
        }
    }

    /// The spooled request body's file; none once the call is over.
    pub fn spooled_body(&self) -> Option<Arc<std::fs::File>> {
        self.lock().spooled_body.clone()
    }

    /// Records that reading the request body failed through the client's fault.
    pub fn note_body_failure(&self) {
        self.lock().body_failed = true;
    }

    /// Blocks (without the interpreter) while too many body bytes wait for the connection.
    /// False: the connection is gone.
    pub fn wait_until_drained(&self) -> bool {
        let mut state = self.lock();
        while state.queued_bytes > RUN_BUDGET && !state.cancelled {
            state.writer_waiting = true;
            state = self
                .drained
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.writer_waiting = false;
        !state.cancelled
    }

    /// At the end of a job's budget: parks the stream until the connection asks for more and
    /// returns None, or, if the connection has already taken everything, gives it back to go on.
    fn park(&self, stream: Stream) -> Option<Stream> {
        let mut state = self.lock();
        if state.events.is_empty() || state.cancelled {
            return Some(stream);
        }
        state.response = Response::Parked(stream);
        None
    }

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
            Err(error) => return self.fail(py, None, error, "creating start_response"),
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
            content_length,
            input,
        ) {
            Ok(environ) => environ,
            Err(error) => return self.fail(py, Some(start.get()), error, "building the environ"),
        };
        let result = match self.wsgi.app.bind(py).call1((environ, start.clone_ref(py))) {
            Ok(result) => result,
            Err(error) => {
                return self.fail(py, Some(start.get()), error, "calling the application")
            }
        };
        if let Ok(list) = result.cast::<PyList>() {
            return self.send_whole(py, &start, &result, list.iter());
        }
        if let Ok(tuple) = result.cast::<PyTuple>() {
            return self.send_whole(py, &start, &result, tuple.iter());
        }
        if let Ok(wrapper) = result.cast::<FileWrapper>() {
            if let Some(file) = wrapper.get().as_file(py) {
                return self.send_file(py, &start, &result, file);
            }
        }
        let iterator = match result.try_iter() {
            Ok(iterator) => iterator.unbind(),
            Err(error) => {
                self.fail(py, Some(start.get()), error, "iterating the response");
                return close_iterable(py, &result);
            }
        };
        self.iterate(
            py,
            Stream {
                iterable: result.unbind(),
                iterator,
                start,
                produced: false,
            },
        );
    }

    /// A list or tuple: the whole body is known, so it goes with a Content-Length in one batch.
    fn send_whole<'py>(
        &self,
        py: Python<'py>,
        start: &Py<StartResponse>,
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
                self.fail(py, Some(start.get()), error, "reading the response");
                return close_iterable(py, result);
            }
        };
        // A plain list or tuple has no close(); asking would raise (and format) an AttributeError.
        if !(result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>()) {
            close_iterable(py, result);
        }
        let counted = (!(self.is_head && body.is_empty())).then_some(body.len() as u64);
        let head = match start.get().take_head(counted) {
            Ok(head) => head.map(AppEvent::Head),
            Err(error) => return self.fail(py, Some(start.get()), error, "sending the response"),
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
    fn send_file(
        &self,
        py: Python<'_>,
        start: &Py<StartResponse>,
        result: &Bound<'_, PyAny>,
        mut file: FileBody,
    ) {
        match start.get().send_head(Some(file.len), Wake::WithBatch) {
            // PEP 3333: a file_wrapper response stops at the application's Content-Length.
            Ok(Some(declared)) => file.len = file.len.min(declared),
            Ok(None) => {}
            Err(error) => {
                self.fail(py, Some(start.get()), error, "sending the response");
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
                    let start = stream.start.get();
                    close_iterable(py, stream.iterable.bind(py));
                    let empty_length = (!stream.produced && !self.is_head).then_some(0);
                    if let Err(error) = start.send_head(empty_length, Wake::WithBatch) {
                        return self.fail(py, Some(start), error, "ending the response");
                    }
                    self.push(AppEvent::End, Wake::WithBatch);
                    return self.finish(Response::Done);
                }
                Some(Err(error)) => {
                    self.fail(
                        py,
                        Some(stream.start.get()),
                        error,
                        "iterating the response",
                    );
                    return close_iterable(py, stream.iterable.bind(py));
                }
                Some(Ok(chunk)) => {
                    let Ok(chunk_bytes) = chunk.cast::<PyBytes>() else {
                        self.fail(
                            py,
                            Some(stream.start.get()),
                            not_bytes(&chunk),
                            "iterating the response",
                        );
                        return close_iterable(py, stream.iterable.bind(py));
                    };
                    let bytes = chunk_bytes.as_bytes();
                    if bytes.is_empty() {
                        continue;
                    }
                    if let Err(error) = stream.start.get().send_head(None, Wake::Now) {
                        self.fail(
                            py,
                            Some(stream.start.get()),
                            error,
                            "iterating the response",
                        );
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
    fn fail(&self, py: Python<'_>, start: Option<&StartResponse>, error: PyErr, doing: &str) {
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
        let head_sent = start.is_some_and(StartResponse::head_sent);
        if head_sent {
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

/// A `bytes` object's content for the connection: copied when small, shared when large.
pub fn body_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < SHARE_FROM {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(SharedPyBytes {
        ptr: data.as_ptr(),
        len: data.len(),
        _object: bytes.clone().unbind(),
    })
}

/// Keeps a Python bytes object alive while the connection sends its content.
struct SharedPyBytes {
    ptr: *const u8,
    len: usize,
    /// Released through pyo3's deferred reference counting when dropped without the interpreter.
    _object: Py<PyBytes>,
}

// SAFETY: a bytes object is immutable and its buffer lives as long as the object, which
// `_object` keeps alive; reading it needs no interpreter lock.
unsafe impl Send for SharedPyBytes {}
// SAFETY: as for Send: shared references only ever read the immutable buffer.
unsafe impl Sync for SharedPyBytes {}

impl AsRef<[u8]> for SharedPyBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the Send impl: the pointer and length came from the live, immutable object.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
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
