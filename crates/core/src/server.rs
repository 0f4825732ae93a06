//! The accept loop: take connections from a listening socket and give each its own task.
//!
//! The loop owns the limits that protect a worker as a whole: at most `max_connections` open
//! connections (a permit moves into each connection task; without one the loop stops accepting and
//! the kernel's queue holds newcomers), and back-off when the process runs out of file descriptors,
//! so the acceptor neither spins nor dies and recovers as soon as connections close.
//!
//! Each connection is served by a [`ConnectionHandler`] (see [`crate::connection`]). A handler may
//! give an idle connection back instead of closing it ([`Ended::Idle`]); it then waits in the
//! listener's idle park (`idle_park::IdlePark`) without a task, and the park hands it back here,
//! to a new task, when its client sends again.
//!
//! With `--proxy-protocol`, a new connection's task first takes its PROXY header
//! ([`crate::proxy_protocol`]) and serves it as the client the header names; the park keeps that
//! peer with the connection, so a resumed connection is still served as its client.
//!
//! On an HTTPS listener the task then runs the TLS handshake ([`crate::tls::Handshaker`]) and
//! serves the resulting [`crate::tls::TlsSocket`]; such connections are never parked (their
//! session lives in user space, not in the descriptor).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServerConfig;
use crate::connection::{ConnectionHandler, Ended};
use crate::idle_park::{IdlePark, Resumed};
use crate::listener::{Endpoint, Listener};
use crate::proxy_protocol;
use crate::shutdown::{Shutdown, ShutdownSignal, ShutdownWatch};
use crate::socket::{Peer, Socket};
use crate::tls::Handshaker;
use crate::trusted_proxies::TrustedProxies;

/// How long the acceptor pauses after the process ran out of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one "out of file descriptors" warning per this interval, so a storm cannot flood the log.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// How a connection came to its task.
enum Arrival {
    /// Just accepted. `proxy_protocol`: take a PROXY header first, from a peer on this list.
    /// `tls`: complete a TLS handshake (after the PROXY header) and serve the TLS connection.
    Accepted {
        proxy_protocol: Option<Arc<TrustedProxies>>,
        tls: Option<Arc<Handshaker>>,
    },
    /// Back from the idle park. `proxied`: its peer came from a PROXY header (the park kept it).
    Resumed { proxied: bool },
}

/// Starts one accept loop per listener on the current runtime. They stop when `shutdown` begins;
/// the connections they started keep `shutdown` from draining until they end.
pub fn serve<H: ConnectionHandler>(
    endpoints: Vec<Endpoint>,
    handler: Arc<H>,
    config: &ServerConfig,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    if crate::metrics::enabled() {
        tokio::spawn(sample_gauges(
            handler.clone(),
            permits.clone(),
            // Each accept loop holds a permit while it waits for the next connection.
            config
                .max_connections
                .max(1)
                .saturating_sub(endpoints.len()),
            shutdown.watch().signal(),
        ));
    }
    let proxy_protocol = config
        .proxy_protocol
        .then(|| Arc::new(config.forwarded_allow_ips.clone()));
    let handshaker = if endpoints.iter().any(|endpoint| endpoint.tls) {
        let handshaker = Handshaker::from_current().ok_or_else(|| {
            io::Error::other("an HTTPS listener, but no TLS certificate was loaded")
        })?;
        Some(Arc::new(handshaker))
    } else {
        None
    };
    for endpoint in endpoints {
        let watch = shutdown.watch();
        let setup = Accepted {
            proxy_protocol: proxy_protocol.clone(),
            tls: handshaker.clone().filter(|_| endpoint.tls),
        };
        match endpoint.listener {
            Listener::Tcp(std_listener) => {
                std_listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                tokio::spawn(accept_loop(
                    listener,
                    handler.clone(),
                    permits.clone(),
                    setup,
                    watch,
                ));
            }
            Listener::Unix(std_listener, _) => {
                std_listener.set_nonblocking(true)?;
                let listener = tokio::net::UnixListener::from_std(std_listener)?;
                tokio::spawn(accept_loop(
                    listener,
                    handler.clone(),
                    permits.clone(),
                    setup,
                    watch,
                ));
            }
        }
    }
    Ok(())
}

