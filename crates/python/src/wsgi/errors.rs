//! `wsgi.errors`: a text stream into the server log.

use std::cell::RefCell;

use pyo3::prelude::*;

/// Most text kept while waiting for the end of a line.
const MAX_PARTIAL: usize = 8 * 1024;

thread_local! {
    /// This thread's text after its last newline to `wsgi.errors`. Per thread, not per stream:
    /// the stream is shared by every request of the worker, and calls run on many threads at
    /// once, so one request's half line (`print` writes the text, then the newline) must not be
    /// completed by another's.
    static PARTIAL: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `wsgi.errors`: text written here goes to the server log, one log line per line of text.
#[pyclass(frozen, module = "tern_server._native")]
pub struct ErrorStream {}

impl ErrorStream {
    pub fn new() -> Self {
        ErrorStream {}
    }
}

/// Logs this thread's complete lines, and with `flush` (or past [`MAX_PARTIAL`]) the rest too.
fn emit(text: &str, flush: bool) {
    PARTIAL.with_borrow_mut(|partial| {
        partial.push_str(text);
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            tracing::warn!("wsgi.errors: {}", line.trim_end());
        }
        // Text that never ends its line still goes out (and memory stays bounded).
        if (flush || partial.len() > MAX_PARTIAL) && !partial.is_empty() {
            tracing::warn!("wsgi.errors: {}", partial.trim_end());
            partial.clear();
        }
    });
}

/// Logs what this thread left unfinished on `wsgi.errors`; the thread pool calls it after each
/// job, so a request's unterminated text is not joined to the next request's.
pub fn end_of_job() {
    emit("", true);
}

#[pymethods]
impl ErrorStream {
    fn write(&self, text: &str) -> usize {
        emit(text, false);
        text.chars().count()
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            emit(&line?.extract::<String>()?, false);
        }
        Ok(())
    }

    fn flush(&self) {
        emit("", true);
    }
}
