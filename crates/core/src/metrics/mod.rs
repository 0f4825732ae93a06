//! Prometheus metrics for the whole server (`--metrics-bind`): counted by every worker into
//! memory shared by all the worker processes, so that one scrape, answered by whichever worker
//! accepts it, shows the server as a whole.
//!
//! Why not an in-process registry (the `prometheus` or `prometheus-client` crates): their
//! counters live in one process's heap, and tern's workers are processes. Here the supervisor
//! maps one table before it forks ([`table`]); each worker writes its own slot and the endpoint
//! ([`endpoint`]) sums the slots and writes the text format ([`render`], a few lines of output
//! that no crate would shorten).
//!
//! Cost on the hot path: nothing at all without `--metrics-bind` (one check of an unset
//! `OnceLock`); with it, a request adds a handful of plain loads and stores to words of a
//! cache line only its own worker writes. The request counters are written by the worker's
//! event-loop thread alone, so they need no atomic read-modify-write; what Python threads
//! record goes through the pool's lock or an atomic add. Gauges that the event loop knows at
//! any moment (open connections, requests in flight) are sampled four times a second instead
//! of being counted on every change.

mod endpoint;
mod render;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use endpoint::spawn_endpoint;
use table::{bucket_of, word, Slot, Table};
pub use table::{Mount, RestartCause};

use crate::listener::Listener;

/// How often a worker samples its open connections and requests in flight.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(250);
/// Slots for workers alive at once, beyond twice `--workers` (a rolling restart runs old and new
/// side by side): room for overlapping restarts.
const SPARE_SLOTS: usize = 16;

/// The shared table, once `--metrics-bind` installed it (in the supervisor; workers inherit it).
static TABLE: OnceLock<Table> = OnceLock::new();
/// This worker's slot (unset in the supervisor, and in a worker that found no free slot).
static SLOT: OnceLock<&'static Slot> = OnceLock::new();
/// The metrics listener: the supervisor's copy, and in a worker, until its endpoint takes it.
static LISTENER: Mutex<Option<Listener>> = Mutex::new(None);

/// Sets up the metrics for a server of `workers` workers, served on `listener`. Called once, in
/// the supervisor, before any worker exists.
pub fn install(listener: Listener, workers: usize) -> std::io::Result<()> {
    let table = Table::map(workers * 2 + SPARE_SLOTS)?;
    if TABLE.set(table).is_err() {
        return Err(std::io::Error::other("metrics installed twice"));
    }
    *lock_listener() = Some(listener);
    Ok(())
}

/// True when `--metrics-bind` is in use.
pub fn enabled() -> bool {
    TABLE.get().is_some()
}

fn lock_listener() -> std::sync::MutexGuard<'static, Option<Listener>> {
    LISTENER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The supervisor's side: which slot each worker counts in, and why workers were replaced.
pub(crate) mod supervisor_side {
    use super::*;

    /// Reserves a slot for the worker about to be forked (None: no metrics, or none free).
    pub(crate) fn claim_slot() -> Option<usize> {
        let table = TABLE.get()?;
        let claimed = table.claim();
        if claimed.is_none() {
            tracing::warn!(
                "metrics: more than {} workers alive at once; the next one is not counted",
                table.slot_count()
            );
        }
        claimed
    }

    /// After the fork: the slot belongs to `pid`.
    pub(crate) fn assign_slot(index: usize, pid: libc::pid_t) {
        if let Some(table) = TABLE.get() {
            table.assign(index, pid as u32);
        }
    }

    /// The fork failed: the slot is free again.
    pub(crate) fn unclaim_slot(index: usize) {
        if let Some(table) = TABLE.get() {
            table.release(index);
        }
    }

    /// The worker `pid` exited: its gauges go, its counters stay for the next worker.
    pub(crate) fn worker_exited(pid: libc::pid_t) {
        if let Some(table) = TABLE.get() {
            if let Some(index) = table.slot_of(pid as u32) {
                table.release(index);
            }
        }
    }

