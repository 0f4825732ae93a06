//! Closing a line connection without losing the last answer.
//!
//! When a socket is closed while the client's bytes sit unread in the kernel, the kernel answers
//! with a reset instead of an orderly close, and the client's next read fails; depending on
//! timing the answer we just wrote (`error: line too long`, `connection closed`) is lost with
//! it. So after the last answer we half-close (the client sees end-of-stream after the answer)
//! and read and drop whatever the client still sends, for a bounded time and number of bytes,
//! before the socket is dropped. The HTTP connection does the same after refusing a request.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tern_core::socket::Socket;

/// Most bytes read and dropped after the last answer (256 KiB): a client that keeps sending
/// past this gets the reset; any client that stops sending within it closes cleanly.
pub const LINGER_BYTES: usize = 256 * 1024;
/// Longest wait for the client to stop sending after the last answer (2 s): long enough for a
/// client to read its answer and close, short enough that a silent one costs little.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// Bytes read per call while draining.
const DRAIN_CHUNK: usize = 4096;

/// Half-closes `socket` (its buffered answers must already be written), then reads and drops
/// the client's leftovers until it closes, [`LINGER_TIME`] passes or [`LINGER_BYTES`] were
/// read. The caller drops the socket afterwards.
pub async fn linger_close<S: Socket>(socket: &mut S) {
    if socket.shutdown().await.is_err() {
        return;
    }
    let mut scratch = vec![0u8; DRAIN_CHUNK];
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, socket.read(&mut scratch)).await {
            Ok(Ok(read)) if read > 0 => drained += read,
            // End of stream, an error or the deadline: nothing more worth waiting for.
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixStream;

    #[tokio::test]
    async fn half_closes_and_drains_until_the_client_closes() {
        let (mut client, mut server) = UnixStream::pair().unwrap();
        client.write_all(&[b'x'; 10_000]).await.unwrap();
        let draining = tokio::spawn(async move {
            linger_close(&mut server).await;
            server
        });
        // The server's side is shut for writing: the client reads end-of-stream.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        client.write_all(b"more").await.unwrap();
        client.shutdown().await.unwrap();
        drop(client);
        let server = tokio::time::timeout(Duration::from_secs(10), draining)
            .await
            .expect("the drain ends when the client closes")
            .unwrap();
        drop(server);
    }

    #[tokio::test]
    async fn gives_up_on_a_client_that_neither_sends_nor_closes() {
        let (_client, mut server) = UnixStream::pair().unwrap();
        tokio::time::timeout(LINGER_TIME * 5, linger_close(&mut server))
            .await
            .expect("the linger is bounded in time");
    }
}
