//! Cheap clock reads for times that tolerate a few milliseconds of error: the `Date` header, the
//! access log's timestamp, and the deadlines between keep-alive requests.
//!
//! `Instant::now()` and `SystemTime::now()` read the TSC through the vDSO: 23 ns each on the
//! benchmark VM, and a WSGI request made about eight of them (2% of the worker's samples). The
//! coarse clocks return the time of the last scheduler tick (4 ms steps on that kernel) in 4-6 ns.
//! Request durations in the access log still use `Instant`.

use std::time::Duration;

fn read(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec to write to; both clock ids exist on every Linux we run on.
    let rc = unsafe { libc::clock_gettime(clock, &mut now) };
    debug_assert_eq!(rc, 0);
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Time since an arbitrary start (boot), as of the last tick.
pub fn coarse_monotonic() -> Duration {
    read(libc::CLOCK_MONOTONIC_COARSE)
}

/// Time since the Unix epoch, as of the last tick.
pub fn coarse_wall() -> Duration {
    read(libc::CLOCK_REALTIME_COARSE)
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
