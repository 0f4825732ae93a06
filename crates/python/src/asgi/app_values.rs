//! Reading what the application hands back to tern: the `type` of an event dict it passes to
//! `send`, and how an asyncio task running its code ended. Shared by the request and lifespan
//! sides, which read both the same way.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// The message's `type` (`http.response.start`, `lifespan.startup.complete`, ...).
pub fn message_type<'py>(message: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyString>> {
    let kind = message
        .get_item(pyo3::intern!(message.py(), "type"))?
        .ok_or_else(|| PyValueError::new_err("the ASGI message has no 'type'"))?;
    Ok(kind.cast_into::<PyString>()?)
}

/// None if the ended task returned; else the exception it raised (a cancelled task's
/// `exception()` raises CancelledError, which is returned as its error).
pub fn task_error(task: &Bound<'_, PyAny>) -> Option<PyErr> {
    match task.call_method0("exception") {
        Ok(exception) if exception.is_none() => None,
        Ok(exception) => Some(PyErr::from_value(exception)),
        Err(error) => Some(error),
    }
}
