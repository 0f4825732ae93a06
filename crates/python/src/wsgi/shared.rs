//! The state one request shares between the connection (which takes its events), the jobs that
//! run the application on the thread pool, and the callables the application holds
//! (`start_response` and `write`, `wsgi.input`): the events waiting for the connection, the
//! response head until it is sent, where the response iterable is between jobs, and which thread
//! runs the call now.
//!
//! [`super::call`] drives a call with it; [`super::start_response`], [`super::input`] and
//! [`super::stuck`] act on it without knowing how a call is driven.

use std::collections::VecDeque;
use std::ffi::c_ulong;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyIterator;

use tern_core::service::{AppEvent, ResponseHead, SpooledBody};

use super::Wsgi;
use crate::threads::{python_thread_ident, Wake};

/// Body bytes one job may hand to the connection before it must wait for them to be written.
pub(super) const RUN_BUDGET: usize = 256 * 1024;
/// State shared by the connection (through [`WsgiCall`](super::call::WsgiCall)), the jobs of one
/// request and the callables its application holds.
pub struct CallShared {
    pub(super) wsgi: Arc<Wsgi>,
    /// A HEAD request: an empty body from the app says nothing about the GET body's length.
    pub(super) is_head: bool,
    state: Mutex<CallState>,
    /// Signalled when the connection takes body bytes (a blocked `write()` may go on).
    pub(super) drained: Condvar,
    /// Which pool thread runs a job of this call now (a lock of its own: taken twice per job,
    /// never while waiting).
    job: Mutex<RunningJob>,
    /// The response head from `start_response` until it is sent (a lock of its own).
    head: Mutex<HeadState>,
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
pub(super) struct RunningHere<'a> {
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

pub(super) struct CallState {
    pub(super) events: VecDeque<AppEvent>,
    /// The connection task, while it waits for an event.
    pub(super) waker: Option<Waker>,
    /// Body bytes queued and not yet taken by the connection.
    queued_bytes: usize,
    pub(super) response: Response,
    /// The connection gave up: stop iterating, close, and drop further events.
    pub(super) cancelled: bool,
    /// A `write()` waits on `drained` (notifying costs a syscall, so only then).
    pub(super) writer_waiting: bool,
    /// The request body, if it was large (in memory lent by the worker's `--body-memory`, or in
    /// a temporary file): freed or closed when the connection is done with the call, rather than
    /// whenever Python frees the environ (a reference cycle can put that off until a garbage
    /// collection, and other uploads may be waiting for the room).
    pub(super) spooled_body: Option<Arc<SpooledBody>>,
    /// Reading the request body failed through the client's fault; what the application raises
    /// next is a consequence, not an application error.
    pub(super) body_failed: bool,
}

/// Where the response iterable is.
pub(super) enum Response {
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
    pub(super) iterable: Py<PyAny>,
    pub(super) iterator: Py<PyIterator>,
    /// Whether any body byte was produced (to count an empty body's length as 0).
    pub(super) produced: bool,
}

/// Where the response head is.
#[derive(Default)]
pub(super) struct HeadState {
    /// The head from the latest start_response call, until it is sent.
    pub(super) pending: Option<ResponseHead>,
    /// `start_response` was called.
    pub(super) called: bool,
    /// The head went to the connection.
    pub(super) sent: bool,
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
            head: Mutex::new(HeadState::default()),
        }
    }

    fn lock_job(&self) -> MutexGuard<'_, RunningJob> {
        self.job
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the calling pool thread as the one running this call, for the job's duration.
    pub(super) fn running_here(&self) -> RunningHere<'_> {
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

    pub(super) fn lock(&self) -> MutexGuard<'_, CallState> {
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
    pub(super) fn take_event(&self, state: &mut CallState) -> Option<AppEvent> {
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

    /// Keeps the spooled request body for `wsgi.input` while the call lasts.
    pub fn keep_spooled_body(&self, body: SpooledBody) {
        let mut state = self.lock();
        if !state.cancelled {
            state.spooled_body = Some(Arc::new(body));
        }
    }

    /// The spooled request body; none once the call is over.
    pub fn spooled_body(&self) -> Option<Arc<SpooledBody>> {
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
    pub(super) fn park(&self, stream: Stream) -> Option<Stream> {
        let mut state = self.lock();
        if state.events.is_empty() || state.cancelled {
            return Some(stream);
        }
        state.response = Response::Parked(stream);
        None
    }

    pub(super) fn lock_head(&self) -> MutexGuard<'_, HeadState> {
        self.head
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn head_sent(&self) -> bool {
        self.lock_head().sent
    }

    /// Queues the head if it has not gone yet; `body_length` is the whole body's length when
    /// known. Returns the Content-Length the head declares. Fails if the application never
    /// called start_response.
    pub fn send_head(&self, body_length: Option<u64>, when: Wake) -> PyResult<Option<u64>> {
        let Some(head) = self.take_head(body_length)? else {
            return Ok(None);
        };
        let declared = head.content_length;
        self.push(AppEvent::Head(head), when);
        Ok(declared)
    }

    /// The head to send, if it has not gone yet (the caller sends it); as [`Self::send_head`].
    pub fn take_head(&self, body_length: Option<u64>) -> PyResult<Option<ResponseHead>> {
        let mut state = self.lock_head();
        if state.sent {
            return Ok(None);
        }
        let Some(mut head) = state.pending.take() else {
            return Err(PyRuntimeError::new_err(
                "the application did not call start_response before sending a body",
            ));
        };
        if head.content_length.is_none() {
            head.content_length = body_length;
        }
        state.sent = true;
        Ok(Some(head))
    }
}
