//! The memory the metrics live in: one table mapped `MAP_SHARED` by the supervisor before it
//! forks, so that every worker writes its own slot and any worker can read them all.
//!
//! The table is an array of 64-bit words: a header (the supervisor's restart counts) and then one
//! slot per worker, each a whole number of cache lines so that workers never write the same line.
//! Which word means what is fixed here, by constants; nothing else knows the layout.
//!
//! A slot outlives its worker: when a worker exits, the supervisor zeroes its gauges and hands the
//! slot to the next worker it starts, which goes on counting where the old one stopped. Counters
//! therefore only grow (Prometheus reads a decrease as a restart of the whole target), and the
//! number of slots bounds the workers alive at once, not the restarts over the server's life.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::mm;

/// Who answered a request, the `mount` label of the request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// A static mount, or the router itself (404 outside every mount, `OPTIONS *`, redirects).
    Static = 0,
    /// The Python application.
    App = 1,
    /// The health check (`--health-path`), kept apart so a load balancer's polling does not
    /// swell the static counts.
    Health = 2,
    /// Refused before anyone was asked (malformed or oversized requests).
    None = 3,
}

impl Mount {
    pub const ALL: [Mount; 4] = [Mount::Static, Mount::App, Mount::Health, Mount::None];

    pub fn label(self) -> &'static str {
        match self {
            Mount::Static => "static",
            Mount::App => "app",
            Mount::Health => "health",
            Mount::None => "none",
        }
    }
}

/// Why the supervisor started a worker in place of another, the `cause` label of the restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// The worker died (a signal, or an exit it was not asked for).
    Crash = 0,
    /// The worker reached a recycling limit (`--max-requests`, memory, lifetime).
    Recycle = 1,
    /// A request outlived `--request-timeout` and the worker asked to be replaced.
    Timeout = 2,
    /// SIGHUP, or `--reload` saw the code change.
    Reload = 3,
}

impl RestartCause {
    pub const ALL: [RestartCause; 4] = [
        RestartCause::Crash,
        RestartCause::Recycle,
        RestartCause::Timeout,
        RestartCause::Reload,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RestartCause::Crash => "crash",
            RestartCause::Recycle => "recycle",
            RestartCause::Timeout => "timeout",
            RestartCause::Reload => "reload",
        }
    }
}

/// Upper bounds of the latency histograms' buckets, in microseconds (Prometheus's usual spread,
/// from half a millisecond, where a static file or a hello-world call lands, to ten seconds).
pub const BUCKET_BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Buckets per histogram: one per bound, and one past the last (`+Inf`).
pub const BUCKETS: usize = BUCKET_BOUNDS_US.len() + 1;
/// Status classes counted: 1xx to 5xx.
pub const STATUS_CLASSES: usize = 5;
const MOUNTS: usize = Mount::ALL.len();

/// Word offsets inside a slot.
pub mod word {
    use super::{BUCKETS, MOUNTS, STATUS_CLASSES};

    /// The pid of the worker that owns the slot; 0 when free, `u64::MAX` while being handed out.
    pub const OWNER: usize = 0;
    /// Requests answered, `[mount][status class]`.
    pub const REQUESTS: usize = OWNER + 1;
    /// Request durations, `[mount][bucket]`, each bucket counted on its own (not cumulative).
    pub const DURATION_BUCKETS: usize = REQUESTS + MOUNTS * STATUS_CLASSES;
    /// Sum of request durations in microseconds, `[mount]`.
    pub const DURATION_SUM_US: usize = DURATION_BUCKETS + MOUNTS * BUCKETS;
    /// Response body bytes sent, `[mount]`.
    pub const BODY_BYTES: usize = DURATION_SUM_US + MOUNTS;
    /// Gauges, zeroed when the worker exits.
    pub const OPEN_CONNECTIONS: usize = BODY_BYTES + MOUNTS;
    pub const PARKED_CONNECTIONS: usize = OPEN_CONNECTIONS + 1;
    pub const REQUESTS_IN_FLIGHT: usize = PARKED_CONNECTIONS + 1;
    pub const BODIES_RECEIVING: usize = REQUESTS_IN_FLIGHT + 1;
    pub const PYTHON_THREADS_BUSY: usize = BODIES_RECEIVING + 1;
    pub const PYTHON_THREADS_IDLE: usize = PYTHON_THREADS_BUSY + 1;
    /// The first and one past the last gauge.
    pub const GAUGES: std::ops::Range<usize> = OPEN_CONNECTIONS..PYTHON_THREADS_IDLE + 1;
    /// How long application calls waited for a Python thread, `[bucket]`, and the sum in µs.
    pub const QUEUE_WAIT_BUCKETS: usize = GAUGES.end;
    pub const QUEUE_WAIT_SUM_US: usize = QUEUE_WAIT_BUCKETS + BUCKETS;
    /// Words in use; a slot is this rounded up to whole cache lines.
    pub const USED: usize = QUEUE_WAIT_SUM_US + 1;
}

