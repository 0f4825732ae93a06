//! The supervisor process: forks the workers, replaces any that die, restarts them one by one on
//! SIGHUP (or when a [`CodeWatch`] reports that the application's code changed), drains them on
//! SIGTERM/SIGINT, and passes SIGUSR1 (reopen the log files) on to them. SIGHUP first loads the
//! TLS certificate again ([`crate::tls::current`]), so the new workers serve the new one.
//!
//! The supervisor is single-threaded and blocks its signals, taking them with `sigtimedwait` in a
//! plain loop: no async runtime exists in this process, so `fork` is safe. Each worker gets the
//! listening sockets (inherited, one shared accept queue) and a pipe on which it reports "ready"
//! once it accepts; a rolling restart waits for that before stopping the worker it replaces, so
//! clients never find nobody accepting.
//!
//! Stopping (SIGTERM, or SIGINT from a terminal): the supervisor closes its copies of the
//! listening sockets and tells every worker to drain; each worker closes its own copy as its
//! drain begins, so once none of them accepts the port refuses new connections at once. A second
//! SIGTERM/SIGINT makes the workers stop at once (SIGQUIT). The exit status is 0 only if no
//! worker had to cut a request.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};

use crate::config::ServerConfig;
use crate::listener::Endpoint;
use crate::metrics::{self, RestartCause};

/// How long a rolling restart waits for a new worker to report ready before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// A worker that dies sooner than this after starting is crash-looping: wait before the next one.
const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(1);
/// Extra time past the grace timeout before still-running workers are killed.
const KILL_MARGIN: Duration = Duration::from_secs(5);
/// The longest the supervisor sleeps in one `sigtimedwait`.
const TICK: Duration = Duration::from_millis(200);
/// A `poll` timeout that never blocks.
const NO_WAIT: Timespec = Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// What a worker writes on its pipe to the supervisor: it accepts connections now...
const LINK_READY: u8 = b'R';
/// ...or it wants to be replaced: it reached a recycling limit...
const LINK_RECYCLE_ME: u8 = b'X';
/// ...or a request outlived `--request-timeout`.
const LINK_HUNG_REQUEST: u8 = b'T';

/// The worker's end of its pipe to the supervisor (unset: no supervisor). Process-wide, so that
/// whatever finds the worker needs replacing (its recycling check, a hung-request watchdog on
/// another thread) can say so. Set once, in the forked worker; never closed before it exits.
static SUPERVISOR_LINK: OnceLock<OwnedFd> = OnceLock::new();
/// The worker already asked to be replaced: once is enough.
static REPLACEMENT_ASKED: AtomicBool = AtomicBool::new(false);

/// Given to each worker: it calls [`ReadySignal::notify`] once it is accepting connections.
pub struct ReadySignal(bool);

impl ReadySignal {
    /// A signal that goes nowhere (for a worker run without a supervisor).
    pub fn none() -> Self {
        ReadySignal(false)
    }

    pub fn notify(&mut self) {
        if std::mem::take(&mut self.0) {
            write_link(LINK_READY);
        }
    }
}

/// Why a worker asks to be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplacementCause {
    /// A recycling limit (`--max-requests`, `--max-worker-memory`, `--worker-lifetime`).
    Recycle,
    /// A request outlived `--request-timeout`.
    HungRequest,
}

/// Asks the supervisor to replace this worker gracefully: it starts a new worker, waits until it
/// accepts, then stops this one with SIGTERM (the usual drain). Logs `reason` the first time;
/// later calls do nothing. Callable from any thread of a worker.
pub fn ask_for_replacement(cause: ReplacementCause, reason: &dyn std::fmt::Display) {
    if REPLACEMENT_ASKED.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::info!("asking for a replacement: {reason}");
    write_link(match cause {
        ReplacementCause::Recycle => LINK_RECYCLE_ME,
        ReplacementCause::HungRequest => LINK_HUNG_REQUEST,
    });
}

