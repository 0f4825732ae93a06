//! The ASGI lifespan protocol, once per worker: `lifespan.startup` before the worker serves (the
//! worker does not serve if it fails), `lifespan.shutdown` after its last request. The scope's
//! `state` dict is the one each request's scope gets a shallow copy of.
//!
//! With `--lifespan auto`, an application that raises before it reads its first lifespan event
//! (`assert scope["type"] == "http"`, say) does not support the protocol and is served without
//! it; one that raises after reading `lifespan.startup` has a failing startup.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use tern_cli::app_host::Lifespan as Mode;

use super::app_values::{message_type, task_error};
use super::exchange::resolve;
use super::ready::Ready;
use super::Asgi;

/// How the startup went.
enum Startup {
    Complete,
    /// The application sent `lifespan.startup.failed` with this message.
    Failed(String),
    /// It raised after reading `lifespan.startup`: its traceback.
    Raised(String),
    /// It raised before reading any event, or returned: why it seems not to support lifespan.
    Unsupported(String),
}

#[derive(Default)]
struct State {
    /// `lifespan.startup` was handed to the application.
    startup_read: bool,
    shutdown_requested: bool,
    shutdown_read: bool,
    /// The future a `receive` waits on for `lifespan.shutdown`.
    waiter: Option<Py<PyAny>>,
    startup: Option<Startup>,
    /// How the shutdown went (Err: a message or a traceback).
    shutdown: Option<Result<(), String>>,
}

/// The lifespan conversation shared by the worker and the application's task.
pub struct Lifespan {
    state: Mutex<State>,
    changed: Condvar,
}

impl Lifespan {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }
}

/// Runs the startup (blocking the worker's main thread until it is over). None: the
/// application does not take part, so there is no shutdown to run either.
pub fn startup(asgi: &Arc<Asgi>, mode: Mode) -> Result<Option<Arc<Lifespan>>, String> {
    let lifespan = Arc::new(Lifespan {
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
    });
    let task_asgi = asgi.clone();
    let task_lifespan = lifespan.clone();
    asgi.event_loop().submit(Box::new(move |py| {
        start_task(py, &task_asgi, task_lifespan)
    }));
    let mut state = lifespan.lock();
    while state.startup.is_none() {
        state = lifespan
            .changed
            .wait(state)
            .unwrap_or_else(|p| p.into_inner());
    }
    let outcome = state.startup.take();
    drop(state);
    match outcome {
        Some(Startup::Complete) | None => Ok(Some(lifespan)),
        Some(Startup::Failed(message)) => Err(format!("lifespan startup failed: {message}")),
        Some(Startup::Raised(traceback)) => Err(format!(
            "lifespan startup raised an exception:\n{traceback}"
        )),
        Some(Startup::Unsupported(why)) if mode == Mode::Auto => {
            tracing::info!(
                "the ASGI application does not support the lifespan protocol ({why}); \
                 serving it without (--lifespan off says so without trying)"
            );
            Ok(None)
        }
        Some(Startup::Unsupported(why)) => Err(format!(
            "the ASGI application does not support the lifespan protocol (--lifespan on): {why}"
        )),
    }
}

/// Asks the application to shut down; `done` then tells when it has.
pub fn begin_shutdown(asgi: &Asgi, lifespan: &Arc<Lifespan>) {
    let waiter = {
        let mut state = lifespan.lock();
        state.shutdown_requested = true;
        if state.waiter.is_some() {
            state.shutdown_read = true;
        }
        state.waiter.take()
    };
    if let Some(waiter) = waiter {
        asgi.event_loop().submit(Box::new(move |py| {
            if let Ok(message) = message(py, "lifespan.shutdown") {
                resolve(waiter.bind(py), message.into_any());
            }
        }));
    }
}

/// The shutdown's outcome, once the application sent it or ended.
pub fn shutdown_outcome(lifespan: &Lifespan) -> Option<Result<(), String>> {
    lifespan.lock().shutdown.clone()
}

/// Waits up to `bound` for the shutdown's outcome (for the start-up check, which has no loop of
/// its own to poll from).
pub fn wait_for_shutdown(lifespan: &Lifespan, bound: Duration) -> Option<Result<(), String>> {
    let deadline = Instant::now() + bound;
    let mut state = lifespan.lock();
    while state.shutdown.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        state = lifespan
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    state.shutdown.clone()
}

