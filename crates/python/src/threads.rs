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
//!   many of the last eight jobs took longer than [`SLOW_JOB_TICKS`](policy::SLOW_JOB_TICKS):
//!   three or more, and every queued job gets a thread of its own at once, up to `--threads`,
//!   since batching would only make jobs wait behind sleeping ones. Except under load: while
//!   calls end at least [`FINISHERS_TO_WAIT_FOR`](policy::FINISHERS_TO_WAIT_FOR) per tick, a new
//!   job is left for the next thread that finishes its call. That thread is running and holds the
//!   interpreter already, whereas a woken one must wait for the CPU behind hundreds of others and
//!   then for the lock: at 256 sleeping calls on one core, waking cost 2 ms of queueing per
//!   request and left the CPU a third idle. (An average of wall times was tried first: on a busy
//!   core a fast job now and then spans a preemption, and the average tipped a hello-world app
//!   into a thread per call, 64 threads fighting over the interpreter.)
//! - A call that blocks in an otherwise fast application must not hold up the queue either: a
//!   watchdog looks every millisecond and, when jobs wait while no job has finished for a whole
//!   tick, wakes or starts one more thread for each of them. While jobs do finish, the interpreter
//!   is busy and more threads would only queue for it. Idle threads exit after a while, so the
//!   pool follows the load.
//! - Slow calls are not always blocking ones: a Django view that spends milliseconds computing is
//!   slow too, and giving each such call a thread only makes 64 threads take turns on the
//!   interpreter lock, every call as slow as the slowest. So the watchdog reads, at every tick,
//!   the CPU time of the process's threads other than the event loop, and when over the last
//!   few ticks it reaches most of the wall time, in calls of a millisecond of CPU or more (or in
//!   calls that have not ended yet), the interpreter is saturated: then no more than
//!   [`SATURATED_THREADS`](policy::SATURATED_THREADS) threads stay awake, and the jobs wait in
//!   the queue in their order. Calls that mostly wait use little CPU each, so a pool serving them
//!   never counts as saturated, however many run.
//! - The event loop never starts a thread: starting one takes tens of microseconds, during which
//!   no connection is served. When a job needs a thread and none sleeps, `submit` counts the
//!   thread as running already and asks the watchdog, which starts it.
//!
//! Every one of those decisions is made by [`policy`], a pure type with unit tests; this module
//! gathers what it needs, asks, and acts (unparks, spawns, wakes the loop).

mod policy;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use pyo3::Python;

use policy::{OnSubmit, Policy, Progress, SlowJobs, Threads, Waiting, Wakeups};

/// A unit of work that needs the interpreter.
pub type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// How often the watchdog looks.
const WATCHDOG_TICK: Duration = Duration::from_millis(1);
/// A thread idle this long exits (one always stays).
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// Stack of each Python thread: deep framework call chains run on it.
const THREAD_STACK: usize = 4 << 20;

/// The pool of one worker process. Created on first use, after the fork.
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    completions: Mutex<Completions>,
    /// The rules: when to wake or start threads, when the watchdog steps in.
    policy: Policy,
    /// Runs on the job's thread after each job, even one that panicked (the bridge ends the
    /// request's `wsgi.errors` output there).
    after_job: fn(),
    /// One bit per recent job, the latest lowest: 1 if it was slow ([`SlowJobs`]).
    slow_jobs: AtomicU32,
    /// Jobs finished, ever (the watchdog's measure of progress).
    finished_jobs: AtomicU64,
    /// Jobs finished during the last [`policy::RECENT_TICKS`] watchdog ticks.
    finished_recently: AtomicU64,
    /// Watchdog ticks so far: the pool's clock.
    ticks: AtomicU64,
    /// The CPU clock of the event loop's thread, whose time is not the calls' (the watchdog
    /// subtracts it from the process's).
    loop_clock: Option<libc::clockid_t>,
    /// The interpreter is saturated: the watchdog's verdict on its last window
    /// ([`policy::interpreter_saturated`]).
    saturated: AtomicBool,
    /// Threads asked of the watchdog and not started yet. They are counted in the state's
    /// `threads` and `running` from the moment they are asked for, so the jobs that follow do not
    /// ask again. Outside the lock: the watchdog looks at every wake-up and tick, and must not
    /// take the lock for that.
    to_start: AtomicUsize,
}

