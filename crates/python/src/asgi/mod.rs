//! The ASGI 3.0 bridge (HTTP and WebSocket spec 2.4, lifespan): a [`Service`] that runs a coroutine
//! application on one event loop per worker, in a Python thread of its own.
//!
//! [`event_loop`] runs the loop and takes work from the connections in batches; [`scope`] builds
//! a request's scope; [`exchange`] is what one request shares between its connection and the
//! application's [`receive`] and [`send`]; [`task`] runs the request's coroutine and settles the
//! response when it ends; [`websocket`] does the same for WebSocket sessions; [`lifespan`] runs
//! startup and shutdown; [`ready`] is an awaitable that
//! is done already. What ASGI shares with WSGI is in the crate ([`crate::response_head`],
//! [`crate::request_facts`], [`crate::py_bytes`], [`crate::traceback`]).

mod app_values;
mod event_loop;
mod exchange;
mod lifespan;
mod ready;
mod receive;
mod scope;
mod send;
mod task;
mod timeout;
mod websocket;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use tern_cli::app_host::{EventLoop as LoopChoice, Lifespan as LifespanMode};
use tern_core::message::request::Method;
use tern_core::service::{Service, ServiceCall, ServiceRequest};

use event_loop::EventLoop;
use exchange::{AsgiCall, BodyProgress, Exchange};
use lifespan::Lifespan;

pub use exchange::ClientDisconnected;

/// How long the start-up check waits for the lifespan shutdown of its throw-away child.
const CHECK_SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// One loaded ASGI application and what its requests share.
pub struct Asgi {
    app: Py<PyAny>,
    scope: scope::Template,
    lifespan_mode: LifespanMode,
    loop_choice: LoopChoice,
    /// Started in the worker (threads do not survive fork).
    event_loop: OnceLock<EventLoop>,
    /// The lifespan protocol, when the application takes part in it (for the shutdown).
    lifespan: Mutex<Option<Arc<Lifespan>>>,
    /// The lifespan scope's `state`; each request's scope gets a shallow copy.
    state: Py<PyDict>,
    /// Request tasks not ended yet: the drain waits for them.
    tasks: AtomicUsize,
}

impl Asgi {
    pub fn new(
        py: Python<'_>,
        app: Py<PyAny>,
        root_path: &str,
        lifespan_mode: LifespanMode,
        loop_choice: LoopChoice,
    ) -> PyResult<Asgi> {
        Ok(Asgi {
            app,
            scope: scope::Template::new(py, root_path)?,
            lifespan_mode,
            loop_choice,
            event_loop: OnceLock::new(),
            lifespan: Mutex::new(None),
            state: PyDict::new(py).unbind(),
            tasks: AtomicUsize::new(0),
        })
    }

    /// The worker's loop; started here if `start` was not called (it always is in a worker).
    fn event_loop(&self) -> &EventLoop {
        self.event_loop.get_or_init(|| {
            EventLoop::start(self.loop_choice).unwrap_or_else(|message| {
                tracing::error!("{message}");
                std::process::exit(1)
            })
        })
    }

