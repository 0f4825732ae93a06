//! The memory a worker lends to request bodies larger than `--body-buffer-size` while they are
//! received whole (`--body-memory`), so that an upload of a few megabytes skips the temporary
//! file without letting the uploads in progress take memory without bound.
//!
//! Measured on the 2026-12-04 upload case (10 MB bodies): through an unlinked file on ext4 a body
//! cost the worker two and a half times the CPU of the same body kept in memory (the page cache's
//! allocation, delayed-allocation bookkeeping and freeing of every 4 KiB page, and one more copy
//! each way); see bench/NOTES.md.
//!
//! A body takes room for its whole Content-Length before its first byte is read (at most a
//! quarter of the budget, so several can arrive while the application reads another), and gives
//! it back when its bytes are freed. A body that finds no room waits for it, first come first
//! served, at most [`ROOM_WAIT`]; then it goes to a temporary file as before. Waiting costs no
//! thread and no buffer: the client's bytes stay in the kernel meanwhile.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a body waits for room before it is written to a file instead. Bodies in memory
/// arrive at memory speed and are read by the application in a few milliseconds each, so room
/// held by them frees quickly; room held by slow uploaders does not, and a body queued behind
/// them should not wait longer than a client takes to send a few megabytes anyway.
pub const ROOM_WAIT: Duration = Duration::from_secs(1);
/// A body may take at most this fraction of the budget (1 / SHARE).
const SHARE: usize = 4;

/// One worker's memory for large request bodies.
#[derive(Debug)]
pub struct BodyBudget {
    /// One permit per byte of room.
    room: Arc<Semaphore>,
    /// The largest body that may be held in memory, in bytes.
    largest: u64,
}

impl BodyBudget {
    /// A budget of `total` bytes (0: no body is held in memory beyond `--body-buffer-size`).
    pub fn new(total: usize) -> Self {
        let total = total.min(Semaphore::MAX_PERMITS);
        BodyBudget {
            room: Arc::new(Semaphore::new(total)),
            // A reservation is one acquire of u32 permits.
            largest: (total / SHARE).min(u32::MAX as usize) as u64,
        }
    }

    /// Whether a body of `len` bytes may be held in memory at all.
    pub fn admits(&self, len: u64) -> bool {
        len > 0 && len <= self.largest
    }

    /// Room for a body of `len` bytes, waiting up to [`ROOM_WAIT`] for it. None: the body is
    /// too large for memory, or no room was freed in time.
    pub async fn reserve(&self, len: u64) -> Option<Reservation> {
        if !self.admits(len) {
            return None;
        }
        let permits = len as u32;
        if let Ok(permit) = self.room.clone().try_acquire_many_owned(permits) {
            return Some(Reservation(permit));
        }
        let wait = self.room.clone().acquire_many_owned(permits);
        match tokio::time::timeout(ROOM_WAIT, wait).await {
            Ok(Ok(permit)) => Some(Reservation(permit)),
            // Timed out (or closed, which this budget never is).
            _ => None,
        }
    }

    /// Bytes of room free now.
    pub fn available(&self) -> usize {
        self.room.available_permits()
    }
}

/// Room taken for one body; given back when dropped.
#[derive(Debug)]
pub struct Reservation(OwnedSemaphorePermit);

impl Reservation {
    /// `body`, holding this room until its last reference is dropped.
    pub fn hold(self, body: Bytes) -> Bytes {
        Bytes::from_owner(Held {
            body,
            _room: self.0,
        })
    }
}

/// A body's bytes with the room they take.
struct Held {
    body: Bytes,
    /// Given back to the budget when the bytes are freed.
    _room: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn a_body_may_take_a_quarter_of_the_budget() {
        let budget = BodyBudget::new(64 << 20);
        assert!(budget.admits(16 << 20));
        assert!(!budget.admits((16 << 20) + 1));
        assert!(!budget.admits(0));
        assert!(!BodyBudget::new(0).admits(1));
    }

    #[test]
    fn room_comes_back_when_the_last_reference_to_the_body_is_dropped() {
        runtime().block_on(async {
            let budget = BodyBudget::new(400);
            let reservation = budget.reserve(100).await.unwrap();
            assert_eq!(budget.available(), 300);
            let body = reservation.hold(Bytes::from(vec![7u8; 100]));
            let part = body.slice(10..20);
            drop(body);
            assert_eq!(budget.available(), 300, "a slice still holds the bytes");
            assert_eq!(&part[..], &[7u8; 10]);
            drop(part);
            assert_eq!(budget.available(), 400);
        });
    }

    #[test]
    fn a_body_waits_for_room_and_gets_it_when_another_is_freed() {
        runtime().block_on(async {
            let budget = Arc::new(BodyBudget::new(400));
            let first = budget.reserve(100).await.unwrap();
            let _others = [
                budget.reserve(100).await.unwrap(),
                budget.reserve(100).await.unwrap(),
                budget.reserve(100).await.unwrap(),
            ];
            let waiting = tokio::spawn({
                let budget = budget.clone();
                async move { budget.reserve(100).await.is_some() }
            });
            tokio::time::sleep(ROOM_WAIT / 2).await;
            drop(first);
            assert!(waiting.await.unwrap());
        });
    }

    #[test]
    fn a_body_that_finds_no_room_in_time_is_refused() {
        runtime().block_on(async {
            let budget = BodyBudget::new(400);
            let _held: Vec<_> = [
                budget.reserve(100).await,
                budget.reserve(100).await,
                budget.reserve(100).await,
                budget.reserve(100).await,
            ]
            .into_iter()
            .map(Option::unwrap)
            .collect();
            let started = tokio::time::Instant::now();
            assert!(budget.reserve(1).await.is_none());
            assert_eq!(started.elapsed(), ROOM_WAIT);
        });
    }

    #[test]
    fn a_body_too_large_for_memory_is_refused_without_waiting() {
        runtime().block_on(async {
            let budget = BodyBudget::new(400);
            let started = tokio::time::Instant::now();
            assert!(budget.reserve(101).await.is_none());
            assert_eq!(started.elapsed(), Duration::ZERO);
        });
    }
}
