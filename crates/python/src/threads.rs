//! The Python threads that run application calls, and how results get back to the event loop.
//!
//! WSGI applications block, so calls cannot run on the event loop; but handing each call to a
//! thread and back costs two wake-ups and two context switches, which on one core is more than a
//! hello-world call itself. So the pool works in batches:
//! - Jobs go into one queue. The first job of a burst schedules a wake-up at the end of the
//!   loop's current turn (a task queued behind the connections that became ready together), so
//!   one thread is woken per burst, not per job.
//! - A woken thread takes jobs until the queue is empty, attached to the interpreter for the
//!   whole batch, then sleeps. Results are handed back the same way: the connections' wakers are
//!   collected and the loop is woken once per batch, through a dispatcher task on the loop that
//!   wakes them locally.
//! - Applications whose calls block (sleep, a database, a slow upload) are told apart by how
//!   many of the last eight jobs took longer than [`SLOW_JOB_TICKS`]: three or more, and every
//!   queued job gets a thread of its own at once, up to `--threads`, since batching would only make
//!   jobs wait behind sleeping ones. Except under load: while calls end at least
//!   [`FINISHERS_TO_WAIT_FOR`] per tick, a new job is left for the next thread that finishes its
//!   call. That thread is running and holds the interpreter already, whereas a woken one must wait
//!   for the CPU behind hundreds of others and then for the lock: at 256 sleeping calls on one core,
//!   waking cost 2 ms of queueing per request and left the CPU a third idle. (An average of wall times was tried first: on a busy core a fast
//!   job now and then spans a preemption, and the average tipped a hello-world app into a thread
//!   per call, 64 threads fighting over the interpreter.)
//! - A call that blocks in an otherwise fast application must not hold up the queue either: a
//!   watchdog looks every millisecond and, when jobs wait while no job has finished for a whole
//!   tick, wakes or starts one more thread for each of them. While jobs do finish, the interpreter
//!   is busy and more threads would only queue for it. Idle threads exit after a while, so the
//!   pool follows the load.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use pyo3::Python;

/// A unit of work that needs the interpreter.
pub type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// How often the watchdog looks.
const WATCHDOG_TICK: Duration = Duration::from_millis(1);
/// A job during which the watchdog ticked this often (at least one whole tick: about 1 ms of wall
/// time) counts as slow. Ticks, not clock reads: the hot path reads no clock.
const SLOW_JOB_TICKS: u64 = 2;
/// Slow jobs among the last eight that mark the application as blocking.
const SLOW_JOBS_TO_BLOCK: u32 = 3;
/// With blocking calls, a new job waits for a thread finishing its call (instead of waking one)
/// when calls have been ending at least this often per tick.
const FINISHERS_TO_WAIT_FOR: u64 = 8;
/// The window over which that rate is counted: calls end in bursts (as the interpreter lock
/// passes from one returning thread to the next), so one tick alone says little.
const RECENT_TICKS: u64 = 8;
/// With blocking calls, the watchdog wakes at most this many threads per tick for jobs that waited
/// a tick while calls still end (2 left a backlog standing, 8 and 16 flooded the CPU with woken
/// threads; bench/NOTES.md).
const DRAIN_PER_TICK: usize = 4;
/// A thread idle this long exits (one always stays).
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// The watchdog sleeps for good after this many ticks with nothing to do.
const WATCHDOG_QUIET_TICKS: u32 = 200;
/// Stack of each Python thread: deep framework call chains run on it.
const THREAD_STACK: usize = 4 << 20;

/// The pool of one worker process. Created on first use, after the fork.
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    completions: Mutex<Completions>,
    max_threads: usize,
    /// Runs on the job's thread after each job, even one that panicked (the bridge ends the
    /// request's `wsgi.errors` output there).
    after_job: fn(),
    /// One bit per recent job, the latest lowest: 1 if it was slow.
    slow_jobs: AtomicU32,
    /// Jobs finished, ever (the watchdog's measure of progress).
    finished_jobs: AtomicU64,
    /// Jobs finished during the last [`RECENT_TICKS`] watchdog ticks.
    finished_recently: AtomicU64,
    /// Watchdog ticks so far: the pool's clock.
    ticks: AtomicU64,
}

struct State {
    /// Jobs with the tick they were queued at, and (with `--metrics-bind`) the instant.
    queue: VecDeque<(Job, u64, Option<Instant>)>,
    /// Sleeping threads, the most recently active last.
    idle: Vec<Arc<Sleeper>>,
    /// Threads awake: running a job or about to look at the queue.
    running: usize,
    /// Of those, threads inside a job.
    in_job: usize,
    /// Threads alive.
    threads: usize,
    /// A wake-up is scheduled for the end of the loop's turn.
    wake_scheduled: bool,
    watchdog: Option<Thread>,
    watchdog_asleep: bool,
}

