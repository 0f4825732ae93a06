//! `wsgi.input`: the request body as a binary stream (read, readline, readlines, iteration).
//!
//! Small Content-Length bodies arrive with the request; otherwise each refill asks the
//! connection for more with a body-read event and waits for its reply without holding the
//! interpreter. The stream ends at the end of the body (`wsgi.input_terminated`), so reading past
//! it gives b'' whatever CONTENT_LENGTH says, and chunked bodies read the same way.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::oneshot;

use tern_core::service::{AppEvent, RequestBody};

use super::call::CallShared;
use crate::threads::Wake;

/// Bytes asked of the connection per refill (more if the application asked for more).
const REFILL: usize = 64 * 1024;

#[pyclass(frozen, module = "tern")]
pub struct Input {
    call: Arc<CallShared>,
    state: Mutex<InputState>,
}

struct InputState {
    /// Received and not yet read: the prefetched body, used as is...
    front: Bytes,
    /// ...and what later reads brought, appended with amortised growth (joining each piece to
    /// everything before it would make one large read quadratic).
    more: BytesMut,
    /// The connection has said the body is over.
    at_end: bool,
}

impl Input {
    pub fn new(call: Arc<CallShared>, body: RequestBody) -> Self {
        let state = InputState {
            front: body.prefetched,
            more: BytesMut::new(),
            at_end: body.complete,
        };
        Input {
            call,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InputState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the connection for more body; false at the end of the body.
    fn refill(&self, py: Python<'_>, want: usize) -> PyResult<bool> {
        if self.lock().at_end {
            return Ok(false);
        }
        let (reply, answer) = oneshot::channel();
        if !self.call.push(
            AppEvent::ReadBody {
                max: want.max(REFILL),
                reply,
            },
            Wake::Now,
        ) {
            return Err(PyOSError::new_err("the client disconnected"));
        }
        // The lock is not held here: another thread touching this stream must not deadlock.
        let received = py.detach(|| answer.blocking_recv());
        let piece: Bytes = match received {
            Ok(Ok(piece)) => piece,
            Ok(Err(error)) => return Err(PyOSError::new_err(error.0)),
            Err(_) => return Err(PyOSError::new_err("the client disconnected")),
        };
        let mut state = self.lock();
        if piece.is_empty() {
            state.at_end = true;
            return Ok(false);
        }
        state.more.extend_from_slice(&piece);
        Ok(true)
    }

    /// Takes up to `size` bytes (all when negative), reading more as needed.
    fn take(&self, py: Python<'_>, size: Option<isize>) -> PyResult<Bytes> {
        let size = size.filter(|&n| n >= 0).map(|n| n as usize);
        loop {
            {
                let mut state = self.lock();
                let buffered = state.buffered();
                let enough = size.is_some_and(|n| buffered >= n);
                if enough || state.at_end {
                    let n = size.map_or(buffered, |n| n.min(buffered));
                    return Ok(state.split_to(n));
                }
            }
            let missing = size.map_or(REFILL, |n| n.saturating_sub(self.lock().buffered()));
            self.refill(py, missing)?;
        }
    }

    /// Takes one line (up to and including b'\n'), at most `limit` bytes when given.
    fn take_line(&self, py: Python<'_>, limit: Option<isize>) -> PyResult<Bytes> {
        let limit = limit.filter(|&n| n >= 0).map(|n| n as usize);
        let mut searched = 0;
        loop {
            {
                let mut state = self.lock();
                let buffered = state.contiguous();
                // Another thread may have read from this stream while we waited for a refill.
                searched = searched.min(buffered.len());
                let newline = memchr(&buffered[searched..]).map(|i| searched + i + 1);
                let len = buffered.len();
                let cut = match (newline, limit) {
                    (Some(end), Some(limit)) => Some(end.min(limit)),
                    (Some(end), None) => Some(end),
                    (None, Some(limit)) if len >= limit => Some(limit),
                    (None, _) if state.at_end => Some(len),
                    (None, _) => None,
                };
                if let Some(cut) = cut {
                    return Ok(state.split_to(cut));
                }
                searched = len;
            }
            self.refill(py, REFILL)?;
        }
    }
}

impl InputState {
    fn buffered(&self) -> usize {
        self.front.len() + self.more.len()
    }

    /// Everything buffered as one slice (moving the prefetched part in front of the rest once).
    fn contiguous(&mut self) -> &[u8] {
        if self.more.is_empty() {
            return &self.front;
        }
        if !self.front.is_empty() {
            let mut joined = BytesMut::with_capacity(self.buffered());
            joined.extend_from_slice(&self.front);
            joined.extend_from_slice(&self.more);
            self.more = joined;
            self.front = Bytes::new();
        }
        &self.more
    }

    /// Takes the first `n` buffered bytes (at most what is buffered).
    fn split_to(&mut self, n: usize) -> Bytes {
        if self.more.is_empty() {
            return self.front.split_to(n.min(self.front.len()));
        }
        self.contiguous();
        self.more.split_to(n.min(self.more.len())).freeze()
    }
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n')
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = self.take(py, size)?;
        Ok(PyBytes::new(py, &bytes))
    }

    #[pyo3(signature = (size = None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.take_line(py, size)?;
        Ok(PyBytes::new(py, &line))
    }

    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = hint.filter(|&n| n > 0).map(|n| n as usize);
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.take_line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.push(PyBytes::new(py, &line));
            if hint.is_some_and(|hint| total >= hint) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.take_line(py, None)?;
        if line.is_empty() {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(PyBytes::new(py, &line))
    }
}
