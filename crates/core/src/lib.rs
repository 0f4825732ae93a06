//! tern-core: the event-driven core of tern, with no knowledge of Python or of the command line.
//!
//! The principal types and the path of a request:
//! - [`config`] holds the validated configuration ([`config::ServerConfig`] for the process tree,
//!   [`config::HttpConfig`] and [`config::LineConfig`] for the protocols); the CLI builds it,
//!   everything else reads it.
//! - [`listener::bind_all`] binds the sockets once, in the [`supervisor`], before any worker exists.
//! - [`supervisor::run`] forks the worker processes; each runs a single-threaded tokio runtime
//!   ([`worker::run`]) and calls [`server::serve`], which accepts connections (with a connection
//!   limit and back-off when file descriptors run out) and hands each one to a
//!   [`connection::ConnectionHandler`].
//! - HTTP: [`http::HttpHandler`] reads a request head ([`http::request`]), frames the body
//!   ([`http::body`]), routes it to a static mount ([`static_files`]) and writes the response
//!   ([`http::response`]). An HTTP/2 connection (ALPN `h2`, or the preface on a plain listener)
//!   runs each stream through the same router, static files and service.
//! - Line services live in their own crate, tern-lines: its `LineHandler` is another
//!   [`connection::ConnectionHandler`], served the same way.
//! - Requests no static mount answers go to the [`service::Service`], if there is one (the WSGI bridge).
//! - A connection idle between requests may leave its task ([`connection::Ended::Idle`]) for the
//!   listener's idle park (`idle_park`), which hands it back to the accept loop when the client
//!   sends again.
//! - [`message`]: the request head, the forwarded client and the response, shared by the HTTP
//!   connection, the static files and the service.
//! - Behind a proxy: [`trusted_proxies`] says whose word about the client counts, in a
//!   [`proxy_protocol`] header at the start of a connection or in [`http::forwarded`] headers.
//! - [`logging`] writes the log and buffers access lines; [`access_format`] is a compiled
//!   `--access-log-format`, which [`http::access_log`] fills in per request.
//! - HTTPS: [`tls`] loads the certificate (in the supervisor, again on SIGHUP) and runs each
//!   connection's handshake; the TLS connection is one more [`socket::Socket`], served by the
//!   same generic HTTP code.
//! - [`metrics`]: counters every worker keeps in memory shared with the others, served in
//!   Prometheus's format on `--metrics-bind`.
//! - [`shutdown`] carries SIGTERM to every connection and tells the worker when all have drained.
//!
//! The modules depend on each other without cycles (`scripts/module_cycles.py` checks it): what
//! two of them share lives in a module below both, as [`message`] and [`connection`] do.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "tern runs on Linux only for now: it uses epoll, openat2, sendfile, inotify, \
     prctl(PR_SET_PDEATHSIG) and glibc's mallopt directly"
);

pub mod access_format;
pub mod clock;
pub mod config;
pub mod connection;
pub mod error;
pub mod health;
pub mod http;
mod idle_park;
pub mod listener;
pub mod logging;
pub mod malloc_tuning;
pub mod message;
pub mod metrics;
pub mod process;
pub mod proxy_protocol;
pub mod recycle;
pub mod rlimit;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod socket;
pub mod static_files;
pub mod supervisor;
pub mod tls;
pub mod trusted_proxies;
pub mod websocket;
pub mod worker;
