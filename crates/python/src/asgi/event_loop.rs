//! One asyncio event loop per worker, run by a Python thread of its own, and the hand-off of
//! work from the Rust side to it.
//!
//! Work goes in as jobs (Rust closures run on the loop's thread with the interpreter). The first
//! job of a burst writes to an eventfd the loop watches (`add_reader`); the jobs queued before
//! the loop gets to them ride along, so a burst costs one wake-up and no interpreter lock on the
//! connection's side. The way back needs no help: the application's `send` queues events and
//! wakes the connection's task directly.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::Waker;
use std::thread::JoinHandle;

use pyo3::prelude::*;

use tern_cli::app_host::EventLoop as LoopChoice;

/// Work for the loop's thread.
pub type Job = Box<dyn FnOnce(Python<'_>) + Send>;

thread_local! {
    /// The loop's thread: its loop, for [`wake_soon`].
    static LOOP_HANDLE: RefCell<Option<Py<PyAny>>> = const { RefCell::new(None) };
    /// Connection tasks to wake when the loop's current round of callbacks is over.
    static WAKE_SOON: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Wakes a connection's task once the loop has run the callbacks it has ready now, rather than
/// at once: responses that complete in the same round (timers expiring together, a burst of
/// requests) wake the worker's Rust thread once instead of once each. Both threads share a core
/// under load, so each wake-up is a switch between them; with 256 connections sleeping 10 ms,
/// waking at once cost about one eventfd write and two context switches per request. Off the
/// loop's thread, it wakes at once.
pub fn wake_soon(waker: Waker) {
    let first = WAKE_SOON.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.push(waker);
        pending.len() == 1
    });
    if !first {
        return;
    }
    let scheduled = LOOP_HANDLE.with(|handle| {
        let handle = handle.borrow();
        let Some(handle) = handle.as_ref() else {
            return false;
        };
        Python::attach(|py| {
            Py::new(py, FlushWakes)
                .and_then(|flush| {
                    handle
                        .bind(py)
                        .call_method1(pyo3::intern!(py, "call_soon"), (flush,))
                })
                .is_ok()
        })
    });
    if !scheduled {
        flush_wakes();
    }
}

/// Wakers handed from the loop's thread to the worker's Rust thread, and the dispatcher task
/// there that wakes them (see [`start_dispatcher`]).
struct Handover {
    wakers: Vec<Waker>,
    dispatcher: Option<Waker>,
}

static HANDOVER: Mutex<Handover> = Mutex::new(Handover {
    wakers: Vec::new(),
    dispatcher: None,
});

/// Wakes every task [`wake_soon`] held back: through the dispatcher, one cross-thread wake-up
/// for the whole round (tokio's wake from another thread writes its eventfd every time, even
/// when its thread is awake: with 64 connections, about one write per request before).
fn flush_wakes() {
    let mut wakers = WAKE_SOON.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    if wakers.is_empty() {
        return;
    }
    let dispatcher = {
        let mut handover = HANDOVER.lock().unwrap_or_else(|p| p.into_inner());
        match handover.dispatcher.clone() {
            Some(dispatcher) => {
                handover.wakers.append(&mut wakers);
                Some(dispatcher)
            }
            None => None,
        }
    };
    match dispatcher {
        Some(dispatcher) => dispatcher.wake(),
        None => wakers.into_iter().for_each(Waker::wake),
    }
}

/// Starts, once per worker, the task on the worker's tokio runtime that wakes the connections
/// the loop's thread handed over, locally (no system call each). Call on the runtime's thread.
pub fn start_dispatcher() {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        let mut batch = Vec::new();
        std::future::poll_fn(|cx| {
            {
                let mut handover = HANDOVER.lock().unwrap_or_else(|p| p.into_inner());
                if !handover
                    .dispatcher
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()))
                {
                    handover.dispatcher = Some(cx.waker().clone());
                }
                std::mem::swap(&mut batch, &mut handover.wakers);
            }
            for waker in batch.drain(..) {
                waker.wake();
            }
            std::task::Poll::<()>::Pending
        })
        .await;
    });
}

/// The loop's callback that ends a round of held-back wake-ups.
#[pyclass(frozen, module = "tern_server._native")]
struct FlushWakes;

#[pymethods]
impl FlushWakes {
    fn __call__(&self) {
        flush_wakes();
    }
}

/// The jobs waiting for the loop, and whether it was woken for them already.
struct Queue {
    jobs: Vec<Job>,
    /// The eventfd was written since the loop last took the queue.
    woken: bool,
}

/// What the submitting side and the loop's reader share.
struct Inbox {
    queue: Mutex<Queue>,
    /// Readable while jobs wait (an eventfd: one counter, no buffer to fill).
    wake: OwnedFd,
    /// [`EventLoop::stop`] asked the loop to stop: any other end of it is fatal to the worker.
    stopping: AtomicBool,
}

