//! Fuzzes the body decoder (`http::body::BodyDecoder`), chunked and Content-Length.
//!
//! Checks, besides "no panic": no piece is longer than asked for and every call makes progress;
//! the decoder never yields more than the Content-Length or the chunk sizes declare, nor more than
//! its limit; it agrees exactly with a reference reading of the chunked grammar written from RFC
//! 9112 §7.1 (not from body.rs), plus tern's own bounds; bytes after the body stay in the buffer;
//! and the outcome is the same whatever the reads.
//!
//! Inputs are at most a few KiB, less than the 16 KiB the decoder allows for extensions and
//! trailers, so a chunked input is also decoded repeated a few times over: a run of chunks, or of
//! trailer lines, then reaches those bounds.
//!
//! One known disagreement with the RFC is tolerated unless `TERN_FUZZ_STRICT=1`: the decoder
//! accepts spaces and tabs at the end of a chunk line (see `is_chunk_ext`).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tern_core::error::RequestError;
use tern_core::http::body::{BodyDecoder, Decoded};
use tern_core::message::request::BodyFraming;
use tern_fuzz::{split_into_reads, Rng};

/// tern's bounds on chunked framing (private constants in body.rs; policy, not grammar), in
/// bytes. The longest chunk line, CRLF included: refused once this many bytes are buffered
/// without its LF.
const MAX_CHUNK_LINE: usize = 4096;
/// Most chunk-extension bytes (everything on a chunk line after the size) over one whole body.
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;
/// The trailer section, final CRLF included, must stay under this; refused once this many bytes
/// of it are buffered.
const MAX_TRAILERS: usize = 16 * 1024;
/// Most times a chunked input is repeated to reach the bounds above.
const MAX_REPEATS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let mut rng = Rng::from_input(data);
    let declared = rng.below(data.len() + 8) as u64;
    for framing in [BodyFraming::Chunked, BodyFraming::Length(declared)] {
        check(framing, data, &mut rng);
    }
    if rng.below(4) == 0 {
        let repeated = data.repeat(2 + rng.below(MAX_REPEATS - 1));
        check(BodyFraming::Chunked, &repeated, &mut rng);
    }
});

/// Decodes `data` whole and cut into reads, under a random limit and piece size, and checks both
/// against the reference.
fn check(framing: BodyFraming, data: &[u8], rng: &mut Rng) {
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
    let expected = match framing {
        BodyFraming::Chunked => reference_chunked(data, limit),
        BodyFraming::Length(declared) => reference_length(data, declared, limit),
        BodyFraming::Empty => Reference::Done {
            body: Vec::new(),
            consumed: 0,
        },
    };
    let whole = decode(framing, limit, max, &[data]);
    check_against_reference(&expected, &whole, "whole input");
    let reads = split_into_reads(data, rng);
    let split = decode(framing, limit, max, &reads);
    check_against_reference(&expected, &split, &format!("{} reads", reads.len()));
}

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

/// What the reference says the decoder must do with an input.
#[derive(Debug)]
enum Reference {
    /// A complete body, and how many input bytes its framing took.
    Done { body: Vec<u8>, consumed: usize },
    /// The input ends before the body does; the body so far.
    Incomplete { body: Vec<u8> },
    /// Outside the grammar or over one of tern's bounds: 400.
    Invalid,
    /// Declares more body than the limit: 413.
    TooLarge,
}

fn check_against_reference(expected: &Reference, got: &Outcome, how: &str) {
    let agrees = match (expected, got) {
        (
            Reference::Done { body, consumed },
            Outcome::Done {
                body: got,
                consumed: took,
            },
        ) => body == got && consumed == took,
        (Reference::Incomplete { body }, Outcome::NeedMore { body: got }) => body == got,
        (Reference::Invalid, Outcome::Refused(RequestError::Malformed(_))) => true,
        (Reference::TooLarge, Outcome::Refused(RequestError::BodyTooLarge)) => true,
        _ => false,
    };
    assert!(
        agrees,
        "{how}: the reference says {expected:?}, the decoder {got:?}"
    );
}

