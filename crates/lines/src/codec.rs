//! Splitting a byte stream into lines ending in "\n" or "\r\n", with a length limit.
//!
//! The buffer never grows past the limit (plus one read), so a client that sends an endless line,
//! or vanishes mid-line, costs only that much. While no partial line is pending the reader holds
//! no buffer at all: it waits for readability first and allocates only when bytes are there.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;

use tern_core::socket::Socket;

/// Bytes requested per read.
const READ_CHUNK: usize = 4096;

/// What the reader produced.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// One line, without its line ending.
    Line(String),
    /// A line that is not valid UTF-8 (already consumed).
    InvalidUtf8,
    /// A line longer than the limit; the stream cannot be resynchronised, so the caller closes.
    TooLong,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// The peer closed its side.
    Closed,
}

#[derive(Debug)]
pub struct LineReader {
    buf: BytesMut,
    max_line: usize,
    /// Bytes at the front of `buf` already searched for '\n'.
    scanned: usize,
}

impl LineReader {
    pub fn new(max_line: usize) -> Self {
        LineReader {
            buf: BytesMut::new(),
            max_line,
            scanned: 0,
        }
    }

    /// True if a complete line is already buffered (no read needed).
    pub fn has_line(&self) -> bool {
        memchr::memchr(b'\n', &self.buf).is_some()
    }

    /// The next line, reading from `socket` as needed. Cancel-safe: dropping the future loses no data.
    pub async fn next_line<S: Socket>(
        &mut self,
        socket: &mut S,
        idle_timeout: Duration,
    ) -> io::Result<LineEvent> {
        loop {
            if let Some(event) = self.take_line() {
                return Ok(event);
            }
            let read = async {
                if self.buf.is_empty() {
                    // Wait for a quiet client without holding a buffer.
                    self.buf = BytesMut::new();
                    socket.readable().await?;
                }
                self.buf.reserve(READ_CHUNK);
                socket.read_buf(&mut self.buf).await
            };
            match tokio::time::timeout(idle_timeout, read).await {
                Err(_) => return Ok(LineEvent::Idle),
                Ok(Ok(0)) => {
                    if self.buf.is_empty() {
                        return Ok(LineEvent::Closed);
                    }
                    // A last line without a line ending still gets its answer, within the
                    // same limit as any other line.
                    let rest = self.buf.split().freeze();
                    self.scanned = 0;
                    if self.is_too_long(rest.len(), rest.last() == Some(&b'\r')) {
                        return Ok(LineEvent::TooLong);
                    }
                    return Ok(decode(&rest));
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(error),
            }
        }
    }

    fn take_line(&mut self) -> Option<LineEvent> {
        match memchr::memchr(b'\n', &self.buf[self.scanned..]) {
            Some(offset) => {
                let end = self.scanned + offset;
                self.scanned = 0;
                if self.is_too_long(end, end > 0 && self.buf[end - 1] == b'\r') {
                    return Some(LineEvent::TooLong);
                }
                let line = self.buf.split_to(end).freeze();
                self.buf.advance(1);
                Some(decode(&line))
            }
            None if self.buf.len() > self.max_line + 1 => Some(LineEvent::TooLong),
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }
}

impl LineReader {
    /// Whether a line of `length` bytes (with its CR, if `ends_in_cr`, but not its LF) is over
    /// the limit: the CR of a CRLF ending does not count.
    fn is_too_long(&self, length: usize, ends_in_cr: bool) -> bool {
        length > self.max_line + 1 || (length == self.max_line + 1 && !ends_in_cr)
    }
}

fn decode(line: &[u8]) -> LineEvent {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match std::str::from_utf8(line) {
        Ok(text) => LineEvent::Line(text.to_owned()),
        Err(_) => LineEvent::InvalidUtf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixStream;

    /// A socket whose peer sent `input` and closed.
    async fn socket_with(input: &[u8]) -> UnixStream {
        let (mut peer, ours) = UnixStream::pair().unwrap();
        peer.write_all(input).await.unwrap();
        peer.shutdown().await.unwrap();
        ours
    }

    #[tokio::test]
    async fn splits_lines_with_either_ending() {
        let mut input = socket_with(b"one\r\ntwo\nthree").await;
        let mut reader = LineReader::new(16);
        let t = Duration::from_secs(5);
        assert_eq!(
            reader.next_line(&mut input, t).await.unwrap(),
            LineEvent::Line("one".into())
        );
        assert_eq!(
            reader.next_line(&mut input, t).await.unwrap(),
            LineEvent::Line("two".into())
        );
        assert_eq!(
            reader.next_line(&mut input, t).await.unwrap(),
            LineEvent::Line("three".into())
        );
        assert_eq!(
            reader.next_line(&mut input, t).await.unwrap(),
            LineEvent::Closed
        );
    }

    #[tokio::test]
    async fn refuses_long_lines_and_bad_utf8() {
        let t = Duration::from_secs(5);
        let mut input = socket_with(b"\xff\xfe\nabcdefghij\n").await;
        let mut reader = LineReader::new(4);
        assert_eq!(
            reader.next_line(&mut input, t).await.unwrap(),
            LineEvent::InvalidUtf8
        );
        assert_eq!(
            reader.next_line(&mut input, t).await.unwrap(),
            LineEvent::TooLong
        );
        let mut exact = socket_with(b"abcd\r\n").await;
        assert_eq!(
            LineReader::new(4).next_line(&mut exact, t).await.unwrap(),
            LineEvent::Line("abcd".into())
        );
    }
}
