//! Log lines with time, level and worker pid, to stderr or a file; access lines are buffered.
//!
//! Access lines (one per request) go through a per-process buffer that is flushed when it fills,
//! once a second by the worker, before any other log line, and at exit: a write(2) per request
//! would cost more than serving a small file. Every other line is written at once.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogConfig, LogLevel};

/// The tracing target of access-log events.
pub const ACCESS_TARGET: &str = "tern::access";
/// Flush the access buffer once it holds this many bytes.
const ACCESS_BUFFER_LIMIT: usize = 32 * 1024;

/// The pid shown on each line; refreshed in each worker after fork.
static PID: AtomicU32 = AtomicU32::new(0);
/// Whether INFO lines (and so access lines) are logged at all.
static INFO_ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Where lines go, set once by [`init`].
static SINK: OnceLock<Sink> = OnceLock::new();

struct Sink {
    /// stderr or the `--logfile` (opened for append, so workers' lines never overwrite each other).
    destination: Mutex<Destination>,
    /// Access lines waiting to be written.
    access_buffer: Mutex<Vec<u8>>,
}

enum Destination {
    Stderr,
    File(File),
}

impl Destination {
    fn write_all(&mut self, bytes: &[u8]) {
        // A log line that cannot be written has nowhere else to go: drop it rather than crash.
        let _ = match self {
            Destination::Stderr => io::stderr().write_all(bytes),
            Destination::File(file) => file.write_all(bytes),
        };
    }
}

/// Installs the global subscriber. Call once, before forking workers.
pub fn init(config: &LogConfig) -> Result<(), String> {
    let destination = match &config.file {
        Some(path) => Destination::File(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?,
        ),
        None => Destination::Stderr,
    };
    refresh_pid();
    let sink = Sink {
        destination: Mutex::new(destination),
        access_buffer: Mutex::new(Vec::new()),
    };
    if SINK.set(sink).is_err() {
        return Ok(()); // already initialised (tests, or a second call): keep the first
    }
    INFO_ENABLED.store(
        matches!(config.level, LogLevel::Debug | LogLevel::Info),
        Ordering::Relaxed,
    );
    let level = match config.level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Error => Level::ERROR,
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .event_format(LineFormat)
        .with_writer(SinkWriters)
        .finish();
    tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
}

/// Re-reads the process id; call in a freshly forked worker.
/// Appends one access line (`time INFO [pid] ` + what `write_rest` appends + newline) to the access
/// buffer, written out at least once a second by [`flush`].
///
/// Access lines bypass `tracing`: formatting a tracing event (field visitor, RFC 3339 time,
/// a `format!` of the request line) cost about 1.5 µs per request, 13% of a WSGI hello-world
/// request; this costs a clock read and a few copies.
pub fn access_line(write_rest: impl FnOnce(&mut Vec<u8>)) {
    if !INFO_ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let Some(sink) = SINK.get() else {
        return;
    };
    let full = {
        let mut buffer = lock(&sink.access_buffer);
        append_time(&mut buffer);
        buffer.extend_from_slice(b" INFO [");
        buffer.extend_from_slice(
            itoa::Buffer::new()
                .format(PID.load(Ordering::Relaxed))
                .as_bytes(),
        );
        buffer.extend_from_slice(b"] ");
        write_rest(&mut buffer);
        buffer.push(b'\n');
        buffer.len() >= ACCESS_BUFFER_LIMIT
    };
    if full {
        sink.flush_access();
    }
}

/// `2026-11-23T08:40:01.123Z`, the seconds part formatted once per second.
fn append_time(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    // The coarse clock: milliseconds in steps of a scheduler tick, for a fifth of the cost.
    let now = crate::clock::coarse_wall();
    let (seconds, millis) = (now.as_secs(), now.subsec_millis());
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != seconds {
            let whole = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
            // "2026-11-23T08:40:01Z" without the Z.
            let text = humantime::format_rfc3339_seconds(whole).to_string();
            *cached = (seconds, text.trim_end_matches('Z').to_string());
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
    out.push(b'.');
    out.extend_from_slice(&[
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
    ]);
    out.push(b'Z');
}

pub fn refresh_pid() {
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// Writes out buffered access lines.
pub fn flush() {
    if let Some(sink) = SINK.get() {
        sink.flush_access();
    }
}

impl Sink {
    fn flush_access(&self) {
        let pending = {
            let mut buffer = lock(&self.access_buffer);
            if buffer.is_empty() {
                return;
            }
            std::mem::take(&mut *buffer)
        };
        lock(&self.destination).write_all(&pending);
    }
}

/// A poisoned log lock only means another thread panicked mid-line; keep logging.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Chooses the buffered or the direct writer per event.
struct SinkWriters;

/// Writes one formatted line: access lines into the buffer, others straight out.
enum LineWriter {
    Access,
    Direct,
}

impl<'a> MakeWriter<'a> for SinkWriters {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter::Direct
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        if meta.target() == ACCESS_TARGET {
            LineWriter::Access
        } else {
            LineWriter::Direct
        }
    }
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(sink) = SINK.get() else {
            return Ok(bytes.len());
        };
        match self {
            LineWriter::Access => {
                let full = {
                    let mut buffer = lock(&sink.access_buffer);
                    buffer.extend_from_slice(bytes);
                    buffer.len() >= ACCESS_BUFFER_LIMIT
                };
                if full {
                    sink.flush_access();
                }
            }
            LineWriter::Direct => {
                // Keep the order of lines: pending access lines first.
                sink.flush_access();
                lock(&sink.destination).write_all(bytes);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `2026-11-23T08:40:01.123Z INFO [1234] message key=value`
struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        write!(writer, "{now} {level} [{}] ", PID.load(Ordering::Relaxed))?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
