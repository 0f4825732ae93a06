//! `tern client`: a load client for the line services. It opens every connection first, then has
//! each send its messages one at a time, waiting for the answer line before the next, and measures
//! the latency of every answer. Failures (refused connections, missing or wrong answers) are
//! counted, never fatal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

use super::codec::{LineEvent, LineReader};

/// Most connection attempts in flight at once (more only overflows the server's accept queue).
const CONNECT_CONCURRENCY: usize = 512;
/// Longest answer line accepted.
const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `HOST:PORT` of the server.
    pub target: String,
    pub connections: usize,
    /// Messages per connection (ignored when `duration` is set).
    pub messages: u64,
    pub message: String,
    /// If set, every answer must equal this text.
    pub expect: Option<String>,
    /// Keep sending until this much time has passed.
    pub duration: Option<Duration>,
    /// Lines the server sends on connect (calc's welcome), read and ignored before sending.
    pub greeting_lines: usize,
    /// How long to wait for a connection or an answer.
    pub timeout: Duration,
}

/// Live counts, readable while the run goes on (for a progress bar).
#[derive(Debug, Default)]
pub struct Counters {
    pub connected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    /// Messages that got no answer, or a wrong one.
    pub failed: AtomicU64,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    pub connected: u64,
    pub connect_failed: u64,
    pub sent: u64,
    pub answered: u64,
    pub failed: u64,
    /// Time from the first message to the last answer.
    pub elapsed: Duration,
    /// Every answer's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Report {
    pub fn messages_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.answered as f64 / seconds
        } else {
            0.0
        }
    }

    /// The latency below which `percent` of answers fall.
    pub fn percentile(&self, percent: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((percent / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    pub fn max_latency(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// Runs the whole load: connect everything, then talk on every connection at once.
pub async fn run(config: Arc<ClientConfig>, counters: Arc<Counters>) -> Report {
    let connect_slots = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    // Everyone waits here until every connection attempt has finished: "open every connection first".
    let start_line = Arc::new(Barrier::new(config.connections + 1));
    let mut tasks = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let config = config.clone();
        let counters = counters.clone();
        let connect_slots = connect_slots.clone();
        let start_line = start_line.clone();
        tasks.push(tokio::spawn(async move {
            let stream = connect(&config, &connect_slots).await;
            match &stream {
                Some(_) => counters.connected.fetch_add(1, Ordering::Relaxed),
                None => counters.connect_failed.fetch_add(1, Ordering::Relaxed),
            };
            start_line.wait().await;
            match stream {
                Some(stream) => converse(stream, &config, &counters).await,
                None => Vec::new(),
            }
        }));
    }
    start_line.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        if let Ok(mut own) = task.await {
            latencies.append(&mut own);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Report {
        connected: counters.connected.load(Ordering::Relaxed),
        connect_failed: counters.connect_failed.load(Ordering::Relaxed),
        sent: counters.sent.load(Ordering::Relaxed),
        answered: counters.answered.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        elapsed,
        latencies,
    }
}

async fn connect(config: &ClientConfig, slots: &Semaphore) -> Option<TcpStream> {
    let _slot = slots.acquire().await.ok()?;
    match tokio::time::timeout(config.timeout, TcpStream::connect(&config.target)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
        Ok(Err(error)) => {
            tracing::debug!("connect to {} failed: {error}", config.target);
            None
        }
        Err(_) => None,
    }
}

/// Sends the messages of one connection; returns the latency of each answer.
async fn converse(
    mut stream: TcpStream,
    config: &ClientConfig,
    counters: &Counters,
) -> Vec<Duration> {
    let mut reader = LineReader::new(MAX_ANSWER);
    let mut latencies = Vec::new();
    for _ in 0..config.greeting_lines {
        if !matches!(
            read_answer(&mut reader, &mut stream, config).await,
            Some(LineEvent::Line(_))
        ) {
            // A fixed number of messages was planned on this connection; none can be sent now.
            if config.duration.is_none() {
                counters
                    .failed
                    .fetch_add(config.messages, Ordering::Relaxed);
            }
            return latencies;
        }
    }
    let mut message = config.message.clone().into_bytes();
    message.push(b'\n');
    let deadline = config.duration.map(|d| Instant::now() + d);
    let mut sent = 0u64;
    loop {
        let more = match deadline {
            Some(deadline) => Instant::now() < deadline,
            None => sent < config.messages,
        };
        if !more {
            break;
        }
        let asked = Instant::now();
        if stream.write_all(&message).await.is_err() {
            break;
        }
        sent += 1;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        match read_answer(&mut reader, &mut stream, config).await {
            Some(LineEvent::Line(answer)) => {
                latencies.push(asked.elapsed());
                counters.answered.fetch_add(1, Ordering::Relaxed);
                if config
                    .expect
                    .as_ref()
                    .is_some_and(|expected| *expected != answer)
                {
                    tracing::debug!("unexpected answer: {answer:?}");
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    // Whatever was planned but never sent also failed.
    if deadline.is_none() && sent < config.messages {
        counters
            .failed
            .fetch_add(config.messages - sent, Ordering::Relaxed);
    }
    let _ = stream.shutdown().await;
    latencies
}

async fn read_answer(
    reader: &mut LineReader,
    stream: &mut TcpStream,
    config: &ClientConfig,
) -> Option<LineEvent> {
    reader.next_line(stream, config.timeout).await.ok()
}
