//! The minimum data rate of a request head or body (after Kestrel's MinRequestBodyDataRate): a
//! client that keeps a connection busy while sending a few bytes now and then is cut off once its
//! average rate falls below `--min-data-rate`, after a grace period.
//!
//! The rate is measured over the time spent waiting for the client's bytes, so time the server
//! spends elsewhere (an application that has not asked for more of a streamed body yet) is not
//! counted against the client. It costs no timer of its own: before each read that has to wait,
//! [`RateMeter::deadline`] says when that wait must end for the average still to be met, and the
//! read's own timeout uses it.

use std::time::{Duration, Instant};

use crate::config::MinDataRate;

/// Bytes received and time waited so far for one head or one body.
#[derive(Debug, Default, Clone, Copy)]
pub struct RateMeter {
    /// Bytes the client has sent of this head or body.
    received: u64,
    /// Time spent waiting for them.
    waited: Duration,
}

impl RateMeter {
    /// Counts `bytes` more received.
    pub fn received(&mut self, bytes: usize) {
        self.received += bytes as u64;
    }

    /// Counts one wait for the client's bytes.
    pub fn waited(&mut self, time: Duration) {
        self.waited += time;
    }

    /// The latest moment a wait starting `now` may end before the client has fallen below
    /// `rate`: the client may have waited `max(grace, received / rate)` in all. None: no limit.
    pub fn deadline(&self, rate: MinDataRate, now: Instant) -> Option<Instant> {
        if rate.bytes_per_second == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / rate.bytes_per_second as f64);
        Some(now + rate.grace.max(earned).saturating_sub(self.waited))
    }

    /// The average rate so far, in bytes per second (for the log).
    pub fn bytes_per_second(&self) -> u64 {
        let seconds = self.waited.as_secs_f64();
        if seconds <= 0.0 {
            return self.received;
        }
        (self.received as f64 / seconds) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: MinDataRate = MinDataRate {
        bytes_per_second: 100,
        grace: Duration::from_secs(5),
    };

    #[test]
    fn the_grace_period_applies_before_anything_arrives() {
        let now = Instant::now();
        let meter = RateMeter::default();
        assert_eq!(
            meter.deadline(RATE, now),
            Some(now + Duration::from_secs(5))
        );
    }

    #[test]
    fn bytes_received_earn_time_at_the_minimum_rate() {
        let now = Instant::now();
        let mut meter = RateMeter::default();
        meter.received(1000);
        meter.waited(Duration::from_secs(4));
        // 1000 bytes at 100 bytes/s earn 10 s, 4 of them spent.
        assert_eq!(
            meter.deadline(RATE, now),
            Some(now + Duration::from_secs(6))
        );
    }

    #[test]
    fn a_client_already_below_the_rate_must_send_at_once() {
        let now = Instant::now();
        let mut meter = RateMeter::default();
        meter.received(10);
        meter.waited(Duration::from_secs(30));
        assert_eq!(meter.deadline(RATE, now), Some(now));
        assert_eq!(meter.bytes_per_second(), 0);
    }

    #[test]
    fn zero_turns_the_check_off() {
        let off = MinDataRate {
            bytes_per_second: 0,
            grace: Duration::from_secs(5),
        };
        assert_eq!(RateMeter::default().deadline(off, Instant::now()), None);
    }

    #[test]
    fn the_rate_is_bytes_over_time_waited() {
        let mut meter = RateMeter::default();
        meter.received(500);
        meter.waited(Duration::from_secs(2));
        assert_eq!(meter.bytes_per_second(), 250);
    }
}