/// Content-Length (RFC 9112 §6.3): exactly `declared` bytes; more than `limit` of them is 413 as
/// soon as they are there.
fn reference_length(data: &[u8], declared: u64, limit: u64) -> Reference {
    let available = data
        .len()
        .min(usize::try_from(declared).unwrap_or(usize::MAX));
    let body = data[..available].to_vec();
    if body.len() as u64 > limit {
        Reference::TooLarge
    } else if (available as u64) < declared {
        Reference::Incomplete { body }
    } else {
        Reference::Done {
            body,
            consumed: available,
        }
    }
}

/// The chunked coding, RFC 9112 §7.1:
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// chunk-size   = 1*HEXDIG
/// last-chunk   = 1*("0") [ chunk-ext ] CRLF
/// chunk-data   = 1*OCTET ; a sequence of chunk-size octets
/// trailer-section = *( field-line CRLF )
/// ```
///
/// Lines end in CRLF only (a bare LF is refused: §2.2 lets a recipient accept one, tern does
/// not). A line is judged once its CRLF is there (or it is over its bound), the CRLF after chunk
/// data once two bytes are. A chunk size must fit in 64 bits (§7.1 asks recipients to guard
/// against overflow; tern refuses it). A chunk line is checked for grammar, then the extension
/// bound, then the body limit, which is applied to the sizes declared so far (RFC 9110 §15.5.14:
/// refused before the data arrives).
fn reference_chunked(data: &[u8], limit: u64) -> Reference {
    let mut body = Vec::new();
    let mut pos = 0;
    let mut extension_bytes = 0;
    loop {
        let line = match line_at(&data[pos..], MAX_CHUNK_LINE) {
            Line::Complete(line) => line,
            Line::Partial => return Reference::Incomplete { body },
            Line::Invalid => return Reference::Invalid,
        };
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let (size, extensions) = line.split_at(digits);
        let Some(size) = hex_value(size) else {
            return Reference::Invalid;
        };
        if !is_chunk_ext(extensions) {
            return Reference::Invalid;
        }
        extension_bytes += extensions.len();
        if extension_bytes > MAX_CHUNK_EXTENSIONS {
            return Reference::Invalid;
        }
        if u128::from(size) + body.len() as u128 > u128::from(limit) {
            return Reference::TooLarge;
        }
        pos += line.len() + 2;
        if size == 0 {
            break;
        }
        let rest = &data[pos..];
        let Some(chunk) = usize::try_from(size).ok().and_then(|size| rest.get(..size)) else {
            body.extend_from_slice(rest);
            return Reference::Incomplete { body };
        };
        body.extend_from_slice(chunk);
        pos += chunk.len();
        match &data[pos..] {
            [] | [_] => return Reference::Incomplete { body },
            [b'\r', b'\n', ..] => pos += 2,
            _ => return Reference::Invalid,
        }
    }
    let mut trailer_bytes = 0;
    loop {
        let line = match line_at(&data[pos..], MAX_TRAILERS - trailer_bytes) {
            Line::Complete(line) => line,
            Line::Partial => return Reference::Incomplete { body },
            Line::Invalid => return Reference::Invalid,
        };
        trailer_bytes += line.len() + 2;
        if trailer_bytes >= MAX_TRAILERS {
            return Reference::Invalid;
        }
        pos += line.len() + 2;
        if line.is_empty() {
            return Reference::Done {
                body,
                consumed: pos,
            };
        }
        if !is_field_line(line) {
            return Reference::Invalid;
        }
    }
}

/// The first line of some input.
enum Line<'a> {
    /// The line, without its CRLF.
    Complete(&'a [u8]),
    /// No LF yet, and still room for one.
    Partial,
    /// Ends in a bare LF, or takes more than its bound.
    Invalid,
}

/// The line at the front of `rest`: it ends at the first LF, which must follow a CR, and may
/// take at most `bound` bytes, CRLF included.
fn line_at(rest: &[u8], bound: usize) -> Line<'_> {
    match rest.iter().position(|&b| b == b'\n') {
        Some(lf) if lf + 1 > bound => Line::Invalid,
        Some(lf) => match rest[..lf].strip_suffix(b"\r") {
            Some(line) => Line::Complete(line),
            None => Line::Invalid,
        },
        None if rest.len() >= bound => Line::Invalid,
        None => Line::Partial,
    }
}

