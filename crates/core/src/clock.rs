//! Cheap clock reads for times that tolerate a few milliseconds of error: the `Date` header, the
//! access log's timestamp, and the deadlines between keep-alive requests.
//!
//! `Instant::now()` and `SystemTime::now()` read the TSC through the vDSO: 23 ns each on the
//! benchmark VM, and a WSGI request made about eight of them (2% of the worker's samples). The
//! coarse clocks return the time of the last scheduler tick (4 ms steps on that kernel) in 4-6 ns.
//! Request durations in the access log still use `Instant`.

use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

fn read(clock: ClockId) -> Duration {
    // Both clocks exist on every Linux we run on (since 2.6.32).
    let now = clock_gettime(clock);
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Time since an arbitrary start (boot), as of the last tick.
pub fn coarse_monotonic() -> Duration {
    read(ClockId::MonotonicCoarse)
}

/// Time since the Unix epoch, as of the last tick.
pub fn coarse_wall() -> Duration {
    read(ClockId::RealtimeCoarse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_clocks_follow_the_precise_ones_within_a_tick() {
        let precise = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let coarse = coarse_wall();
        // A tick is at most 10 ms (HZ=100); allow a generous margin either way.
        assert!(coarse <= precise + Duration::from_millis(50));
        assert!(precise <= coarse + Duration::from_millis(50));
        let a = coarse_monotonic();
        let b = coarse_monotonic();
        assert!(b >= a);
    }
}
