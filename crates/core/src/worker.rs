//! One worker process: a single-threaded tokio runtime that serves until SIGTERM, then drains.
//!
//! One thread per worker keeps the hot path free of locks and cross-thread wake-ups; more cores are
//! used with more worker processes (`-w N`).
//!
//! Stopping: SIGTERM starts the drain (the listeners close, in-flight requests finish, idle
//! connections get the drain's idle window), bounded by the grace timeout. A second SIGTERM, or
//! SIGQUIT, stops at once. Either way, requests still in flight when the worker gives up are
//! counted and logged, what the application holds for them is released (bounded), and the exit
//! status says they were cut. SIGINT is the supervisor's: a terminal's Ctrl-C reaches the whole
//! process group, and the supervisor turns it into the SIGTERM above. SIGUSR2 announces a drain
//! to come (`--drain-delay`): the health check answers 503 from then on. SIGUSR1 reopens the log
//! files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};

use crate::config::ServerConfig;
use crate::connection::ConnectionHandler;
use crate::listener::Endpoint;
use crate::recycle::{Reason, RecycleConfig, RecyclePolicy};
use crate::server;
use crate::shutdown::Shutdown;
use crate::supervisor::{ReadySignal, ReplacementCause};

/// How often buffered access-log lines are written out.
const LOG_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// After a forced stop, how long the application may take to release what the cut requests
/// held (WSGI: their iterables' `close()`).
const ABANDON_BOUND: Duration = Duration::from_secs(2);
/// The exit status of a worker that stopped with requests still in flight.
pub const EXIT_REQUESTS_CUT: i32 = 3;
/// How often the worker compares itself with its recycling limits...
const RECYCLE_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// ...and reads its resident memory, every this many checks (once a second).
const MEMORY_READ_EVERY: u32 = 10;

/// The worker's recycling check: its policy, its age, and when to read memory next.
struct Recycling {
    policy: RecyclePolicy,
    started: Instant,
    /// Checks since memory was last read.
    checks: u32,
}

impl Recycling {
    /// `None` when no recycling limit is set.
    fn new(config: &RecycleConfig) -> Option<Recycling> {
        config.is_enabled().then(|| Recycling {
            policy: RecyclePolicy::new(config, fastrand::f64()),
            started: Instant::now(),
            checks: 0,
        })
    }

    fn check(&mut self, served: u64) -> Option<Reason> {
        self.checks += 1;
        let memory = if self.checks == MEMORY_READ_EVERY {
            self.checks = 0;
            crate::recycle::resident_memory()
        } else {
            None
        };
        self.policy.check(served, memory, self.started.elapsed())
    }
}

/// How the drain ended.
enum Drained {
    /// Every connection ended and the application finished its work.
    Cleanly,
    /// The grace timeout passed first.
    GraceExpired,
    /// A second stop signal asked for an immediate exit.
    Forced,
}

/// Serves `listeners` with `handler` until SIGTERM; returns the exit status.
pub fn run<H: ConnectionHandler>(
    listeners: Vec<Endpoint>,
    handler: Arc<H>,
    config: &ServerConfig,
    mut ready: ReadySignal,
) -> i32 {
    crate::malloc_tuning::keep_freed_memory();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the event loop: {error}");
            return 1;
        }
    };
    let cut = runtime.block_on(async {
        let (mut terminate, mut quit, mut drain_announced, mut reopen_logs) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::quit()),
            signal(SignalKind::user_defined2()),
            signal(SignalKind::user_defined1()),
        ) {
            (Ok(terminate), Ok(quit), Ok(announced), Ok(reopen)) => {
                (terminate, quit, announced, reopen)
            }
            _ => {
                tracing::error!("cannot install signal handlers");
                return Err(1);
            }
        };
        // SIGUSR1 was ignored until now: a rotation may have happened while this worker started.
        crate::logging::reopen_if_moved();
        let mut shutdown = Shutdown::new();
        if let Err(error) = server::serve(listeners, handler.clone(), config, &shutdown) {
            tracing::error!("cannot accept connections: {error}");
            return Err(1);
        }
        crate::metrics::spawn_endpoint(shutdown.watch().signal());
        ready.notify();
        let mut flush_tick = tokio::time::interval(LOG_FLUSH_INTERVAL);
        let mut recycling = Recycling::new(&config.recycle);
        let mut recycle_tick = tokio::time::interval(RECYCLE_CHECK_INTERVAL);
        let forced_at_once = loop {
            tokio::select! {
                _ = terminate.recv() => break false,
                _ = quit.recv() => break true,
                _ = flush_tick.tick() => crate::logging::flush(),
                _ = reopen_logs.recv() => crate::logging::reopen(),
                _ = drain_announced.recv() => {
                    tracing::info!("a drain is coming: health checks answer 503 from now on");
                    crate::health::mark_draining();
                }
                _ = recycle_tick.tick(), if recycling.is_some() => {
                    if let Some(reason) = recycling.as_mut().and_then(|r| r.check(handler.requests_served())) {
                        crate::supervisor::ask_for_replacement(ReplacementCause::Recycle, &reason);
                        recycling = None;
                    }
                }
            }
        };
        crate::health::mark_draining();
        let drained = if forced_at_once {
            shutdown.begin(Duration::ZERO);
            Drained::Forced
        } else {
            tracing::info!(
                "stopping: finishing in-flight requests (grace {}s)",
                config.grace_timeout.as_secs_f64()
            );
            shutdown.begin(config.drain_idle_window.min(config.grace_timeout));
            let drain = async {
                shutdown.drained().await;
                handler.finish().await;
            };
            tokio::select! {
                finished = tokio::time::timeout(config.grace_timeout, drain) => match finished {
                    Ok(()) => Drained::Cleanly,
                    Err(_) => Drained::GraceExpired,
                },
                _ = terminate.recv() => Drained::Forced,
                _ = quit.recv() => Drained::Forced,
            }
        };
        let in_flight = handler.requests_in_flight();
        match drained {
            Drained::Cleanly => {}
            Drained::GraceExpired => tracing::warn!(
                "grace timeout reached: cutting {in_flight} request(s) still in flight"
            ),
            Drained::Forced => {
                tracing::warn!("stopping at once: cutting {in_flight} request(s) still in flight")
            }
        }
        Ok(in_flight)
    });
    // Dropping the runtime drops the connections still open, and with them their calls into
    // the application.
    drop(runtime);
    let status = match cut {
        Ok(0) => 0,
        Ok(_) => {
            handler.abandon(ABANDON_BOUND);
            EXIT_REQUESTS_CUT
        }
        Err(status) => status,
    };
    crate::logging::flush();
    status
}
