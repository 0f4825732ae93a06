//! The metrics listener's server, run by every worker: `GET /metrics` (or HEAD) answers the
//! whole server's metrics; any other path is a 404, any other method a 405. One request per
//! connection (`Connection: close`), which is all a Prometheus scrape needs.
//!
//! The workers share the listener (one accept queue), so whichever is free answers; since every
//! worker reads the same shared table, the answer does not depend on which one it was. A worker
//! closes its copy when its drain begins, as it does with the application's listeners.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::listener::Listener;
use crate::shutdown::ShutdownSignal;

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a scraper may take to send its request and read the answer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapes answered at once by one worker; more wait in the accept queue.
const CONCURRENT_SCRAPES: usize = 8;
/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics listener, in tokio's form.
enum MetricsListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// An accepted scrape connection.
enum Scrape {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl MetricsListener {
    fn from_std(listener: Listener) -> io::Result<MetricsListener> {
        Ok(match listener {
            Listener::Tcp(listener) => {
                listener.set_nonblocking(true)?;
                MetricsListener::Tcp(tokio::net::TcpListener::from_std(listener)?)
            }
            Listener::Unix(listener, _) => {
                listener.set_nonblocking(true)?;
                MetricsListener::Unix(tokio::net::UnixListener::from_std(listener)?)
            }
        })
    }

    async fn accept(&self) -> io::Result<Scrape> {
        Ok(match self {
            MetricsListener::Tcp(listener) => Scrape::Tcp(listener.accept().await?.0),
            MetricsListener::Unix(listener) => Scrape::Unix(listener.accept().await?.0),
        })
    }
}

/// Starts this worker's metrics endpoint on the current runtime, if metrics are on. It stops
/// accepting (and closes its listener) when `shutdown` fires.
pub fn spawn_endpoint(shutdown: ShutdownSignal) {
    let Some(listener) = super::take_listener() else {
        return;
    };
    match MetricsListener::from_std(listener) {
        Ok(listener) => drop(tokio::spawn(accept_loop(listener, shutdown))),
        Err(error) => tracing::error!("metrics: cannot listen: {error}"),
    }
}

async fn accept_loop(listener: MetricsListener, mut shutdown: ShutdownSignal) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_SCRAPES));
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.wait() => return,
        };
        let scrape = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait() => return,
        };
        match scrape {
            Ok(scrape) => {
                tokio::spawn(async move {
                    let exchange = async {
                        match scrape {
                            Scrape::Tcp(stream) => answer(stream).await,
                            Scrape::Unix(stream) => answer(stream).await,
                        }
                    };
                    if tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
                        .await
                        .is_err()
                    {
                        tracing::debug!("metrics: a scrape took too long; closed");
                    }
                    drop(permit);
                });
            }
            Err(error) => {
                tracing::debug!("metrics: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request head and answers it.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let response = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if memchr::memmem::find(&head, b"\r\n\r\n").is_some() {
            break respond(&head);
        }
        if head.len() > MAX_HEAD {
            break plain(431, "Request Header Fields Too Large", false);
        }
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

/// The answer to a complete request head.
fn respond(head: &[u8]) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) {
        return plain(400, "Bad Request", false);
    }
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or_default();
    let path = path.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return plain(404, "Not Found", method == "HEAD");
    }
    if method != "GET" && method != "HEAD" {
        let mut response = plain(405, "Method Not Allowed", false);
        // Before the blank line that ends the head.
        let end = response.len() - "method not allowed\n".len() - 2;
        response.splice(end..end, b"Allow: GET, HEAD\r\n".iter().copied());
        return response;
    }
    let body = super::render_all().unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method == "GET" {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

/// A short plain-text answer: the reason phrase in lower case as its body.
fn plain(status: u16, reason: &str, head_only: bool) -> Vec<u8> {
    let body = format!("{}\n", reason.to_ascii_lowercase());
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(response: Vec<u8>) -> String {
        String::from_utf8(response).unwrap()
    }

    #[test]
    fn other_paths_and_methods_are_refused() {
        assert!(text(respond(b"GET / HTTP/1.1\r\n\r\n")).starts_with("HTTP/1.1 404 "));
        let refused = text(respond(b"POST /metrics HTTP/1.1\r\n\r\n"));
        assert!(refused.starts_with("HTTP/1.1 405 "), "{refused}");
        assert!(
            refused.contains("\r\nAllow: GET, HEAD\r\n\r\nmethod not allowed\n"),
            "{refused}"
        );
        assert!(text(respond(b"GET\x01 / HTTP/1.1\r\n\r\n")).starts_with("HTTP/1.1 400 "));
    }

    #[test]
    fn the_metrics_path_answers_with_the_exposition_format() {
        let answer = text(respond(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
        let head = text(respond(b"HEAD /metrics HTTP/1.1\r\n\r\n"));
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }
}
