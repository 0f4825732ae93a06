//! `tern client`: a load client for the line services (and, with `--websocket`, for WebSocket
//! endpoints). It opens every connection first, then has each send its messages one at a time,
//! waiting for the answer (a line, or a WebSocket message) before the next, and measures the
//! latency of every answer. Failures are counted, never fatal, each with its reason: a
//! connection fails when it is refused, reset, times out or is closed before its last answer; a
//! message fails when its answer is wrong or never comes.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Barrier, Semaphore};

use super::codec::{LineEvent, LineReader};

/// Most connection attempts in flight at once (more only overflows the server's accept queue).
const CONNECT_CONCURRENCY: usize = 512;
/// Longest answer line accepted (1 MiB).
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
    /// Speak WebSocket: upgrade on this path, send each message as a text message, take the next
    /// message as the answer.
    pub websocket: Option<String>,
}

/// Why a connection failed, whether while connecting or during its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionFailure {
    /// Nothing listens at the target (ECONNREFUSED).
    Refused,
    /// The server reset the connection (ECONNRESET, EPIPE, ECONNABORTED).
    Reset,
    /// No connection, or no answer, within `--timeout`.
    TimedOut,
    /// The server closed the connection before the last answer.
    ClosedEarly,
    /// An answer that is not a line: longer than 1 MiB or not UTF-8.
    Unreadable,
    /// Any other socket error (unreachable network, address in use...).
    OtherError,
    /// The server refused the WebSocket upgrade (no 101).
    Handshake,
}

impl ConnectionFailure {
    /// Every reason, in the order the summary lists them.
    pub const ALL: [ConnectionFailure; 7] = [
        ConnectionFailure::Refused,
        ConnectionFailure::Reset,
        ConnectionFailure::TimedOut,
        ConnectionFailure::ClosedEarly,
        ConnectionFailure::Unreadable,
        ConnectionFailure::OtherError,
        ConnectionFailure::Handshake,
    ];

    /// The reason as the summary prints it ("3 refused").
    pub fn describe(self) -> &'static str {
        match self {
            ConnectionFailure::Refused => "refused",
            ConnectionFailure::Reset => "reset",
            ConnectionFailure::TimedOut => "timed out",
            ConnectionFailure::ClosedEarly => "closed early",
            ConnectionFailure::Unreadable => "unreadable answer",
            ConnectionFailure::OtherError => "other error",
            ConnectionFailure::Handshake => "WebSocket upgrade refused",
        }
    }

    /// The reason behind a socket error.
    fn of_error(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ConnectionFailure::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => ConnectionFailure::Reset,
            io::ErrorKind::TimedOut => ConnectionFailure::TimedOut,
            io::ErrorKind::UnexpectedEof => ConnectionFailure::ClosedEarly,
            _ => ConnectionFailure::OtherError,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Live counts, readable while the run goes on (for a progress bar).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections established.
    pub connected: AtomicU64,
    /// Connections never established.
    pub connect_failed: AtomicU64,
    /// Failed connections by reason (indexed by [`ConnectionFailure`]), whether they failed
    /// while connecting or later.
    failures: [AtomicU64; ConnectionFailure::ALL.len()],
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    /// Messages that got no answer, or a wrong one, or were planned and never sent.
    pub failed: AtomicU64,
    /// Answers that differ from `--expect`.
    wrong_answers: AtomicU64,
    /// Messages sent whose connection failed before their answer.
    unanswered: AtomicU64,
    /// Messages planned (`-n`) on a connection that failed before sending them.
    not_sent: AtomicU64,
}

impl Counters {
    /// Connections that failed, for any reason, so far.
    pub fn failed_connections(&self) -> u64 {
        self.failures
            .iter()
            .map(|count| count.load(Ordering::Relaxed))
            .sum()
    }

