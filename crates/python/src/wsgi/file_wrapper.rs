//! `wsgi.file_wrapper`: wraps a file-like object as a response iterable. When it wraps a real
//! regular file, the connection sends it with sendfile(2) from the file's current position;
//! otherwise it is iterated in blocks like any other response.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

use tern_core::message::response::FileBody;

#[pyclass(frozen, module = "tern_server._native")]
pub struct FileWrapper {
    filelike: Py<PyAny>,
    block_size: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = 8192))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            block_size: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let block = self
            .filelike
            .bind(py)
            .call_method1("read", (self.block_size,))?;
        if block.len().unwrap_or(0) == 0 {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(block)
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let filelike = self.filelike.bind(py);
        if filelike.hasattr("close")? {
            filelike.call_method0("close")?;
        }
        Ok(())
    }
}

impl FileWrapper {
    /// The rest of the wrapped file from its current position, if it is a regular file with a
    /// descriptor; the connection gets its own duplicate of the descriptor.
    pub fn as_file(&self, py: Python<'_>) -> Option<FileBody> {
        let filelike = self.filelike.bind(py);
        let fd: i32 = filelike.call_method0("fileno").ok()?.extract().ok()?;
        let offset: u64 = match filelike.call_method0("tell") {
            Ok(position) => position.extract().ok()?,
            Err(_) => 0,
        };
        // SAFETY: dup() only reads the descriptor table; an invalid number gives -1.
        let copy = unsafe { libc::dup(fd) };
        if copy < 0 {
            return None;
        }
        // SAFETY: `copy` is a new descriptor owned by nothing else.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(copy) });
        let metadata = file.metadata().ok()?;
        if !metadata.file_type().is_file() {
            return None;
        }
        let len = metadata.size().saturating_sub(offset);
        Some(FileBody {
            file: std::sync::Arc::new(file),
            offset,
            len,
        })
    }
}
