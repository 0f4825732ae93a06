//! Sending a byte range of a file with sendfile(2): the bytes go from the page cache to the socket
//! without passing through user space, so a multi-gigabyte download costs no memory.

use std::fs::File;
use std::io::{self, IoSlice};
use std::time::Duration;

use rustix::net::SendFlags;
use tokio::io::Interest;

use crate::socket::Socket;

/// Most bytes handed to one sendfile call, so one fast download cannot hold the event loop long.
const MAX_CHUNK: u64 = 1024 * 1024;

/// Sends `len` bytes of `file` from `offset`. Fails if the socket makes no progress for
/// `stall_timeout`, or if the file is shorter than promised (it shrank while being served).
pub async fn send_file<S: Socket>(
    socket: &S,
    file: &File,
    offset: u64,
    len: u64,
    stall_timeout: Duration,
) -> io::Result<()> {
    let mut position = offset;
    let end = offset + len;
    while position < end {
        let chunk = (end - position).min(MAX_CHUNK) as usize;
        let sent = socket.try_io(Interest::WRITABLE, || {
            // The kernel moves this copy of the offset, not the file's own.
            let mut file_offset = position;
            let n = rustix::fs::sendfile(socket, file, Some(&mut file_offset), chunk)?;
            Ok(n as u64)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its length",
                ))
            }
            Ok(n) => {
                position += n;
                tokio::task::consume_budget().await;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(socket, stall_timeout).await?;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Writes all of `bytes` with `MSG_MORE`, telling the kernel more data follows at once (the file),
/// so the head and the first file bytes leave in the same segments instead of a small one first.
pub async fn send_all_with_more<S: Socket>(
    socket: &S,
    bytes: &[u8],
    stall_timeout: Duration,
) -> io::Result<()> {
    let mut sent = 0;
    while sent < bytes.len() {
        let rest = &bytes[sent..];
        let result = socket.try_io(Interest::WRITABLE, || {
            Ok(rustix::net::send(
                socket,
                rest,
                SendFlags::MORE | SendFlags::NOSIGNAL,
            )?)
        });
        match result {
            Ok(n) => sent += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(socket, stall_timeout).await?;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Sends `first` then `second` with writev(2), so a large body needs no copy behind its head.
pub async fn send_vectored<S: Socket>(
    socket: &S,
    first: &[u8],
    second: &[u8],
    stall_timeout: Duration,
) -> io::Result<()> {
    let total = first.len() + second.len();
    let mut sent = 0;
    while sent < total {
        let (a, b) = if sent < first.len() {
            (&first[sent..], second)
        } else {
            (&[][..], &second[sent - first.len()..])
        };
        let result = socket.try_io(Interest::WRITABLE, || {
            Ok(rustix::io::writev(
                socket,
                &[IoSlice::new(a), IoSlice::new(b)],
            )?)
        });
        match result {
            Ok(n) => sent += n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(socket, stall_timeout).await?
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Waits until the socket takes more bytes; a client that reads nothing for `stall_timeout` fails.
async fn wait_writable<S: Socket>(socket: &S, stall_timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(stall_timeout, socket.writable()).await {
        Ok(ready) => ready,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}
