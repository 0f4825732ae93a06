//! HTTPS: TLS 1.2 and 1.3 on the listeners marked for it, with rustls (ring as its crypto
//! provider; the README's "HTTPS" section says why).
//!
//! - [`load`] reads the certificate, key and client CAs (PEM) into a rustls server config;
//! - [`current`] holds that config for the process: loaded by the supervisor at start-up (a bad
//!   file stops tern before anything listens), loaded again on SIGHUP (a bad new file is logged
//!   and the old config kept), and inherited by every worker forked after;
//! - [`handshake`] runs a new connection's handshake in its task, bounded in time and in how many
//!   run at once, and turns away what is not TLS with a log line;
//! - [`stream`] is the resulting connection, a [`crate::socket::Socket`] the HTTP code serves like
//!   any other (generic, so plain connections pay nothing for TLS existing);
//! - [`subject`] writes a client certificate's names for the application (SSL_CLIENT_S_DN).
//!
//! TLS connections are not parked by the idle park: their state lives in user space (rustls's
//! session), not only in the descriptor. See `crate::idle_park` and the README for the cost.

pub mod current;
pub mod handshake;
pub mod load;
pub mod stream;
pub mod subject;

pub use handshake::Handshaker;
pub use stream::TlsSocket;