/// A running loop.
pub struct EventLoop {
    inbox: Arc<Inbox>,
    /// The loop object, for jobs that create futures and tasks.
    pub handle: Py<PyAny>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl EventLoop {
    /// Starts the loop's thread with the loop `choice` names; returns once it runs.
    pub fn start(choice: LoopChoice) -> Result<EventLoop, String> {
        let wake = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(|e| format!("cannot create the event loop's wake-up descriptor: {e}"))?;
        let inbox = Arc::new(Inbox {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                woken: false,
            }),
            wake,
            stopping: AtomicBool::new(false),
        });
        // `threading` takes the thread that first imports it for the main one; imported first in
        // the loop's thread (by uvloop, for an application that imports neither asyncio nor
        // threading), uvloop then believes that thread is the main one and fails to set up signal
        // handling ("set_wakeup_fd only works in main thread").
        Python::attach(|py| py.import("threading").map(drop))
            .map_err(|e| format!("cannot import threading: {e}"))?;
        let (started_tx, started_rx) = mpsc::channel::<Result<Py<PyAny>, String>>();
        let thread_inbox = inbox.clone();
        let thread = std::thread::Builder::new()
            .name("tern-asgi-loop".into())
            .spawn(move || run(thread_inbox, choice, started_tx))
            .map_err(|e| format!("cannot start the event loop's thread: {e}"))?;
        let handle = started_rx
            .recv()
            .map_err(|_| "the event loop's thread ended at start".to_string())??;
        Ok(EventLoop {
            inbox,
            handle,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `job` for the loop's thread; wakes the loop only if this starts a burst.
    pub fn submit(&self, job: Job) {
        let mut queue = self.inbox.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.jobs.push(job);
        if !std::mem::replace(&mut queue.woken, true) {
            drop(queue);
            let _ = rustix::io::write(&self.inbox.wake, &1u64.to_ne_bytes());
        }
    }

    /// Stops the loop and waits for its thread (the loop's remaining callbacks are dropped).
    pub fn stop(&self) {
        self.inbox.stopping.store(true, Ordering::SeqCst);
        self.submit(Box::new(|py| {
            let _ = py
                .import("asyncio")
                .and_then(|asyncio| asyncio.call_method0("get_running_loop"))
                .and_then(|event_loop| event_loop.call_method0("stop"));
        }));
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// The loop's thread: makes the loop, watches the eventfd, runs until stopped.
fn run(inbox: Arc<Inbox>, choice: LoopChoice, started: mpsc::Sender<Result<Py<PyAny>, String>>) {
    Python::attach(|py| {
        let event_loop = match new_loop(py, choice).and_then(|event_loop| {
            let reader = Py::new(
                py,
                Drain {
                    inbox: inbox.clone(),
                },
            )?;
            event_loop.call_method1("add_reader", (inbox.wake.as_raw_fd(), reader))?;
            py.import("asyncio")?
                .call_method1("set_event_loop", (&event_loop,))?;
            Ok(event_loop)
        }) {
            Ok(event_loop) => event_loop,
            Err(error) => {
                let message = crate::traceback::format(py, &error).unwrap_or_default();
                let _ = started.send(Err(format!("cannot start the event loop: {message}")));
                return;
            }
        };
        let _ = started.send(Ok(event_loop.clone().unbind()));
        LOOP_HANDLE.with(|handle| *handle.borrow_mut() = Some(event_loop.clone().unbind()));
        let outcome = event_loop.call_method0("run_forever");
        LOOP_HANDLE.with(|handle| handle.borrow_mut().take());
        flush_wakes();
        if !inbox.stopping.load(Ordering::SeqCst) {
            // The loop ended on its own (it failed, or the application stopped it): nothing
            // would answer this worker's requests any more. The supervisor starts a new worker.
            match outcome {
                Err(error) => {
                    crate::traceback::log_exception(py, &error, "the ASGI event loop failed")
                }
                Ok(_) => tracing::error!("the ASGI event loop was stopped by the application"),
            }
            tracing::error!("worker exits: its ASGI event loop is gone");
            std::process::exit(1);
        }
        if let Err(error) = outcome {
            crate::traceback::log_exception(py, &error, "the ASGI event loop failed");
        }
        let _ = event_loop.call_method0("close");
    });
}

/// A new loop: uvloop's when chosen (or, with `auto`, when it imports), else asyncio's.
fn new_loop(py: Python<'_>, choice: LoopChoice) -> PyResult<Bound<'_, PyAny>> {
    if choice != LoopChoice::Asyncio {
        match py.import("uvloop") {
            Ok(uvloop) => {
                tracing::debug!("ASGI event loop: uvloop");
                return uvloop.call_method0("new_event_loop");
            }
            Err(error) if choice == LoopChoice::Uvloop => return Err(error),
            Err(_) => {}
        }
    }
    tracing::debug!("ASGI event loop: asyncio");
    py.import("asyncio")?.call_method0("new_event_loop")
}

/// The loop's reader of the eventfd: runs every queued job.
#[pyclass(frozen, module = "tern_server._native")]
struct Drain {
    inbox: Arc<Inbox>,
}

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&self.inbox.wake, &mut counter[..]);
        let jobs = {
            let mut queue = self.inbox.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.woken = false;
            std::mem::take(&mut queue.jobs)
        };
        for job in jobs {
            job(py);
        }
    }
}
