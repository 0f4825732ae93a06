//! One request's coroutine: calling the application with its scope, `receive` and `send`,
//! running it as a task on the worker's loop, and settling the response when it ends. A response
//! never started is a 500; one cut short (or an exception after it started) closes the
//! connection; either way the traceback is logged, unless the client had gone (then the
//! application's exception is a consequence, not an error).

use std::sync::Arc;

use pyo3::prelude::*;

use tern_core::service::{AppEvent, ServiceRequest};

use super::app_values::task_error;
use super::exchange::{ClientDisconnected, Exchange, ResponseProgress};
use super::receive::HttpReceive;
use super::send::HttpSend;
use crate::response_head::HeadBuilder;

/// The short body of a 500 answer.
const ERROR_BODY: &[u8] = b"Internal Server Error\n";

/// Starts the application's task for `request` (a job on the loop's thread).
pub fn start(py: Python<'_>, exchange: Arc<Exchange>, request: ServiceRequest) {
    let asgi = exchange.asgi.clone();
    let started = (|| -> PyResult<()> {
        let scope = asgi.scope.build(py, &asgi, &request, false)?;
        let receive = HttpReceive {
            exchange: exchange.clone(),
        };
        let send = HttpSend {
            exchange: exchange.clone(),
        };
        let done = TaskDone {
            exchange: exchange.clone(),
        };
        let task = asgi.spawn(
            py,
            scope,
            Bound::new(py, receive)?.into_any(),
            Bound::new(py, send)?.into_any(),
            Bound::new(py, done)?.into_any(),
        )?;
        exchange.lock().task = Some(task.unbind());
        Ok(())
    })();
    if let Err(error) = started {
        settle(py, &exchange, Some(error));
    }
}

/// Called by the task when it ends.
#[pyclass(frozen, module = "tern_server._native")]
struct TaskDone {
    exchange: Arc<Exchange>,
}

#[pymethods]
impl TaskDone {
    fn __call__(&self, py: Python<'_>, task: &Bound<'_, PyAny>) {
        settle(py, &self.exchange, task_error(task));
    }
}

/// Completes the response for the connection once the application is done with it.
fn settle(py: Python<'_>, exchange: &Exchange, error: Option<PyErr>) {
    exchange.asgi.task_ended();
    let mut state = exchange.lock();
    state.task = None;
    let client_gone = state.gone
        || error
            .as_ref()
            .is_some_and(|e| e.is_instance_of::<ClientDisconnected>(py));
    let log = |what: &str| match &error {
        Some(error) if client_gone => {
            tracing::info!("ASGI application raised after the client went away: {error}")
        }
        None if client_gone => tracing::debug!("{what}, after the client went away"),
        Some(error) => crate::traceback::log_exception(py, error, what),
        None => tracing::error!("{what}"),
    };
    match std::mem::replace(&mut state.response, ResponseProgress::Done) {
        ResponseProgress::Done => {
            if let Some(error) = &error {
                if !client_gone {
                    crate::traceback::log_exception(
                        py,
                        error,
                        "ASGI application error after its response was sent",
                    );
                }
            }
        }
        ResponseProgress::NotStarted | ResponseProgress::Started(_) => {
            if error.is_some() {
                log("ASGI application error");
            } else {
                log("ASGI application returned without sending a response");
            }
            let mut head = HeadBuilder::new(500, "Internal Server Error".into());
            let _ = head.add(b"Content-Type", b"text/plain; charset=utf-8");
            let mut head = head.finish();
            head.content_length = Some(ERROR_BODY.len() as u64);
            let events = [
                AppEvent::Head(head),
                AppEvent::Data(bytes::Bytes::from_static(ERROR_BODY)),
                AppEvent::End,
            ];
            exchange.push(&mut state, events);
        }
        ResponseProgress::Sending => {
            if error.is_some() {
                log("ASGI application error during its response");
            } else {
                log("ASGI application returned before its response was complete");
            }
            exchange.push(&mut state, [AppEvent::Abort]);
        }
    }
}
