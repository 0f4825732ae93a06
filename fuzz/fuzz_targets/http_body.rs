//! Fuzzes the body decoder (`http::body::BodyDecoder`), chunked and Content-Length.
//!
//! Checks, besides "no panic": no piece is longer than asked for and every call makes progress;
//! the decoder never yields more than the Content-Length or the chunk sizes declare, nor more than
//! its limit; it agrees with a plain reference decoder of the chunked grammar (RFC 9112 §7.1);
//! bytes after the body stay in the buffer; and the outcome is the same whatever the reads.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::error::RequestError;
use tern_core::http::body::{BodyDecoder, BodyFraming, Decoded};
use tern_fuzz::{split_into_reads, Rng};

/// The decoder's own bounds (private constants in body.rs): longest chunk-size line, CRLF
/// included, and largest trailer section, final CRLF included, both exclusive of the last byte.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_input(data);
    let declared = rng.below(data.len() + 8) as u64;
    for framing in [BodyFraming::Chunked, BodyFraming::Length(declared)] {
        let limit = if rng.coin() {
            u64::MAX
        } else {
            rng.below(data.len() + 1) as u64
        };
        let max = if rng.coin() {
            usize::MAX
        } else {
            1 + rng.below(16)
        };
        let whole = decode(framing, limit, max, &[data]);
        let reads = split_into_reads(data, &mut rng);
        let split = decode(framing, limit, max, &reads);
        match (&whole, &split) {
            // Before a too-large error, how much was handed out depends on the reads.
            (Outcome::Refused(RequestError::BodyTooLarge), Outcome::Refused(_))
            | (Outcome::Refused(_), Outcome::Refused(RequestError::BodyTooLarge)) => {}
            _ => assert_eq!(whole, split, "whole input vs {} reads", reads.len()),
        }
        check_against_reference(framing, limit, data, &whole);
    }
});

#[derive(Debug, PartialEq)]
enum Outcome {
    /// The body, and how many input bytes its framing took.
    Done {
        body: Vec<u8>,
        consumed: usize,
    },
    /// The input ended first; the body so far.
    NeedMore {
        body: Vec<u8>,
    },
    Refused(RequestError),
}

/// Feeds `reads` one after the other, calling `decode` until it needs more, as the connection does.
fn decode(framing: BodyFraming, limit: u64, max: usize, reads: &[&[u8]]) -> Outcome {
    let mut decoder = BodyDecoder::new(framing, limit);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    let mut body = Vec::new();
    // No reads at all still asks once: an empty body is done before any byte arrives.
    let reads = if reads.is_empty() { &[&b""[..]] } else { reads };
    for read in reads {
        buf.extend_from_slice(read);
        fed += read.len();
        // Every piece of data consumes at least one byte, so more calls than bytes is a livelock.
        let most_calls = buf.len() + 2;
        for call in 0.. {
            assert!(call <= most_calls, "the decoder makes no progress");
            let before = buf.len();
            match decoder.decode(&mut buf, max) {
                Ok(Decoded::Data(data)) => {
                    assert!(!data.is_empty(), "an empty piece of body");
                    assert!(data.len() <= max, "a piece longer than asked for");
                    assert!(before - buf.len() >= data.len());
                    body.extend_from_slice(&data);
                    assert!(body.len() as u64 <= limit, "more body than the limit");
                    if let BodyFraming::Length(declared) = framing {
                        assert!(body.len() as u64 <= declared, "more than Content-Length");
                    }
                }
                Ok(Decoded::NeedMore) => {
                    assert!(!decoder.is_done());
                    break;
                }
                Ok(Decoded::Done) => {
                    assert!(decoder.is_done());
                    let after = buf.clone();
                    assert_eq!(decoder.decode(&mut buf, max), Ok(Decoded::Done));
                    assert_eq!(buf, after, "a finished decoder took more bytes");
                    return Outcome::Done {
                        body,
                        consumed: fed - buf.len(),
                    };
                }
                Err(error) => return Outcome::Refused(error),
            }
        }
    }
    Outcome::NeedMore { body }
}

