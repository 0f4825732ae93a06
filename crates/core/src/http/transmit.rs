//! Writing a response's large parts (a file range, a large body piece) behind what is buffered:
//! straight to the descriptor on plain connections (sendfile(2), `send` with MSG_MORE, writev),
//! through the stream on TLS ones, where every byte must be encrypted by rustls first.
//!
//! The TLS path reads the file in [`COPY_CHUNK`] pieces into one buffer and writes each through
//! the stream; it ends with a flush, so no encrypted byte is left behind in rustls when the
//! connection goes on to wait for the client. The choice is [`Socket::RAW_DESCRIPTOR`], a
//! constant: each connection type compiles to its own path alone. (Kernel TLS, which would let
//! sendfile encrypt, is not used.)

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::http::sendfile::{send_all_with_more, send_file, send_vectored};
use crate::socket::Socket;

/// The piece of a file read and written at a time on a TLS connection: four TLS records, few
/// enough system calls, and a buffer that is held only while the file is sent.
pub const COPY_CHUNK: usize = 64 * 1024;

/// Sends `head` (the bytes buffered before the file: response heads, a chunk-size line), then
/// `len` bytes of `file` from `offset`. Fails if the client takes nothing for `stall_timeout`,
/// or if the file is shorter than promised.
pub async fn head_and_file<S: Socket>(
    socket: &mut S,
    head: &[u8],
    file: &File,
    offset: u64,
    len: u64,
    stall_timeout: Duration,
) -> io::Result<()> {
    if S::RAW_DESCRIPTOR {
        send_all_with_more(socket, head, stall_timeout).await?;
        return send_file(socket, file, offset, len, stall_timeout).await;
    }
    let mut buffer = Vec::with_capacity(COPY_CHUNK.max(head.len()));
    buffer.extend_from_slice(head);
    let mut position = offset;
    let end = offset + len;
    loop {
        let room = COPY_CHUNK.saturating_sub(buffer.len());
        let want = (end - position).min(room as u64) as usize;
        if want > 0 {
            let start = buffer.len();
            buffer.resize(start + want, 0);
            let read = file.read_at(&mut buffer[start..], position)?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its length",
                ));
            }
            buffer.truncate(start + read);
            position += read as u64;
        }
        write_within(socket, &buffer, stall_timeout).await?;
        buffer.clear();
        if position == end {
            return flush_within(socket, stall_timeout).await;
        }
    }
}

/// Sends `first` then `second`: one writev on plain connections (no copy of a large body behind
/// its head), two writes and a flush through TLS.
pub async fn two<S: Socket>(
    socket: &mut S,
    first: &[u8],
    second: &[u8],
    stall_timeout: Duration,
) -> io::Result<()> {
    if S::RAW_DESCRIPTOR {
        return send_vectored(socket, first, second, stall_timeout).await;
    }
    write_within(socket, first, stall_timeout).await?;
    write_within(socket, second, stall_timeout).await?;
    flush_within(socket, stall_timeout).await
}

async fn write_within<S: Socket>(socket: &mut S, bytes: &[u8], stall: Duration) -> io::Result<()> {
    match tokio::time::timeout(stall, socket.write_all(bytes)).await {
        Ok(written) => written,
        Err(_) => Err(stalled()),
    }
}

/// Hands what the stream still buffers (TLS records) to the kernel.
pub async fn flush_within<S: Socket>(socket: &mut S, stall: Duration) -> io::Result<()> {
    match tokio::time::timeout(stall, socket.flush()).await {
        Ok(flushed) => flushed,
        Err(_) => Err(stalled()),
    }
}

fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")
}