/// Words per slot: whole 64-byte cache lines.
pub const SLOT_WORDS: usize = word::USED.div_ceil(8) * 8;
const _: () = assert!(word::USED <= SLOT_WORDS);
/// Words of the header: restarts by cause, then padding to a cache line.
const HEADER_WORDS: usize = 8;

/// One worker's words.
pub type Slot = [AtomicU64; SLOT_WORDS];

/// The shared table: a header and `slots` slots, mapped for the life of the process.
#[derive(Debug)]
pub struct Table {
    words: &'static [AtomicU64],
    slots: usize,
}

impl Table {
    /// Maps a zeroed table with room for `slots` workers alive at once.
    pub fn map(slots: usize) -> io::Result<Table> {
        let words = HEADER_WORDS + slots * SLOT_WORDS;
        let bytes = words * std::mem::size_of::<AtomicU64>();
        // SAFETY: a new anonymous shared mapping with no address hint: it replaces nothing.
        let memory = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                bytes,
                mm::ProtFlags::READ | mm::ProtFlags::WRITE,
                mm::MapFlags::SHARED,
            )
        }?;
        // SAFETY: the mapping is `bytes` long, page-aligned (so aligned for u64), zero-filled
        // (a valid AtomicU64 is any bit pattern), and never unmapped, so the slice may be
        // 'static. It is shared with the forked workers, which is what atomics are for.
        let words = unsafe { std::slice::from_raw_parts(memory.cast::<AtomicU64>(), words) };
        Ok(Table { words, slots })
    }

    pub fn slot_count(&self) -> usize {
        self.slots
    }

    pub fn slot(&self, index: usize) -> &'static Slot {
        let start = HEADER_WORDS + index * SLOT_WORDS;
        let words: &'static [AtomicU64] = &self.words[start..start + SLOT_WORDS];
        words.try_into().expect("a slot is SLOT_WORDS long")
    }

    pub fn slots(&self) -> impl Iterator<Item = &'static Slot> + '_ {
        (0..self.slots).map(|index| self.slot(index))
    }

    pub fn restarts(&self, cause: RestartCause) -> &'static AtomicU64 {
        &self.words[cause as usize]
    }

    /// Reserves a free slot for a worker about to be forked.
    pub fn claim(&self) -> Option<usize> {
        (0..self.slots).find(|&index| {
            self.slot(index)[word::OWNER]
                .compare_exchange(0, u64::MAX, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Records the pid of the worker forked into a claimed slot.
    pub fn assign(&self, index: usize, pid: u32) {
        self.slot(index)[word::OWNER].store(u64::from(pid), Ordering::Relaxed);
    }

    /// Frees the slot of a worker that exited (or was never forked): its gauges go to zero, its
    /// counters stay for the next worker to continue.
    pub fn release(&self, index: usize) {
        let slot = self.slot(index);
        for gauge in word::GAUGES {
            slot[gauge].store(0, Ordering::Relaxed);
        }
        slot[word::OWNER].store(0, Ordering::Relaxed);
    }

    /// The slot of the worker `pid`, if it has one.
    pub fn slot_of(&self, pid: u32) -> Option<usize> {
        (0..self.slots)
            .find(|&index| self.slot(index)[word::OWNER].load(Ordering::Relaxed) == u64::from(pid))
    }
}

/// The index of the bucket that counts a duration of `micros`.
pub fn bucket_of(micros: u64) -> usize {
    BUCKET_BOUNDS_US
        .iter()
        .position(|&bound| micros <= bound)
        .unwrap_or(BUCKET_BOUNDS_US.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_falls_in_the_first_bucket_whose_bound_holds_it() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(500), 0);
        assert_eq!(bucket_of(501), 1);
        assert_eq!(bucket_of(10_000_000), BUCKET_BOUNDS_US.len() - 1);
        assert_eq!(bucket_of(10_000_001), BUCKET_BOUNDS_US.len());
    }

    #[test]
    fn a_released_slot_keeps_its_counters_and_loses_its_gauges() {
        let table = Table::map(2).unwrap();
        let first = table.claim().unwrap();
        table.assign(first, 41);
        let second = table.claim().unwrap();
        assert_ne!(first, second);
        assert_eq!(table.claim(), None, "both slots are taken");
        table.slot(first)[word::REQUESTS].store(7, Ordering::Relaxed);
        table.slot(first)[word::OPEN_CONNECTIONS].store(3, Ordering::Relaxed);
        assert_eq!(table.slot_of(41), Some(first));
        table.release(first);
        assert_eq!(table.slot_of(41), None);
        assert_eq!(table.claim(), Some(first));
        assert_eq!(table.slot(first)[word::REQUESTS].load(Ordering::Relaxed), 7);
        assert_eq!(
            table.slot(first)[word::OPEN_CONNECTIONS].load(Ordering::Relaxed),
            0
        );
    }
}
