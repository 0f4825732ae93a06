//! The shutdown signal of one worker, and how the worker learns that every connection has drained.
//!
//! Following mini-redis: the trigger is a `watch` channel every connection listens to, and each
//! connection holds a clone of an `mpsc::Sender`; when the last clone is dropped the receiver wakes,
//! which means "every connection is gone".
//!
//! The trigger carries the drain's idle deadline: a keep-alive connection that is silent when the
//! drain begins may be racing with its client's next request (the client cannot know we are about
//! to close), so it stays open until that deadline, and a request that arrives meanwhile is
//! answered with `Connection: close`. Only connections still silent then are closed.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

/// Held by the worker: starts the shutdown and waits for the drain.
pub struct Shutdown {
    /// Set once, when the worker is asked to stop: until when idle connections stay open.
    trigger: watch::Sender<Option<Instant>>,
    /// Completes (returns `None`) once every [`DrainGuard`] is dropped.
    drained: mpsc::Receiver<()>,
    /// The original guard; dropped when the drain starts so only connections' clones remain.
    guard: Option<DrainGuard>,
}

/// Held by each connection: tells it when to stop, and keeps the worker alive until dropped.
#[derive(Clone)]
pub struct ShutdownWatch {
    /// Receives the drain's idle deadline when the worker starts shutting down.
    signal: watch::Receiver<Option<Instant>>,
    /// Dropped with the connection; the worker waits for all of these.
    _guard: DrainGuard,
}

/// Only the signal of a [`ShutdownWatch`]: for helpers that must learn of the shutdown but must
/// not keep the worker from draining (they hold no [`DrainGuard`]).
pub struct ShutdownSignal(watch::Receiver<Option<Instant>>);

/// A token whose lifetime marks work that must finish before the worker exits.
#[derive(Clone)]
pub struct DrainGuard(#[allow(dead_code)] mpsc::Sender<()>);

impl Shutdown {
    pub fn new() -> Self {
        let (trigger, _) = watch::channel(None);
        let (sender, drained) = mpsc::channel(1);
        Shutdown {
            trigger,
            drained,
            guard: Some(DrainGuard(sender)),
        }
    }

    /// A watch for one connection (or one accept loop).
    pub fn watch(&self) -> ShutdownWatch {
        let guard = self
            .guard
            .clone()
            .expect("watch() called after the drain started");
        ShutdownWatch {
            signal: self.trigger.subscribe(),
            _guard: guard,
        }
    }

    /// Tells every connection to finish; does not wait. Connections waiting for a request stay
    /// open for `idle_window` more, for a request their client may already have sent.
    pub fn begin(&mut self, idle_window: Duration) {
        self.trigger
            .send_replace(Some(Instant::now() + idle_window));
        self.guard = None;
    }

    /// Waits until every watch handed out has been dropped.
    pub async fn drained(&mut self) {
        self.guard = None;
        while self.drained.recv().await.is_some() {}
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownWatch {
    /// True once the worker is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.signal.borrow().is_some()
    }

    /// While shutting down: until when a connection waiting for a request stays open.
    pub fn idle_deadline(&self) -> Option<Instant> {
        *self.signal.borrow()
    }

    /// The signal alone, without a share in the drain.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.signal.clone())
    }

    /// Completes when the worker starts shutting down (at once if it already has).
    pub async fn recv(&mut self) {
        // `changed()` rather than `wait_for`: its future is smaller, and every idle connection
        // keeps one. An error means the worker dropped its `Shutdown`: that is a shutdown too.
        while self.signal.borrow_and_update().is_none() {
            if self.signal.changed().await.is_err() {
                return;
            }
        }
    }
}

impl ShutdownSignal {
    /// Completes when the worker starts shutting down (at once if it already has, or if the
    /// worker dropped its [`Shutdown`]).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|deadline| deadline.is_some()).await;
    }
}
