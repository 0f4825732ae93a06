//! Reading a server's Prometheus metrics (`--metrics-bind`), so that a test can wait on a state
//! the server reports (how many connections are parked, say) instead of sleeping and hoping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{get, PATIENCE};

/// The gauge of connections waiting in the idle park, updated exactly when one enters or leaves.
const PARKED_GAUGE: &str = "tern_connections_idle_parked";

/// One scrape: the sample lines of `GET /metrics`, as (series, value).
pub fn scrape(metrics: SocketAddr) -> Vec<(String, f64)> {
    let response = get(metrics, "/metrics");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    response
        .text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

/// The value of one series in a scrape.
pub fn value(samples: &[(String, f64)], series: &str) -> f64 {
    samples
        .iter()
        .find(|(name, _)| name == series)
        .unwrap_or_else(|| panic!("no series {series}"))
        .1
}

/// The value of one series, from a scrape of its own.
pub fn gauge(metrics: SocketAddr, series: &str) -> f64 {
    value(&scrape(metrics), series)
}

/// Polls until `series` reads `expected`; panics after [`PATIENCE`], naming the last reading.
#[track_caller]
pub fn wait_gauge(metrics: SocketAddr, series: &str, expected: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = gauge(metrics, series);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {series} to read {expected}; it reads {now}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many connections wait in the idle park now (of all workers).
pub fn parked(metrics: SocketAddr) -> usize {
    gauge(metrics, PARKED_GAUGE) as usize
}

/// Waits until exactly `connections` connections wait in the idle park (of all workers).
#[track_caller]
pub fn wait_parked(metrics: SocketAddr, connections: usize) {
    wait_gauge(metrics, PARKED_GAUGE, connections as f64);
}
