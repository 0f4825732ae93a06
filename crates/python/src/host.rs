//! Loading the application named on the command line, as WSGI or as ASGI (a coroutine function,
//! or an object whose `__call__` is one; `--interface` overrides): in the supervisor before any
//! worker is forked with `--preload`, else in each worker after a check in a throw-away child
//! (which also runs an ASGI application's lifespan startup, so a failing one stops tern at
//! start-up). And keeping the interpreter consistent across those forks.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;

use tern_cli::app_host::{AppHost, AppOptions, Interface};
use tern_core::service::Service;
use tern_core::supervisor::ForkHooks;

use crate::asgi::{Asgi, AsgiService};
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

impl WsgiHost {
    fn load_app(&self, options: &AppOptions) -> Result<Loaded, String> {
        Python::attach(|py| {
            let (module_name, attribute, factory) = parse_spec(&options.spec)?;
            extend_import_path(py, &options.pythonpath)
                .map_err(|e| with_traceback(py, "cannot set up the import path", &e))?;
            if !options.write_bytecode {
                py.import("sys")
                    .and_then(|sys| sys.setattr("dont_write_bytecode", true))
                    .map_err(|e| with_traceback(py, "cannot set sys.dont_write_bytecode", &e))?;
            }
            let module = py.import(module_name).map_err(|e| {
                with_traceback(py, &format!("cannot import module '{module_name}'"), &e)
            })?;
            let mut app = module.into_any();
            for part in attribute.split('.') {
                app = app.getattr(part).map_err(|_| {
                    format!("module '{module_name}' has no attribute '{attribute}'")
                })?;
            }
            if factory {
                app = app.call0().map_err(|e| {
                    with_traceback(
                        py,
                        &format!("calling {module_name}:{attribute}() failed"),
                        &e,
                    )
                })?;
            }
            if !app.is_callable() {
                return Err(format!(
                    "{module_name}:{attribute} is not callable, so it is not a WSGI or ASGI application"
                ));
            }
            let asgi = match options.interface {
                Interface::Asgi => true,
                Interface::Wsgi => false,
                Interface::Auto => is_coroutine_app(py, &app)
                    .map_err(|e| with_traceback(py, "cannot tell WSGI from ASGI", &e))?,
            };
            Ok(if asgi {
                let asgi = Asgi::new(
                    py,
                    app.unbind(),
                    &options.root_path,
                    options.lifespan,
                    options.event_loop,
                )
                .map_err(|e| with_traceback(py, "cannot prepare the ASGI scope", &e))?;
                Loaded::Asgi(Arc::new(AsgiService::new(asgi)))
            } else {
                let wsgi = Wsgi::new(
                    py,
                    app.unbind(),
                    &options.root_path,
                    options.max_threads,
                    options.workers > 1,
                )
                .map_err(|e| with_traceback(py, "cannot prepare the WSGI environment", &e))?;
                Loaded::Wsgi(Arc::new(WsgiService::new(wsgi)))
            })
        })
    }
}

/// An application loaded for one of the two interfaces.
enum Loaded {
    Wsgi(Arc<WsgiService>),
    Asgi(Arc<AsgiService>),
}

/// ASGI when the application, or its `__call__`, is a coroutine function.
fn is_coroutine_app(py: Python<'_>, app: &Bound<'_, PyAny>) -> PyResult<bool> {
    let inspect = py.import("inspect")?;
    if inspect
        .call_method1("iscoroutinefunction", (app,))?
        .is_truthy()?
    {
        return Ok(true);
    }
    match app.getattr("__call__") {
        Ok(call) => inspect
            .call_method1("iscoroutinefunction", (call,))?
            .is_truthy(),
        Err(_) => Ok(false),
    }
}

impl AppHost for WsgiHost {
    fn load(&self, options: &AppOptions) -> Result<Arc<dyn Service>, String> {
        Ok(match self.load_app(options)? {
            Loaded::Wsgi(service) => service as Arc<dyn Service>,
            Loaded::Asgi(service) => service as Arc<dyn Service>,
        })
    }

    fn check(&self, options: &AppOptions) -> Result<(), String> {
        let (report_read, report_write) =
            pipe().map_err(|e| format!("cannot check the app: {e}"))?;
        self.before_fork();
        // SAFETY: the supervisor is single-threaded here (no runtime, no workers yet); the
        // child only loads the application, writes to a pipe and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            self.after_fork_in_child();
            drop(report_read);
            let checked = self.load_app(options).and_then(|loaded| match loaded {
                Loaded::Wsgi(_) => Ok(()),
                Loaded::Asgi(service) => {
                    service.start()?;
                    service.shut_down_blocking()
                }
            });
            let status = match checked {
                Ok(()) => 0,
                Err(message) => {
                    let mut out = std::fs::File::from(report_write);
                    let _ = out.write_all(message.as_bytes());
                    2
                }
            };
            // SAFETY: leave without running the supervisor's exit handlers or destructors.
            unsafe { libc::_exit(status) }
        }
        self.after_fork_in_parent();
        drop(report_write);
        if pid < 0 {
            return Err(format!(
                "cannot check the app: fork failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut report = String::new();
        let _ = std::fs::File::from(report_read).read_to_string(&mut report);
        let mut status = 0;
        // SAFETY: a blocking wait for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else if report.is_empty() {
            Err(format!(
                "importing the application killed the process (status {status})"
            ))
        } else {
            Err(report)
        }
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

/// "what: ExceptionType: message" on one line, then the full traceback (so the user sees the
/// file and line where loading failed).
fn with_traceback(py: Python<'_>, what: &str, error: &PyErr) -> String {
    let kind = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Error".into());
    let summary = format!("{kind}: {}", error.value(py));
    let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let traceback = py
        .import("traceback")
        .and_then(|module| {
            let parts = (error.get_type(py), error.value(py), error.traceback(py));
            module.call_method1("format_exception", parts)
        })
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_default();
    format!("{what}: {summary}\n{}", traceback.trim_end())
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