impl State {
    /// Tells the metrics (`--metrics-bind`) how many threads are inside a call and how many
    /// are not. Called with the state locked.
    fn publish_metrics(&self) {
        tern_core::metrics::set_python_threads(
            self.in_job,
            self.threads.saturating_sub(self.in_job),
        );
    }
}

/// Wakers of connections whose call has something for them, delivered in one go.
struct Completions {
    wakers: Vec<Waker>,
    /// The tick the oldest of `wakers` was added at.
    since: Option<u64>,
    /// The loop's dispatcher task.
    dispatcher: Option<Waker>,
}

struct Sleeper {
    thread: Thread,
    woken: AtomicBool,
}

/// When a waiting connection should learn that its call has something for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// At once: the call goes on (a streamed chunk, a body read).
    Now,
    /// With the rest of the batch: the call's job is ending.
    WithBatch,
}

impl Pool {
    /// Creates the pool; must run inside the worker's tokio runtime (it starts the dispatcher).
    /// `after_job` runs on a job's thread after each job.
    pub fn new(max_threads: usize, after_job: fn()) -> Pool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: Vec::new(),
                running: 0,
                in_job: 0,
                threads: 0,
                wake_scheduled: false,
                watchdog: None,
                watchdog_asleep: false,
            }),
            completions: Mutex::new(Completions {
                wakers: Vec::new(),
                since: None,
                dispatcher: None,
            }),
            max_threads,
            after_job,
            slow_jobs: AtomicU32::new(0),
            finished_jobs: AtomicU64::new(0),
            finished_recently: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
        });
        tokio::spawn(dispatch(shared.clone()));
        Pool { shared }
    }

    /// Queues a job. Called on the event loop.
    pub fn submit(&self, job: Job) {
        let mut state = self.shared.lock_state();
        let queued_at = tern_core::metrics::enabled().then(Instant::now);
        state.queue.push_back((job, self.shared.now(), queued_at));
        if self.shared.calls_block() {
            // A thread for every job that no awake, job-free thread will take, unless calls end
            // often enough that a thread finishing its call takes this job within a fraction of a
            // tick (the watchdog covers a job that waits a whole tick anyway). A finishing thread
            // holds the interpreter already: taking the job costs no wake-up and no lock hand-off.
            let spare = state.running - state.in_job;
            let needed = state.queue.len().saturating_sub(spare);
            let finishing_per_tick =
                self.shared.finished_recently.load(Ordering::Relaxed) / RECENT_TICKS;
            if needed > 0 && finishing_per_tick < FINISHERS_TO_WAIT_FOR {
                self.shared.wake_threads(&mut state, needed);
            }
        } else if state.running == 0 && !state.wake_scheduled {
            state.wake_scheduled = true;
            let shared = self.shared.clone();
            match tokio::runtime::Handle::try_current() {
                // Behind the connections already ready in this turn of the loop.
                Ok(handle) => drop(handle.spawn(async move { shared.wake_for_queue() })),
                Err(_) => {
                    drop(state);
                    shared.wake_for_queue();
                    return;
                }
            }
        }
        if state.watchdog.is_none() {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("tern-watchdog".into())
                .spawn(move || watchdog(shared))
            {
                Ok(handle) => state.watchdog = Some(handle.thread().clone()),
                Err(error) => tracing::error!("cannot start the thread-pool watchdog: {error}"),
            }
        } else if state.watchdog_asleep {
            state.watchdog_asleep = false;
            if let Some(watchdog) = &state.watchdog {
                watchdog.unpark();
            }
        }
    }

    /// Jobs queued or running (0: all calls and their close() are done).
    pub fn jobs(&self) -> usize {
        let state = self.shared.lock_state();
        state.queue.len() + state.in_job
    }

    /// Tells the connection behind `waker` that its call has an event, now or with the batch.
    pub fn wake(&self, waker: Waker, when: Wake) {
        match when {
            Wake::Now => waker.wake(),
            Wake::WithBatch => {
                let mut completions = self.shared.lock_completions();
                let now = self.shared.now();
                completions.since.get_or_insert(now);
                completions.wakers.push(waker);
            }
        }
    }
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_completions(&self) -> MutexGuard<'_, Completions> {
        self.completions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    fn calls_block(&self) -> bool {
        (self.slow_jobs.load(Ordering::Relaxed) & 0xFF).count_ones() >= SLOW_JOBS_TO_BLOCK
    }

    fn record_job_time(&self, ticks: u64) {
        // Racing updates may lose a bit; the history only needs to be roughly right.
        let history = self.slow_jobs.load(Ordering::Relaxed);
        self.slow_jobs.store(
            (history << 1) | u32::from(ticks >= SLOW_JOB_TICKS),
            Ordering::Relaxed,
        );
        self.finished_jobs.fetch_add(1, Ordering::Relaxed);
    }

    fn wake_for_queue(self: &Arc<Self>) {
        let mut state = self.lock_state();
        state.wake_scheduled = false;
        if state.running == 0 && !state.queue.is_empty() {
            self.wake_threads(&mut state, 1);
        }
    }

    /// Wakes up to `count` sleeping threads, starting new ones while under the cap.
    fn wake_threads(self: &Arc<Self>, state: &mut State, count: usize) {
        for _ in 0..count {
            if let Some(sleeper) = state.idle.pop() {
                state.running += 1;
                sleeper.woken.store(true, Ordering::Release);
                sleeper.thread.unpark();
            } else if state.threads < self.max_threads {
                let shared = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("tern-python".into())
                    .stack_size(THREAD_STACK)
                    .spawn(move || shared.thread_main());
                match spawned {
                    Ok(_) => {
                        state.threads += 1;
                        state.publish_metrics();
                        state.running += 1;
                    }
                    Err(error) => {
                        tracing::error!("cannot start a Python thread: {error}");
                        return;
                    }
                }
            } else {
                return;
            }
        }
    }

    /// The next job, or None after registering `sleeper` as idle. `finished_one`: this thread
    /// just ended a job.
    fn next_job(&self, finished_one: bool, sleeper: &Arc<Sleeper>) -> Option<Job> {
        let mut state = self.lock_state();
        if finished_one {
            state.in_job -= 1;
        }
        let next = match state.queue.pop_front() {
            Some((job, _, queued_at)) => {
                state.in_job += 1;
                if let Some(queued_at) = queued_at {
                    tern_core::metrics::record_queue_wait(queued_at.elapsed());
                }
                Some(job)
            }
            None => {
                state.running -= 1;
                sleeper.woken.store(false, Ordering::Release);
                state.idle.push(sleeper.clone());
                None
            }
        };
        state.publish_metrics();
        next
    }

    fn thread_main(self: Arc<Self>) {
        batch_scheduling();
        let sleeper = Arc::new(Sleeper {
            thread: std::thread::current(),
            woken: AtomicBool::new(false),
        });
        // The first job was counted for this thread by whoever started it.
        let mut next = self.next_job(false, &sleeper);
        Python::attach(|py| loop {
            while let Some(job) = next {
                // Results of earlier jobs wait at most about a tick for the batch to end; but
                // when calls block, the next job may take long: deliver them now.
                self.deliver_completions(if self.calls_block() { None } else { Some(1) });
                let started = self.now();
                // A job reports its own errors; a panic must not take the thread's count with it.
                if catch_unwind(AssertUnwindSafe(|| job(py))).is_err() {
                    tracing::error!("a Python job panicked");
                }
                (self.after_job)();
                self.record_job_time(self.now() - started);
                next = self.next_job(true, &sleeper);
            }
            // Interpreter released first: the event loop, once woken, may preempt this thread,
            // and must not find the lock still held by it. The next job is taken before the lock
            // is taken back, so a wake-up whose job another thread already ran costs no lock.
            next = py.detach(|| {
                self.deliver_completions(None);
                self.wait_for_job(&sleeper)
            });
            if next.is_none() {
                return;
            }
        });
    }

    /// Sleeps until woken with a job to run; None: idle long enough to exit.
    fn wait_for_job(&self, sleeper: &Arc<Sleeper>) -> Option<Job> {
        loop {
            if !self.sleep(sleeper) {
                return None;
            }
            // Woken (and counted as running); if the job is gone, this registers as idle again.
            if let Some(job) = self.next_job(false, sleeper) {
                return Some(job);
            }
        }
    }

    /// Sleeps until woken (true) or idle long enough to exit (false).
    fn sleep(&self, sleeper: &Arc<Sleeper>) -> bool {
        let mut deadline = Instant::now() + IDLE_EXIT;
        loop {
            if sleeper.woken.load(Ordering::Acquire) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                let mut state = self.lock_state();
                if sleeper.woken.load(Ordering::Acquire) {
                    return true;
                }
                if state.threads > 1 {
                    state.idle.retain(|other| !Arc::ptr_eq(other, sleeper));
                    state.threads -= 1;
                    state.publish_metrics();
                    return false;
                }
                deadline = now + IDLE_EXIT;
                continue;
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    /// Wakes the loop's dispatcher if wake-ups are collected (and at least `min_ticks` old, if given).
    fn deliver_completions(&self, min_ticks: Option<u64>) {
        let dispatcher = {
            let mut completions = self.lock_completions();
            let due = match (completions.since, min_ticks) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(since), Some(age)) => self.now() - since >= age,
            };
            if !due {
                return;
            }
            completions.since = None;
            completions.dispatcher.clone()
        };
        if let Some(dispatcher) = dispatcher {
            dispatcher.wake();
        }
    }
}

