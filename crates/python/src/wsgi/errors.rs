//! `wsgi.errors` (a text stream into the server log) and the logging of application exceptions
//! with their traceback.

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

/// Logs `error` with its traceback as one error record.
pub fn log_exception(py: Python<'_>, error: &PyErr, context: &str) {
    let formatted = py
        .import("traceback")
        .and_then(|traceback| {
            traceback.call_method1(
                "format_exception",
                (error.get_type(py), error.value(py), error.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat());
    match formatted {
        Ok(text) => tracing::error!("{context}:\n{}", text.trim_end()),
        Err(_) => tracing::error!("{context}: {error}"),
    }
}
