//! Splitting a byte stream into lines ending in "\n" or "\r\n", with a length limit.
//!
//! The buffer never grows past the limit (plus one read), so a client that sends an endless line,
//! or vanishes mid-line, costs only that much. While no partial line is pending the reader holds
//! no buffer at all.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

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
        LineReader { buf: BytesMut::new(), max_line, scanned: 0 }
    }

    /// True if a complete line is already buffered (no read needed).
    pub fn has_line(&self) -> bool {
        memchr::memchr(b'\n', &self.buf).is_some()
    }

    /// The next line, reading from `reader` as needed. Cancel-safe: dropping the future loses no data.
    pub async fn next_line<R: AsyncRead + Unpin>(&mut self, reader: &mut R, idle_timeout: Duration) -> io::Result<LineEvent> {
        loop {
            if let Some(event) = self.take_line() {
                return Ok(event);
            }
            if self.buf.is_empty() {
                // Release the allocation while waiting for a quiet client.
                self.buf = BytesMut::new();
            }
            self.buf.reserve(READ_CHUNK);
            match tokio::time::timeout(idle_timeout, reader.read_buf(&mut self.buf)).await {
                Err(_) => return Ok(LineEvent::Idle),
                Ok(Ok(0)) => {
                    if self.buf.is_empty() {
                        return Ok(LineEvent::Closed);
                    }
                    // A last line without a line ending still gets its answer.
                    let rest = self.buf.split().freeze();
                    self.scanned = 0;
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
                if end > self.max_line + 1 || (end == self.max_line + 1 && self.buf[end - 1] != b'\r') {
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

    #[tokio::test]
    async fn splits_lines_with_either_ending() {
        let mut input: &[u8] = b"one\r\ntwo\nthree";
        let mut reader = LineReader::new(16);
        let t = Duration::from_secs(1);
        assert_eq!(reader.next_line(&mut input, t).await.unwrap(), LineEvent::Line("one".into()));
        assert_eq!(reader.next_line(&mut input, t).await.unwrap(), LineEvent::Line("two".into()));
        assert_eq!(reader.next_line(&mut input, t).await.unwrap(), LineEvent::Line("three".into()));
        assert_eq!(reader.next_line(&mut input, t).await.unwrap(), LineEvent::Closed);
    }

    #[tokio::test]
    async fn refuses_long_lines_and_bad_utf8() {
        let t = Duration::from_secs(1);
        let mut input: &[u8] = b"\xff\xfe\nabcdefghij\n";
        let mut reader = LineReader::new(4);
        assert_eq!(reader.next_line(&mut input, t).await.unwrap(), LineEvent::InvalidUtf8);
        assert_eq!(reader.next_line(&mut input, t).await.unwrap(), LineEvent::TooLong);
        let mut exact: &[u8] = b"abcd\r\n";
        assert_eq!(LineReader::new(4).next_line(&mut exact, t).await.unwrap(), LineEvent::Line("abcd".into()));
    }
}