/// The value of `1*HEXDIG`, or None for no digits or a value over 64 bits.
fn hex_value(digits: &[u8]) -> Option<u64> {
    let significant = digits.iter().skip_while(|&&b| b == b'0').count();
    if digits.is_empty() || significant > 16 {
        return None;
    }
    let text = std::str::from_utf8(&digits[digits.len() - significant..]).ok()?;
    if text.is_empty() {
        Some(0)
    } else {
        u64::from_str_radix(text, 16).ok()
    }
}

/// Whether all of `bytes` is a chunk-ext (RFC 9112 §7.1.1):
///
/// ```text
/// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
/// chunk-ext-name = token
/// chunk-ext-val  = token / quoted-string
/// ```
fn is_chunk_ext(bytes: &[u8]) -> bool {
    let mut input = Cursor { bytes, at: 0 };
    loop {
        let before_bws = input.at;
        input.skip_while(is_whitespace);
        if input.at_end() {
            // Nothing left but BWS, which the grammar only allows before a ';'.
            return input.at == before_bws;
        }
        if !input.eat(b';') {
            return false;
        }
        input.skip_while(is_whitespace);
        if input.skip_while(is_tchar) == 0 {
            return false;
        }
        let after_name = input.at;
        input.skip_while(is_whitespace);
        if input.eat(b'=') {
            input.skip_while(is_whitespace);
            let value = if input.peek() == Some(b'"') {
                input.quoted_string()
            } else {
                input.skip_while(is_tchar) > 0
            };
            if !value {
                return false;
            }
        } else {
            // No value: that BWS belongs to the next extension, if any.
            input.at = after_name;
        }
    }
}

/// Whether `line` is a field-line (RFC 9112 §5 and §7.1.2; RFC 9110 §5.5):
///
/// ```text
/// field-line    = field-name ":" OWS field-value OWS
/// field-name    = token
/// field-value   = *field-content
/// field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
/// field-vchar   = VCHAR / obs-text
/// ```
///
/// After the colon, OWS, field-value and OWS together are any run of SP, HTAB and field-vchar.
/// No whitespace before the colon, and no obs-fold (a line starting with SP or HTAB).
fn is_field_line(line: &[u8]) -> bool {
    let mut input = Cursor { bytes: line, at: 0 };
    input.skip_while(is_tchar) > 0
        && input.eat(b':')
        && line[input.at..]
            .iter()
            .all(|&b| is_whitespace(b) || is_field_vchar(b))
}

/// A position in bytes being matched against the grammar.
struct Cursor<'a> {
    /// What is being matched.
    bytes: &'a [u8],
    /// How much of it has been matched.
    at: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// Takes `wanted` if it is next.
    fn eat(&mut self, wanted: u8) -> bool {
        let next = self.peek() == Some(wanted);
        self.at += usize::from(next);
        next
    }

    /// Takes bytes while `class` holds; how many.
    fn skip_while(&mut self, class: fn(u8) -> bool) -> usize {
        let start = self.at;
        while self.peek().is_some_and(class) {
            self.at += 1;
        }
        self.at - start
    }

    /// `quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE` (RFC 9110 §5.6.4), with
    /// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` and
    /// `quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )`.
    fn quoted_string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            let Some(b) = self.peek() else {
                return false;
            };
            self.at += 1;
            match b {
                b'"' => return true,
                b'\\' => match self.peek() {
                    Some(escaped) if is_whitespace(escaped) || is_field_vchar(escaped) => {
                        self.at += 1;
                    }
                    _ => return false,
                },
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => {}
                _ => return false,
            }
        }
    }
}

/// SP / HTAB: what BWS and OWS are made of (RFC 9110 §5.6.3).
fn is_whitespace(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// tchar (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// VCHAR (%x21-7E, RFC 5234) or obs-text (%x80-FF, RFC 9110 §5.6.4).
fn is_field_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}
