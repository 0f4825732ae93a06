//! `wsgi.input`: the request body as a binary stream (read, readline, readlines, iteration).
//!
//! Usually the whole body has arrived before the application is called: in memory, or in a
//! temporary file that reads go to with `pread` (without holding the interpreter). A large body
//! (in memory or in a file) is kept by the call and read by offset: `read()` copies what it
//! returns once, straight from where the body is into the new bytes object. With
//! `--stream-request-body`, each refill asks the connection for more with a body-read event and
//! waits for its reply without holding the interpreter. The stream ends at the end of the body
//! (`wsgi.input_terminated`), so reading past it gives b'' whatever CONTENT_LENGTH says, and
//! chunked bodies read the same way.
//!
//! A body that cannot be read (the client went away, sent a malformed chunk, stalled, or sent
//! too much) raises `OSError` and marks the call, so the exception the application then raises
//! is not logged as an application error: the connection has logged the client's fault.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyOSError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::oneshot;

use tern_core::service::{AppEvent, RequestBody, SpooledBody};

use super::shared::CallShared;
use crate::py_bytes;
use crate::threads::Wake;

/// Bytes asked of the connection per refill (more if the application asked for more).
const REFILL: usize = 64 * 1024;

#[pyclass(frozen, module = "tern_server._native")]
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
    /// For a large body (kept by the call): the part not yet taken from it.
    spooled: Option<SpoolCursor>,
    /// Nothing more will come: the connection has said the body is over, or the file is read.
    at_end: bool,
}

/// Where reading a spooled body has got to.
#[derive(Clone, Copy)]
struct SpoolCursor {
    /// Offset of the next byte to take.
    next: u64,
    /// The body's length.
    end: u64,
}

impl Input {
    pub fn new(call: Arc<CallShared>, body: RequestBody) -> Self {
        let spooled = body.spooled.map(|spooled| {
            let end = spooled.len();
            call.keep_spooled_body(spooled);
            SpoolCursor { next: 0, end }
        });
        let state = InputState {
            front: body.prefetched,
            more: BytesMut::new(),
            at_end: body.complete && spooled.is_none_or(|cursor| cursor.end == 0),
            spooled,
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

    /// Brings more of the body into the buffer, at least `want` bytes if the body has them;
    /// false at the end of the body.
    fn refill(&self, py: Python<'_>, want: usize) -> PyResult<bool> {
        let spooled = {
            let state = self.lock();
            if state.at_end {
                return Ok(false);
            }
            state.spooled.is_some()
        };
        if spooled {
            return self.refill_from_spool(py, want);
        }
        let (reply, answer) = oneshot::channel();
        let max = if want == usize::MAX {
            REFILL
        } else {
            want.max(REFILL)
        };
        if !self.call.push(AppEvent::ReadBody { max, reply }, Wake::Now) {
            return Err(self.body_failed("the client disconnected"));
        }
        // The lock is not held here: another thread touching this stream must not deadlock.
        let received = py.detach(|| answer.blocking_recv());
        let piece: Bytes = match received {
            Ok(Ok(piece)) => piece,
            Ok(Err(error)) => return Err(self.body_failed(&error.0)),
            Err(_) => return Err(self.body_failed("the client disconnected")),
        };
        let mut state = self.lock();
        if piece.is_empty() {
            state.at_end = true;
            return Ok(false);
        }
        state.more.extend_from_slice(&piece);
        Ok(true)
    }

    /// Marks the call: the body failed through no fault of the application (see the module
    /// documentation); returns the `OSError` to raise.
    fn body_failed(&self, why: &str) -> PyErr {
        self.call.note_body_failure();
        PyOSError::new_err(why.to_string())
    }

    /// Appends up to `want` bytes (at least [`REFILL`]) from the spooled body.
    ///
    /// The read runs without the interpreter. The state lock is held across it (so pieces stay in
    /// order if several threads read one stream), which is safe because nothing here waits for
    /// the interpreter while holding the lock.
    fn refill_from_spool(&self, py: Python<'_>, want: usize) -> PyResult<bool> {
        let Some(body) = self.call.spooled_body() else {
            return Err(PyOSError::new_err("the request is over"));
        };
        py.detach(|| {
            let mut state = self.lock();
            let Some(mut cursor) = state.spooled else {
                return Ok(false);
            };
            let n = (cursor.end - cursor.next).min(want.max(REFILL) as u64) as usize;
            append_from(&body, &mut state.more, cursor.next, n)?;
            cursor.next += n as u64;
            state.at_end = cursor.next == cursor.end;
            state.spooled = Some(cursor);
            Ok(n > 0)
        })
        .map_err(spool_read_failed)
    }

    /// `read(size)` of a spooled body with nothing buffered: the bytes go from where the body is
    /// straight into the new bytes object. None: not that case.
    fn read_spooled_directly<'py>(
        &self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let (offset, len) = {
            let mut state = self.lock();
            if state.buffered() > 0 {
                return Ok(None);
            }
            let Some(mut cursor) = state.spooled else {
                return Ok(None);
            };
            let left = cursor.end - cursor.next;
            let len = size
                .filter(|&n| n >= 0)
                .map_or(left, |n| left.min(n as u64));
            let offset = cursor.next;
            // Taken now, so another thread reading meanwhile gets the bytes after these.
            cursor.next += len;
            state.at_end = cursor.next == cursor.end;
            state.spooled = Some(cursor);
            (offset, len as usize)
        };
        if len == 0 {
            return Ok(Some(PyBytes::new(py, b"")));
        }
        let Some(body) = self.call.spooled_body() else {
            return Err(PyOSError::new_err("the request is over"));
        };
        let bytes = match &*body {
            // One copy, at memory speed: not worth letting go of the interpreter for.
            SpooledBody::Memory(bytes) => {
                let range = usize::try_from(offset)
                    .ok()
                    .and_then(|start| bytes.get(start..start + len))
                    .ok_or_else(|| spool_read_failed(io::ErrorKind::UnexpectedEof.into()))?;
                PyBytes::new(py, range)
            }
            SpooledBody::File { file, .. } => {
                py_bytes::read_file_at(py, file, offset, len)?.map_err(spool_read_failed)?
            }
        };
        Ok(Some(bytes))
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
            let missing = size.map_or(usize::MAX, |n| n.saturating_sub(self.lock().buffered()));
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

/// Appends `n` bytes of `body` from `offset` to `more`.
fn append_from(body: &SpooledBody, more: &mut BytesMut, offset: u64, n: usize) -> io::Result<()> {
    if let SpooledBody::Memory(bytes) = body {
        let piece = usize::try_from(offset)
            .ok()
            .and_then(|start| bytes.get(start..start + n))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        more.extend_from_slice(piece);
        return Ok(());
    }
    let start = more.len();
    more.resize(start + n, 0);
    if let Err(error) = body.read_exact_at(&mut more[start..], offset) {
        more.truncate(start);
        return Err(error);
    }
    Ok(())
}

/// The `OSError` for a spooled body that could not be read (logged: it is the server's fault).
fn spool_read_failed(error: io::Error) -> PyErr {
    tracing::error!("reading a spooled request body failed: {error}");
    PyOSError::new_err(format!("reading the request body failed: {error}"))
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n')
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        if let Some(bytes) = self.read_spooled_directly(py, size)? {
            return Ok(bytes);
        }
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