fn message<'py>(py: Python<'py>, kind: &str) -> PyResult<Bound<'py, PyDict>> {
    let message = PyDict::new(py);
    message.set_item("type", kind)?;
    Ok(message)
}

fn start_task(py: Python<'_>, asgi: &Asgi, lifespan: Arc<Lifespan>) {
    let started = (|| -> PyResult<()> {
        let scope = PyDict::new(py);
        scope.set_item("type", "lifespan")?;
        scope.set_item("asgi", asgi.scope.asgi_version(py))?;
        scope.set_item("state", asgi.state.bind(py))?;
        let receive = LifespanReceive {
            lifespan: lifespan.clone(),
        };
        let send = LifespanSend {
            lifespan: lifespan.clone(),
        };
        let done = LifespanDone {
            lifespan: lifespan.clone(),
        };
        asgi.spawn(
            py,
            scope,
            Bound::new(py, receive)?.into_any(),
            Bound::new(py, send)?.into_any(),
            Bound::new(py, done)?.into_any(),
        )?;
        Ok(())
    })();
    if let Err(error) = started {
        ended(py, &lifespan, Some(error));
    }
}

/// The task ended (returned or raised): settles what is still open.
fn ended(py: Python<'_>, lifespan: &Lifespan, error: Option<PyErr>) {
    let traceback = error
        .as_ref()
        .map(|error| crate::traceback::format(py, error).unwrap_or_else(|| error.to_string()));
    lifespan.update(|state| {
        if state.startup.is_none() {
            state.startup = Some(match (&traceback, state.startup_read) {
                (Some(traceback), true) => Startup::Raised(traceback.clone()),
                (Some(traceback), false) => Startup::Unsupported(format!(
                    "it raised {}",
                    traceback.lines().last().unwrap_or("an exception")
                )),
                (None, _) => Startup::Unsupported("it returned at once".into()),
            });
        }
        if state.shutdown.is_none() {
            state.shutdown = Some(match &traceback {
                Some(traceback) if state.shutdown_requested => Err(traceback.clone()),
                Some(traceback) => Err(format!("the lifespan task ended early:\n{traceback}")),
                None => Ok(()),
            });
        }
    });
}

#[pyclass(frozen, module = "tern_server._native")]
struct LifespanReceive {
    lifespan: Arc<Lifespan>,
}

#[pymethods]
impl LifespanReceive {
    fn __call__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut state = self.lifespan.lock();
        if !state.startup_read {
            state.startup_read = true;
            return Ready::bound(py, message(py, "lifespan.startup")?.into_any());
        }
        if state.shutdown_requested && !state.shutdown_read {
            state.shutdown_read = true;
            return Ready::bound(py, message(py, "lifespan.shutdown")?.into_any());
        }
        let future = py
            .import("asyncio")?
            .call_method0("get_running_loop")?
            .call_method0("create_future")?;
        state.waiter = Some(future.clone().unbind());
        Ok(future)
    }
}

#[pyclass(frozen, module = "tern_server._native")]
struct LifespanSend {
    lifespan: Arc<Lifespan>,
}

#[pymethods]
impl LifespanSend {
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = message_type(message)?.to_str()?.to_string();
        let text = message
            .get_item("message")?
            .map(|m| m.str().map(|s| s.to_string()))
            .transpose()?
            .unwrap_or_default();
        match kind.as_str() {
            "lifespan.startup.complete" => self
                .lifespan
                .update(|state| state.startup = Some(Startup::Complete)),
            "lifespan.startup.failed" => self
                .lifespan
                .update(|state| state.startup = Some(Startup::Failed(text))),
            "lifespan.shutdown.complete" => {
                self.lifespan.update(|state| state.shutdown = Some(Ok(())))
            }
            "lifespan.shutdown.failed" => self
                .lifespan
                .update(|state| state.shutdown = Some(Err(text))),
            other => {
                return Err(PyValueError::new_err(format!(
                    "unexpected ASGI message type {other:?} in the lifespan protocol"
                )))
            }
        }
        Ready::bound(py, py.None().into_bound(py))
    }
}

#[pyclass(frozen, module = "tern_server._native")]
struct LifespanDone {
    lifespan: Arc<Lifespan>,
}

#[pymethods]
impl LifespanDone {
    fn __call__(&self, py: Python<'_>, task: &Bound<'_, PyAny>) {
        ended(py, &self.lifespan, task_error(task));
    }
}
