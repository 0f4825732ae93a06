//! A Python `bytes` object's content handed to the connection: copied when small, shared (the
//! connection keeps the object alive instead) when large.

use bytes::Bytes;
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
