//! Python `bytes` objects and the bytes of a request or response: a `bytes` object's content
//! handed to the connection (copied when small, shared when large), and a new `bytes` object read
//! from a file straight into its final place.

use std::fs::File;
use std::io;
use std::mem::MaybeUninit;

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
    // SAFETY: `object` is a bytes object of `len` bytes, so its buffer holds them (and a
    // terminating NUL). Nothing else can see the object until it is returned, so this is the only
    // reference to the buffer; the object, and so the buffer, outlives the slice.
    let buffer: &mut [MaybeUninit<u8>] = unsafe {
        std::slice::from_raw_parts_mut(ffi::PyBytes_AsString(object.as_ptr()).cast(), len)
    };
    let read = py.detach(|| fill_from(file, buffer, offset));
    Ok(read.map(|()| object))
}

/// Fills `buffer` with the bytes of `file` from `offset`.
fn fill_from(file: &File, buffer: &mut [MaybeUninit<u8>], offset: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < buffer.len() {
        match rustix::io::pread(file, &mut buffer[filled..], offset + filled as u64) {
            Ok(([], _)) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok((read, _)) => filled += read.len(),
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
