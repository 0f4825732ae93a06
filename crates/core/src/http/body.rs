//! Request body framing (RFC 9112 §6): Content-Length or chunked, decoded incrementally.
//!
//! The decoder works on whatever bytes the connection has buffered and says how many it used;
//! reading more from the socket is the connection's job. Chunked syntax is strict (CRLF only,
//! chunk extensions and trailer fields checked against their grammar, bounded size lines,
//! extensions and trailers) because lenient chunk parsing is how requests get smuggled.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::RequestError;
use crate::http::grammar::{is_field_value_byte, quoted_string_len, token_len};
use crate::message::request::BodyFraming;

/// Longest chunk-size line (size, extensions, CRLF) we accept, in bytes.
const MAX_CHUNK_LINE: usize = 4096;
/// Most chunk-extension bytes in one body, summed over its chunks (hyper's limit): tern ignores
/// extensions, so a client sending 1-byte chunks with 4 KB extensions would otherwise make us
/// parse 4000 times what the body limit counts.
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;
/// Largest trailer section we accept after the last chunk, in bytes.
const MAX_TRAILERS: usize = 16 * 1024;

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
    /// Chunk-extension bytes seen so far; bounded by [`MAX_CHUNK_EXTENSIONS`].
    extension_bytes: usize,
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
            extension_bytes: 0,
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
                    let ChunkLine {
                        size,
                        extension_len,
                    } = parse_chunk_line(&buf[..line_end])?;
                    self.extension_bytes += extension_len;
                    if self.extension_bytes > MAX_CHUNK_EXTENSIONS {
                        return Err(RequestError::Malformed("chunk extensions too large"));
                    }
                    // Refused on the declared size, before its bytes are waited for.
                    if self.received.saturating_add(size) > self.limit {
                        return Err(RequestError::BodyTooLarge);
                    }
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
                    if line_end > 0 {
                        check_trailer_field(&buf[..line_end])?;
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

/// A chunk-size line without its CRLF.
#[derive(Debug, PartialEq, Eq)]
struct ChunkLine {
    /// The chunk's data length.
    size: u64,
    /// How many bytes of the line are extensions (counted against [`MAX_CHUNK_EXTENSIONS`]).
    extension_len: usize,
}

/// `1a;name=value` → 26 (RFC 9112 §7.1: chunk-size = 1*HEXDIG, then chunk-ext). The size may
/// have leading zeros but must fit in 64 bits; extensions are checked, then ignored.
fn parse_chunk_line(line: &[u8]) -> Result<ChunkLine, RequestError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(RequestError::Malformed("invalid chunk size"));
    }
    let mut size: u64 = 0;
    for &digit in &line[..digits] {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            _ => (digit | 0x20) - b'a' + 10,
        };
        size = size
            .checked_mul(16)
            .and_then(|shifted| shifted.checked_add(u64::from(value)))
            .ok_or(RequestError::Malformed(
                "chunk size does not fit in 64 bits",
            ))?;
    }
    let extensions = &line[digits..];
    check_chunk_extensions(extensions)?;
    Ok(ChunkLine {
        size,
        extension_len: extensions.len(),
    })
}

/// `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`, where the name is
/// a token and the value a token or quoted-string (RFC 9112 §7.1.1). Anything else, notably a
/// bare CR, NUL or another control byte, is refused: a parser that skips to the line end without
/// looking would frame the body differently from one that stops at the odd byte.
fn check_chunk_extensions(mut rest: &[u8]) -> Result<(), RequestError> {
    const INVALID: RequestError = RequestError::Malformed("invalid chunk extension");
    loop {
        if rest.is_empty() {
            return Ok(());
        }
        // Whitespace is allowed before a ";" only, never at the end of the line.
        let Some(after_semicolon) = skip_whitespace(rest).strip_prefix(b";") else {
            return Err(INVALID);
        };
        rest = skip_whitespace(after_semicolon);
        let name = token_len(rest);
        if name == 0 {
            return Err(INVALID);
        }
        rest = &rest[name..];
        let before_equals = skip_whitespace(rest);
        if let Some(after_equals) = before_equals.strip_prefix(b"=") {
            rest = skip_whitespace(after_equals);
            let value = match rest.first() {
                Some(b'"') => quoted_string_len(rest).ok_or(INVALID)?,
                _ => token_len(rest),
            };
            if value == 0 {
                return Err(INVALID);
            }
            rest = &rest[value..];
        }
    }
}

