//! Why a request was refused, and the one place that maps each reason to its HTTP status.

use std::fmt;

/// A request the server refuses before any handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Syntax the server cannot parse safely (400); the text says what was wrong.
    Malformed(&'static str),
    /// The request line is longer than `--max-request-line` (414).
    RequestLineTooLong,
    /// The head is larger than `--max-header-size` (431).
    HeadersTooLarge,
    /// More header fields than `--max-headers` (431).
    TooManyHeaders,
    /// A protocol version other than HTTP/1.0 or HTTP/1.1 (505).
    UnsupportedVersion,
    /// A transfer coding other than chunked (501).
    UnsupportedTransferCoding,
    /// CONNECT (RFC 9110 §9.3.6): tern is an origin server and opens no tunnels, for any target
    /// (501, RFC 9110 §15.6.2; 405 would claim some other resource here might allow it).
    TunnelNotSupported,
    /// The body is larger than `--max-body-size` (413).
    BodyTooLarge,
    /// The head did not arrive within `--header-timeout` (408).
    HeaderTimeout,
    /// The client sent a head or body more slowly than `--min-data-rate` allows (408); the
    /// rate it kept, in bytes per second.
    TooSlow(u64),
    /// The application broke its side of the exchange before answering (500).
    Internal,
}

impl RequestError {
    /// The status code sent for this error (RFC 9110 §15.5, RFC 6585 §5 for 431).
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) => 400,
            RequestError::HeaderTimeout | RequestError::TooSlow(_) => 408,
            RequestError::BodyTooLarge => 413,
            RequestError::RequestLineTooLong => 414,
            RequestError::HeadersTooLarge | RequestError::TooManyHeaders => 431,
            RequestError::UnsupportedTransferCoding | RequestError::TunnelNotSupported => 501,
            RequestError::UnsupportedVersion => 505,
            RequestError::Internal => 500,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed(why) => write!(f, "malformed request: {why}"),
            RequestError::RequestLineTooLong => f.write_str("request line too long"),
            RequestError::HeadersTooLarge => f.write_str("request headers too large"),
            RequestError::TooManyHeaders => f.write_str("too many request headers"),
            RequestError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
            RequestError::UnsupportedTransferCoding => f.write_str("unsupported transfer coding"),
            RequestError::TunnelNotSupported => {
                f.write_str("CONNECT is not supported (no tunnels)")
            }
            RequestError::BodyTooLarge => f.write_str("request body too large"),
            RequestError::HeaderTimeout => f.write_str("request head not received in time"),
            RequestError::TooSlow(rate) => {
                write!(f, "sent at {rate} bytes/s, below the minimum data rate")
            }
            RequestError::Internal => f.write_str("the application failed to answer"),
        }
    }
}

impl std::error::Error for RequestError {}
