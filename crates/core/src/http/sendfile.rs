//! Sending a byte range of a file with sendfile(2): the bytes go from the page cache to the socket
//! without passing through user space, so a multi-gigabyte download costs no memory.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

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
            let mut file_offset = position as libc::off_t;
            // SAFETY: both descriptors are open for the duration of the call; the kernel updates
            // `file_offset`, a local.
            let n = unsafe {
                libc::sendfile(
                    socket.as_raw_fd(),
                    file.as_raw_fd(),
                    &mut file_offset,
                    chunk,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
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
            // SAFETY: `rest` is a valid buffer for the duration of the call.
            let n = unsafe {
                libc::send(
                    socket.as_raw_fd(),
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
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
            // Built here, not held across an await: raw pointers are not Send.
            let parts = [
                libc::iovec {
                    iov_base: a.as_ptr() as *mut _,
                    iov_len: a.len(),
                },
                libc::iovec {
                    iov_base: b.as_ptr() as *mut _,
                    iov_len: b.len(),
                },
            ];
            // SAFETY: both iovecs describe live slices for the duration of the call.
            let n = unsafe { libc::writev(socket.as_raw_fd(), parts.as_ptr(), 2) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
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
