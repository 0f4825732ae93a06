//! What a protocol implements to serve connections, and how a connection's task ends.
//!
//! The accept loop ([`crate::server`]) gives each connection to a [`ConnectionHandler`] (HTTP in
//! [`crate::http`], the line services in tern-lines); when the handler gives a connection back idle
//! ([`Ended::Idle`]), the loop lets it wait in the idle park (`idle_park`) without a task. This
//! module sits below all of them, so none has to import another for these two types.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::DEFAULT_HEADER_TIMEOUT;
use crate::shutdown::ShutdownWatch;
use crate::socket::{Peer, Socket};

/// How a connection's task ended.
pub enum Ended<S> {
    /// The connection is closed (or will be when the socket drops).
    Closed,
    /// The connection is idle between requests: keep it without a task until its client sends
    /// again (then call `handle` with `resumed`), or close it at `until`.
    Idle { socket: S, until: Instant },
}

/// A protocol that serves one accepted connection to its end, or until it idles.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Serves `socket`. `resumed`: the connection comes back from the idle park, so it has been
    /// served before and its client has sent something (or closed).
    fn handle<S: Socket>(
        self: Arc<Self>,
        socket: S,
        peer: Peer,
        shutdown: ShutdownWatch,
        resumed: bool,
    ) -> impl Future<Output = Ended<S>> + Send;

    /// After the last connection has ended on shutdown: finish work that outlives connections
    /// (an application's cleanup). The worker bounds it by the grace timeout.
    fn finish(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// How long a new connection may take to send its PROXY protocol header (`--proxy-protocol`):
    /// as long as the protocol lets a client take for what it sends first.
    fn proxy_header_timeout(&self) -> Duration {
        DEFAULT_HEADER_TIMEOUT
    }

    /// Requests being served right now (those a forced stop would cut).
    fn requests_in_flight(&self) -> u64 {
        0
    }

    /// Requests served to the end so far (what `--max-requests` counts).
    fn requests_served(&self) -> u64 {
        0
    }

    /// After a forced stop dropped the connections that were still being served: release what
    /// the application still holds for them (for WSGI: `close()` of their response iterables),
    /// blocking for at most `bound`.
    fn abandon(&self, bound: Duration) {
        let _ = bound;
    }
}