struct State {
    /// Jobs with the tick they were queued at, and (with `--metrics-bind`) the instant.
    queue: VecDeque<(Job, u64, Option<Instant>)>,
    /// Sleeping threads, the most recently active last.
    idle: Vec<Arc<Sleeper>>,
    /// Threads awake: running a job or about to look at the queue (threads to start included).
    running: usize,
    /// Of those, threads inside a job.
    in_job: usize,
    /// Threads alive (threads to start included).
    threads: usize,
    /// A wake-up is scheduled for the end of the loop's turn.
    wake_scheduled: bool,
    /// The watchdog thread, unparked to start threads or after it slept for good; None if it
    /// could not be started (threads are then started where they are asked for).
    watchdog: Option<Thread>,
    /// The watchdog sleeps until the next job (nothing happened for a while).
    watchdog_asleep: bool,
}

impl State {
    /// The thread counts the policy decides by.
    fn threads(&self) -> Threads {
        Threads {
            total: self.threads,
            running: self.running,
            in_job: self.in_job,
            idle: self.idle.len(),
        }
    }

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
    /// `after_job` runs on a job's thread after each job. Starts the watchdog, the one thread
    /// that starts the others.
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
            policy: Policy::new(max_threads),
            after_job,
            slow_jobs: AtomicU32::new(0),
            finished_jobs: AtomicU64::new(0),
            finished_recently: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            loop_clock: thread_clock(),
            saturated: AtomicBool::new(false),
            to_start: AtomicUsize::new(0),
        });
        tokio::spawn(dispatch(shared.clone()));
        let watchdog_shared = shared.clone();
        match std::thread::Builder::new()
            .name("tern-watchdog".into())
            .spawn(move || watchdog(watchdog_shared))
        {
            Ok(handle) => shared.lock_state().watchdog = Some(handle.thread().clone()),
            Err(error) => tracing::error!("cannot start the thread-pool watchdog: {error}"),
        }
        Pool { shared }
    }

    /// Queues a job. Called on the event loop: wakes sleeping threads at most (an unpark), and
    /// leaves starting new ones to the watchdog.
    pub fn submit(&self, job: Job) {
        let mut state = self.shared.lock_state();
        let queued_at = tern_core::metrics::enabled().then(Instant::now);
        state.queue.push_back((job, self.shared.now(), queued_at));
        let decision = self.shared.policy.on_submit(
            state.queue.len(),
            state.threads(),
            self.shared.slow_jobs(),
            self.shared.finished_recently.load(Ordering::Relaxed),
            state.wake_scheduled,
        );
        let mut start = false;
        match decision {
            OnSubmit::Nothing => {}
            OnSubmit::Wake(wakeups) => {
                let wakeups = self.shared.policy.within_saturation(
                    wakeups,
                    state.threads(),
                    self.shared.saturated(),
                );
                start = self.shared.get_going(&mut state, wakeups);
            }
            OnSubmit::WakeAfterTurn => {
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
        }
        if start || state.watchdog_asleep {
            self.shared.ask_watchdog(state);
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

    fn slow_jobs(&self) -> SlowJobs {
        SlowJobs(self.slow_jobs.load(Ordering::Relaxed))
    }

    fn saturated(&self) -> bool {
        self.saturated.load(Ordering::Relaxed)
    }

    fn record_job_time(&self, ticks: u64) {
        // Racing updates may lose a bit; the history only needs to be roughly right.
        let history = self.slow_jobs().after_job(ticks);
        self.slow_jobs.store(history.0, Ordering::Relaxed);
        self.finished_jobs.fetch_add(1, Ordering::Relaxed);
    }

    /// The wake-up scheduled for the end of the loop's turn.
    fn wake_for_queue(self: &Arc<Self>) {
        let mut state = self.lock_state();
        state.wake_scheduled = false;
        let wakeups = self
            .policy
            .at_end_of_turn(state.queue.len(), state.threads());
        if self.get_going(&mut state, wakeups) {
            self.ask_watchdog(state);
        }
    }

    /// Carries out `wakeups`: unparks sleeping threads, and counts the threads to start as
    /// alive and running (and in `to_start`). True if threads are to be started: the caller then
    /// asks the watchdog ([`Shared::ask_watchdog`]), or is the watchdog.
    fn get_going(&self, state: &mut State, wakeups: Wakeups) -> bool {
        for _ in 0..wakeups.wake {
            let Some(sleeper) = state.idle.pop() else {
                break;
            };
            state.running += 1;
            sleeper.woken.store(true, Ordering::Release);
            sleeper.thread.unpark();
        }
        if wakeups.start == 0 {
            return false;
        }
        state.threads += wakeups.start;
        state.running += wakeups.start;
        state.publish_metrics();
        self.to_start.fetch_add(wakeups.start, Ordering::Relaxed);
        true
    }

    /// Wakes the watchdog: it starts the threads counted in `to_start` at once, and resumes its
    /// ticks if it slept for good. Without a watchdog, starts them here.
    fn ask_watchdog(self: &Arc<Self>, mut state: MutexGuard<'_, State>) {
        state.watchdog_asleep = false;
        match &state.watchdog {
            Some(watchdog) => watchdog.unpark(),
            None => {
                drop(state);
                self.start_threads();
            }
        }
    }

    /// Starts the threads counted in `to_start` (the watchdog's job). Spawns without the lock.
    fn start_threads(self: &Arc<Self>) {
        let count = self.to_start.swap(0, Ordering::Relaxed);
        for started in 0..count {
            let shared = self.clone();
            let spawned = std::thread::Builder::new()
                .name("tern-python".into())
                .stack_size(THREAD_STACK)
                .spawn(move || shared.thread_main());
            if let Err(error) = spawned {
                tracing::error!("cannot start a Python thread: {error}");
                // The rest were counted as alive and running: take them back.
                let missing = count - started;
                let mut state = self.lock_state();
                state.threads -= missing;
                state.running -= missing;
                state.publish_metrics();
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
        let takes = !finished_one || self.policy.takes_next_job(state.in_job, self.saturated());
        let next = match takes.then(|| state.queue.pop_front()).flatten() {
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
        // The first job was counted for this thread by whoever asked for it.
        let mut next = self.next_job(false, &sleeper);
        Python::attach(|py| loop {
            while let Some(job) = next {
                // Results of earlier jobs wait for the batch to end, unless calls block.
                self.deliver_completions(policy::results_age_before_job(self.slow_jobs()));
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
                if self.policy.exits_when_idle(state.threads()) {
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
            if !policy::results_due(completions.since, self.now(), min_ticks) {
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

/// What the watchdog reads at each tick to judge saturation.
struct Reading {
    at: Instant,
    /// The calls' CPU time so far ([`calls_cpu_ns`]).
    cpu_ns: u64,
    /// Calls finished so far.
    finished: u64,
}

impl Shared {
    /// Judges whether the interpreter is saturated over the window from the oldest of
    /// `readings` (the last [`policy::SATURATION_TICKS`] ticks) to now, and adds now's reading.
    /// Returns whether the calls computed since the previous tick ([`policy::calls_computed`]).
    /// Three system calls a tick (a few microseconds with hundreds of threads).
    fn judge_saturation(&self, readings: &mut VecDeque<Reading>) -> bool {
        let reading = Reading {
            at: Instant::now(),
            cpu_ns: calls_cpu_ns(self.loop_clock),
            finished: self.finished_jobs.load(Ordering::Relaxed),
        };
        let computed = readings.back().is_some_and(|last: &Reading| {
            policy::calls_computed(
                Duration::from_nanos(reading.cpu_ns.saturating_sub(last.cpu_ns)),
                reading.at - last.at,
            )
        });
        if let Some(oldest) = readings.front() {
            let saturated = policy::interpreter_saturated(
                self.saturated(),
                Duration::from_nanos(reading.cpu_ns.saturating_sub(oldest.cpu_ns)),
                reading.finished.saturating_sub(oldest.finished),
                reading.at - oldest.at,
            );
            self.saturated.store(saturated, Ordering::Relaxed);
        }
        if readings.len() == policy::SATURATION_TICKS {
            readings.pop_front();
        }
        readings.push_back(reading);
        computed
    }
}

/// The calling thread's CPU clock, readable from other threads while it lives.
fn thread_clock() -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_getcpuclockid writes one clockid through a valid pointer to a local, for
    // the calling thread.
    let status = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    (status == 0).then_some(clock)
}

/// CPU time a clock has counted, in nanoseconds (0 if it cannot be read).
fn cpu_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return 0;
    }
    (now.tv_sec as u64).saturating_mul(1_000_000_000) + now.tv_nsec as u64
}

/// CPU time the process's threads other than the event loop and the watchdog (the one calling)
/// have used, in nanoseconds: the Python threads' calls, read with three system calls rather
/// than two per call. (Measured per call first: on the mixed app's 13-byte `/fast` calls, two
/// clock reads each were a few percent of the call.)
fn calls_cpu_ns(loop_clock: Option<libc::clockid_t>) -> u64 {
    let process = cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID);
    let event_loop = loop_clock.map_or(0, cpu_ns);
    let watchdog = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    process.saturating_sub(event_loop).saturating_sub(watchdog)
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

/// Starts the threads asked for, gives queued jobs more threads when they wait too long, and
/// delivers stale wake-ups.
fn watchdog(shared: Arc<Shared>) {
    let mut progress = Progress::default();
    let mut readings = VecDeque::with_capacity(policy::SATURATION_TICKS + 1);
    loop {
        // Until the next tick; asked to start threads meanwhile, it does so at once (an early
        // wake-up does not count as a tick: ticks measure time).
        let next_tick = Instant::now() + WATCHDOG_TICK;
        loop {
            shared.start_threads();
            let now = Instant::now();
            if now >= next_tick {
                break;
            }
            std::thread::park_timeout(next_tick - now);
        }
        let now = shared.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let computed = shared.judge_saturation(&mut readings);
        let tick = progress.tick(now, shared.finished_jobs.load(Ordering::Relaxed), computed);
        shared
            .finished_recently
            .store(tick.finished_recently, Ordering::Relaxed);
        let sleep = {
            let mut state = shared.lock_state();
            let waiting = Waiting::at(now, state.queue.iter().map(|&(_, queued, _)| queued));
            let wakeups = shared
                .policy
                .on_tick(tick, waiting, state.threads(), shared.slow_jobs());
            let wakeups =
                shared
                    .policy
                    .within_saturation(wakeups, state.threads(), shared.saturated());
            shared.get_going(&mut state, wakeups);
            let sleep = progress.may_sleep(state.queue.len(), state.threads());
            if sleep {
                state.watchdog_asleep = true;
            }
            sleep
        };
        shared.start_threads();
        shared.deliver_completions(Some(policy::STALE_RESULT_TICKS));
        if sleep {
            // Until `submit` unparks it (a stale unpark only costs one extra look at the state).
            while shared.lock_state().watchdog_asleep {
                std::thread::park();
            }
            // The sleep is no part of the next window.
            readings.clear();
        }
    }
}
