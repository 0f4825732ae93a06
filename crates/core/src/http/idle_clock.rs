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

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Expired waits are woken at most this late: the clock's timer is rounded up to this step so a
/// stream of short waits does not re-arm it more than a few hundred times a second.
const RESOLUTION: Duration = Duration::from_millis(4);

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
    /// The clock task, when it is not running, and the time its timer is set for (`None`: no
    /// timer; it sleeps until woken).
    task: Option<Waker>,
    task_deadline: Option<Instant>,
    task_started: bool,
}

#[derive(Default, Debug)]
struct Slot {
    generation: u32,
    expired: bool,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Entry {
    deadline: Instant,
    slot: u32,
    generation: u32,
}

/// One connection's wait; dropping it cancels it.
pub(crate) struct Wait<'c> {
    clock: &'c Arc<IdleClock>,
    slot: u32,
    generation: u32,
}

impl IdleClock {
    /// Starts a wait that expires `length` from now.
    pub(crate) fn start(self: &Arc<Self>, length: Duration) -> Wait<'_> {
        let deadline = Instant::now() + length;
        let mut state = self.lock();
        let slot = match state.free.pop() {
            Some(slot) => slot,
            None => {
                state.slots.push(Slot::default());
                (state.slots.len() - 1) as u32
            }
        };
        let generation = state.slots[slot as usize].generation;
        let entry = Entry {
            deadline,
            slot,
            generation,
        };
        match state.queues.iter_mut().find(|(l, _)| *l == length) {
            Some((_, queue)) => queue.push_back(entry),
            None => state.queues.push((length, VecDeque::from([entry]))),
        }
        if !state.task_started {
            state.task_started = true;
            tokio::spawn(self.clone().run());
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

    /// The clock's task: wakes expired waits, then sleeps until the earliest deadline.
    async fn run(self: Arc<Self>) {
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        poll_fn(|cx| loop {
            let mut expired = Vec::new();
            let next = {
                let mut state = self.lock();
                let next = state.expire(Instant::now(), &mut expired);
                state.task = Some(cx.waker().clone());
                state.task_deadline = next;
                next
            };
            for waker in expired {
                waker.wake();
            }
            let Some(next) = next else {
                return Poll::<()>::Pending;
            };
            let at = tokio::time::Instant::from_std(next + RESOLUTION);
            if timer.deadline() != at {
                timer.as_mut().reset(at);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        })
        .await
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
    fn expire(&mut self, now: Instant, wakers: &mut Vec<Waker>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for (_, queue) in &mut self.queues {
            while let Some(entry) = queue.front() {
                if entry.deadline > now {
                    earliest = Some(earliest.map_or(entry.deadline, |e| e.min(entry.deadline)));
                    break;
                }
                let slot = &mut self.slots[entry.slot as usize];
                if slot.generation == entry.generation {
                    slot.expired = true;
                    wakers.extend(slot.waker.take());
                }
                queue.pop_front();
            }
        }
        earliest
    }
}

impl Wait<'_> {
    /// Ready once the wait's deadline has passed.
    pub(crate) fn poll_expired(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.lock();
        let slot = &mut state.slots[self.slot as usize];
        if slot.expired {
            return Poll::Ready(());
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
        slot.expired = false;
        slot.waker = None;
        state.free.push(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_expire_in_order_and_cancelled_ones_never_fire() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let clock = Arc::new(IdleClock::default());
            let cancelled = clock.start(Duration::from_millis(5));
            drop(cancelled);
            let short = clock.start(Duration::from_millis(20));
            let long = clock.start(Duration::from_secs(60));
            let started = Instant::now();
            poll_fn(|cx| short.poll_expired(cx)).await;
            // Never early; and the later deadline is still waiting.
            assert!(started.elapsed() >= Duration::from_millis(15));
            assert!(poll_fn(|cx| Poll::Ready(long.poll_expired(cx).is_pending())).await);
            // The slot of the cancelled wait was reused; a new wait in it is not expired by the
            // old entry.
            drop(short);
            let again = clock.start(Duration::from_secs(60));
            assert!(poll_fn(|cx| Poll::Ready(again.poll_expired(cx).is_pending())).await);
        });
    }
}