fn write_link(byte: u8) {
    if let Some(link) = SUPERVISOR_LINK.get() {
        // Nothing to do if it fails: the supervisor is gone, and this worker goes with it.
        let _ = rustix::io::write(link, &[byte]);
    }
}

/// One running worker, as the supervisor sees it.
struct Worker {
    pid: Pid,
    started: Instant,
    /// The supervisor's end of the worker's pipe: "ready", "replace me", or end of file when it
    /// exits.
    link: OwnedFd,
}

/// The function each forked worker runs; its return value is the worker's exit status.
pub type WorkerMain<'a> = &'a dyn Fn(Vec<Endpoint>, ReadySignal) -> i32;

/// What must happen around each `fork()`: an embedded interpreter (Python) has to be told, or
/// its locks and thread state are inconsistent in the child.
pub trait ForkHooks {
    /// In the supervisor, just before forking.
    fn before_fork(&self) {}
    /// In the supervisor, just after forking (also when the fork failed).
    fn after_fork_in_parent(&self) {}
    /// First thing in a new worker.
    fn after_fork_in_child(&self) {}
}

/// For servers with nothing embedded.
#[derive(Debug)]
pub struct NoForkHooks;

impl ForkHooks for NoForkHooks {}

/// Notices that the application's code changed (the development reloader). The supervisor asks
/// on every tick of its loop and then restarts the workers one by one, as on SIGHUP; so the
/// supervisor stays single-threaded, an implementation polls (a non-blocking read) and must
/// never block or start a thread.
pub trait CodeWatch {
    /// True once a change has settled (the burst of events of one save is over): restart now.
    fn changed(&mut self) -> bool;
}

struct Supervisor<'a> {
    config: &'a ServerConfig,
    /// The listening sockets, handed to each new worker; emptied (closed here) when stopping.
    listeners: Vec<Endpoint>,
    worker_main: WorkerMain<'a>,
    fork_hooks: &'a dyn ForkHooks,
    /// Workers serving traffic; kept at `config.workers`.
    active: Vec<Worker>,
    /// Workers told to stop (SIGHUP) that have not exited yet.
    retiring: Vec<Pid>,
    /// The signals this process takes synchronously.
    signals: libc::sigset_t,
    /// No replacement is forked before this instant (crash-loop brake).
    respawn_not_before: Instant,
    /// Asked on every tick whether the code changed (`--reload`); none otherwise.
    code_watch: Option<&'a mut dyn CodeWatch>,
}

/// Runs the supervisor until SIGTERM/SIGINT; returns the process exit status. With a
/// `code_watch`, the workers are restarted one by one whenever it reports a change.
pub fn run<'a>(
    config: &'a ServerConfig,
    listeners: Vec<Endpoint>,
    worker_main: WorkerMain<'a>,
    fork_hooks: &'a dyn ForkHooks,
    code_watch: Option<&'a mut dyn CodeWatch>,
) -> i32 {
    let signals = blocked_signal_set();
    crate::health::share_announcements();
    let mut supervisor = Supervisor {
        config,
        listeners,
        worker_main,
        fork_hooks,
        active: Vec::new(),
        retiring: Vec::new(),
        signals,
        respawn_not_before: Instant::now(),
        code_watch,
    };
    for _ in 0..config.workers {
        match supervisor.spawn_worker() {
            Ok(worker) => supervisor.active.push(worker),
            Err(error) => {
                tracing::error!("cannot start a worker: {error}");
                supervisor.stop_all();
                return 1;
            }
        }
    }
    supervisor.run_loop()
}

/// Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 in this process and returns that
/// set.
fn blocked_signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it; sigprocmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            libc::sigaddset(&mut set, signal);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

