//! The seam between the command line and an application host it cannot build itself. The pure
//! Rust `tern` binary has none; the Python package passes its Python host (WSGI and ASGI) to [`crate::run_with`],
//! so this crate never names Python.

use std::path::PathBuf;
use std::sync::Arc;

use tern_core::service::Service;
use tern_core::supervisor::ForkHooks;

/// What the command line says about the application.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// `module:attribute` or `module:factory()`.
    pub spec: String,
    pub pythonpath: Vec<PathBuf>,
    /// The mount prefix ('' or '/app'): SCRIPT_NAME.
    pub root_path: String,
    /// Cap on concurrent application calls (threads) per worker.
    pub max_threads: usize,
    /// Worker processes (so the application can be told whether it runs in several).
    pub workers: usize,
    /// `--interface`: how the application is called.
    pub interface: Interface,
    /// `--lifespan`: whether an ASGI application's lifespan protocol runs.
    pub lifespan: Lifespan,
    /// `--loop`: which event loop runs an ASGI application.
    pub event_loop: EventLoop,
    /// Importing may write bytecode caches (`__pycache__/*.pyc`). Not with `--reload`: a cache
    /// records only the source's size and modification second, so a quick second save of the
    /// same size would be imported as the stale bytecode.
    pub write_bytecode: bool,
}

/// `--interface`: WSGI (PEP 3333) or ASGI 3.0, or `Auto`: ASGI when the application (or its
/// `__call__`) is a coroutine function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    Auto,
    Wsgi,
    Asgi,
}

/// `--lifespan`: `Auto` runs the ASGI lifespan protocol but carries on without it when the
/// application refuses the lifespan scope; `On` stops the worker then; `Off` never runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifespan {
    Auto,
    On,
    Off,
}

/// `--loop`: the event loop of an ASGI application; `Auto` is uvloop when it imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventLoop {
    Auto,
    Asyncio,
    Uvloop,
}

impl Interface {
    /// The flag's value (checked by clap) as the type.
    pub fn from_flag(value: &str) -> Self {
        match value {
            "wsgi" => Interface::Wsgi,
            "asgi" => Interface::Asgi,
            _ => Interface::Auto,
        }
    }
}

impl Lifespan {
    /// The flag's value (checked by clap) as the type.
    pub fn from_flag(value: &str) -> Self {
        match value {
            "on" => Lifespan::On,
            "off" => Lifespan::Off,
            _ => Lifespan::Auto,
        }
    }
}

impl EventLoop {
    /// The flag's value (checked by clap) as the type.
    pub fn from_flag(value: &str) -> Self {
        match value {
            "asyncio" => EventLoop::Asyncio,
            "uvloop" => EventLoop::Uvloop,
            _ => EventLoop::Auto,
        }
    }
}

/// Loads applications and keeps an embedded interpreter consistent across fork().
pub trait AppHost: ForkHooks + Sync {
    /// Loads the application: in the supervisor before any worker exists (`--preload`), or in
    /// each worker. The error's first line names what failed and why; the traceback follows.
    fn load(&self, options: &AppOptions) -> Result<Arc<dyn Service>, String>;

    /// Loads the application in a throw-away child process and reports how that went, so a
    /// broken app stops the server at start-up while the supervisor itself imports nothing. An
    /// ASGI application's lifespan startup (and shutdown) runs there too, so a failing startup
    /// stops the server as well.
    fn check(&self, options: &AppOptions) -> Result<(), String>;
}