/// A tokio listener of either kind.
trait Acceptor: Send + 'static {
    type Stream: Socket;
    fn accept_one(&self) -> impl Future<Output = io::Result<(Self::Stream, Peer)>> + Send;
    /// Closes the listener after taking up to `max` connections already queued, without waiting.
    fn take_queued(self, max: usize) -> Vec<(Self::Stream, Peer)>;
}

impl Acceptor for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> io::Result<(Self::Stream, Peer)> {
        let (stream, addr) = self.accept().await?;
        // Responses are written whole; Nagle's algorithm would only delay them.
        stream.set_nodelay(true)?;
        Ok((stream, Peer::Tcp(addr)))
    }

    fn take_queued(self, max: usize) -> Vec<(Self::Stream, Peer)> {
        // The std listener accepts straight from the kernel's queue (tokio's accept would wait
        // for a readiness event first).
        let Ok(listener) = self.into_std() else {
            return Vec::new();
        };
        std::iter::from_fn(|| listener.accept().ok())
            .take(max)
            .filter_map(|(stream, addr)| {
                stream.set_nonblocking(true).ok()?;
                stream.set_nodelay(true).ok()?;
                let stream = tokio::net::TcpStream::from_std(stream).ok()?;
                Some((stream, Peer::Tcp(addr)))
            })
            .collect()
    }
}

impl Acceptor for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> io::Result<(Self::Stream, Peer)> {
        let (stream, _) = self.accept().await?;
        Ok((stream, Peer::Unix))
    }

    fn take_queued(self, max: usize) -> Vec<(Self::Stream, Peer)> {
        let Ok(listener) = self.into_std() else {
            return Vec::new();
        };
        std::iter::from_fn(|| listener.accept().ok())
            .take(max)
            .filter_map(|(stream, _)| {
                stream.set_nonblocking(true).ok()?;
                let stream = tokio::net::UnixStream::from_std(stream).ok()?;
                Some((stream, Peer::Unix))
            })
            .collect()
    }
}

/// What every connection a listener accepts needs first: its PROXY header, its TLS handshake.
#[derive(Clone)]
struct Accepted {
    proxy_protocol: Option<Arc<TrustedProxies>>,
    tls: Option<Arc<Handshaker>>,
}

impl Accepted {
    fn arrival(&self) -> Arrival {
        Arrival::Accepted {
            proxy_protocol: self.proxy_protocol.clone(),
            tls: self.tls.clone(),
        }
    }
}

async fn accept_loop<H: ConnectionHandler, A: Acceptor>(
    listener: A,
    handler: Arc<H>,
    permits: Arc<Semaphore>,
    setup: Accepted,
    mut watch: ShutdownWatch,
) {
    let mut last_warning: Option<Instant> = None;
    let park = match IdlePark::new() {
        Ok(park) => Arc::new(park),
        Err(error) => {
            tracing::error!("cannot create the idle-connection park: {error}");
            return;
        }
    };
    let resume = {
        let (handler, park) = (handler.clone(), park.clone());
        move |connection: Resumed<A::Stream>, watch: ShutdownWatch| {
            let Resumed {
                socket,
                peer,
                proxied,
                permit,
            } = connection;
            let arrival = Arrival::Resumed { proxied };
            spawn_connection(&handler, &park, socket, peer, watch, permit, arrival)
        }
    };
    tokio::spawn(park.clone().run(watch.clone(), resume));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = watch.recv() => return accept_queued(listener, &handler, &park, &permits, &setup, &watch),
        };
        let accepted = tokio::select! {
            accepted = listener.accept_one() => accepted,
            _ = watch.recv() => return accept_queued(listener, &handler, &park, &permits, &setup, &watch),
        };
        match accepted {
            Ok((socket, peer)) => {
                let arrival = setup.arrival();
                spawn_connection(
                    &handler,
                    &park,
                    socket,
                    peer,
                    watch.clone(),
                    permit,
                    arrival,
                )
            }
            Err(error) if is_resource_exhaustion(&error) => {
                if last_warning.is_none_or(|at| at.elapsed() >= ACCEPT_WARNING_INTERVAL) {
                    tracing::warn!("accept failed ({error}); backing off until connections close");
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                    _ = watch.recv() => return,
                }
            }
            // The peer gave up before we accepted (ECONNABORTED and friends): nothing to do.
            Err(error) => tracing::debug!("accept failed: {error}"),
        }
    }
}

