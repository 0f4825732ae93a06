//! Flushing the application's `sys.stdout` and `sys.stderr`: a worker leaves with `_exit`, and
//! whatever the app printed must not stay in a buffer.

use pyo3::prelude::*;

/// Flushes both streams (errors are ignored: the worker is leaving anyway).
pub fn flush_python_output() {
    Python::attach(|py| {
        for stream in ["stdout", "stderr"] {
            if let Ok(stream) = py.import("sys").and_then(|sys| sys.getattr(stream)) {
                let _ = stream.call_method0("flush");
            }
        }
    });
}
