//! Deadlines for connections waiting for their next request, kept in one queue per worker.
//!
//! Every request on a keep-alive connection ends with a wait for the next one, and that wait needs
//! a deadline (park after 10 ms, or the header timeout of a fresh connection). A tokio `Sleep` per
//! wait costs a timer-wheel insertion and removal, and whenever the runtime last went to sleep with
//! no timer pending (the usual case when every connection was waiting on the application) each
//! insertion also wakes the I/O driver through its eventfd: measured at 0.58 `write(2)` calls per
//! request on the WSGI hello benchmark. Here a wait is a slot in a table plus an entry at the back
//! of a FIFO queue (waits of the same length expire in the order they began), and one task with one
//! tokio timer wakes the waits that expire. A wait that ends early only bumps its slot's generation;
//! its queue entry is skipped when it comes up.
//!
//! The clock also ends every wait when the worker shuts down (the connection then waits again,
//! until the drain's idle deadline), so a wait needs no registration with the shutdown signal of
//! its own; and it reads the coarse clock ([`crate::clock`]): its deadlines are rounded to
//! [`RESOLUTION`] anyway.
//!
//! Most waits end early (the client sends), leaving their entry in the queue until its deadline;
//! a fresh connection's wait lasts the whole header timeout. So that a stream of short
//! connections cannot grow the queues without bound, they are compacted whenever stale entries
//! outnumber the live waits, and their memory is given back: the queues stay proportional to the
//! connections that are waiting now.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Sleep;

use crate::clock;
use crate::shutdown::{ShutdownSignal, ShutdownWatch};

/// Expired waits are woken at most this late: the clock's timer is rounded up to this step so a
/// stream of short waits does not re-arm it more than a few hundred times a second.
const RESOLUTION: Duration = Duration::from_millis(4);
/// The queues are compacted once they hold more than twice the live waits plus this many entries
/// (the slack keeps a small worker from compacting on every wait).
const COMPACTION_SLACK: usize = 1024;

/// The wait deadlines of one worker's connections.
#[derive(Default, Debug)]
pub(crate) struct IdleClock {
    state: Mutex<ClockState>,
}

#[derive(Default, Debug)]
struct ClockState {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// One FIFO queue per wait length in use.
    queues: Vec<(Duration, VecDeque<Entry>)>,
    /// Entries in all queues, live or stale.
    queued: usize,
    /// Waits in progress (slots in use).
    live: usize,
    /// The clock task, when it is not running, and the time its timer is set for (`None`: no
    /// timer; it sleeps until woken).
    task: Option<Waker>,
    task_deadline: Option<Duration>,
    task_started: bool,
}

#[derive(Default, Debug)]
struct Slot {
    generation: u32,
    /// A wait holds this slot.
    in_use: bool,
    expired: Option<Expiry>,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Entry {
    /// On the coarse monotonic clock.
    deadline: Duration,
    slot: u32,
    generation: u32,
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Deadline,
    Shutdown,
}

/// One connection's wait; dropping it cancels it.
pub(crate) struct Wait<'c> {
    clock: &'c Arc<IdleClock>,
    slot: u32,
    generation: u32,
}