    fn connection_failed(&self, reason: ConnectionFailure) {
        self.failures[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn messages_failed(&self, kind: &AtomicU64, count: u64) {
        if count > 0 {
            kind.fetch_add(count, Ordering::Relaxed);
            self.failed.fetch_add(count, Ordering::Relaxed);
        }
    }
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    /// Connections established.
    pub connected: u64,
    /// Connections never established.
    pub connect_failed: u64,
    /// Connections that failed, while connecting or later, by reason (only reasons that
    /// occurred, in the order of [`ConnectionFailure::ALL`]).
    pub connection_failures: Vec<(ConnectionFailure, u64)>,
    pub sent: u64,
    pub answered: u64,
    /// Messages that failed: `wrong_answers + unanswered + not_sent`.
    pub failed: u64,
    /// Answers that differ from `--expect`.
    pub wrong_answers: u64,
    /// Messages sent whose connection failed before their answer.
    pub unanswered: u64,
    /// Messages planned (`-n`) on a connection that failed before sending them.
    pub not_sent: u64,
    /// Time from the first message to the last answer.
    pub elapsed: Duration,
    /// Every answer's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Report {
    /// Connections that failed, for any reason.
    pub fn failed_connections(&self) -> u64 {
        self.connection_failures
            .iter()
            .map(|(_, count)| count)
            .sum()
    }

    /// True if every connection was established and kept, and every message answered as expected.
    pub fn is_clean(&self) -> bool {
        self.failed_connections() == 0 && self.failed == 0
    }

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
                Ok(_) => counters.connected.fetch_add(1, Ordering::Relaxed),
                Err(reason) => {
                    counters.connection_failed(*reason);
                    counters.connect_failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            start_line.wait().await;
            match stream {
                Ok(stream) => converse(stream, &config, &counters).await,
                Err(_) => {
                    if config.duration.is_none() {
                        counters.messages_failed(&counters.not_sent, config.messages);
                    }
                    Vec::new()
                }
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
    let load = |count: &AtomicU64| count.load(Ordering::Relaxed);
    Report {
        connected: load(&counters.connected),
        connect_failed: load(&counters.connect_failed),
        connection_failures: ConnectionFailure::ALL
            .iter()
            .map(|&reason| (reason, load(&counters.failures[reason.index()])))
            .filter(|&(_, count)| count > 0)
            .collect(),
        sent: load(&counters.sent),
        answered: load(&counters.answered),
        failed: load(&counters.failed),
        wrong_answers: load(&counters.wrong_answers),
        unanswered: load(&counters.unanswered),
        not_sent: load(&counters.not_sent),
        elapsed,
        latencies,
    }
}

async fn connect(config: &ClientConfig, slots: &Semaphore) -> Result<TcpStream, ConnectionFailure> {
    let _slot = slots
        .acquire()
        .await
        .map_err(|_| ConnectionFailure::OtherError)?;
    match tokio::time::timeout(config.timeout, TcpStream::connect(&config.target)).await {
        Ok(Ok(stream)) => {
            // Only latency is at stake; a socket without it still works.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => {
            tracing::debug!("connect to {} failed: {error}", config.target);
            Err(ConnectionFailure::of_error(&error))
        }
        Err(_) => Err(ConnectionFailure::TimedOut),
    }
}

/// Sends the messages of one connection; returns the latency of each answer.
async fn converse(
    mut stream: TcpStream,
    config: &ClientConfig,
    counters: &Counters,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut sent = 0u64;
    let outcome = match &config.websocket {
        Some(path) => {
            websocket_talk(
                &mut stream,
                path,
                config,
                counters,
                &mut sent,
                &mut latencies,
            )
            .await
        }
        None => talk(&mut stream, config, counters, &mut sent, &mut latencies).await,
    };
    if let Err(reason) = outcome {
        counters.connection_failed(reason);
        // Whatever was planned but never sent also failed.
        if config.duration.is_none() {
            counters.messages_failed(&counters.not_sent, config.messages - sent);
        }
    }
    // The conversation is over either way; a failed shutdown changes nothing.
    let _ = stream.shutdown().await;
    latencies
}

/// The conversation of one connection: skip the greeting, then ask and check every message.
/// `sent` and `latencies` record progress; Err says why the connection failed.
async fn talk(
    stream: &mut TcpStream,
    config: &ClientConfig,
    counters: &Counters,
    sent: &mut u64,
    latencies: &mut Vec<Duration>,
) -> Result<(), ConnectionFailure> {
    let mut reader = LineReader::new(MAX_ANSWER);
    for _ in 0..config.greeting_lines {
        read_answer(&mut reader, stream, config).await?;
    }
    let mut message = config.message.clone().into_bytes();
    message.push(b'\n');
    let deadline = config.duration.map(|d| Instant::now() + d);
    loop {
        let more = match deadline {
            Some(deadline) => Instant::now() < deadline,
            None => *sent < config.messages,
        };
        if !more {
            return Ok(());
        }
        let asked = Instant::now();
        stream
            .write_all(&message)
            .await
            .map_err(|error| ConnectionFailure::of_error(&error))?;
        *sent += 1;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let answer = match read_answer(&mut reader, stream, config).await {
            Ok(answer) => answer,
            Err(reason) => {
                counters.messages_failed(&counters.unanswered, 1);
                return Err(reason);
            }
        };
        latencies.push(asked.elapsed());
        count_answer(&answer, config, counters);
    }
}

/// The conversation of one WebSocket: the upgrade, then every message as a text message and the
/// next message the server sends as its answer.
async fn websocket_talk(
    stream: &mut TcpStream,
    path: &str,
    config: &ClientConfig,
    counters: &Counters,
    sent: &mut u64,
    latencies: &mut Vec<Duration>,
) -> Result<(), ConnectionFailure> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let url = format!("ws://{}{path}", config.target);
    let (mut socket, _) =
        match tokio::time::timeout(config.timeout, tokio_tungstenite::client_async(url, stream))
            .await
        {
            Ok(Ok(upgraded)) => upgraded,
            Ok(Err(error)) => {
                tracing::debug!("WebSocket upgrade failed: {error}");
                return Err(ConnectionFailure::Handshake);
            }
            Err(_) => return Err(ConnectionFailure::TimedOut),
        };
    let deadline = config.duration.map(|d| Instant::now() + d);
    let outcome = loop {
        let more = match deadline {
            Some(deadline) => Instant::now() < deadline,
            None => *sent < config.messages,
        };
        if !more {
            break Ok(());
        }
        let asked = Instant::now();
        if let Err(error) = socket.send(Message::text(config.message.as_str())).await {
            tracing::debug!("WebSocket send failed: {error}");
            break Err(ConnectionFailure::Reset);
        }
        *sent += 1;
        counters.sent.fetch_add(1, Ordering::Relaxed);
        let answer = loop {
            match tokio::time::timeout(config.timeout, socket.next()).await {
                Err(_) => break Err(ConnectionFailure::TimedOut),
                Ok(None) => break Err(ConnectionFailure::ClosedEarly),
                Ok(Some(Err(error))) => {
                    tracing::debug!("WebSocket read failed: {error}");
                    break Err(ConnectionFailure::Reset);
                }
                Ok(Some(Ok(Message::Text(text)))) => break Ok(text.as_str().to_owned()),
                Ok(Some(Ok(Message::Binary(bytes)))) => {
                    break String::from_utf8(bytes.to_vec())
                        .map_err(|_| ConnectionFailure::Unreadable)
                }
                Ok(Some(Ok(Message::Close(_)))) => break Err(ConnectionFailure::ClosedEarly),
                // Pings are answered by the protocol; pongs and raw frames are not answers.
                Ok(Some(Ok(_))) => continue,
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(reason) => {
                counters.messages_failed(&counters.unanswered, 1);
                break Err(reason);
            }
        };
        latencies.push(asked.elapsed());
        count_answer(&answer, config, counters);
    };
    if outcome.is_ok() {
        let _ = tokio::time::timeout(config.timeout, socket.close(None)).await;
    }
    outcome
}

/// Counts an answer, and a wrong one when `--expect` says otherwise.
fn count_answer(answer: &str, config: &ClientConfig, counters: &Counters) {
    counters.answered.fetch_add(1, Ordering::Relaxed);
    if config
        .expect
        .as_ref()
        .is_some_and(|expected| expected != answer)
    {
        tracing::debug!("unexpected answer: {answer:?}");
        counters.messages_failed(&counters.wrong_answers, 1);
    }
}

/// The next answer line, or why none came.
async fn read_answer(
    reader: &mut LineReader,
    stream: &mut TcpStream,
    config: &ClientConfig,
) -> Result<String, ConnectionFailure> {
    match reader.next_line(stream, config.timeout).await {
        Ok(LineEvent::Line(answer)) => Ok(answer),
        Ok(LineEvent::Idle) => Err(ConnectionFailure::TimedOut),
        Ok(LineEvent::Closed) => Err(ConnectionFailure::ClosedEarly),
        Ok(LineEvent::TooLong | LineEvent::InvalidUtf8) => Err(ConnectionFailure::Unreadable),
        Err(error) => Err(ConnectionFailure::of_error(&error)),
    }
}
