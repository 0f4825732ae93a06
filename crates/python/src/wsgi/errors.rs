//! `wsgi.errors` (a text stream into the server log) and the logging of application exceptions
//! with their traceback.

use std::sync::Mutex;

use pyo3::prelude::*;

/// Most text kept while waiting for the end of a line.
const MAX_PARTIAL: usize = 8 * 1024;

/// `wsgi.errors`: text written here goes to the server log, one log line per line of text.
#[pyclass(frozen, module = "tern_server._native")]
pub struct ErrorStream {
    /// Text after the last newline, kept until the line is complete or flushed.
    partial: Mutex<String>,
}

impl ErrorStream {
    pub fn new() -> Self {
        ErrorStream {
            partial: Mutex::new(String::new()),
        }
    }

    fn emit(&self, text: &str, flush: bool) {
        let mut partial = self
            .partial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
    }
}

#[pymethods]
impl ErrorStream {
    fn write(&self, text: &str) -> usize {
        self.emit(text, false);
        text.chars().count()
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.emit(&line?.extract::<String>()?, false);
        }
        Ok(())
    }

    fn flush(&self) {
        self.emit("", true);
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