/// BWS: spaces and tabs (RFC 9110 §5.6.3).
fn skip_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5, §7.1.2), without the CRLF: no whitespace
/// before the colon, no line folding, no control bytes but tab in the value.
fn check_trailer_field(line: &[u8]) -> Result<(), RequestError> {
    let name = token_len(line);
    let valid = name > 0
        && line.get(name) == Some(&b':')
        && line[name + 1..].iter().all(|&b| is_field_value_byte(b));
    if valid {
        Ok(())
    } else {
        Err(RequestError::Malformed("invalid trailer field"))
    }
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

    fn status_of(input: &[u8]) -> Result<Vec<u8>, u16> {
        decode_all(BodyFraming::Chunked, input).map_err(|error| error.status())
    }

    #[test]
    fn accepts_every_chunk_extension_form_of_the_grammar() {
        // RFC 9112 §7.1.1: name, name=token, name="quoted", with BWS around ';' and '='.
        for line in [
            &b"3;a"[..],
            b"3;a=b",
            b"3 ;a = b",
            b"3\t;\ta\t=\tb",
            b"3;a=\"\"",
            b"3;a=\"x y;z=\\\"w\\\"\"",
            b"3;a;b=c;d=\"e\"",
        ] {
            let mut input = line.to_vec();
            input.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
            assert_eq!(
                status_of(&input),
                Ok(b"abc".to_vec()),
                "{:?}",
                line.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn refuses_hostile_chunk_extensions() {
        for line in [
            &b"3;a=b\rc"[..], // a bare CR: another parser may end the line there
            b"3;a=\0",        // NUL
            b"3;a\x01=b",     // a control byte in the name
            b"3;a=b\x7f",     // DEL in the value
            b"3;a=\"b\x01\"", // a control byte inside quotes
            b"3;a=\"b",       // an unterminated quoted-string
            b"3;=b",          // no name
            b"3;a=",          // no value after '='
            b"3;a b",         // two tokens without ';'
            b"3 x",           // junk after the size
            b"3 ",            // whitespace is allowed before a ';' only
            b"3;a=b\t",       // ...and never at the end of the line
            b"3;a=b c",       // junk after a value
            b"3;\xe9=b",      // a name that is not a token
        ] {
            let mut input = line.to_vec();
            input.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
            assert_eq!(
                status_of(&input),
                Err(400),
                "{:?}",
                line.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn caps_the_chunk_extension_bytes_of_a_whole_body() {
        // `chunks` one-byte chunks, each with an extension `;xxx…` of `extension_len` bytes.
        let body_with = |chunks: usize, extension_len: usize| {
            let mut input = Vec::new();
            for _ in 0..chunks {
                input.extend_from_slice(b"1;");
                input.resize(input.len() + extension_len - 1, b'x');
                input.extend_from_slice(b"\r\na\r\n");
            }
            input.extend_from_slice(b"0\r\n\r\n");
            input
        };
        // Each line is within MAX_CHUNK_LINE; the sum over the body decides.
        let eighth = MAX_CHUNK_EXTENSIONS / 8;
        assert_eq!(status_of(&body_with(8, eighth)).map(|b| b.len()), Ok(8));
        assert_eq!(status_of(&body_with(9, eighth)), Err(400));
        assert_eq!(
            status_of(&body_with(MAX_CHUNK_EXTENSIONS / 2 + 1, 2)),
            Err(400)
        );
    }

    #[test]
    fn chunk_sizes_are_hex_with_leading_zeros_and_must_fit_in_64_bits() {
        assert_eq!(
            status_of(b"000000000000000000000003\r\nabc\r\n0\r\n\r\n"),
            Ok(b"abc".to_vec())
        );
        assert_eq!(
            status_of(b"A\r\n0123456789\r\n0\r\n\r\n").map(|b| b.len()),
            Ok(10)
        );
        assert_eq!(status_of(b"10000000000000000\r\n"), Err(400));
        assert_eq!(status_of(b"fffffffffffffffff\r\n"), Err(400));
        assert_eq!(status_of(b"-3\r\nabc\r\n0\r\n\r\n"), Err(400));
        assert_eq!(status_of(b"+3\r\nabc\r\n0\r\n\r\n"), Err(400));
        assert_eq!(status_of(b"0x3\r\nabc\r\n0\r\n\r\n"), Err(400));
        assert_eq!(status_of(b" 3\r\nabc\r\n0\r\n\r\n"), Err(400));
        assert_eq!(status_of(b"\r\n"), Err(400));
        assert_eq!(
            parse_chunk_line(b"ffffffffffffffff").map(|line| line.size),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn a_declared_chunk_over_the_limit_is_refused_before_its_data() {
        // RFC 9110 §15.5.14: 413 as soon as the size is known; the data has not arrived.
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked, 4);
        let mut buf = BytesMut::from(&b"5\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf, usize::MAX),
            Err(RequestError::BodyTooLarge)
        );
        // The running total counts: 3 bytes, then a declared 2.
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked, 4);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n2\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf, usize::MAX),
            Ok(Decoded::Data(Bytes::from_static(b"abc")))
        );
        assert_eq!(
            decoder.decode(&mut buf, usize::MAX),
            Err(RequestError::BodyTooLarge)
        );
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked, u64::MAX - 1);
        let mut buf = BytesMut::from(&b"ffffffffffffffff\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut buf, usize::MAX),
            Err(RequestError::BodyTooLarge)
        );
        // Exactly at the limit is fine.
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked, 4);
        let mut buf = BytesMut::from(&b"4\r\nabcd\r\n0\r\n\r\n"[..]);
        assert!(matches!(
            decoder.decode(&mut buf, usize::MAX),
            Ok(Decoded::Data(_))
        ));
        assert_eq!(decoder.decode(&mut buf, usize::MAX), Ok(Decoded::Done));
    }

    #[test]
    fn trailer_fields_follow_the_field_grammar() {
        // RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ).
        assert_eq!(
            status_of(b"0\r\nX-A: 1\r\nX-B:\tv v \r\nX-C:\r\n\r\n"),
            Ok(Vec::new())
        );
        for trailer in [
            &b"X-A: a\rb"[..], // a bare CR
            b"X-A: a\0b",      // NUL
            b"X-A: a\x01b",    // another control byte
            b" folded",        // obs-fold
            b"\tfolded",       // obs-fold with a tab
            b"nocolon",        // no colon
            b"X-A : a",        // whitespace before the colon
            b": a",            // no name
            b"X@A: a",         // a name that is not a token
        ] {
            let mut input = b"0\r\nX-Ok: 1\r\n".to_vec();
            input.extend_from_slice(trailer);
            input.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                status_of(&input),
                Err(400),
                "{:?}",
                trailer.escape_ascii().to_string()
            );
        }
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
