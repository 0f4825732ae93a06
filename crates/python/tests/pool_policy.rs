//! Runs the thread pool's policy tests (crates/python/src/threads/policy.rs). The crate itself is
//! a Python extension module, whose test binary cannot link without an interpreter; the policy
//! uses neither pyo3 nor anything else of the crate, so it is compiled here on its own.

#[path = "../src/threads/policy.rs"]
#[allow(dead_code)] // Items only the pool uses, not the tests.
mod policy;
