//! The shutdown signal of one worker, and how the worker learns that every connection has drained.
//!
//! Following mini-redis: the trigger is a `watch` channel every connection listens to, and each
//! connection holds a clone of an `mpsc::Sender`; when the last clone is dropped the receiver wakes,
//! which means "every connection is gone".

use tokio::sync::{mpsc, watch};

/// Held by the worker: starts the shutdown and waits for the drain.
pub struct Shutdown {
    /// Set to `true` once, when the worker is asked to stop.
    trigger: watch::Sender<bool>,
    /// Completes (returns `None`) once every [`DrainGuard`] is dropped.
    drained: mpsc::Receiver<()>,
    /// The original guard; dropped when the drain starts so only connections' clones remain.
    guard: Option<DrainGuard>,
}

/// Held by each connection: tells it when to stop, and keeps the worker alive until dropped.
#[derive(Clone)]
pub struct ShutdownWatch {
    /// Receives `true` when the worker starts shutting down.
    signal: watch::Receiver<bool>,
    /// Dropped with the connection; the worker waits for all of these.
    _guard: DrainGuard,
}

/// Only the signal of a [`ShutdownWatch`]: for helpers that must learn of the shutdown but must
/// not keep the worker from draining (they hold no [`DrainGuard`]).
pub struct ShutdownSignal(watch::Receiver<bool>);

/// A token whose lifetime marks work that must finish before the worker exits.
#[derive(Clone)]
pub struct DrainGuard(#[allow(dead_code)] mpsc::Sender<()>);

impl Shutdown {
    pub fn new() -> Self {
        let (trigger, _) = watch::channel(false);
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

    /// Tells every connection to finish; does not wait.
    pub fn begin(&mut self) {
        self.trigger.send_replace(true);
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
        while !*self.signal.borrow_and_update() {
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
        let _ = self.0.wait_for(|shutting_down| *shutting_down).await;
    }
}
