//! Python `bytes` objects and the bytes of a request or response: a `bytes` object's content
//! handed to the connection (copied when small, shared when large), and a new `bytes` object read
//! from a file straight into its final place.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use bytes::Bytes;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;

/// Bodies at least this large are handed to the connection without a copy (the connection holds
/// a reference to the Python bytes object instead); smaller ones are cheaper to copy.
const SHARE_FROM: usize = 4 * 1024;
/// A `bytes` object's content for the connection: copied when small, shared when large (the
/// `Bytes` owns a reference to the object, released through pyo3's deferred reference counting
/// when the connection drops it without the interpreter).
pub fn body_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < SHARE_FROM {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(PyBackedBytes::from(bytes.clone()))
}

/// A new bytes object holding the `len` bytes of `file` from `offset`: `pread` fills the object's
/// own buffer, without the interpreter, and without zeroing it first as `PyBytes::new_with` does
/// (for a 10 MB body read from its file, that zeroing was most of the worker's own instructions).
/// Outer error: no memory for the object; inner: the read failed or the file ended first (the
/// half-filled object is then dropped unseen).
pub fn read_file_at<'py>(
    py: Python<'py>,
    file: &File,
    offset: u64,
    len: usize,
) -> PyResult<io::Result<Bound<'py, PyBytes>>> {
    let size = ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("body too large"))?;
    // SAFETY: with a null pointer, PyBytes_FromStringAndSize allocates an object of `size`
    // bytes with its contents left unset, returning a new reference, or null with an exception.
    let object = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyBytes_FromStringAndSize(std::ptr::null(), size))?
            .cast_into_unchecked::<PyBytes>()
    };
    // SAFETY: `object` is a bytes object; its buffer holds `len` bytes (and a terminating NUL).
    let buffer = Buffer(unsafe { ffi::PyBytes_AsString(object.as_ptr()) }.cast::<u8>());
    let fd = file.as_raw_fd();
    let read = py.detach(move || {
        let buffer = buffer;
        let mut filled = 0;
        while filled < len {
            // SAFETY: [filled, len) of the buffer is the part not yet filled, inside the object's
            // allocation; nothing else can see the object until it is returned; `fd` stays open
            // (the caller holds `file`).
            let n = unsafe {
                libc::pread(
                    fd,
                    buffer.0.add(filled).cast(),
                    len - filled,
                    (offset + filled as u64) as libc::off_t,
                )
            };
            match n {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                n if n > 0 => filled += n as usize,
                _ => {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    });
    Ok(read.map(|()| object))
}

/// The buffer of a bytes object being filled, moved to the code that runs without the
/// interpreter.
#[derive(Clone, Copy)]
struct Buffer(*mut u8);

// SAFETY: the object is reachable only from the thread that made it, which waits while another
// part of the same call fills it; the pointer is used by one thread at a time.
unsafe impl Send for Buffer {}
