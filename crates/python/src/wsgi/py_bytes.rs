//! A Python `bytes` object's content handed to the connection: copied when small, shared (the
//! connection keeps the object alive instead) when large.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Bodies at least this large are handed to the connection without a copy (the connection holds
/// a reference to the Python bytes object instead); smaller ones are cheaper to copy.
const SHARE_FROM: usize = 4 * 1024;
/// A `bytes` object's content for the connection: copied when small, shared when large.
pub fn body_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < SHARE_FROM {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(SharedPyBytes {
        ptr: data.as_ptr(),
        len: data.len(),
        _object: bytes.clone().unbind(),
    })
}

/// Keeps a Python bytes object alive while the connection sends its content.
struct SharedPyBytes {
    ptr: *const u8,
    len: usize,
    /// Released through pyo3's deferred reference counting when dropped without the interpreter.
    _object: Py<PyBytes>,
}

// SAFETY: a bytes object is immutable and its buffer lives as long as the object, which
// `_object` keeps alive; reading it needs no interpreter lock.
unsafe impl Send for SharedPyBytes {}
// SAFETY: as for Send: shared references only ever read the immutable buffer.
unsafe impl Sync for SharedPyBytes {}

impl AsRef<[u8]> for SharedPyBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the Send impl: the pointer and length came from the live, immutable object.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}