/// On shutdown, before the listener closes: takes the connections already in the kernel's queue
/// (their clients are sending their first request), which closing would otherwise reset.
/// Whatever arrives after this sees the port closed (when no other process of the server
/// listens on it) and is refused at once.
fn accept_queued<H: ConnectionHandler, A: Acceptor>(
    listener: A,
    handler: &Arc<H>,
    park: &Arc<IdlePark<A::Stream>>,
    permits: &Arc<Semaphore>,
    setup: &Accepted,
    watch: &ShutdownWatch,
) {
    let queued = listener.take_queued(permits.available_permits());
    if !queued.is_empty() {
        tracing::debug!(
            "took {} queued connection(s) before closing the listener",
            queued.len()
        );
    }
    for (socket, peer) in queued {
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            return;
        };
        let arrival = setup.arrival();
        spawn_connection(handler, park, socket, peer, watch.clone(), permit, arrival);
    }
}

/// Serves a connection on its own task (after its PROXY header, if one is expected); if the
/// handler gives it back idle, parks it.
fn spawn_connection<H: ConnectionHandler, S: Socket>(
    handler: &Arc<H>,
    park: &Arc<IdlePark<S>>,
    mut socket: S,
    peer: Peer,
    mut watch: ShutdownWatch,
    permit: OwnedSemaphorePermit,
    arrival: Arrival,
) {
    let handler = handler.clone();
    let park = park.clone();
    tokio::spawn(async move {
        let (peer, proxied, resumed, tls) = match arrival {
            Arrival::Accepted {
                proxy_protocol: None,
                tls,
            } => (peer, false, false, tls),
            Arrival::Accepted {
                proxy_protocol: Some(trusted),
                tls,
            } => {
                let timeout = handler.proxy_header_timeout();
                // Boxed: only connections that carry a header need room for reading it.
                let read =
                    proxy_protocol::read_peer(&mut socket, peer, &trusted, timeout, &mut watch);
                match Box::pin(read).await {
                    Ok(client) => (client, client != peer, false, tls),
                    Err(refusal) => {
                        tracing::info!("closed a connection from {peer}: {refusal}");
                        return;
                    }
                }
            }
            Arrival::Resumed { proxied } => (peer, proxied, true, None),
        };
        if let Some(handshaker) = tls {
            // Boxed: a plain connection's task should not carry the room for a handshake.
            Box::pin(serve_tls(handler, handshaker, socket, peer, watch)).await;
            drop(permit);
            return;
        }
        if let Ended::Idle { socket, until } = handler.handle(socket, peer, watch, resumed).await {
            park.hold(socket, permit, until, proxied.then_some(peer));
        }
    });
}

/// Runs the TLS handshake, then serves the TLS connection to its end (it is never parked).
async fn serve_tls<H: ConnectionHandler, S: Socket>(
    handler: Arc<H>,
    handshaker: Arc<Handshaker>,
    socket: S,
    peer: Peer,
    mut watch: ShutdownWatch,
) {
    if let Some(socket) = handshaker.accept(socket, peer, &mut watch).await {
        // Ended::Idle cannot come back: a TLS socket is not RAW_DESCRIPTOR, so HTTP never parks it.
        drop(handler.handle(socket, peer, watch, false).await);
    }
}

/// With `--metrics-bind`: publishes the worker's open connections (the connection permits in
/// use, beyond the accept loops' own) and requests in flight, a few times a second, until the
/// drain begins.
async fn sample_gauges<H: ConnectionHandler>(
    handler: Arc<H>,
    permits: Arc<Semaphore>,
    connection_permits: usize,
    mut shutdown: ShutdownSignal,
) {
    let mut tick = tokio::time::interval(crate::metrics::SAMPLE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let open = connection_permits.saturating_sub(permits.available_permits());
        crate::metrics::set_connection_gauges(open, handler.requests_in_flight());
    }
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM: retrying at once would fail again, so wait.
fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
