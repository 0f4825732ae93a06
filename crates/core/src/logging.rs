//! Log lines with time, level and worker pid, to stderr or a file, as text or JSON; access lines
//! are buffered, and may go to a file of their own.
//!
//! Access lines (one per HTTP request, one per line-service connection) go through a per-process
//! buffer that is flushed when it fills, once a second by the worker, before any other log line,
//! and at exit: a write(2) per request would cost more than serving a small file. Every other line
//! is written at once. HTTP's access lines skip `tracing` ([`access_line`]: the caller appends its
//! part, text or JSON members, after a cached time prefix); the line services log theirs as
//! `tracing` events with the target [`ACCESS_TARGET`]. `json` escapes strings for
//! `--log-format json`.
//!
//! Log files are reopened on SIGUSR1 (logrotate's convention: it renames the file, then signals):
//! [`reopen`] writes the buffered access lines to the old file first, and a line is written whole
//! to one file or the other, so none is lost or cut.

pub(crate) mod json;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::config::{AccessLogTarget, LogConfig, LogFormat, LogLevel};

/// The tracing target of access-log events (the line services'; HTTP's go through
/// [`access_line`]): they go to the access buffer, not straight out.
pub const ACCESS_TARGET: &str = "tern::access";
/// Flush the access buffer once it holds this many bytes.
const ACCESS_BUFFER_LIMIT: usize = 32 * 1024;

/// The pid shown on each line; refreshed in each worker after fork.
static PID: AtomicU32 = AtomicU32::new(0);
/// Whether INFO lines (and so access lines) are logged at all.
static INFO_ENABLED: AtomicBool = AtomicBool::new(false);
/// `--log-format json`: every line is a JSON object.
static JSON: AtomicBool = AtomicBool::new(false);
/// Where lines go, set once by [`init`].
static SINK: OnceLock<Sink> = OnceLock::new();

/// How an access line's caller writes its part of the line (see [`access_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    /// Plain text after `time INFO [pid] `.
    Text,
    /// JSON members (`"name":value,...`, no braces) after `"time"`, `"level"` and `"pid"`.
    Json,
}

struct Sink {
    /// stderr or the `--logfile` (opened for append, so workers' lines never overwrite each other).
    log: Mutex<Destination>,
    /// `--access-logfile`: where access lines go when not with the other lines.
    access: Option<Mutex<Destination>>,
    /// Access lines waiting to be written.
    access_buffer: Mutex<Vec<u8>>,
}

/// Where a line is written.
enum Destination {
    Stderr,
    Stdout,
    File {
        /// Opened for append.
        file: File,
        /// The path it was opened at, made absolute: where to reopen it after a rotation.
        path: PathBuf,
    },
}

impl Destination {
    fn open(path: &Path) -> io::Result<Destination> {
        Ok(Destination::File {
            file: open_append(path)?,
            // Absolute: an application may change the working directory before a reopen.
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        })
    }

    fn write_all(&mut self, bytes: &[u8]) {
        // A log line that cannot be written has nowhere else to go: drop it rather than crash.
        let _ = match self {
            Destination::Stderr => io::stderr().write_all(bytes),
            Destination::Stdout => io::stdout().lock().write_all(bytes),
            Destination::File { file, .. } => file.write_all(bytes),
        };
    }

    /// Opens a file destination's path anew, so that lines go to the file now there. On failure
    /// the old file stays in use. `only_if_moved`: keep the file if the path still names it.
    fn reopen(&mut self, only_if_moved: bool) -> Result<Option<&Path>, String> {
        let Destination::File { file, path } = self else {
            return Ok(None);
        };
        if only_if_moved && !moved(file, path) {
            return Ok(None);
        }
        *file = open_append(path)
            .map_err(|e| format!("cannot reopen log file {}: {e}", path.display()))?;
        Ok(Some(path))
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Whether `path` no longer names the open `file` (renamed or removed by a log rotation).
fn moved(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => (open.dev(), open.ino()) != (named.dev(), named.ino()),
        _ => true,
    }
}

/// Installs the global subscriber. Call once, before forking workers.
pub fn init(config: &LogConfig) -> Result<(), String> {
    let log = match &config.file {
        Some(path) => Destination::open(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?,
        None => Destination::Stderr,
    };
    let access = match &config.access_file {
        None => None,
        Some(AccessLogTarget::Stdout) => Some(Destination::Stdout),
        Some(AccessLogTarget::File(path)) => Some(
            Destination::open(path)
                .map_err(|e| format!("cannot open access log file {}: {e}", path.display()))?,
        ),
    };
    refresh_pid();
    let sink = Sink {
        log: Mutex::new(log),
        access: access.map(Mutex::new),
        access_buffer: Mutex::new(Vec::new()),
    };
    if SINK.set(sink).is_err() {
        return Ok(()); // already initialised (tests, or a second call): keep the first
    }
    INFO_ENABLED.store(
        matches!(config.level, LogLevel::Debug | LogLevel::Info),
        Ordering::Relaxed,
    );
    let json = config.format == LogFormat::Json;
    JSON.store(json, Ordering::Relaxed);
    let level = match config.level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warning => Level::WARN,
        LogLevel::Error => Level::ERROR,
    };
    // The h2 crate traces every frame at DEBUG: at `--log debug` that would bury tern's own lines
    // (one per frame on every HTTP/2 connection), so only its warnings and errors are kept.
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("h2", Level::WARN);
    let subscriber = tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::fmt()
            .with_max_level(level)
            .event_format(LineFormat { json })
            .with_writer(SinkWriters)
            .finish(),
        targets,
    );
    tracing::subscriber::set_global_default(subscriber).map_err(|e| e.to_string())
}

