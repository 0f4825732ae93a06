//! The seam between the command line and an application host it cannot build itself. The pure
//! Rust `tern` binary has none; the Python package passes its WSGI host to [`crate::run_with`],
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
    /// Importing may write bytecode caches (`__pycache__/*.pyc`). Not with `--reload`: a cache
    /// records only the source's size and modification second, so a quick second save of the
    /// same size would be imported as the stale bytecode.
    pub write_bytecode: bool,
}

/// Loads applications and keeps an embedded interpreter consistent across fork().
pub trait AppHost: ForkHooks + Sync {
    /// Loads the application: in the supervisor before any worker exists (`--preload`), or in
    /// each worker. The error's first line names what failed and why; the traceback follows.
    fn load(&self, options: &AppOptions) -> Result<Arc<dyn Service>, String>;

    /// Loads the application in a throw-away child process and reports how that went, so a
    /// broken app stops the server at start-up while the supervisor itself imports nothing.
    fn check(&self, options: &AppOptions) -> Result<(), String>;
}
