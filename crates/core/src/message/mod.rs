//! The HTTP messages as handlers see them: a parsed request head, what a trusted proxy said about
//! the client, and a response to write.
//!
//! The HTTP connection ([`crate::http`]) produces and writes them; the static files
//! ([`crate::static_files`]) and applications ([`crate::service`]) read and build them. Living here,
//! below all three, they let each of those depend on the messages without depending on another.

pub mod forwarded;
pub mod request;
pub mod response;
