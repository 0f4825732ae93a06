//! The application's `receive` for an HTTP request: the request body as `http.request` messages
//! as it arrives (each `receive` asks the connection for the next piece, so nothing is read
//! ahead of the application), then `http.disconnect` once the client is gone or the response is
//! over.

use std::sync::Arc;

use pyo3::prelude::*;

use super::exchange::{check_no_receive_waiting, disconnect_message, request_message, Exchange};
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
        check_no_receive_waiting(py, state.receive_waiter.as_ref())?;
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