/// The calling thread's Python thread ident: what `threading.get_ident()` returns there and what
/// `sys._current_frames()` is keyed by. Cheap (no interpreter call): it is read at the start of
/// every job, so a call that hangs can later be found on its thread.
pub fn python_thread_ident() -> std::ffi::c_ulong {
    // SAFETY: takes no arguments and only returns the calling thread's identity; it needs no
    // interpreter lock.
    unsafe { pyo3::ffi::PyThread_get_thread_ident() }
}

/// Puts the calling thread in Linux's SCHED_BATCH class: a Python thread that becomes runnable
/// (its sleep ended, a job arrived) then waits for the running thread to block instead of
/// preempting it. Preempting mostly meant interrupting the thread that holds the interpreter lock,
/// only to block on that lock at once: the slow-app benchmark spent most of its time in such
/// switches. Normal priority otherwise; nothing needs privileges.
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid parameter block.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        tracing::debug!(
            "SCHED_BATCH unavailable: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// On the event loop: wakes every connection whose call has an event (local wake-ups, no syscall).
async fn dispatch(shared: Arc<Shared>) {
    let mut batch = Vec::new();
    std::future::poll_fn(|cx| {
        {
            let mut completions = shared.lock_completions();
            if !completions
                .dispatcher
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                completions.dispatcher = Some(cx.waker().clone());
            }
            std::mem::swap(&mut batch, &mut completions.wakers);
            completions.since = None;
        }
        for waker in batch.drain(..) {
            waker.wake();
        }
        Poll::<()>::Pending
    })
    .await;
}

