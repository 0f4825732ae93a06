//! The sum of every worker's slot, written in Prometheus's text exposition format (version
//! 0.0.4): `# HELP` and `# TYPE` lines, then one sample per line; histograms as cumulative
//! `_bucket` samples with an `le` label, `_sum` and `_count`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::table::{
    word, Mount, RestartCause, Slot, Table, BUCKETS, BUCKET_BOUNDS_US, SLOT_WORDS, STATUS_CLASSES,
};

/// Every word summed over the slots (gauges as two's-complement, so a -1 and a +1 cancel).
struct Totals {
    words: [u64; SLOT_WORDS],
    workers: u64,
}

impl Totals {
    fn of<'a>(slots: impl Iterator<Item = &'a Slot>) -> Totals {
        let mut totals = Totals {
            words: [0; SLOT_WORDS],
            workers: 0,
        };
        for slot in slots {
            let owner = slot[word::OWNER].load(Ordering::Relaxed);
            if owner != 0 && owner != u64::MAX {
                totals.workers += 1;
            }
            for (total, value) in totals.words.iter_mut().zip(slot.iter()) {
                *total = total.wrapping_add(value.load(Ordering::Relaxed));
            }
        }
        totals
    }

    fn counter(&self, index: usize) -> u64 {
        self.words[index]
    }

    /// A gauge never shows below zero: a worker's -1 may be read before its +1 in a sum
    /// taken while it changes.
    fn gauge(&self, index: usize) -> u64 {
        (self.words[index] as i64).max(0) as u64
    }
}

