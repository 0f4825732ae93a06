//! The WSGI bridge (PEP 3333): a [`Service`] that runs a Python application for every request
//! the static mounts do not answer.
//!
//! [`environ`] builds the environ dict, [`start_response`] checks and renders the head,
//! [`input`] is `wsgi.input`, [`errors`] is `wsgi.errors` and the traceback log,
//! [`file_wrapper`] is `wsgi.file_wrapper`, and [`call`] drives one request from the application
//! call to the iterable's `close()`. The calls run on the thread pool of [`crate::threads`].

mod call;
mod environ;
mod errors;
mod file_wrapper;
mod input;
mod start_response;

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;

use tern_core::service::{Service, ServiceCall, ServiceRequest};

use crate::threads::Pool;
use call::{CallShared, WsgiCall};

/// One loaded application and what its calls share.
pub struct Wsgi {
    app: Py<PyAny>,
    template: environ::Template,
    max_threads: usize,
    /// Started on the first request, in the worker (threads do not survive fork).
    pool: OnceLock<Pool>,
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
        })
    }

    fn pool(&self) -> &Pool {
        self.pool.get_or_init(|| Pool::new(self.max_threads))
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
        let is_head = request.head.method == tern_core::http::request::Method::Head;
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
            while !pool.is_idle() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // The worker leaves with _exit: whatever the app printed must not stay in a buffer.
            Python::attach(|py| {
                for stream in ["stdout", "stderr"] {
                    if let Ok(stream) = py.import("sys").and_then(|sys| sys.getattr(stream)) {
                        let _ = stream.call_method0("flush");
                    }
                }
            });
        })
    }
}