/// Gives queued jobs more threads when they wait too long, and delivers stale wake-ups.
fn watchdog(shared: Arc<Shared>) {
    let mut quiet_ticks = 0;
    let mut finished_before = 0;
    let mut recent = [0u64; RECENT_TICKS as usize];
    loop {
        std::thread::park_timeout(WATCHDOG_TICK);
        let now = shared.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let finished = shared.finished_jobs.load(Ordering::Relaxed);
        let stuck = finished == finished_before;
        recent[(now % RECENT_TICKS) as usize] = finished - finished_before;
        shared
            .finished_recently
            .store(recent.iter().sum(), Ordering::Relaxed);
        finished_before = finished;
        {
            let mut state = shared.lock_state();
            let queued_since = |ticks: u64| {
                state
                    .queue
                    .iter()
                    .take_while(|&&(_, queued, _)| now - queued >= ticks)
                    .count()
            };
            // Threads already awake and out of a job will take some of the waiting jobs.
            let spare = state.running - state.in_job;
            let needed = if stuck {
                // Queued two ticks ago or earlier: waited at least one whole tick.
                queued_since(2).saturating_sub(spare)
            } else if shared.calls_block() {
                // Calls end and their threads take queued jobs, but a backlog that waits a tick
                // stands: as many jobs arrive as calls end. A few more threads per tick drain it
                // without flooding the CPU with woken threads.
                queued_since(1).saturating_sub(spare).min(DRAIN_PER_TICK)
            } else {
                0
            };
            if needed > 0 {
                shared.wake_threads(&mut state, needed);
            }
            if state.queue.is_empty() && state.running == 0 {
                quiet_ticks += 1;
            } else {
                quiet_ticks = 0;
            }
            if quiet_ticks >= WATCHDOG_QUIET_TICKS {
                state.watchdog_asleep = true;
            }
        }
        shared.deliver_completions(Some(2));
        if quiet_ticks >= WATCHDOG_QUIET_TICKS {
            quiet_ticks = 0;
            // Until `submit` unparks it (a stale unpark only costs one extra tick).
            while shared.lock_state().watchdog_asleep {
                std::thread::park();
            }
        }
    }
}