    /// A new future on the worker's loop (for a `receive` or `send` that has to wait).
    fn create_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.event_loop()
            .handle
            .bind(py)
            .call_method0(pyo3::intern!(py, "create_future"))
    }

    /// Calls the application with `scope`, `receive` and `send`, and runs the coroutine it
    /// returns as a task on the loop; `done` is called with the task when it ends.
    fn spawn<'py>(
        &self,
        py: Python<'py>,
        scope: Bound<'py, PyDict>,
        receive: Bound<'py, PyAny>,
        send: Bound<'py, PyAny>,
        done: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let coroutine = self.app.bind(py).call1((scope, receive, send))?;
        let task = self
            .event_loop()
            .handle
            .bind(py)
            .call_method1(pyo3::intern!(py, "create_task"), (coroutine,))?;
        task.call_method1(pyo3::intern!(py, "add_done_callback"), (done,))?;
        Ok(task)
    }

    fn task_ended(&self) {
        self.tasks.fetch_sub(1, Ordering::SeqCst);
    }

    fn lifespan(&self) -> Option<Arc<Lifespan>> {
        self.lifespan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The [`Service`] the HTTP core calls.
pub struct AsgiService {
    asgi: Arc<Asgi>,
}

impl AsgiService {
    pub fn new(asgi: Asgi) -> Self {
        AsgiService {
            asgi: Arc::new(asgi),
        }
    }

    /// For the start-up check: the lifespan shutdown, waited for without an event loop of ours.
    pub fn shut_down_blocking(&self) -> Result<(), String> {
        let Some(lifespan) = self.asgi.lifespan() else {
            return Ok(());
        };
        lifespan::begin_shutdown(&self.asgi, &lifespan);
        match lifespan::wait_for_shutdown(&lifespan, CHECK_SHUTDOWN_BOUND) {
            Some(outcome) => outcome.map_err(|e| format!("lifespan shutdown failed: {e}")),
            None => Ok(()),
        }
    }
}

impl Service for AsgiService {
    fn start(&self) -> Result<(), String> {
        let event_loop = EventLoop::start(self.asgi.loop_choice)?;
        if self.asgi.event_loop.set(event_loop).is_err() {
            return Err("the ASGI event loop was started twice".into());
        }
        if self.asgi.lifespan_mode == LifespanMode::Off {
            return Ok(());
        }
        let lifespan = lifespan::startup(&self.asgi, self.asgi.lifespan_mode)?;
        *self.asgi.lifespan.lock().unwrap_or_else(|p| p.into_inner()) = lifespan;
        Ok(())
    }

    fn call(&self, request: ServiceRequest) -> Box<dyn ServiceCall> {
        let is_head = request.head.method == Method::Head;
        let body = &request.body;
        let progress = BodyProgress {
            first: (!body.prefetched.is_empty() || body.complete).then(|| body.prefetched.clone()),
            more_to_read: !body.complete,
            content_length: body.content_length,
            received: body.prefetched.len() as u64,
        };
        event_loop::start_dispatcher();
        let exchange = Arc::new(Exchange::new(self.asgi.clone(), is_head, progress));
        self.asgi.tasks.fetch_add(1, Ordering::SeqCst);
        let task_exchange = exchange.clone();
        self.asgi
            .event_loop()
            .submit(Box::new(move |py| task::start(py, task_exchange, request)));
        Box::new(AsgiCall { exchange })
    }

    fn streams_request_body(&self) -> bool {
        true
    }

    fn watches_client(&self) -> bool {
        true
    }

    fn takes_websockets(&self) -> bool {
        true
    }

    fn websocket(&self, request: ServiceRequest) -> Box<dyn tern_core::websocket::WebSocketCall> {
        event_loop::start_dispatcher();
        let exchange = Arc::new(websocket::WsExchange::new(self.asgi.clone()));
        self.asgi.tasks.fetch_add(1, Ordering::SeqCst);
        let task_exchange = exchange.clone();
        self.asgi.event_loop().submit(Box::new(move |py| {
            websocket::start(py, task_exchange, request)
        }));
        Box::new(websocket::WsCall { exchange })
    }

    fn finish(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.asgi.event_loop.get().is_none() {
                return;
            }
            while self.asgi.tasks.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if let Some(lifespan) = self.asgi.lifespan() {
                lifespan::begin_shutdown(&self.asgi, &lifespan);
                let outcome = loop {
                    if let Some(outcome) = lifespan::shutdown_outcome(&lifespan) {
                        break outcome;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                };
                if let Err(message) = outcome {
                    tracing::error!("ASGI lifespan shutdown failed: {message}");
                }
            }
            if let Some(event_loop) = self.asgi.event_loop.get() {
                event_loop.stop();
            }
            crate::stdio::flush_python_output();
        })
    }

    fn abandon(&self, _bound: Duration) {
        if self.asgi.event_loop.get().is_some() {
            crate::stdio::flush_python_output();
        }
    }
}