    pub(crate) fn count_restart(cause: RestartCause) {
        if let Some(table) = TABLE.get() {
            table.restarts(cause).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stopping: the supervisor's copy of the metrics listener closes with the others.
    pub(crate) fn close_listener() {
        lock_listener().take();
    }

    /// In a new worker: count in slot `index`.
    pub(crate) fn attach(index: usize) {
        if let Some(table) = TABLE.get() {
            let _ = SLOT.set(table.slot(index));
        }
    }
}

/// Adds `n` to a word that only the calling thread writes (see the module's notes on cost).
#[inline]
fn bump(word: &AtomicU64, n: u64) {
    word.store(
        word.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// One answered request: who answered, its status, the body bytes sent and how long it took
/// from its head to the end of its response. Called on the worker's event loop only.
#[inline]
pub fn record_request(mount: Mount, status: u16, body_bytes: u64, took: Duration) {
    let Some(slot) = SLOT.get() else {
        return;
    };
    let mount = mount as usize;
    let class = usize::from(status / 100).clamp(1, table::STATUS_CLASSES) - 1;
    bump(
        &slot[word::REQUESTS + mount * table::STATUS_CLASSES + class],
        1,
    );
    let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
    bump(
        &slot[word::DURATION_BUCKETS + mount * table::BUCKETS + bucket_of(micros)],
        1,
    );
    bump(&slot[word::DURATION_SUM_US + mount], micros);
    bump(&slot[word::BODY_BYTES + mount], body_bytes);
}

/// A connection entered (+1) or left (-1) the idle park. Called on the worker's event loop.
pub fn add_parked(delta: i64) {
    if let Some(slot) = SLOT.get() {
        bump(&slot[word::PARKED_CONNECTIONS], delta as u64);
    }
}

/// The worker's sample of its open connections and requests in flight.
pub fn set_connection_gauges(open: usize, requests_in_flight: u64) {
    if let Some(slot) = SLOT.get() {
        slot[word::OPEN_CONNECTIONS].store(open as u64, Ordering::Relaxed);
        slot[word::REQUESTS_IN_FLIGHT].store(requests_in_flight, Ordering::Relaxed);
    }
}

/// Counts a request body while the event loop receives it, until dropped.
pub struct BodyReceiving(());

impl BodyReceiving {
    /// Called on the worker's event loop; the guard must be dropped there too.
    pub fn start() -> BodyReceiving {
        if let Some(slot) = SLOT.get() {
            bump(&slot[word::BODIES_RECEIVING], 1);
        }
        BodyReceiving(())
    }
}

impl Drop for BodyReceiving {
    fn drop(&mut self) {
        if let Some(slot) = SLOT.get() {
            bump(&slot[word::BODIES_RECEIVING], u64::MAX);
        }
    }
}

/// The Python pool's threads: inside an application call, and waiting for one. Called with the
/// pool's lock held, so writers never overlap.
pub fn set_python_threads(busy: usize, idle: usize) {
    if let Some(slot) = SLOT.get() {
        slot[word::PYTHON_THREADS_BUSY].store(busy as u64, Ordering::Relaxed);
        slot[word::PYTHON_THREADS_IDLE].store(idle as u64, Ordering::Relaxed);
    }
}

/// How long an application call waited in the queue for a Python thread. Called from any of
/// the pool's threads.
pub fn record_queue_wait(waited: Duration) {
    if let Some(slot) = SLOT.get() {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        slot[word::QUEUE_WAIT_BUCKETS + bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        slot[word::QUEUE_WAIT_SUM_US].fetch_add(micros, Ordering::Relaxed);
    }
}

/// In a worker: the metrics listener, for its endpoint (once).
fn take_listener() -> Option<Listener> {
    lock_listener().take()
}

/// The whole server's metrics in Prometheus's text format.
fn render_all() -> Option<String> {
    TABLE.get().map(render::render)
}
