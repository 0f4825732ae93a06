//! Raises the open-file limit so one worker can hold tens of thousands of connections.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new soft limit.
///
/// Failure is not fatal: the server runs with whatever limit it has, and the acceptor backs off
/// when it runs out.
pub fn raise_fd_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    // `None` is RLIM_INFINITY.
    let current = limit.current.unwrap_or(u64::MAX);
    let maximum = limit.maximum.unwrap_or(u64::MAX);
    if current < maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return maximum;
        }
    }
    current
}
