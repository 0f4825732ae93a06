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
    /// Received and not yet read by the application (the prefetched body is used as is).
    buffer: Bytes,
    /// The connection has said the body is over.
    at_end: bool,
}

impl Input {
    pub fn new(call: Arc<CallShared>, body: RequestBody) -> Self {
        Input { call, state: Mutex::new(InputState { buffer: body.prefetched, at_end: body.complete }) }
    }

    fn lock(&self) -> MutexGuard<'_, InputState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the connection for more body; false at the end of the body.
    fn refill(&self, py: Python<'_>, want: usize) -> PyResult<bool> {
        if self.lock().at_end {
            return Ok(false);
        }
        let (reply, answer) = oneshot::channel();
        if !self.call.push(AppEvent::ReadBody { max: want.max(REFILL), reply }, Wake::Now) {
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
        if state.buffer.is_empty() {
            state.buffer = piece;
        } else {
            let mut joined = BytesMut::with_capacity(state.buffer.len() + piece.len());
            joined.extend_from_slice(&state.buffer);
            joined.extend_from_slice(&piece);
            state.buffer = joined.freeze();
        }
        Ok(true)
    }

    /// Takes up to `size` bytes (all when negative), reading more as needed.
    fn take(&self, py: Python<'_>, size: Option<isize>) -> PyResult<Bytes> {
        let size = size.filter(|&n| n >= 0).map(|n| n as usize);
        loop {
            {
                let mut state = self.lock();
                let enough = size.is_some_and(|n| state.buffer.len() >= n);
                if enough || state.at_end {
                    let n = size.map_or(state.buffer.len(), |n| n.min(state.buffer.len()));
                    return Ok(state.buffer.split_to(n));
                }
            }
            let missing = size.map_or(REFILL, |n| n - self.lock().buffer.len());
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
                let newline = memchr(&state.buffer[searched..]).map(|i| searched + i + 1);
                let cut = match (newline, limit) {
                    (Some(end), Some(limit)) => Some(end.min(limit)),
                    (Some(end), None) => Some(end),
                    (None, Some(limit)) if state.buffer.len() >= limit => Some(limit),
                    (None, _) if state.at_end => Some(state.buffer.len()),
                    (None, _) => None,
                };
                if let Some(cut) = cut {
                    return Ok(state.buffer.split_to(cut));
                }
                searched = state.buffer.len();
            }
            self.refill(py, REFILL)?;
        }
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
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
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
