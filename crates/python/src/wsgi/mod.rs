//! The WSGI bridge (PEP 3333): a [`Service`] that runs a Python application for every request
//! the static mounts do not answer.
//!
//! [`environ`] builds the environ dict, [`start_response`] checks and renders the head,
//! [`input`] is `wsgi.input`, [`errors`] is `wsgi.errors` and the traceback log,
//! [`file_wrapper`] is `wsgi.file_wrapper`, and [`call`] drives one request from the application
//! call to the iterable's `close()`. What those share for one request (the events for the
//! connection, the head until it is sent) is in [`shared`]. What WSGI shares with ASGI is in the
//! crate: [`crate::py_bytes`], [`crate::response_head`], [`crate::traceback`],
//! [`crate::request_facts`]. The calls run on the thread pool of [`crate::threads`]; [`stuck`] shows where
//! a call that outlived `--request-timeout` hangs.

mod call;
mod environ;
mod errors;
mod file_wrapper;
mod input;
mod shared;
mod start_response;
mod stuck;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use tern_core::service::{Service, ServiceCall, ServiceRequest};

use crate::stdio::flush_python_output;
use crate::threads::Pool;
use call::WsgiCall;
use shared::CallShared;

/// With calls stuck past `--request-timeout`, the drain's flush of the app's output waits at most
/// this long for the interpreter lock (one of them may hold it).
const STUCK_FLUSH_BOUND: Duration = Duration::from_secs(1);

/// One loaded application and what its calls share.
pub struct Wsgi {
    app: Py<PyAny>,
    template: environ::Template,
    max_threads: usize,
    /// Started on the first request, in the worker (threads do not survive fork).
    pool: OnceLock<Pool>,
    /// `close()` calls of abandoned responses submitted to the pool and not yet done: a
    /// forced stop waits for them (bounded) before the worker exits.
    closes_pending: AtomicUsize,
    /// Jobs of calls abandoned at `--request-timeout` that still run: a drain does not wait for
    /// them (they may never end; the worker is being replaced because of them).
    stuck_jobs: AtomicUsize,
}

impl Wsgi {
    pub fn new(
        py: Python<'_>,
        app: Py<PyAny>,
        root_path: &str,
        max_threads: usize,
        multiprocess: bool,
    ) -> PyResult<Wsgi> {
        Ok(Wsgi {
            app,
            template: environ::Template::new(py, root_path, multiprocess)?,
            max_threads,
            pool: OnceLock::new(),
            closes_pending: AtomicUsize::new(0),
            stuck_jobs: AtomicUsize::new(0),
        })
    }

    fn pool(&self) -> &Pool {
        self.pool
            .get_or_init(|| Pool::new(self.max_threads, errors::end_of_job))
    }

    /// Calls `close()` of a response the connection gave up on, on a pool thread.
    fn close_abandoned(self: &Arc<Self>, iterable: Py<PyAny>) {
        self.closes_pending.fetch_add(1, Ordering::SeqCst);
        let wsgi = self.clone();
        self.pool().submit(Box::new(move |py| {
            call::close_iterable(py, iterable.bind(py));
            wsgi.closes_pending.fetch_sub(1, Ordering::SeqCst);
        }));
    }
}

/// The [`Service`] the HTTP core calls.
pub struct WsgiService {
    wsgi: Arc<Wsgi>,
}

impl WsgiService {
    pub fn new(wsgi: Wsgi) -> Self {
        WsgiService {
            wsgi: Arc::new(wsgi),
        }
    }
}

impl Service for WsgiService {
    fn call(&self, request: ServiceRequest) -> Box<dyn ServiceCall> {
        let is_head = request.head.method == tern_core::message::request::Method::Head;
        let shared = Arc::new(CallShared::new(self.wsgi.clone(), is_head));
        let job_call = shared.clone();
        self.wsgi
            .pool()
            .submit(Box::new(move |py| job_call.run_app(py, request)));
        Box::new(WsgiCall { shared })
    }

    fn finish(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let Some(pool) = self.wsgi.pool.get() else {
                return;
            };
            let stuck = || self.wsgi.stuck_jobs.load(Ordering::SeqCst);
            while pool.jobs() > stuck() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if stuck() == 0 {
                return flush_python_output();
            }
            tracing::info!("leaving {} call(s) that timed out still running", stuck());
            // Their stacks are being read (the reader needs the interpreter lock, which a busy
            // loop lets go of only now and then): let the log have them before the worker goes.
            let deadline = Instant::now() + STUCK_FLUSH_BOUND;
            while stuck::reports_pending() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // A stuck call may hold the interpreter lock for good (a C function that keeps
            // it): flush from a thread of its own, and wait for that only so long.
            let flushed = Arc::new(AtomicBool::new(false));
            let spawned = std::thread::Builder::new()
                .name("tern-flush".into())
                .spawn({
                    let flushed = flushed.clone();
                    move || {
                        flush_python_output();
                        flushed.store(true, Ordering::SeqCst);
                    }
                });
            if spawned.is_ok() {
                let deadline = Instant::now() + STUCK_FLUSH_BOUND;
                while !flushed.load(Ordering::SeqCst) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    }

    fn abandon(&self, bound: Duration) {
        if self.wsgi.pool.get().is_none() {
            return;
        }
        let deadline = Instant::now() + bound;
        while self.wsgi.closes_pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = self.wsgi.closes_pending.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!(
                "{left} close() call(s) of cut responses did not finish within {}s",
                bound.as_secs_f64()
            );
        }
        flush_python_output();
    }
}
