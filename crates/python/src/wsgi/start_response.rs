//! `start_response` and the legacy `write()` callable (PEP 3333), with the checks that keep a
//! broken status or header from reaching the wire: a bad status, a non-str header, a hop-by-hop
//! header or a line break in a value raises in the application, which then gets a 500.

use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use tern_core::service::{AppEvent, ResponseHead};

use crate::response_head::{FieldError, HeadBuilder};

use super::shared::CallShared;
use crate::py_bytes::body_bytes;
use crate::threads::Wake;

/// The `start_response` callable of one request.
#[pyclass(frozen, module = "tern_server._native")]
pub struct StartResponse {
    /// Keeps the head until it is sent, and takes what `write()` sends.
    call: Arc<CallShared>,
}

impl StartResponse {
    pub fn new(call: Arc<CallShared>) -> Self {
        StartResponse { call }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.get();
        let exc_info = exc_info.filter(|info| !info.is_none());
        {
            let state = this.call.lock_head();
            match exc_info {
                Some(info) if state.sent => {
                    // PEP 3333: too late to change the head; re-raise the application's error.
                    let value = info.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
                None if state.called => {
                    return Err(PyRuntimeError::new_err(
                        "start_response called a second time without exc_info",
                    ));
                }
                _ => {}
            }
        }
        let head = parse_head(status, headers)?;
        let mut state = this.call.lock_head();
        state.pending = Some(head);
        state.called = true;
        drop(state);
        // Interned: a fresh "write" str per call also missed the type's attribute cache.
        slf.getattr(pyo3::intern!(slf.py(), "write"))
    }

    /// The legacy write callable: sends `data` now, ahead of the iterable's body.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data)))
        })?;
        self.call.send_head(None, Wake::Now)?;
        if bytes.as_bytes().is_empty() {
            return Ok(());
        }
        if !self.call.push(AppEvent::Data(body_bytes(bytes)), Wake::Now) {
            return Err(PyOSError::new_err("the client disconnected"));
        }
        let call = self.call.clone();
        if !py.detach(move || call.wait_until_drained()) {
            return Err(PyOSError::new_err("the client disconnected"));
        }
        Ok(())
    }
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Checks the status and headers and renders the header lines.
fn parse_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<ResponseHead> {
    let status = status.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("status must be a str, not {}", type_name(status)))
    })?;
    let status = status.to_str()?;
    let (code, reason) = parse_status(status)?;
    let reason = if reason == "OK" {
        std::borrow::Cow::Borrowed("OK")
    } else {
        std::borrow::Cow::Owned(reason.to_string())
    };
    let mut head = HeadBuilder::new(code, reason);
    let Ok(list) = headers.cast::<pyo3::types::PyList>() else {
        return Err(PyTypeError::new_err(format!(
            "headers must be a list, not {}",
            type_name(headers)
        )));
    };
    let mut value_bytes = Vec::new();
    for item in list.iter() {
        let pair = item
            .cast::<PyTuple>()
            .ok()
            .filter(|t| t.len() == 2)
            .ok_or_else(|| {
                let shown = item.repr().map(|r| r.to_string()).unwrap_or_default();
                PyTypeError::new_err(format!(
                    "each header must be a (name, value) tuple, not {shown}"
                ))
            })?;
        let name = pair.get_item(0)?;
        let value = pair.get_item(1)?;
        let name = name
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "header name must be a str, not {}",
                    type_name(&name)
                ))
            })?
            .to_str()?;
        let value = value
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "value of header {name} must be a str, not {}",
                    type_name(&value)
                ))
            })?
            .to_str()?;
        check_latin1(name, value)?;
        // Latin-1 per PEP 3333: each char is one byte (check_latin1 refused anything above U+00FF).
        value_bytes.clear();
        value_bytes.extend(value.chars().map(|c| c as u32 as u8));
        head.add(name.as_bytes(), &value_bytes)
            .map_err(|error| match error {
                FieldError::HopByHop => PyValueError::new_err(format!(
                    "hop-by-hop header {name:?} is not allowed in a WSGI response"
                )),
                FieldError::Invalid(message) => PyValueError::new_err(message),
            })?;
    }
    Ok(head.finish())
}

/// "200 OK" → (200, "OK").
fn parse_status(status: &str) -> PyResult<(u16, &str)> {
    let bad = || {
        PyValueError::new_err(format!("invalid status {status:?}: expected a 3-digit code, a space and a reason, like '200 OK'"))
    };
    let bytes = status.as_bytes();
    if bytes.len() < 4
        || bytes[3] != b' '
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || bytes[0] == b'0'
    {
        return Err(bad());
    }
    let reason = &status[4..];
    if reason.chars().any(|c| c.is_control() && c != '\t') {
        return Err(bad());
    }
    let code: u16 = status[..3].parse().map_err(|_| bad())?;
    // A 1xx is interim: the client would go on waiting for the real answer (and take the next
    // request's response for it). 101 needs Upgrade, which is the server's business.
    if !(200..=599).contains(&code) {
        return Err(PyValueError::new_err(format!(
            "invalid status {status:?}: a WSGI response needs a final status, 200 to 599"
        )));
    }
    Ok((code, reason))
}

/// PEP 3333's rule for str header values: latin-1 text without control characters.
fn check_latin1(name: &str, value: &str) -> PyResult<()> {
    if let Some(bad) = value
        .chars()
        .find(|&c| (c.is_control() && c != '\t') || c as u32 > 0xFF)
    {
        let what = if bad == '\r' || bad == '\n' {
            "a line break"
        } else {
            "a character that is not latin-1 text"
        };
        return Err(PyValueError::new_err(format!(
            "value of header {name} contains {what}"
        )));
    }
    Ok(())
}
