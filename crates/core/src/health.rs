//! Whether this worker wants new traffic, as its health check (`--health-path`) reports it.
//!
//! A load balancer polls the health path and takes an instance out of rotation when it answers
//! 503. The supervisor announces a coming drain to its workers (SIGUSR2 sent to it, or the start
//! of `--drain-delay`), and every drain marks the worker too; from then on the health path
//! answers 503 while everything else is still served, so the balancer stops sending before the
//! listeners close.
//!
//! The announcement travels two ways. The supervisor counts it in a word of memory shared with
//! every worker it forks, and a worker whose count moved since it was forked is draining: this
//! reaches a worker still importing the app, which cannot take a signal yet (the signal alone was
//! lost there). It also sends SIGUSR2 to each worker, which is what marks a single worker when an
//! operator signals just that one. Workers forked after the announcement (a SIGHUP's) start
//! healthy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

use rustix::mm;

/// Set once, when the worker learns that it will drain (or starts to).
static DRAINING: AtomicBool = AtomicBool::new(false);
/// Drains the supervisor has announced, in memory shared with the workers.
static ANNOUNCED: OnceLock<&'static AtomicU64> = OnceLock::new();
/// In a worker: the announcements made before it was forked (set by the parent just before).
static ANNOUNCED_BEFORE_FORK: AtomicU64 = AtomicU64::new(0);

/// In the supervisor, before any fork: maps the shared announcement count. Without it (a mapping
/// refused), announcements travel by signal alone.
pub fn share_announcements() {
    // SAFETY: a new anonymous shared mapping with no address hint: it replaces nothing.
    let mapped = unsafe {
        mm::mmap_anonymous(
            std::ptr::null_mut(),
            std::mem::size_of::<AtomicU64>(),
            mm::ProtFlags::READ | mm::ProtFlags::WRITE,
            mm::MapFlags::SHARED,
        )
    };
    let memory = match mapped {
        Ok(memory) => memory,
        Err(error) => {
            tracing::warn!(
                "cannot map memory for drain announcements: {}",
                std::io::Error::from(error)
            );
            return;
        }
    };
    // SAFETY: the mapping is page-aligned, zero-filled (a valid AtomicU64) and never unmapped;
    // it is shared with the forked workers, which is what an atomic is for.
    let counter: &'static AtomicU64 = unsafe { &*memory.cast::<AtomicU64>() };
    let _ = ANNOUNCED.set(counter);
}

/// In the supervisor: tells every worker alive now that a drain is coming.
pub fn announce_drain() {
    if let Some(counter) = ANNOUNCED.get() {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// In the supervisor, just before each fork: announcements made so far are not for the worker
/// about to be forked. Recorded here, in the parent, so that the child's copy of memory already
/// holds it: a child that read the count itself could miss an announcement made between the
/// fork and its first step (the signal sent with it is ignored until the worker serves).
pub fn before_fork() {
    if let Some(counter) = ANNOUNCED.get() {
        ANNOUNCED_BEFORE_FORK.store(counter.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// From now on the health check answers 503.
pub fn mark_draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// True once a drain was announced or began.
pub fn is_draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
        || ANNOUNCED.get().is_some_and(|counter| {
            counter.load(Ordering::Relaxed) > ANNOUNCED_BEFORE_FORK.load(Ordering::Relaxed)
        })
}
