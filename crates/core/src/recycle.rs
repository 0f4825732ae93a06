//! When a worker should be replaced by a fresh one: after a number of requests, above a memory
//! size, or past an age — the remedies for applications that leak or degrade (gunicorn's
//! `--max-requests`, Granian's `--workers-max-rss`).
//!
//! This module only decides; the worker asks its supervisor for a replacement
//! ([`crate::supervisor::SupervisorLink`]), and the supervisor starts the new worker and waits
//! until it accepts before it stops the old one, so no request fails.

use std::time::Duration;

/// How many consecutive memory readings above the limit it takes: one reading may catch a
/// short peak (a large upload being parsed) that is gone a second later.
const MEMORY_READINGS_ABOVE: u32 = 2;
/// A worker lifetime gets up to this share of itself added at random, so workers started
/// together are not all replaced at once.
const LIFETIME_JITTER_SHARE: f64 = 0.1;

/// The limits of the command line (`--max-requests` and friends); `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecycleConfig {
    pub max_requests: Option<u64>,
    /// Up to this many requests are added at random to `max_requests`, per worker.
    pub max_requests_jitter: u64,
    /// Resident memory, in bytes.
    pub max_memory: Option<u64>,
    pub lifetime: Option<Duration>,
}

impl RecycleConfig {
    pub fn is_enabled(&self) -> bool {
        self.max_requests.is_some() || self.max_memory.is_some() || self.lifetime.is_some()
    }
}

/// Why a worker should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Requests { served: u64, limit: u64 },
    Memory { resident: u64, limit: u64 },
    Lifetime { age: Duration, limit: Duration },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Requests { served, limit } => {
                write!(f, "served {served} requests (limit {limit})")
            }
            Reason::Memory { resident, limit } => write!(
                f,
                "resident memory {} MiB is above --max-worker-memory {} MiB",
                resident / (1024 * 1024),
                limit / (1024 * 1024)
            ),
            Reason::Lifetime { age, limit } => write!(
                f,
                "running for {:.0} s (lifetime {:.0} s)",
                age.as_secs_f64(),
                limit.as_secs_f64()
            ),
        }
    }
}

/// One worker's limits, with its jitter drawn, and what it has seen of its memory.
#[derive(Debug, Clone)]
pub struct RecyclePolicy {
    max_requests: Option<u64>,
    max_memory: Option<u64>,
    lifetime: Option<Duration>,
    /// Consecutive memory readings above `max_memory`.
    readings_above: u32,
}

impl RecyclePolicy {
    /// `random` is a number in [0, 1) drawn for this worker.
    pub fn new(config: &RecycleConfig, random: f64) -> Self {
        let jitter = (random * (config.max_requests_jitter + 1) as f64) as u64;
        RecyclePolicy {
            max_requests: config
                .max_requests
                .map(|n| n.saturating_add(jitter.min(config.max_requests_jitter))),
            max_memory: config.max_memory,
            lifetime: config
                .lifetime
                .map(|l| l.mul_f64(1.0 + LIFETIME_JITTER_SHARE * random)),
            readings_above: 0,
        }
    }

    /// Whether a worker that has served `served` requests, is `age` old and (when measured this
    /// time) holds `resident` bytes should be replaced now.
    pub fn check(&mut self, served: u64, resident: Option<u64>, age: Duration) -> Option<Reason> {
        if let Some(limit) = self.max_requests {
            if served >= limit {
                return Some(Reason::Requests { served, limit });
            }
        }
        if let (Some(limit), Some(resident)) = (self.max_memory, resident) {
            if resident > limit {
                self.readings_above += 1;
                if self.readings_above >= MEMORY_READINGS_ABOVE {
                    return Some(Reason::Memory { resident, limit });
                }
            } else {
                self.readings_above = 0;
            }
        }
        if let Some(limit) = self.lifetime {
            if age >= limit {
                return Some(Reason::Lifetime { age, limit });
            }
        }
        None
    }
}

/// This process's resident memory in bytes, from /proc/self/statm.
pub fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page_size = rustix::param::page_size();
    Some(pages * u64::try_from(page_size).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn config() -> RecycleConfig {
        RecycleConfig {
            max_requests: Some(100),
            max_requests_jitter: 10,
            max_memory: Some(200 * MIB),
            lifetime: Some(Duration::from_secs(3600)),
        }
    }

    #[test]
    fn nothing_is_enabled_by_default() {
        let config = RecycleConfig::default();
        assert!(!config.is_enabled());
        let mut policy = RecyclePolicy::new(&config, 0.5);
        assert_eq!(policy.check(u64::MAX, Some(u64::MAX), Duration::MAX), None);
    }

    #[test]
    fn requests_limit_with_jitter_stays_within_its_range() {
        for random in [0.0, 0.3, 0.999_999] {
            let mut policy = RecyclePolicy::new(&config(), random);
            let limit = (100..=110)
                .find(|&n| policy.check(n, None, Duration::ZERO).is_some())
                .expect("recycled somewhere between 100 and 110 requests");
            assert!(policy.check(limit - 1, None, Duration::ZERO).is_none() || limit == 100);
        }
        let mut lowest = RecyclePolicy::new(&config(), 0.0);
        assert_eq!(
            lowest.check(100, None, Duration::ZERO),
            Some(Reason::Requests {
                served: 100,
                limit: 100
            })
        );
        let mut highest = RecyclePolicy::new(&config(), 0.999_999);
        assert!(highest.check(109, None, Duration::ZERO).is_none());
        assert!(highest.check(110, None, Duration::ZERO).is_some());
    }

    #[test]
    fn memory_must_stay_above_the_limit_for_two_readings() {
        let mut policy = RecyclePolicy::new(&config(), 0.0);
        assert_eq!(policy.check(0, Some(300 * MIB), Duration::ZERO), None);
        assert_eq!(policy.check(0, Some(100 * MIB), Duration::ZERO), None);
        assert_eq!(policy.check(0, Some(300 * MIB), Duration::ZERO), None);
        // No reading this time (memory is read once a second): the count holds.
        assert_eq!(policy.check(0, None, Duration::ZERO), None);
        assert_eq!(
            policy.check(0, Some(300 * MIB), Duration::ZERO),
            Some(Reason::Memory {
                resident: 300 * MIB,
                limit: 200 * MIB
            })
        );
    }

    #[test]
    fn lifetime_gets_up_to_a_tenth_more() {
        let mut early = RecyclePolicy::new(&config(), 0.0);
        assert!(early.check(0, None, Duration::from_secs(3600)).is_some());
        let mut late = RecyclePolicy::new(&config(), 0.5);
        assert!(late.check(0, None, Duration::from_secs(3700)).is_none());
        assert!(late.check(0, None, Duration::from_secs(3780)).is_some());
    }

    #[test]
    fn reasons_read_well_in_the_log() {
        let reason = Reason::Memory {
            resident: 300 * MIB,
            limit: 256 * MIB,
        };
        assert_eq!(
            reason.to_string(),
            "resident memory 300 MiB is above --max-worker-memory 256 MiB"
        );
        assert!(resident_memory().is_some_and(|bytes| bytes > 0));
    }
}
