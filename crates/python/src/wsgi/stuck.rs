//! A call that outlived `--request-timeout`. Python cannot stop a thread from outside, so the
//! stuck thread stays; what tern can do is show where it hangs and let the worker go. The worker
//! asks its supervisor for a graceful replacement at once (so stuck threads cannot pile up), and
//! the Python stack of the thread running the call (from `sys._current_frames()`) goes to the log
//! at ERROR with the request. The call itself is abandoned like one whose client left: whatever
//! the application returns later is discarded and its iterable closed ([`super::call`]).
//!
//! Stacks are read by one reporter thread per worker, never on the event loop: reading needs the
//! interpreter lock, which a busy thread holds for up to a switch interval at a time (and a C
//! function may hold for good: then only the stacks wait, not the replacement).

use std::ffi::c_ulong;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use tern_core::service::RequestTimeout;

use super::shared::CallShared;

/// Stacks logged per worker; later timed-out calls get their summary alone. When a shared
/// dependency hangs, hundreds of calls time out together with the same stack.
const MAX_STACKS_LOGGED: usize = 16;

/// The reporter thread's queue; None if the thread could not be started.
static REPORTER: OnceLock<Option<Sender<Report>>> = OnceLock::new();
/// Reports queued and not yet logged: a worker that stops waits for them (bounded), or the
/// stack it was asked to show would die with it.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Whether a timed-out call's report is still being written.
pub fn reports_pending() -> bool {
    PENDING.load(Ordering::SeqCst) > 0
}

/// One timed-out call, for the reporter.
struct Report {
    /// The first line of the log record.
    summary: String,
    /// The Python thread that ran the call when it timed out; None if none did.
    thread: Option<c_ulong>,
    /// To tell whether that thread still runs the call when its stack is read.
    call: Arc<CallShared>,
}

/// Where the timed-out call was when its thread was looked at.
enum Whereabouts {
    /// The stack of its thread, formatted by `traceback.format_stack`, oldest frame first.
    Stack(String),
    /// No job of the call was running: the next one waits for a free Python thread.
    Queued,
    /// Its thread was running no Python code (it was in tern's own code between calls into
    /// the application).
    OutsidePython,
    /// Its job ended between the timeout and the look.
    Finished,
    /// [`MAX_STACKS_LOGGED`] stacks were logged already.
    NotShown,
    /// The stack could not be read.
    Unreadable(String),
}

/// Asks for a new worker and queues the report of the timed-out call behind `call`; returns at
/// once (runs on the event loop).
pub fn report(call: Arc<CallShared>, timeout: RequestTimeout) {
    // Read now: by the time the reporter looks, the thread may have moved on to another call.
    let thread = call.count_as_stuck();
    ask_for_replacement(timeout.waited);
    let report = Report {
        summary: summarize(&timeout),
        thread,
        call,
    };
    let Some(reporter) = REPORTER.get_or_init(start_reporter) else {
        let why = "no thread could be started to read it".to_string();
        return log(&report.summary, &Whereabouts::Unreadable(why));
    };
    PENDING.fetch_add(1, Ordering::SeqCst);
    if let Err(mpsc::SendError(report)) = reporter.send(report) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
        let why = "the thread reading it has stopped".to_string();
        log(&report.summary, &Whereabouts::Unreadable(why));
    }
}

fn start_reporter() -> Option<Sender<Report>> {
    let (sender, receiver) = mpsc::channel();
    match std::thread::Builder::new()
        .name("tern-stuck-calls".into())
        .spawn(move || run_reporter(receiver))
    {
        Ok(_) => Some(sender),
        Err(error) => {
            tracing::error!("cannot start the thread that reports timed-out calls: {error}");
            None
        }
    }
}

