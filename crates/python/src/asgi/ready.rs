//! An awaitable that is already done: what `receive` and `send` return when they need not wait,
//! cheaper than a loop future (no scheduling, no callbacks).

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

/// `await Ready(value)` gives `value` at once.
#[pyclass(module = "tern_server._native")]
pub struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    pub fn new(value: Py<PyAny>) -> Self {
        Ready { value: Some(value) }
    }

    /// A done awaitable as a Python object.
    pub fn bound<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, Ready::new(value.unbind()))?.into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Ends the iteration at once, with the value as the await's result.
    fn __next__(&mut self, py: Python<'_>) -> PyResult<()> {
        let value = self.value.take().unwrap_or_else(|| py.None());
        Err(PyStopIteration::new_err((value,)))
    }

    fn send(&mut self, py: Python<'_>, _value: Bound<'_, PyAny>) -> PyResult<()> {
        self.__next__(py)
    }
}
