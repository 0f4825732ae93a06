//! An application's exception with its traceback, as text for the log (WSGI calls, ASGI tasks,
//! the lifespan) or for a start-up error message.

use pyo3::prelude::*;

/// The exception formatted as Python prints it, traceback first; None if formatting failed.
pub fn format(py: Python<'_>, error: &PyErr) -> Option<String> {
    py.import("traceback")
        .and_then(|traceback| {
            traceback.call_method1(
                "format_exception",
                (error.get_type(py), error.value(py), error.traceback(py)),
            )
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat().trim_end().to_string())
        .ok()
}

/// Logs `error` with its traceback as one error record.
pub fn log_exception(py: Python<'_>, error: &PyErr, context: &str) {
    match format(py, error) {
        Some(text) => tracing::error!("{context}:\n{text}"),
        None => tracing::error!("{context}: {error}"),
    }
}
