//! Request body framing (RFC 9112 §6): Content-Length or chunked, decoded incrementally.
//!
//! The decoder works on whatever bytes the connection has buffered and says how many it used;
//! reading more from the socket is the connection's job. Chunked syntax is strict (CRLF only,
//! bounded size lines and trailers) because lenient chunk parsing is how requests get smuggled.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::RequestError;

/// Longest chunk-size line (size, extensions, CRLF) we accept.
const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section we accept after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// Incremental body decoder with a size limit.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
    /// Body bytes produced so far.
    received: u64,
    /// Most body bytes allowed (`--max-body-size`).
    limit: u64,
    /// Trailer bytes seen so far; bounded by [`MAX_TRAILERS`] as a whole, not per line.
    trailer_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Content-Length framing with this many bytes left.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk's data with this many bytes left.
    ChunkData(u64),
    /// Expecting the CRLF that ends a chunk's data.
    ChunkDataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
    Done,
}

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete unit; read more and call again.
    NeedMore,
    /// The body is complete.
    Done,
}

impl BodyDecoder {
    pub fn new(framing: BodyFraming, limit: u64) -> Self {
        let state = match framing {
            BodyFraming::Empty => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::ChunkSize,
        };
        BodyDecoder {
            state,
            received: 0,
            limit,
            trailer_bytes: 0,
        }
    }

    /// True once the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    /// For Content-Length bodies, the bytes still expected; used to reject too-large bodies early.
    pub fn declared_remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            _ => None,
        }
    }

    /// Consumes framing and data from the front of `buf`, at most `max` data bytes.
    pub fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Result<Decoded, RequestError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::Length(0) => {
                    self.state = State::Done;
                    return Ok(Decoded::Done);
                }
                State::Length(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = clamp(left, buf.len(), max);
                    self.state = State::Length(left - take as u64);
                    return self.produce(buf, take);
                }
                State::ChunkSize => {
                    let Some(line_end) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_chunk_size(&buf[..line_end])?;
                    buf.advance(line_end + 2);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = clamp(left, buf.len(), max);
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return self.produce(buf, take);
                }
                State::ChunkDataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(RequestError::Malformed("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let Some(line_end) = find_crlf(buf, MAX_TRAILERS - self.trailer_bytes)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    self.trailer_bytes += line_end + 2;
                    if self.trailer_bytes >= MAX_TRAILERS {
                        return Err(RequestError::Malformed("trailer section too large"));
                    }
                    buf.advance(line_end + 2);
                    if line_end == 0 {
                        self.state = State::Done;
                    }
                }
            }
        }
    }

    fn produce(&mut self, buf: &mut BytesMut, take: usize) -> Result<Decoded, RequestError> {
        self.received += take as u64;
        if self.received > self.limit {
            return Err(RequestError::BodyTooLarge);
        }
        Ok(Decoded::Data(buf.split_to(take).freeze()))
    }
}

fn clamp(left: u64, available: usize, max: usize) -> usize {
    left.min(available as u64).min(max as u64) as usize
}

/// Position of the CRLF ending the first line, if it has arrived within `max` bytes.
fn find_crlf(buf: &[u8], max: usize) -> Result<Option<usize>, RequestError> {
    match memchr::memchr(b'\n', &buf[..buf.len().min(max)]) {
        Some(0) => Err(RequestError::Malformed("bare LF in chunked framing")),
        Some(lf) if buf[lf - 1] == b'\r' => Ok(Some(lf - 1)),
        Some(_) => Err(RequestError::Malformed("bare LF in chunked framing")),
        None if buf.len() >= max => Err(RequestError::Malformed("chunk line too long")),
        None => Ok(None),
    }
}

/// `1a;name=value` → 26. Extensions are ignored; the size must be 1–16 hex digits.
fn parse_chunk_size(line: &[u8]) -> Result<u64, RequestError> {
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(digits_end);
    if digits.is_empty() || digits.len() > 15 {
        return Err(RequestError::Malformed("invalid chunk size"));
    }
    // Only spaces and tabs may precede extensions (a bare CR here is how parsers get desynchronised).
    let rest = match rest.iter().position(|&b| b != b' ' && b != b'\t') {
        Some(start) => &rest[start..],
        None => &[][..],
    };
    if !rest.is_empty() && rest[0] != b';' {
        return Err(RequestError::Malformed("invalid chunk size"));
    }
    let text =
        std::str::from_utf8(digits).map_err(|_| RequestError::Malformed("invalid chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| RequestError::Malformed("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: BodyFraming, input: &[u8]) -> Result<Vec<u8>, RequestError> {
        let mut decoder = BodyDecoder::new(framing, 1 << 20);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf, usize::MAX)? {
                Decoded::Data(data) => out.extend_from_slice(&data),
                Decoded::Done => return Ok(out),
                Decoded::NeedMore => return Err(RequestError::Malformed("incomplete")),
            }
        }
    }

    #[test]
    fn decodes_chunked_with_extensions_and_trailers() {
        let body = decode_all(
            BodyFraming::Chunked,
            b"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, b"hello world");
    }

    #[test]
    fn decodes_content_length() {
        assert_eq!(
            decode_all(BodyFraming::Length(3), b"abcdef").unwrap(),
            b"abc"
        );
    }

    #[test]
    fn rejects_bad_chunks() {
        assert!(decode_all(BodyFraming::Chunked, b"zz\r\n").is_err());
        assert!(decode_all(BodyFraming::Chunked, b"5\r\nhelloXX").is_err());
        assert!(decode_all(BodyFraming::Chunked, b"5\nhello").is_err());
    }

    #[test]
    fn rejects_a_bare_cr_before_extensions_and_endless_trailers() {
        assert!(decode_all(BodyFraming::Chunked, b"5\r;x\r\nhello\r\n0\r\n\r\n").is_err());
        let mut endless = b"0\r\n".to_vec();
        for _ in 0..2000 {
            endless.extend_from_slice(b"X-Trailer: 0123456789\r\n");
        }
        assert!(decode_all(BodyFraming::Chunked, &endless).is_err());
    }

    #[test]
    fn enforces_the_limit() {
        let mut decoder = BodyDecoder::new(BodyFraming::Length(10), 4);
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        assert_eq!(
            decoder.decode(&mut buf, usize::MAX),
            Err(RequestError::BodyTooLarge)
        );
    }
}