pub(super) fn render(table: &Table) -> String {
    let totals = Totals::of(table.slots());
    let mut out = String::with_capacity(8 * 1024);

    header(
        &mut out,
        "tern_http_requests_total",
        "counter",
        "HTTP requests answered, by who answered (static, app, health, none: refused before \
         routing) and status class.",
    );
    for mount in Mount::ALL {
        for class in 0..STATUS_CLASSES {
            let index = word::REQUESTS + mount as usize * STATUS_CLASSES + class;
            let _ = writeln!(
                out,
                "tern_http_requests_total{{mount=\"{}\",status=\"{}xx\"}} {}",
                mount.label(),
                class + 1,
                totals.counter(index)
            );
        }
    }

    header(
        &mut out,
        "tern_http_request_duration_seconds",
        "histogram",
        "Time from a request's complete head to the end of its response.",
    );
    for mount in Mount::ALL {
        let labels = format!("mount=\"{}\"", mount.label());
        histogram(
            &mut out,
            "tern_http_request_duration_seconds",
            &labels,
            &totals,
            word::DURATION_BUCKETS + mount as usize * BUCKETS,
            word::DURATION_SUM_US + mount as usize,
        );
    }

    header(
        &mut out,
        "tern_http_response_body_bytes_total",
        "counter",
        "Response body bytes sent.",
    );
    for mount in Mount::ALL {
        let _ = writeln!(
            out,
            "tern_http_response_body_bytes_total{{mount=\"{}\"}} {}",
            mount.label(),
            totals.counter(word::BODY_BYTES + mount as usize)
        );
    }

    for (name, help, index) in [
        (
            "tern_connections_open",
            "Open client connections, parked ones included (sampled every 250 ms).",
            word::OPEN_CONNECTIONS,
        ),
        (
            "tern_connections_idle_parked",
            "Idle keep-alive connections waiting in the idle park, without a task.",
            word::PARKED_CONNECTIONS,
        ),
        (
            "tern_http_requests_in_flight",
            "Requests being served (sampled every 250 ms).",
            word::REQUESTS_IN_FLIGHT,
        ),
        (
            "tern_http_request_bodies_receiving",
            "Request bodies being received by the event loop before the application is called.",
            word::BODIES_RECEIVING,
        ),
    ] {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {}", totals.gauge(index));
    }

    header(
        &mut out,
        "tern_python_threads",
        "gauge",
        "Python threads of the application pools: inside an application call (busy) or waiting \
         for one (idle).",
    );
    for (state, index) in [
        ("busy", word::PYTHON_THREADS_BUSY),
        ("idle", word::PYTHON_THREADS_IDLE),
    ] {
        let _ = writeln!(
            out,
            "tern_python_threads{{state=\"{state}\"}} {}",
            totals.gauge(index)
        );
    }

    header(
        &mut out,
        "tern_python_queue_wait_seconds",
        "histogram",
        "How long application calls waited for a Python thread.",
    );
    histogram(
        &mut out,
        "tern_python_queue_wait_seconds",
        "",
        &totals,
        word::QUEUE_WAIT_BUCKETS,
        word::QUEUE_WAIT_SUM_US,
    );

    header(
        &mut out,
        "tern_worker_restarts_total",
        "counter",
        "Workers started in place of another, by cause.",
    );
    for cause in RestartCause::ALL {
        let _ = writeln!(
            out,
            "tern_worker_restarts_total{{cause=\"{}\"}} {}",
            cause.label(),
            table.restarts(cause).load(Ordering::Relaxed)
        );
    }

    header(&mut out, "tern_workers", "gauge", "Worker processes alive.");
    let _ = writeln!(out, "tern_workers {}", totals.workers);
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one histogram from its per-bucket counts at `buckets` and its sum (µs) at `sum_us`.
fn histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    totals: &Totals,
    buckets: usize,
    sum_us: usize,
) {
    let separator = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0u64;
    for (bucket, bound) in BUCKET_BOUNDS_US.iter().enumerate() {
        cumulative += totals.counter(buckets + bucket);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"{}\"}} {cumulative}",
            *bound as f64 / 1e6
        );
    }
    cumulative += totals.counter(buckets + BUCKET_BOUNDS_US.len());
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {cumulative}"
    );
    let braces = |labels: &str| {
        if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        }
    };
    let _ = writeln!(
        out,
        "{name}_sum{} {}",
        braces(labels),
        totals.counter(sum_us) as f64 / 1e6
    );
    let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_slots_and_writes_cumulative_buckets() {
        let table = Table::map(2).unwrap();
        for index in 0..2 {
            let slot = table.slot(index);
            let app = Mount::App as usize;
            // One 2xx app request per slot, taking 700 µs (the second bucket).
            slot[word::REQUESTS + app * STATUS_CLASSES + 1].store(1, Ordering::Relaxed);
            slot[word::DURATION_BUCKETS + app * BUCKETS + 1].store(1, Ordering::Relaxed);
            slot[word::DURATION_SUM_US + app].store(700, Ordering::Relaxed);
        }
        // A gauge that went up in one slot and down in another sums to zero.
        table.slot(0)[word::PARKED_CONNECTIONS].store(1, Ordering::Relaxed);
        table.slot(1)[word::PARKED_CONNECTIONS].store(u64::MAX, Ordering::Relaxed);
        table.assign(0, 1234);
        table
            .restarts(RestartCause::Reload)
            .store(3, Ordering::Relaxed);

        let text = render(&table);
        let has = |line: &str| text.lines().any(|l| l == line);
        assert!(has(
            "tern_http_requests_total{mount=\"app\",status=\"2xx\"} 2"
        ));
        assert!(has(
            "tern_http_requests_total{mount=\"static\",status=\"2xx\"} 0"
        ));
        assert!(has(
            "tern_http_request_duration_seconds_bucket{mount=\"app\",le=\"0.0005\"} 0"
        ));
        assert!(has(
            "tern_http_request_duration_seconds_bucket{mount=\"app\",le=\"0.001\"} 2"
        ));
        assert!(has(
            "tern_http_request_duration_seconds_bucket{mount=\"app\",le=\"+Inf\"} 2"
        ));
        assert!(has(
            "tern_http_request_duration_seconds_sum{mount=\"app\"} 0.0014"
        ));
        assert!(has(
            "tern_http_request_duration_seconds_count{mount=\"app\"} 2"
        ));
        assert!(has("tern_connections_idle_parked 0"));
        assert!(has("tern_worker_restarts_total{cause=\"reload\"} 3"));
        assert!(has("tern_workers 1"));
        assert!(has("tern_python_queue_wait_seconds_count 0"));
        // Every sample line is `name{labels} value` with a number for value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