impl Supervisor<'_> {
    fn run_loop(&mut self) -> i32 {
        loop {
            match self.wait_signal(TICK) {
                Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                    tracing::info!("shutting down: draining workers");
                    let clean = self.stop_all();
                    if clean {
                        tracing::info!("stopped");
                        return 0;
                    }
                    tracing::warn!("stopped; some requests were cut");
                    return 1;
                }
                Some(libc::SIGHUP) => {
                    // Before forking: the new workers inherit the certificate in force.
                    crate::tls::current::reload();
                    self.rolling_restart("SIGHUP")
                }
                Some(libc::SIGUSR1) => self.reopen_logs(),
                Some(libc::SIGUSR2) => self.announce_drain_to_workers(),
                _ => {}
            }
            if self
                .code_watch
                .as_mut()
                .is_some_and(|watch| watch.changed())
            {
                self.rolling_restart("code changed");
            }
            self.reap();
            self.replace_missing_workers();
            self.replace_workers_that_ask();
        }
    }

    /// SIGUSR1 (log rotation): reopens this process's log files and passes the signal on to
    /// every worker, which reopens its own.
    fn reopen_logs(&self) {
        crate::logging::reopen();
        let workers = self.active.iter().map(|w| w.pid);
        for pid in workers.chain(self.retiring.iter().copied()) {
            send_signal(pid, Signal::USR1);
        }
    }

    /// SIGUSR2 (the first step of a redeploy behind a load balancer): every worker's health
    /// check answers 503 from now on, while everything else is still served. The workers that
    /// the next SIGHUP starts answer 200 again.
    fn announce_drain_to_workers(&self) {
        tracing::info!("SIGUSR2: health checks answer 503 until the workers are replaced");
        crate::health::announce_drain();
        for worker in &self.active {
            send_signal(worker.pid, Signal::USR2);
        }
    }

    /// Replaces, one by one, the workers that asked for it on their pipe.
    fn replace_workers_that_ask(&mut self) {
        let mut polls: Vec<PollFd<'_>> = self
            .active
            .iter()
            .map(|worker| PollFd::new(&worker.link, PollFlags::IN))
            .collect();
        // A zero timeout never blocks.
        if !matches!(rustix::event::poll(&mut polls, Some(&NO_WAIT)), Ok(1..)) {
            return;
        }
        let mut asking = Vec::new();
        for (poll, worker) in polls.iter().zip(&self.active) {
            if !poll.revents().contains(PollFlags::IN) {
                continue;
            }
            let mut bytes = [0u8; 16];
            let read = rustix::io::read(&worker.link, &mut bytes).unwrap_or(0);
            let said = &bytes[..read];
            if said.contains(&LINK_HUNG_REQUEST) {
                asking.push((worker.pid, RestartCause::Timeout));
            } else if said.contains(&LINK_RECYCLE_ME) {
                asking.push((worker.pid, RestartCause::Recycle));
            }
        }
        drop(polls);
        for (pid, cause) in asking {
            tracing::info!("worker {pid} asked to be replaced; starting its replacement");
            if !self.replace_worker(pid, cause) {
                return;
            }
        }
    }

    /// Waits up to `timeout` for one of our signals.
    fn wait_signal(&self, timeout: Duration) -> Option<i32> {
        let spec = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: the set was initialised in `blocked_signal_set`; a null info pointer is allowed.
        let signal = unsafe { libc::sigtimedwait(&self.signals, std::ptr::null_mut(), &spec) };
        (signal > 0).then_some(signal)
    }

    /// Collects every exited child; an active worker that exited is logged and left for replacement.
    fn reap(&mut self) {
        loop {
            let Ok(Some((pid, status))) = rustix::process::waitpid(None, WaitOptions::NOHANG)
            else {
                return;
            };
            metrics::supervisor_side::worker_exited(pid.as_raw_pid());
            if let Some(index) = self.retiring.iter().position(|&p| p == pid) {
                self.retiring.swap_remove(index);
                if exited_cleanly(status) {
                    tracing::debug!("old worker {pid} exited ({})", describe_status(status));
                } else {
                    tracing::warn!("old worker {pid} exited ({})", describe_status(status));
                }
            } else if let Some(index) = self.active.iter().position(|w| w.pid == pid) {
                let worker = self.active.swap_remove(index);
                metrics::supervisor_side::count_restart(RestartCause::Crash);
                tracing::warn!(
                    "worker {pid} died ({}); starting a replacement",
                    describe_status(status)
                );
                if worker.started.elapsed() < CRASH_LOOP_WINDOW {
                    self.respawn_not_before = Instant::now() + CRASH_LOOP_WINDOW;
                }
            }
        }
    }

    fn replace_missing_workers(&mut self) {
        while self.active.len() < self.config.workers && Instant::now() >= self.respawn_not_before {
            match self.spawn_worker() {
                Ok(worker) => self.active.push(worker),
                Err(error) => {
                    tracing::error!("cannot start a worker: {error}");
                    self.respawn_not_before = Instant::now() + CRASH_LOOP_WINDOW;
                }
            }
        }
    }

    /// SIGHUP or a code change (`why`): for each worker, start its replacement, wait until it
    /// accepts, then stop the old one.
    fn rolling_restart(&mut self, why: &str) {
        tracing::info!(
            "{why}: replacing {} worker(s) one by one",
            self.active.len()
        );
        let old: Vec<Pid> = self.active.iter().map(|w| w.pid).collect();
        for old_pid in old {
            if !self.replace_worker(old_pid, RestartCause::Reload) {
                return;
            }
        }
        tracing::info!("rolling restart done");
    }

    /// Starts a new worker, waits until it accepts, then drains `old_pid` with SIGTERM. False
    /// (and the old worker keeps serving) if the new one cannot start.
    fn replace_worker(&mut self, old_pid: Pid, cause: RestartCause) -> bool {
        let worker = match self.spawn_worker() {
            Ok(worker) => worker,
            Err(error) => {
                tracing::error!("cannot start a replacement worker: {error}");
                return false;
            }
        };
        let new_pid = worker.pid;
        let ready = wait_ready(&worker.link, READY_TIMEOUT);
        let took = worker.started.elapsed();
        self.active.push(worker);
        if !ready {
            tracing::error!(
                "new worker {new_pid} did not start (see above); the old workers keep \
                 serving, and the next SIGHUP tries again"
            );
            self.active.retain(|w| w.pid != new_pid);
            self.retiring.push(new_pid);
            send_signal(new_pid, Signal::KILL);
            return false;
        }
        tracing::info!(
            "worker {new_pid} accepts after {} ms; draining worker {old_pid}",
            took.as_millis()
        );
        self.active.retain(|w| w.pid != old_pid);
        self.retiring.push(old_pid);
        send_signal(old_pid, Signal::TERM);
        metrics::supervisor_side::count_restart(cause);
        true
    }

    /// Closes the listeners, SIGTERM to every worker, then waits for them (grace timeout plus a
    /// margin) before SIGKILL. A second SIGTERM/SIGINT meanwhile stops them at once (SIGQUIT).
    /// True if every worker exited with status 0.
    fn stop_all(&mut self) -> bool {
        let mut second_signal = !self.announce_drain();
        // The workers close theirs as their drain begins: then nobody accepts, and the kernel
        // refuses newcomers instead of queueing them for nobody.
        self.listeners.clear();
        metrics::supervisor_side::close_listener();
        let mut remaining: Vec<Pid> = self.active.drain(..).map(|w| w.pid).collect();
        remaining.append(&mut self.retiring);
        for &pid in &remaining {
            send_signal(pid, Signal::TERM);
        }
        let mut clean = true;
        let mut deadline = Instant::now() + self.config.grace_timeout + KILL_MARGIN;
        let mut hurried = false;
        while !remaining.is_empty() {
            if second_signal && !hurried {
                hurried = true;
                tracing::warn!("second stop signal: stopping the workers at once");
                for &pid in &remaining {
                    send_signal(pid, Signal::QUIT);
                }
                deadline = deadline.min(Instant::now() + KILL_MARGIN);
            }
            let now = Instant::now();
            if now >= deadline {
                for &pid in &remaining {
                    tracing::warn!("worker {pid} did not stop in time; killing it");
                    send_signal(pid, Signal::KILL);
                    // A blocking wait for a child just killed.
                    let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
                    metrics::supervisor_side::worker_exited(pid.as_raw_pid());
                }
                return false;
            }
            if let Some(libc::SIGTERM | libc::SIGINT) = self.wait_signal(TICK.min(deadline - now)) {
                second_signal = true;
            }
            remaining.retain(|&pid| {
                let status = match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
                    // Still running.
                    Ok(None) => return true,
                    Ok(Some((_, status))) => status,
                    // Not our child any more: nothing left to wait for.
                    Err(_) => return false,
                };
                metrics::supervisor_side::worker_exited(pid.as_raw_pid());
                if stopped_before_serving(status) {
                    tracing::info!("worker {pid} stopped while it was still starting");
                } else if !exited_cleanly(status) {
                    tracing::warn!("worker {pid} exited ({})", describe_status(status));
                    clean = false;
                }
                false
            });
        }
        clean
    }

    /// `--drain-delay`: tells the workers a drain is coming (their health checks answer 503) and
    /// lets them serve on for the delay, so a load balancer stops sending before the listeners
    /// close. False if a second stop signal cut the delay short (stop at once, then).
    fn announce_drain(&mut self) -> bool {
        let delay = self.config.drain_delay;
        if delay.is_zero() {
            return true;
        }
        tracing::info!(
            "health checks answer 503; draining in {}s",
            delay.as_secs_f64()
        );
        crate::health::announce_drain();
        for worker in &self.active {
            send_signal(worker.pid, Signal::USR2);
        }
        let until = Instant::now() + delay;
        loop {
            let now = Instant::now();
            if now >= until {
                return true;
            }
            if let Some(libc::SIGTERM | libc::SIGINT) = self.wait_signal(TICK.min(until - now)) {
                return false;
            }
            self.reap();
        }
    }

    /// Forks one worker.
    fn spawn_worker(&mut self) -> io::Result<Worker> {
        let (link_read, link_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let supervisor_pid = rustix::process::getpid();
        let listeners = self
            .listeners
            .iter()
            .map(Endpoint::try_clone)
            .collect::<io::Result<Vec<_>>>()?;
        warn_if_threaded();
        let metrics_slot = metrics::supervisor_side::claim_slot();
        self.fork_hooks.before_fork();
        crate::health::before_fork();
        // SAFETY: this process is single-threaded (no runtime, no helper threads; see
        // `warn_if_threaded` for an application that started some), so the child starts in a
        // consistent state; it only calls `child_main`, which never returns.
        let forked = unsafe { libc::fork() };
        if forked != 0 {
            self.fork_hooks.after_fork_in_parent();
        }
        if forked < 0 {
            let error = io::Error::last_os_error();
            if let Some(slot) = metrics_slot {
                metrics::supervisor_side::unclaim_slot(slot);
            }
            return Err(error);
        }
        let Some(pid) = Pid::from_raw(forked) else {
            // The new worker.
            self.fork_hooks.after_fork_in_child();
            if let Some(slot) = metrics_slot {
                metrics::supervisor_side::attach(slot);
            }
            drop(link_read);
            // Kept open until the worker exits: see SUPERVISOR_LINK. Nothing in a fresh worker
            // has set it.
            let _ = SUPERVISOR_LINK.set(link_write);
            self.child_main(supervisor_pid, listeners, ReadySignal(true));
        };
        drop(link_write);
        drop(listeners);
        if let Some(slot) = metrics_slot {
            metrics::supervisor_side::assign_slot(slot, forked);
        }
        tracing::info!("worker {pid} started");
        Ok(Worker {
            pid,
            started: Instant::now(),
            link: link_read,
        })
    }

    /// The body of a freshly forked worker process.
    fn child_main(
        &mut self,
        supervisor_pid: Pid,
        listeners: Vec<Endpoint>,
        ready: ReadySignal,
    ) -> ! {
        crate::logging::refresh_pid();
        // The supervisor's copies: a worker closes the listening sockets it was given when it
        // drains, and must hold no others that would keep the port open.
        self.listeners.clear();
        // Die with the supervisor, even if it is killed with SIGKILL...
        let _ = rustix::process::set_parent_process_death_signal(Some(Signal::TERM));
        // ...including if it died before the line above took effect: then leave at once.
        let status = if rustix::process::getppid() == Some(supervisor_pid) {
            self.unblock_signals();
            (self.worker_main)(listeners, ready)
        } else {
            0
        };
        crate::logging::flush();
        // SAFETY: leave without running the parent's exit handlers a second time.
        unsafe { libc::_exit(status) }
    }

    /// Unblocks the signals the supervisor takes synchronously, ignoring those that are the
    /// supervisor's business until the worker, serving, installs handlers of its own.
    fn unblock_signals(&self) {
        // SAFETY: signal and sigprocmask with valid arguments; the set is ours (initialised in
        // `blocked_signal_set`). No other thread exists yet to race with the dispositions.
        unsafe {
            // SIGHUP is the supervisor's business (rolling restart); a terminal hang-up sent to the
            // whole process group must not kill the workers behind its back.
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            // So is Ctrl-C: the supervisor drains the workers with SIGTERM (and a second Ctrl-C
            // stops them with SIGQUIT).
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            // The announcement of a drain must not kill a worker still loading its app (the
            // worker takes it once it serves).
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            // Nor a log rotation (the worker takes it once it serves, and then checks whether
            // its files moved meanwhile).
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            libc::sigprocmask(libc::SIG_UNBLOCK, &self.signals, std::ptr::null_mut());
        }
    }
}

