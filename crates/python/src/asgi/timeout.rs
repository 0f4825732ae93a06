//! What `--request-timeout` does to an ASGI request whose time is up: its task's stack goes to the
//! log, then the task is cancelled. Apart from the task module so that the request's shared state
//! (the exchange), which triggers it, does not depend on how a request's task is run.

use std::time::Duration;

use pyo3::prelude::*;

/// `--request-timeout` passed: logs where the task waits, then cancels it.
pub fn report_and_cancel(py: Python<'_>, task: &Bound<'_, PyAny>, request: &str, waited: Duration) {
    let stack = (|| -> PyResult<String> {
        let io = py.import("io")?.call_method0("StringIO")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("file", &io)?;
        task.call_method("print_stack", (), Some(&kwargs))?;
        io.call_method0("getvalue")?.extract()
    })()
    .unwrap_or_default();
    tracing::error!(
        "request timed out after {:.1}s: {request}; cancelling its ASGI task\n{}",
        waited.as_secs_f64(),
        stack.trim_end()
    );
    let _ = task.call_method0("cancel");
}
