//! tern-python: the only crate that depends on pyo3. It gives the Python package the tern command
//! line (`tern` console script, `python -m tern_server`: the very same clap definition as the Rust
//! binary) and hosts WSGI and ASGI applications for `tern serve APP`.
//!
//! [`host`] loads the application and keeps the interpreter consistent across fork; [`wsgi`] is
//! the PEP 3333 bridge, [`threads`] runs its calls off the event loop; [`asgi`] is the ASGI 3.0
//! bridge (an asyncio or uvloop loop per worker). What the bridges share:
//! [`request_facts`] (client, server, path), [`response_head`] (checked header fields),
//! [`py_bytes`], [`traceback`], [`stdio`].

mod asgi;
mod host;
mod py_bytes;
mod request_facts;
mod response_head;
mod stdio;
mod threads;
mod traceback;
mod wsgi;

use pyo3::prelude::*;

/// Rust's allocations in the extension (request heads, calls, buffers; Python's objects keep
/// their own allocator) go to mimalloc: about 12 allocations per WSGI request, many freed on
/// another thread than the one that made them. See bench/NOTES.md for the measurement.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the tern command line with `argv` (program name first); returns the exit status.
///
/// The interpreter is released for the whole run: worker threads attach to it when they run
/// application code, and the supervisor re-attaches around each fork.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let host = host::WsgiHost::new();
    py.detach(|| tern_cli::run_with(argv, Some(&host)))
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(main, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add(
        "ClientDisconnected",
        module.py().get_type::<asgi::ClientDisconnected>(),
    )?;
    Ok(())
}