/// True once the worker wrote its ready byte; false on timeout or if it exited first.
fn wait_ready(ready: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut poll = [PollFd::new(ready, PollFlags::IN)];
        let timeout = Timespec::try_from(left).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        match rustix::event::poll(&mut poll, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(1..) => {}
            _ => return false,
        }
        let mut byte = [0u8; 1];
        return rustix::io::read(ready, &mut byte) == Ok(1);
    }
}

/// Signals one of our children; one that exited already (not reaped yet) ignores it.
fn send_signal(pid: Pid, signal: Signal) {
    let _ = rustix::process::kill_process(pid, signal);
}

fn describe_status(status: WaitStatus) -> String {
    match status.terminating_signal() {
        Some(signal) => format!("killed by signal {signal}"),
        None => format!("exit status {}", status.exit_status().unwrap_or_default()),
    }
}

/// Killed by the SIGTERM of a stop: a worker takes SIGTERM as "drain" once it serves, so one
/// that died of it was still starting (importing the app, say) and had no request to cut.
fn stopped_before_serving(status: WaitStatus) -> bool {
    status.terminating_signal() == Some(Signal::TERM.as_raw())
}

fn exited_cleanly(status: WaitStatus) -> bool {
    status.exit_status() == Some(0)
}

/// `fork` copies only the calling thread. An application that started threads while it was
/// imported (a scheduler, a connection pool's reaper, a metrics exporter) leaves workers with
/// none of them, and with any lock those threads held taken forever: say so, with the remedy.
fn warn_if_threaded() {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|tasks| tasks.count())
        .unwrap_or(1);
    if threads > 1 {
        tracing::warn!(
            "this process runs {} other thread(s), started while the application was imported; \
             a forked worker gets none of them and may hang on a lock one of them held. Start \
             such threads in each worker instead (lazily, on the first request), not at import",
            threads - 1
        );
    }
}