fn check_against_reference(framing: BodyFraming, limit: u64, data: &[u8], got: &Outcome) {
    let expected = match framing {
        BodyFraming::Empty => Reference::Done {
            body: Vec::new(),
            consumed: 0,
        },
        BodyFraming::Length(declared) => {
            let available = data
                .len()
                .min(usize::try_from(declared).unwrap_or(usize::MAX));
            let body = data[..available].to_vec();
            if (available as u64) < declared {
                Reference::Incomplete { body }
            } else {
                Reference::Done {
                    body,
                    consumed: available,
                }
            }
        }
        BodyFraming::Chunked => reference_chunked(data),
    };
    let over_limit = |body: &[u8]| body.len() as u64 > limit;
    match (expected, got) {
        (Reference::Done { body, .. } | Reference::Incomplete { body }, got)
            if over_limit(&body) =>
        {
            assert_eq!(got, &Outcome::Refused(RequestError::BodyTooLarge));
        }
        (Reference::Done { body, consumed }, got) => {
            assert_eq!(got, &Outcome::Done { body, consumed });
        }
        (Reference::Incomplete { body }, got) => {
            assert_eq!(got, &Outcome::NeedMore { body });
        }
        (Reference::Invalid, got) => {
            assert!(matches!(
                got,
                Outcome::Refused(RequestError::Malformed(_) | RequestError::BodyTooLarge)
            ));
        }
    }
}

/// What a whole-buffer reading of the chunked grammar says about the input.
enum Reference {
    Done { body: Vec<u8>, consumed: usize },
    Incomplete { body: Vec<u8> },
    Invalid,
}

/// The result of looking for one CRLF-terminated line at the front of the input.
enum Line {
    /// The line's length without its CRLF.
    Complete(usize),
    Partial,
    Invalid,
}

/// A line ends at its first LF, which must follow a CR and lie within `window` bytes.
fn next_line(rest: &[u8], window: usize) -> Line {
    match rest.iter().position(|&b| b == b'\n') {
        Some(lf) if lf < window && lf > 0 && rest[lf - 1] == b'\r' => Line::Complete(lf - 1),
        Some(lf) if lf < window => Line::Invalid,
        _ if rest.len() >= window => Line::Invalid,
        _ => Line::Partial,
    }
}

/// `chunk-size [ BWS ; chunk-ext ]`: 1 to 15 hex digits, optional spaces or tabs, then either the
/// end or extensions (not checked).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let size_part = match line.iter().position(|&b| b == b';') {
        Some(semicolon) => &line[..semicolon],
        None => line,
    };
    let mut digits = size_part;
    while let [rest @ .., b' ' | b'\t'] = digits {
        digits = rest;
    }
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

fn reference_chunked(data: &[u8]) -> Reference {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_len = match next_line(&data[pos..], MAX_CHUNK_LINE) {
            Line::Complete(len) => len,
            Line::Partial => return Reference::Incomplete { body },
            Line::Invalid => return Reference::Invalid,
        };
        let Some(size) = chunk_size(&data[pos..pos + line_len]) else {
            return Reference::Invalid;
        };
        pos += line_len + 2;
        if size == 0 {
            break;
        }
        let available = (data.len() - pos) as u64;
        if available < size {
            body.extend_from_slice(&data[pos..]);
            return Reference::Incomplete { body };
        }
        let size = size as usize;
        body.extend_from_slice(&data[pos..pos + size]);
        pos += size;
        match &data[pos..] {
            [] | [_] => return Reference::Incomplete { body },
            [b'\r', b'\n', ..] => pos += 2,
            _ => return Reference::Invalid,
        }
    }
    let mut trailer_bytes = 0;
    loop {
        let line_len = match next_line(&data[pos..], MAX_TRAILERS - trailer_bytes) {
            Line::Complete(len) => len,
            Line::Partial => return Reference::Incomplete { body },
            Line::Invalid => return Reference::Invalid,
        };
        trailer_bytes += line_len + 2;
        if trailer_bytes >= MAX_TRAILERS {
            return Reference::Invalid;
        }
        pos += line_len + 2;
        if line_len == 0 {
            return Reference::Done {
                body,
                consumed: pos,
            };
        }
    }
}
