//! tern-python: the only crate that depends on pyo3. For now it exposes the tern command line to
//! Python (`tern` console script, `python -m tern`), so the pip-installed package runs the very same
//! clap definition as the Rust binary. The WSGI bridge will live here too.

use pyo3::prelude::*;

/// Runs the tern command line with `argv` (program name first); returns the exit status.
///
/// The GIL is released for the whole run: the server never calls back into Python yet, and
/// worker processes are forked from this call.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| tern_cli::run(argv))
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(main, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
