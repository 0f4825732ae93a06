//! One worker process: a single-threaded tokio runtime that serves until SIGTERM, then drains.
//!
//! One thread per worker keeps the hot path free of locks and cross-thread wake-ups; more cores are
//! used with more worker processes (`-w N`).

use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::ServerConfig;
use crate::listener::Listener;
use crate::server::{self, ConnectionHandler};
use crate::shutdown::Shutdown;
use crate::supervisor::ReadySignal;

/// How often buffered access-log lines are written out.
const LOG_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Serves `listeners` with `handler` until SIGTERM or SIGINT; returns the exit status.
pub fn run<H: ConnectionHandler>(
    listeners: Vec<Listener>,
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
    runtime.block_on(async {
        let (mut terminate, mut interrupt) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
            _ => {
                tracing::error!("cannot install signal handlers");
                return 1;
            }
        };
        let mut shutdown = Shutdown::new();
        if let Err(error) = server::serve(
            listeners,
            handler.clone(),
            config.max_connections,
            &shutdown,
        ) {
            tracing::error!("cannot accept connections: {error}");
            return 1;
        }
        ready.notify();
        let mut flush_tick = tokio::time::interval(LOG_FLUSH_INTERVAL);
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = flush_tick.tick() => crate::logging::flush(),
            }
        }
        tracing::info!(
            "stopping: finishing in-flight requests (grace {}s)",
            config.grace_timeout.as_secs()
        );
        shutdown.begin();
        let drain = async {
            shutdown.drained().await;
            handler.finish().await;
        };
        if tokio::time::timeout(config.grace_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!("grace timeout reached; closing the remaining connections");
        }
        crate::logging::flush();
        0
    })
}
