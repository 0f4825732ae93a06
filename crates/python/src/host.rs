//! Loading the application named on the command line, in the supervisor before any worker is
//! forked, and keeping the interpreter consistent across those forks.

use std::path::Path;
use std::sync::{Arc, Mutex};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;

use tern_cli::app_host::{AppHost, AppOptions};
use tern_core::service::Service;
use tern_core::supervisor::ForkHooks;

use crate::wsgi::{Wsgi, WsgiService};

/// The host the Python package gives the command line.
pub struct WsgiHost {
    /// The interpreter state taken before a fork, given back after it.
    gil_during_fork: Mutex<Option<ffi::PyGILState_STATE>>,
}

impl WsgiHost {
    pub fn new() -> Self {
        WsgiHost {
            gil_during_fork: Mutex::new(None),
        }
    }
}

impl AppHost for WsgiHost {
    fn load(&self, options: &AppOptions) -> Result<Arc<dyn Service>, String> {
        if let Some(dir) = &options.chdir {
            std::env::set_current_dir(dir)
                .map_err(|e| format!("--chdir {}: {e}", dir.display()))?;
        }
        Python::attach(|py| {
            let (module_name, attribute, factory) = parse_spec(&options.spec)?;
            extend_import_path(py, &options.pythonpath)
                .map_err(|e| format!("cannot set up the import path: {}", one_line(py, &e)))?;
            let module = py.import(module_name).map_err(|e| {
                format!("cannot import module '{module_name}': {}", one_line(py, &e))
            })?;
            let mut app = module.into_any();
            for part in attribute.split('.') {
                app = app.getattr(part).map_err(|_| {
                    format!("module '{module_name}' has no attribute '{attribute}'")
                })?;
            }
            if factory {
                app = app.call0().map_err(|e| {
                    format!(
                        "calling {module_name}:{attribute}() failed: {}",
                        one_line(py, &e)
                    )
                })?;
            }
            if !app.is_callable() {
                return Err(format!(
                    "{module_name}:{attribute} is not callable, so it is not a WSGI application"
                ));
            }
            let wsgi = Wsgi::new(
                py,
                app.unbind(),
                &options.root_path,
                options.max_threads,
                options.workers > 1,
            )
            .map_err(|e| format!("cannot prepare the WSGI environment: {}", one_line(py, &e)))?;
            Ok(Arc::new(WsgiService::new(wsgi)) as Arc<dyn Service>)
        })
    }
}

/// `module:attr`, `module:attr()`, `module` → (module, attribute, is a factory).
fn parse_spec(spec: &str) -> Result<(&str, &str, bool), String> {
    let (module, attribute) = spec.split_once(':').unwrap_or((spec, "application"));
    let (attribute, factory) = match attribute.strip_suffix("()") {
        Some(name) => (name, true),
        None => (attribute, false),
    };
    let identifier = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    };
    if !identifier(module) || !identifier(attribute) {
        return Err(format!(
            "APP '{spec}' is not module:attribute (example: myproject.wsgi:application)"
        ));
    }
    Ok((module, attribute, factory))
}

/// The current directory, then every --pythonpath, go to the front of sys.path.
fn extend_import_path(py: Python<'_>, extra: &[std::path::PathBuf]) -> PyResult<()> {
    let sys_path = py.import("sys")?.getattr("path")?.cast_into::<PyList>()?;
    let mut front: Vec<String> = Vec::new();
    for dir in extra {
        front.push(absolute(dir));
    }
    front.push(absolute(Path::new(".")));
    for dir in front.iter().rev() {
        if !sys_path.contains(dir)? {
            sys_path.insert(0, dir)?;
        }
    }
    Ok(())
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// "ExceptionType: message" on one line.
fn one_line(py: Python<'_>, error: &PyErr) -> String {
    let kind = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Error".into());
    let text = format!("{kind}: {}", error.value(py));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl ForkHooks for WsgiHost {
    fn before_fork(&self) {
        // SAFETY: called on the supervisor's thread, which is attached to no thread state here
        // (the command line runs detached); Ensure attaches it, as fork requires.
        let state = unsafe {
            let state = ffi::PyGILState_Ensure();
            ffi::PyOS_BeforeFork();
            state
        };
        *self
            .gil_during_fork
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(state);
    }

    fn after_fork_in_parent(&self) {
        if let Some(state) = self
            .gil_during_fork
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            // SAFETY: pairs with before_fork on the same thread.
            unsafe {
                ffi::PyOS_AfterFork_Parent();
                ffi::PyGILState_Release(state);
            }
        }
    }

    fn after_fork_in_child(&self) {
        if let Some(state) = self
            .gil_during_fork
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            // SAFETY: the child's only thread holds the interpreter, as PyOS_AfterFork_Child needs.
            unsafe {
                ffi::PyOS_AfterFork_Child();
                ffi::PyGILState_Release(state);
            }
        }
    }
}
