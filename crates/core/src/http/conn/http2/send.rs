//! Sending a response on an HTTP/2 stream: its head as a HEADERS frame, its body as DATA frames
//! no faster than the client's flow-control windows allow.
//!
//! A body piece goes out only as far as the stream has capacity (window the client granted, and
//! room in the connection's send buffer); a stream that gets none for `--io-timeout` is stalled
//! (a client holding the window shut, or not reading at all) and its caller resets it. A file is
//! read in pieces no larger than the capacity granted, so a slow client costs one piece of memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::SendStream;
use http::header::{HeaderName, HeaderValue};

use crate::http::date;
use crate::http::response::{status_has_body, SERVER_NAME};
use crate::message::response::{Body, Response, ResponseHead};

/// The most of a file read for one wait on capacity.
const FILE_PIECE: usize = 128 * 1024;
/// Header fields that belong to an HTTP/1.1 connection and are malformed in HTTP/2 (RFC 9113
/// §8.2.2): never sent, even if an application names them.
const CONNECTION_FIELDS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// Why a response could not be sent in full.
#[derive(Debug)]
pub(super) enum Failure {
    /// No capacity for `--io-timeout`: the client does not take the body.
    Stalled,
    /// The client reset the stream or the connection ended.
    Gone(h2::Error),
    /// The stream ended before its body was sent (the client reset it).
    Closed,
    /// Reading the file failed (it shrank since it was opened, say).
    File(std::io::Error),
}

impl From<h2::Error> for Failure {
    fn from(error: h2::Error) -> Self {
        Failure::Gone(error)
    }
}

/// The head of a response the server built (static files, error pages): its headers plus
/// `server`, `date` and, for a status with a body, `content-length`.
pub(super) fn static_head(response: &Response) -> http::Response<()> {
    let mut head = http::Response::new(());
    *head.status_mut() = http::StatusCode::from_u16(response.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = head.headers_mut();
    headers.insert(http::header::SERVER, HeaderValue::from_static(SERVER_NAME));
    headers.insert(http::header::DATE, date_value());
    for (name, value) in &response.headers {
        append(headers, name.as_bytes(), value.as_bytes());
    }
    if status_has_body(response.status) {
        headers.insert(
            http::header::CONTENT_LENGTH,
            length_value(response.body.len()),
        );
    }
    head
}

/// The head of an application's response: its own header lines (already checked for syntax and
/// hop-by-hop fields), with `server`, `date` and a counted `content-length` added as HTTP/1.1
/// would add them.
pub(super) fn app_head(response: &ResponseHead) -> http::Response<()> {
    let mut head = http::Response::new(());
    *head.status_mut() = http::StatusCode::from_u16(response.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = head.headers_mut();
    if !response.has_server {
        headers.insert(http::header::SERVER, HeaderValue::from_static(SERVER_NAME));
    }
    if !response.has_date {
        headers.insert(http::header::DATE, date_value());
    }
    for line in response.header_lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        append(headers, &line[..colon], line[colon + 1..].trim_ascii());
    }
    let counted = response
        .content_length
        .filter(|_| !response.length_in_headers && status_has_body(response.status));
    if let Some(length) = counted {
        headers.insert(http::header::CONTENT_LENGTH, length_value(length));
    }
    head
}

/// Adds one field, lower-cased as HTTP/2 wants; a connection-specific or invalid one is left out.
fn append(headers: &mut http::HeaderMap, name: &[u8], value: &[u8]) {
    let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
    else {
        return;
    };
    if !CONNECTION_FIELDS.contains(&name.as_str()) {
        headers.append(name, value);
    }
}

fn date_value() -> HeaderValue {
    let mut text = Vec::with_capacity(32);
    date::append_now(&mut text);
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static(""))
}

fn length_value(length: u64) -> HeaderValue {
    HeaderValue::from_str(itoa::Buffer::new().format(length))
        .unwrap_or(HeaderValue::from_static("0"))
}

/// Sends a server-built body after its head; the stream ends with it.
pub(super) async fn static_body(
    stream: &mut SendStream<Bytes>,
    body: Body,
    io_timeout: Duration,
) -> Result<(), Failure> {
    match body {
        Body::Empty => Ok(stream.send_data(Bytes::new(), true)?),
        Body::Bytes(bytes) => data(stream, bytes, true, io_timeout).await,
        Body::File(file) => {
            self::file(stream, &file.file, file.offset, file.len, true, io_timeout).await
        }
    }
}

/// Sends all of `bytes`, ending the stream after them if `end`.
pub(super) async fn data(
    stream: &mut SendStream<Bytes>,
    mut bytes: Bytes,
    end: bool,
    io_timeout: Duration,
) -> Result<(), Failure> {
    if bytes.is_empty() {
        if end {
            stream.send_data(bytes, true)?;
        }
        return Ok(());
    }
    while !bytes.is_empty() {
        let granted = capacity(stream, bytes.len(), io_timeout).await?;
        let piece = bytes.split_to(granted.min(bytes.len()));
        stream.send_data(piece, end && bytes.is_empty())?;
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset`, ending the stream after them if `end`.
pub(super) async fn file(
    stream: &mut SendStream<Bytes>,
    file: &File,
    mut offset: u64,
    mut len: u64,
    end: bool,
    io_timeout: Duration,
) -> Result<(), Failure> {
    if len == 0 {
        return data(stream, Bytes::new(), end, io_timeout).await;
    }
    while len > 0 {
        let wanted = usize::try_from(len).unwrap_or(usize::MAX).min(FILE_PIECE);
        let granted = capacity(stream, wanted, io_timeout).await?.min(wanted);
        let mut piece = BytesMut::zeroed(granted);
        file.read_exact_at(&mut piece, offset)
            .map_err(Failure::File)?;
        offset += granted as u64;
        len -= granted as u64;
        stream.send_data(piece.freeze(), end && len == 0)?;
    }
    Ok(())
}

/// Waits until the stream may send at least one byte of `wanted`; the bytes it may send.
async fn capacity(
    stream: &mut SendStream<Bytes>,
    wanted: usize,
    io_timeout: Duration,
) -> Result<usize, Failure> {
    stream.reserve_capacity(wanted);
    loop {
        let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx));
        match tokio::time::timeout(io_timeout, granted).await {
            Err(_) => return Err(Failure::Stalled),
            Ok(None) => return Err(Failure::Closed),
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(Some(Ok(0))) => continue,
            Ok(Some(Ok(granted))) => return Ok(granted),
        }
    }
}