impl IdleClock {
    /// Starts a wait that expires `length` from now, or when `shutdown` begins (whichever comes
    /// first). A wait started after the shutdown began runs to its deadline.
    pub(crate) fn start(self: &Arc<Self>, length: Duration, shutdown: &ShutdownWatch) -> Wait<'_> {
        let deadline = clock::coarse_monotonic() + length;
        let mut state = self.lock();
        let slot = match state.free.pop() {
            Some(slot) => slot,
            None => {
                state.slots.push(Slot::default());
                (state.slots.len() - 1) as u32
            }
        };
        let entry_slot = &mut state.slots[slot as usize];
        entry_slot.in_use = true;
        let generation = entry_slot.generation;
        let entry = Entry {
            deadline,
            slot,
            generation,
        };
        match state.queues.iter_mut().find(|(l, _)| *l == length) {
            Some((_, queue)) => queue.push_back(entry),
            None => state.queues.push((length, VecDeque::from([entry]))),
        }
        state.queued += 1;
        state.live += 1;
        if state.queued > 2 * state.live + COMPACTION_SLACK {
            state.compact();
        }
        if !state.task_started {
            state.task_started = true;
            tokio::spawn(self.clone().run(shutdown.signal()));
        } else if state.task_deadline.is_none_or(|at| deadline < at) {
            if let Some(task) = state.task.take() {
                task.wake();
            }
        }
        Wait {
            clock: self,
            slot,
            generation,
        }
    }

    /// The clock's task: wakes expired waits, then sleeps until the earliest deadline; on
    /// shutdown, ends every wait.
    async fn run(self: Arc<Self>, mut shutdown: ShutdownSignal) {
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        tokio::select! {
            _ = poll_fn(|cx| self.poll_deadlines(cx, timer.as_mut())) => {}
            _ = shutdown.wait() => {}
        }
        let mut woken = Vec::new();
        {
            let mut state = self.lock();
            for slot in &mut state.slots {
                if slot.in_use && slot.expired.is_none() {
                    slot.expired = Some(Expiry::Shutdown);
                    woken.extend(slot.waker.take());
                }
            }
        }
        for waker in woken {
            waker.wake();
        }
        // The waits connections start while the drain goes on expire on time.
        poll_fn(|cx| self.poll_deadlines(cx, timer.as_mut())).await
    }

    /// Wakes the waits that have expired and sets `timer` for the earliest deadline left.
    /// Never ready: it runs until the task is dropped.
    fn poll_deadlines(&self, cx: &mut Context<'_>, mut timer: Pin<&mut Sleep>) -> Poll<()> {
        loop {
            let mut expired = Vec::new();
            let now = clock::coarse_monotonic();
            let next = {
                let mut state = self.lock();
                let next = state.expire(now, &mut expired);
                state.task = Some(cx.waker().clone());
                state.task_deadline = next;
                next
            };
            for waker in expired {
                waker.wake();
            }
            let Some(next) = next else {
                return Poll::Pending;
            };
            let at = tokio::time::Instant::now() + next.saturating_sub(now) + RESOLUTION;
            timer.as_mut().reset(at);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        // Every step leaves the state consistent, so a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ClockState {
    /// Marks the waits due at `now` as expired, collecting their wakers; returns the earliest
    /// deadline still queued.
    fn expire(&mut self, now: Duration, wakers: &mut Vec<Waker>) -> Option<Duration> {
        let mut earliest: Option<Duration> = None;
        for (_, queue) in &mut self.queues {
            while let Some(entry) = queue.front() {
                if entry.deadline > now {
                    earliest = Some(earliest.map_or(entry.deadline, |e| e.min(entry.deadline)));
                    break;
                }
                let slot = &mut self.slots[entry.slot as usize];
                if slot.generation == entry.generation && slot.expired.is_none() {
                    slot.expired = Some(Expiry::Deadline);
                    wakers.extend(slot.waker.take());
                }
                queue.pop_front();
                self.queued -= 1;
            }
        }
        earliest
    }

    /// Drops the entries of waits that already ended, and the memory they took.
    fn compact(&mut self) {
        let slots = &self.slots;
        let is_live = |entry: &Entry| {
            let slot = &slots[entry.slot as usize];
            slot.in_use && slot.generation == entry.generation && slot.expired.is_none()
        };
        self.queued = 0;
        for (_, queue) in &mut self.queues {
            queue.retain(is_live);
            queue.shrink_to(2 * queue.len());
            self.queued += queue.len();
        }
        self.queues.retain(|(_, queue)| !queue.is_empty());
    }
}

impl Wait<'_> {
    /// Ready once the wait's deadline has passed (or the worker began shutting down).
    pub(crate) fn poll_expired(&self, cx: &mut Context<'_>) -> Poll<Expiry> {
        let mut state = self.clock.lock();
        let slot = &mut state.slots[self.slot as usize];
        if let Some(expiry) = slot.expired {
            return Poll::Ready(expiry);
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        let mut state = self.clock.lock();
        let slot = &mut state.slots[self.slot as usize];
        debug_assert_eq!(slot.generation, self.generation);
        slot.generation = slot.generation.wrapping_add(1);
        slot.in_use = false;
        slot.expired = None;
        slot.waker = None;
        state.free.push(self.slot);
        state.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;
    use std::time::Instant;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn waits_expire_in_order_and_cancelled_ones_never_fire() {
        runtime().block_on(async {
            let shutdown = Shutdown::new();
            let watch = shutdown.watch();
            let clock = Arc::new(IdleClock::default());
            let cancelled = clock.start(Duration::from_millis(5), &watch);
            drop(cancelled);
            let short = clock.start(Duration::from_millis(20), &watch);
            let long = clock.start(Duration::from_secs(60), &watch);
            let started = Instant::now();
            let why = poll_fn(|cx| short.poll_expired(cx)).await;
            assert_eq!(why, Expiry::Deadline);
            // Not early by more than a coarse-clock tick; and the later deadline still waits.
            assert!(started.elapsed() >= Duration::from_millis(15));
            assert!(poll_fn(|cx| Poll::Ready(long.poll_expired(cx).is_pending())).await);
            // The slot of the cancelled wait was reused; a new wait in it is not expired by the
            // old entry.
            drop(short);
            let again = clock.start(Duration::from_secs(60), &watch);
            assert!(poll_fn(|cx| Poll::Ready(again.poll_expired(cx).is_pending())).await);
        });
    }

    #[test]
    fn shutdown_ends_every_wait_and_later_waits_expire_on_time() {
        runtime().block_on(async {
            let mut shutdown = Shutdown::new();
            let watch = shutdown.watch();
            let clock = Arc::new(IdleClock::default());
            let keep_alive = clock.start(Duration::from_secs(60), &watch);
            shutdown.begin(Duration::from_secs(1));
            let why = poll_fn(|cx| keep_alive.poll_expired(cx)).await;
            assert_eq!(why, Expiry::Shutdown);
            // A wait started after the shutdown (for the drain's idle deadline) runs to its end.
            let late = clock.start(Duration::from_millis(20), &watch);
            assert_eq!(poll_fn(|cx| late.poll_expired(cx)).await, Expiry::Deadline);
        });
    }

    /// Regression: every wait that ended early left its entry queued until its deadline, and a
    /// stream of short connections (each waiting the whole header timeout) grew the queue
    /// without bound.
    #[test]
    fn waits_that_end_early_do_not_accumulate() {
        runtime().block_on(async {
            let shutdown = Shutdown::new();
            let watch = shutdown.watch();
            let clock = Arc::new(IdleClock::default());
            let held = clock.start(Duration::from_secs(30), &watch);
            for _ in 0..200_000 {
                drop(clock.start(Duration::from_secs(30), &watch));
            }
            {
                let state = clock.lock();
                let capacity: usize = state.queues.iter().map(|(_, q)| q.capacity()).sum();
                assert!(state.queued <= 2 * state.live + COMPACTION_SLACK + 1);
                assert!(
                    capacity <= 4 * (COMPACTION_SLACK + 2),
                    "queue capacity {capacity}"
                );
                assert_eq!(state.live, 1);
            }
            assert!(poll_fn(|cx| Poll::Ready(held.poll_expired(cx).is_pending())).await);
        });
    }
}
