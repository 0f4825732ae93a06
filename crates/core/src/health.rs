//! Whether this worker wants new traffic, as its health check (`--health-path`) reports it.
//!
//! A load balancer polls the health path and takes an instance out of rotation when it answers
//! 503. The supervisor announces a coming drain (`--drain-delay`) to its workers with SIGUSR2, and
//! every drain marks the worker too; from then on the health path answers 503 while everything
//! else is still served, so the balancer stops sending before the listeners close.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, when the worker learns that it will drain (or starts to).
static DRAINING: AtomicBool = AtomicBool::new(false);

/// From now on the health check answers 503.
pub fn mark_draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// True once a drain was announced or began.
pub fn is_draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}