/// Appends one access line to the access buffer, written out at least once a second by
/// [`flush`]: the line's start (`time INFO [pid] `, or the JSON object's opening members), then
/// what `write_rest` appends in the given style, then its end. A `bare` text line is only what
/// `write_rest` appends: a `--access-log-format` line is the format and nothing else, as
/// gunicorn writes it, so tools that read the Common or Combined Log Format parse it.
///
/// Access lines bypass `tracing`: formatting a tracing event (field visitor, RFC 3339 time,
/// a `format!` of the request line) cost about 1.5 µs per request, 13% of a WSGI hello-world
/// request; this costs a clock read and a few copies.
pub fn access_line(bare: bool, write_rest: impl FnOnce(&mut Vec<u8>, LineStyle)) {
    if !INFO_ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let Some(sink) = SINK.get() else {
        return;
    };
    let json = JSON.load(Ordering::Relaxed);
    let full = {
        let mut buffer = lock(&sink.access_buffer);
        let mut pid = itoa::Buffer::new();
        let pid = pid.format(PID.load(Ordering::Relaxed)).as_bytes();
        if json {
            buffer.extend_from_slice(b"{\"time\":\"");
            append_time(&mut buffer);
            buffer.extend_from_slice(b"\",\"level\":\"INFO\",\"pid\":");
            buffer.extend_from_slice(pid);
            buffer.push(b',');
            write_rest(&mut buffer, LineStyle::Json);
            buffer.extend_from_slice(b"}\n");
        } else if bare {
            write_rest(&mut buffer, LineStyle::Text);
            buffer.push(b'\n');
        } else {
            append_time(&mut buffer);
            buffer.extend_from_slice(b" INFO [");
            buffer.extend_from_slice(pid);
            buffer.extend_from_slice(b"] ");
            write_rest(&mut buffer, LineStyle::Text);
            buffer.push(b'\n');
        }
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

/// Re-reads the process id; call in a freshly forked worker.
pub fn refresh_pid() {
    PID.store(std::process::id(), Ordering::Relaxed);
}

/// Writes out buffered access lines.
pub fn flush() {
    if let Some(sink) = SINK.get() {
        sink.flush_access();
    }
}

/// SIGUSR1: reopens the log files at their paths (after logrotate renamed them), writing the
/// buffered access lines to the old access file first. A file that cannot be reopened stays in
/// use, and the error is logged.
pub fn reopen() {
    reopen_files(false);
}

/// Reopens the log files whose paths no longer name them: a worker calls it once it takes
/// SIGUSR1, in case a rotation happened while it started (SIGUSR1 is ignored until then).
pub fn reopen_if_moved() {
    reopen_files(true);
}

fn reopen_files(only_if_moved: bool) {
    let Some(sink) = SINK.get() else {
        return;
    };
    let mut reopened = Vec::new();
    let mut failures = Vec::new();
    let mut note = |result: Result<Option<&Path>, String>| match result {
        Ok(Some(path)) => reopened.push(path.display().to_string()),
        Ok(None) => {}
        Err(message) => failures.push(message),
    };
    {
        // Held throughout: lines logged meanwhile wait, then go to the new file.
        let mut buffer = lock(&sink.access_buffer);
        let mut access = sink.access.as_ref().map(lock);
        let mut log = lock(&sink.log);
        let access_destination = access.as_deref_mut().unwrap_or(&mut *log);
        access_destination.write_all(&std::mem::take(&mut *buffer));
        note(access_destination.reopen(only_if_moved));
        if access.is_some() {
            note(log.reopen(only_if_moved));
        }
    }
    // Logged once the locks are released: these lines go through the sink too.
    for message in failures {
        tracing::error!("{message}; logging on to the old file");
    }
    if !reopened.is_empty() {
        tracing::info!("reopened {}", reopened.join(" and "));
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
        match &self.access {
            Some(access) => lock(access).write_all(&pending),
            None => lock(&self.log).write_all(&pending),
        }
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

/// Writes one formatted line: access-log events into the buffer, others straight out.
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
                lock(&sink.log).write_all(bytes);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `2026-11-23T08:40:01.123Z INFO [1234] message key=value`, or with `json`
/// `{"time":"2026-11-23T08:40:01.123Z","level":"INFO","pid":1234,"message":"message key=value"}`.
struct LineFormat {
    /// `--log-format json`.
    json: bool,
}

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
        let pid = PID.load(Ordering::Relaxed);
        if !self.json {
            write!(writer, "{now} {level} [{pid}] ")?;
            ctx.format_fields(writer.by_ref(), event)?;
            return writeln!(writer);
        }
        let mut message = String::new();
        ctx.format_fields(Writer::new(&mut message), event)?;
        let mut quoted = Vec::with_capacity(message.len() + 2);
        json::append_string(&mut quoted, message.as_bytes());
        // Escaping valid UTF-8 gives valid UTF-8: this never replaces anything.
        let quoted = String::from_utf8_lossy(&quoted);
        writeln!(
            writer,
            r#"{{"time":"{now}","level":"{level}","pid":{pid},"message":{quoted}}}"#
        )
    }
}