/// Logs each report with the stack of its thread, as long as the worker lives.
fn run_reporter(reports: Receiver<Report>) {
    let mut stacks_logged = 0;
    for report in reports {
        let whereabouts = match report.thread {
            None => Whereabouts::Queued,
            Some(_) if stacks_logged >= MAX_STACKS_LOGGED => Whereabouts::NotShown,
            Some(ident) => Python::attach(|py| look_at(py, &report.call, ident)),
        };
        if matches!(whereabouts, Whereabouts::Stack(_)) {
            stacks_logged += 1;
        }
        log(&report.summary, &whereabouts);
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The first line of the report: the request, how long it waited, what the client got.
fn summarize(timeout: &RequestTimeout) -> String {
    let mut summary = format!(
        "request timed out: \"{}\" from {} waited {:.1}s for the application (--request-timeout), {:.1}s after it arrived; ",
        String::from_utf8_lossy(&timeout.request_line),
        timeout.peer,
        timeout.waited.as_secs_f64(),
        timeout.elapsed.as_secs_f64(),
    );
    summary.push_str(if timeout.head_sent {
        "its response had started, so the connection was closed"
    } else {
        "answered 504 Gateway Timeout"
    });
    summary
}

/// The stack of the Python thread `ident`, if it still runs the call of `shared`.
fn look_at(py: Python<'_>, shared: &CallShared, ident: c_ulong) -> Whereabouts {
    match stack_of(py, shared, ident) {
        Ok(Some(stack)) => Whereabouts::Stack(stack),
        Ok(None) => Whereabouts::OutsidePython,
        Err(Look::Moved) => Whereabouts::Finished,
        Err(Look::Failed(error)) => Whereabouts::Unreadable(error.to_string()),
    }
}

/// Why no stack was read.
enum Look {
    /// The thread no longer runs the call.
    Moved,
    Failed(PyErr),
}

impl From<PyErr> for Look {
    fn from(error: PyErr) -> Self {
        Look::Failed(error)
    }
}

/// `traceback.format_stack(sys._current_frames()[ident])`, joined; None if the thread has no
/// Python frame.
fn stack_of(py: Python<'_>, shared: &CallShared, ident: c_ulong) -> Result<Option<String>, Look> {
    let frames = py.import("sys")?.call_method0("_current_frames")?;
    // No Python code ran since the frames were taken, so no other thread did: if the thread runs
    // the call now, its frame is the call's.
    if shared.thread_ident() != Some(ident) {
        return Err(Look::Moved);
    }
    let Some(frame) = frames
        .cast::<PyDict>()
        .map_err(PyErr::from)?
        .get_item(ident)?
    else {
        return Ok(None);
    };
    let lines: Vec<String> = py
        .import("traceback")?
        .call_method1("format_stack", (frame,))?
        .extract()?;
    Ok(Some(lines.concat()))
}

/// One ERROR record: the summary, then where the call hangs.
fn log(summary: &str, whereabouts: &Whereabouts) {
    let mut message = String::from(summary);
    match whereabouts {
        Whereabouts::Stack(stack) => {
            let _ = write!(
                message,
                "\nPython stack of the thread running it (most recent call last):\n{}",
                stack.trim_end()
            );
        }
        Whereabouts::Queued => {
            message.push_str("\nno Python thread was running it: it waited for a free thread")
        }
        Whereabouts::OutsidePython => {
            message.push_str("\nits thread was not running Python code when looked at")
        }
        Whereabouts::Finished => {
            message.push_str("\nits thread finished the call before its stack could be read")
        }
        Whereabouts::NotShown => {
            let _ = write!(
                message,
                "\nits stack is not shown: this worker logged {MAX_STACKS_LOGGED} already"
            );
        }
        Whereabouts::Unreadable(why) => {
            let _ = write!(
                message,
                "\nthe stack of its thread could not be read: {why}"
            );
        }
    }
    tracing::error!("{message}");
}

/// The stuck thread cannot be stopped: a fresh worker takes over, this one drains and exits.
fn ask_for_replacement(waited: Duration) {
    tern_core::supervisor::ask_for_replacement(
        tern_core::supervisor::ReplacementCause::HungRequest,
        &format_args!(
            "a request timed out after {:.1}s (--request-timeout) and its thread cannot be stopped",
            waited.as_secs_f64()
        ),
    );
}
