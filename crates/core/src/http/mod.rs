//! HTTP/1.1: one module per layer, from bytes to responses.
//!
//! [`access_log`] is what an access line says about a request (`--access-log-format`);
//! [`conn`] runs a connection (keep-alive, pipelining, timeouts, shutdown; an HTTP/2 connection,
//! chosen by ALPN or by its preface, through its `http2` module); [`request`] parses a
//! head, with [`target`] checking its target and host; [`body`] frames a body (`grammar` holds
//! the character classes it checks); [`router`] picks the handler; [`response`] writes the answer;
//! [`sendfile`] moves file bytes without copying them through user space, and [`transmit`] picks
//! it or a buffered copy (for TLS connections) for a response's large parts; [`date`] caches the
//! Date header; [`spool`] keeps a request body received whole before the application is called,
//! in memory lent by [`body_budget`] or in a file;
//! [`data_rate`] is the minimum rate a client must send a head or body at; [`forwarded`] reads
//! the client a trusted proxy names in X-Forwarded-For / Forwarded.

pub mod access_log;
pub mod body;
pub mod body_budget;
mod buffers;
pub mod conn;
pub mod data_rate;
pub mod date;
pub mod forwarded;
mod grammar;
mod idle_clock;
pub mod request;
pub mod response;
pub mod router;
pub mod sendfile;
pub mod spool;
pub mod target;
pub mod transmit;

pub use conn::HttpHandler;
