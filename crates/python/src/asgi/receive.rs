//! The application's `receive` for an HTTP request: the request body as `http.request` messages
//! as it arrives (each `receive` asks the connection for the next piece, so nothing is read
//! ahead of the application), then `http.disconnect` once the client is gone or the response is
//! over.

use std::sync::Arc;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use super::exchange::{disconnect_message, is_done, request_message, Exchange};
use super::ready::Ready;

#[pyclass(frozen, module = "tern_server._native")]
pub struct HttpReceive {
    pub exchange: Arc<Exchange>,
}

#[pymethods]
impl HttpReceive {
    fn __call__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let exchange = &self.exchange;
        let mut state = exchange.lock();
        // A waiter cancelled with its task (a timeout around `receive()`) is no obstacle.
        if state
            .receive_waiter
            .as_ref()
            .is_some_and(|waiter| !is_done(waiter.bind(py)))
        {
            return Err(PyRuntimeError::new_err(
                "receive() called again before the previous call completed",
            ));
        }
        if let Some(first) = state.body.first.take() {
            let more = state.body.more_to_read;
            return Ready::bound(py, request_message(py, &first, more)?.into_any());
        }
        if state.gone {
            return Ready::bound(py, disconnect_message(py)?.into_any());
        }
        let future = exchange.asgi.create_future(py)?;
        state.receive_waiter = Some(future.clone().unbind());
        if state.body.more_to_read && !Exchange::body_read_pending(&state) {
            exchange.ask_for_body(&mut state);
        }
        // Otherwise the future waits for the disconnect (the call being dropped).
        Ok(future)
    }
}
