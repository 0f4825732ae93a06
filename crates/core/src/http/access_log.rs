//! What an HTTP access line says: the default line, a `--access-log-format` made of gunicorn's
//! atoms, or JSON members (`--log-format json`).
//!
//! A format is compiled once at start-up into a list of segments ([`crate::access_format`]), so a
//! line costs one pass over them. What a format shows beyond the request line, status, size and
//! time (header values) is [`Captured`] per request only when the format names it: the default
//! line captures nothing.
//! [`crate::logging::access_line`] adds the time, level and pid around the default line and the
//! JSON members; a format's line stands alone.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::access_format::{AccessFormat, Segment};
use crate::http::response::status_has_body;
use crate::logging::json;
use crate::logging::LineStyle;
use crate::message::request::RequestHead;
use crate::message::response::Response;
use crate::service::ResponseHead;
use crate::socket::Peer;

/// Everything an access line can show about one request.
#[derive(Debug)]
pub struct AccessRecord<'a> {
    /// The connection's client.
    pub peer: Peer,
    /// The request line as received (`GET /path HTTP/1.1`), or `-` for a request refused before
    /// its head was parsed.
    pub request_line: &'a [u8],
    pub status: u16,
    /// Body bytes sent (not the head).
    pub body_bytes: u64,
    /// When the request's head was complete: the duration runs from here.
    pub started: Instant,
    /// The request's head while it is still at hand (static files): the format's request
    /// headers are read from it when the line is written, with nothing captured before.
    pub head: Option<&'a RequestHead>,
    /// Header values the format shows that the head no longer holds (an application's request
    /// took it) or never held (response headers); None when there are none.
    pub captured: Option<&'a Captured>,
}

/// The header values one request's line needs, captured while the request and the response
/// head are at hand. Request values share the head's memory.
#[derive(Debug, Default)]
pub struct Captured {
    /// In the order of [`AccessFormat::request_headers`]; None: not sent. Empty when the line
    /// reads them from [`AccessRecord::head`].
    request: Vec<Option<Bytes>>,
    /// In the order of [`AccessFormat::response_headers`]; None: not sent (or not available).
    response: Vec<Option<Bytes>>,
}

/// What a compiled format does per request: capture the header values it shows, write its text.
impl AccessFormat {
    /// Whether the format shows any header (and so needs a [`Captured`] per request).
    fn captures(&self) -> bool {
        !self.request_headers.is_empty() || !self.response_headers.is_empty()
    }

    /// Room for the response header values the format shows, for a request whose head stays at
    /// hand until its line is written; None when it shows none.
    pub fn capture_response_only(&self) -> Option<Captured> {
        (!self.response_headers.is_empty()).then(|| Captured {
            request: Vec::new(),
            response: vec![None; self.response_headers.len()],
        })
    }

    /// What the line of a response the server built (a static file, an error page) needs
    /// captured: its response header values only (the request's head stays at hand until the line
    /// is written); None when the format shows none.
    pub fn capture_static_response(&self, response: &Response) -> Option<Captured> {
        let mut captured = self.capture_response_only();
        self.capture_response(captured.as_mut(), response);
        captured
    }

    /// Takes the request header values the format shows (sharing the head's memory), for a
    /// request whose head goes to the application; None when it shows none.
    pub fn capture_request(&self, head: &RequestHead) -> Option<Captured> {
        if !self.captures() {
            return None;
        }
        Some(Captured {
            request: self
                .request_headers
                .iter()
                .map(|name| head.header_shared(name))
                .collect(),
            response: vec![None; self.response_headers.len()],
        })
    }

    /// Takes the response header values the format shows from a response tern built (a static
    /// file, an error page): the headers its handler set and `Content-Length`.
    pub fn capture_response(&self, captured: Option<&mut Captured>, response: &Response) {
        let Some(captured) = captured else {
            return;
        };
        for (name, value) in self.response_headers.iter().zip(&mut captured.response) {
            *value = if name == "content-length" {
                status_has_body(response.status).then(|| number(response.body.len()))
            } else {
                response
                    .headers
                    .iter()
                    .find(|(header, _)| header.eq_ignore_ascii_case(name))
                    .map(|(_, text)| match text {
                        std::borrow::Cow::Borrowed(text) => Bytes::from_static(text.as_bytes()),
                        std::borrow::Cow::Owned(text) => Bytes::copy_from_slice(text.as_bytes()),
                    })
            };
        }
    }

    /// Takes the response header values the format shows from an application's response head:
    /// the headers the application set, and `Content-Length` when the length is known.
    pub fn capture_app_response(&self, captured: Option<&mut Captured>, head: &ResponseHead) {
        let Some(captured) = captured else {
            return;
        };
        for (name, value) in self.response_headers.iter().zip(&mut captured.response) {
            *value = app_header(&head.header_lines, name).map(Bytes::copy_from_slice);
            if value.is_none() && name == "content-length" && status_has_body(head.status) {
                *value = head.content_length.map(number);
            }
        }
    }

    /// Appends the line's text after `time INFO [pid] `.
    fn append_text(
        &self,
        out: &mut Vec<u8>,
        record: &AccessRecord<'_>,
        elapsed: Duration,
        remote: impl Fn(&mut Vec<u8>),
    ) {
        let mut number = itoa::Buffer::new();
        let line = if self.splits_request_line {
            RequestLine::split(record.request_line)
        } else {
            None
        };
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.extend_from_slice(text),
                Segment::Remote => remote(out),
                Segment::Time => append_clf_time(out),
                Segment::RequestLine => out.extend_from_slice(record.request_line),
                Segment::Status => out.extend_from_slice(number.format(record.status).as_bytes()),
                Segment::BytesOrDash if record.body_bytes == 0 => out.push(b'-'),
                Segment::BytesOrDash | Segment::Bytes => {
                    out.extend_from_slice(number.format(record.body_bytes).as_bytes())
                }
                Segment::Seconds => {
                    out.extend_from_slice(number.format(elapsed.as_secs()).as_bytes())
                }
                Segment::Millis => {
                    out.extend_from_slice(number.format(elapsed.as_millis()).as_bytes())
                }
                Segment::Micros => {
                    out.extend_from_slice(number.format(elapsed.as_micros()).as_bytes())
                }
                Segment::DecimalSeconds => {
                    out.extend_from_slice(number.format(elapsed.as_secs()).as_bytes());
                    let micros = number.format(elapsed.subsec_micros() + 1_000_000);
                    out.push(b'.');
                    out.extend_from_slice(&micros.as_bytes()[1..]);
                }
                Segment::Pid => {
                    out.push(b'<');
                    out.extend_from_slice(number.format(std::process::id()).as_bytes());
                    out.push(b'>');
                }
                Segment::Method => out.extend_from_slice(line.map_or(b"-", |l| l.method)),
                Segment::Path => out.extend_from_slice(line.map_or(b"-", |l| l.path())),
                Segment::Query => out.extend_from_slice(line.map_or(b"-", |l| l.query())),
                Segment::Protocol => out.extend_from_slice(line.map_or(b"-", |l| l.protocol)),
                Segment::RequestHeader(index) => {
                    let captured = record.captured.filter(|c| !c.request.is_empty());
                    let value = match (captured, record.head) {
                        (Some(captured), _) => {
                            captured.request.get(*index).and_then(Option::as_deref)
                        }
                        (None, Some(head)) => self
                            .request_headers
                            .get(*index)
                            .and_then(|name| head.header(name)),
                        (None, None) => None,
                    };
                    append_value(out, value)
                }
                Segment::ResponseHeader(index) => append_value(
                    out,
                    record
                        .captured
                        .and_then(|c| c.response.get(*index))
                        .and_then(Option::as_deref),
                ),
            }
        }
    }
}

/// Appends what follows the time, level and pid of one access line, in `style`: with no
/// `format`, `127.0.0.1 "GET / HTTP/1.1" 200 13 42us`; in JSON, the members `remote`, `request`,
/// `status`, `bytes` and `duration_us`, and `message` (the formatted line) when a format is set.
/// `remote` appends the client's address.
pub fn append_line(
    out: &mut Vec<u8>,
    style: LineStyle,
    format: Option<&AccessFormat>,
    record: &AccessRecord<'_>,
    remote: impl Fn(&mut Vec<u8>),
) {
    let elapsed = record.started.elapsed();
    let mut number = itoa::Buffer::new();
    match (style, format) {
        (LineStyle::Text, None) => {
            remote(out);
            out.extend_from_slice(b" \"");
            out.extend_from_slice(record.request_line);
            out.extend_from_slice(b"\" ");
            out.extend_from_slice(number.format(record.status).as_bytes());
            out.push(b' ');
            out.extend_from_slice(number.format(record.body_bytes).as_bytes());
            out.push(b' ');
            out.extend_from_slice(number.format(elapsed.as_micros()).as_bytes());
            out.extend_from_slice(b"us");
        }
        (LineStyle::Text, Some(format)) => format.append_text(out, record, elapsed, remote),
        (LineStyle::Json, format) => {
            out.extend_from_slice(b"\"remote\":\"");
            let start = out.len();
            remote(out);
            json::escape_tail(out, start);
            out.extend_from_slice(b"\",\"request\":");
            json::append_string(out, record.request_line);
            out.extend_from_slice(b",\"status\":");
            out.extend_from_slice(number.format(record.status).as_bytes());
            out.extend_from_slice(b",\"bytes\":");
            out.extend_from_slice(number.format(record.body_bytes).as_bytes());
            out.extend_from_slice(b",\"duration_us\":");
            out.extend_from_slice(number.format(elapsed.as_micros()).as_bytes());
            if let Some(format) = format {
                out.extend_from_slice(b",\"message\":\"");
                let start = out.len();
                format.append_text(out, record, elapsed, remote);
                json::escape_tail(out, start);
                out.push(b'"');
            }
        }
    }
}

/// The value of header `name` among an application's `Name: value\r\n` lines.
fn app_header<'a>(lines: &'a [u8], name: &str) -> Option<&'a [u8]> {
    lines.split(|&b| b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name.as_bytes())
            .then(|| line[colon + 1..].trim_ascii())
    })
}

fn number(n: u64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}

fn append_value(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(value) => out.extend_from_slice(value),
        None => out.push(b'-'),
    }
}

/// The three parts of a request line.
#[derive(Clone, Copy)]
struct RequestLine<'a> {
    method: &'a [u8],
    target: &'a [u8],
    protocol: &'a [u8],
}

impl<'a> RequestLine<'a> {
    /// None for `-` (no request line) or anything not of three parts.
    fn split(line: &'a [u8]) -> Option<RequestLine<'a>> {
        let first = line.iter().position(|&b| b == b' ')?;
        let last = line.iter().rposition(|&b| b == b' ')?;
        (first < last).then(|| RequestLine {
            method: &line[..first],
            target: &line[first + 1..last],
            protocol: &line[last + 1..],
        })
    }

    /// The target without query or fragment; an absolute-form target (RFC 9112 §3.2.2) without
    /// its scheme and authority.
    fn path(self) -> &'a [u8] {
        let mut path = self.target;
        if !path.starts_with(b"/") && !path.starts_with(b"*") {
            if let Some(scheme_end) = path.windows(3).position(|w| w == b"://") {
                let authority = &path[scheme_end + 3..];
                path = authority
                    .iter()
                    .position(|&b| b == b'/')
                    .map_or(b"/", |slash| &authority[slash..]);
            }
        }
        let end = path
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(path.len());
        &path[..end]
    }

    /// The query without its `?` (and without a fragment); empty if none.
    fn query(self) -> &'a [u8] {
        let Some(question) = self.target.iter().position(|&b| b == b'?') else {
            return b"";
        };
        let query = &self.target[question + 1..];
        let end = query.iter().position(|&b| b == b'#').unwrap_or(query.len());
        &query[..end]
    }
}

/// `[10/Oct/2000:13:55:36 +0000]` (the Common Log Format's time, in UTC), formatted once a
/// second.
fn append_clf_time(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
    }
    let seconds = crate::clock::coarse_wall().as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != seconds {
            *cached = (seconds, clf_time(seconds));
        }
        out.extend_from_slice(&cached.1);
    });
}

fn clf_time(unix_seconds: u64) -> Vec<u8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let time = std::time::UNIX_EPOCH + Duration::from_secs(unix_seconds);
    // "2000-10-10T13:55:36Z"
    let iso = humantime::format_rfc3339_seconds(time).to_string();
    let month = iso
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"???");
    format!(
        "[{}/{month}/{}:{} +0000]",
        iso.get(8..10).unwrap_or("??"),
        iso.get(0..4).unwrap_or("????"),
        iso.get(11..19).unwrap_or("??:??:??"),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(line: &'a [u8], captured: Option<&'a Captured>) -> AccessRecord<'a> {
        AccessRecord {
            peer: Peer::Unix,
            request_line: line,
            status: 200,
            body_bytes: 0,
            started: Instant::now(),
            head: None,
            captured,
        }
    }

    fn text(format: &str, record: &AccessRecord<'_>, elapsed: Duration) -> String {
        let format = AccessFormat::parse(format).unwrap();
        let mut out = Vec::new();
        format.append_text(&mut out, record, elapsed, |out| {
            out.extend_from_slice(b"10.0.0.1")
        });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn atoms_fill_in() {
        let r = record(b"GET /a/b?x=1&y=2 HTTP/1.1", None);
        let elapsed = Duration::from_micros(2_345_678);
        assert_eq!(
            text("%(h)s %(l)s %(u)s %(m)s %(U)s %(q)s %(H)s", &r, elapsed),
            "10.0.0.1 - - GET /a/b x=1&y=2 HTTP/1.1"
        );
        assert_eq!(
            text("%(s)s %(b)s %(B)s", &r, elapsed),
            "200 - 0",
            "gunicorn shows no body as '-' in %(b)s"
        );
        assert_eq!(
            text("%(T)s %(M)s %(D)s %(L)s", &r, elapsed),
            "2 2345 2345678 2.345678"
        );
        assert_eq!(text("100%% %(s)s%%", &r, elapsed), "100% 200%");
        assert_eq!(
            text("%(p)s", &r, elapsed),
            format!("<{}>", std::process::id())
        );
        let time = text("%(t)s", &r, elapsed);
        assert!(
            time.starts_with('[') && time.ends_with(" +0000]") && time.len() == 28,
            "{time}"
        );
    }

    #[test]
    fn no_request_line_shows_dashes() {
        let r = record(b"-", None);
        assert_eq!(
            text("%(r)s %(m)s %(U)s %(q)s %(H)s %(f)s", &r, Duration::ZERO),
            "- - - - - -"
        );
    }

    #[test]
    fn absolute_form_targets_show_their_path() {
        let line = RequestLine::split(b"GET http://example.com/p/q?z#f HTTP/1.1").unwrap();
        assert_eq!(line.path(), b"/p/q");
        assert_eq!(line.query(), b"z");
        let bare = RequestLine::split(b"GET http://example.com HTTP/1.1").unwrap();
        assert_eq!(bare.path(), b"/");
        assert_eq!(bare.query(), b"");
    }

    #[test]
    fn header_atoms_read_what_was_captured() {
        let format = AccessFormat::parse("%({X-Id}i) %({Content-Type}o) %(a)s").unwrap_err();
        assert!(format.contains("must end with 's'"), "{format}");
        let format =
            AccessFormat::parse("%({X-Id}i)s %({Content-Type}o)s %(a)s %({x-id}i)s").unwrap();
        assert_eq!(format.request_headers, ["x-id", "user-agent"]);
        assert_eq!(format.response_headers, ["content-type"]);
        let captured = Captured {
            request: vec![Some(Bytes::from_static(b"abc")), None],
            response: vec![Some(Bytes::from_static(b"text/html"))],
        };
        let r = record(b"GET / HTTP/1.1", Some(&captured));
        let mut out = Vec::new();
        format.append_text(&mut out, &r, Duration::ZERO, |_| {});
        assert_eq!(out, b"abc text/html - abc");
    }

    #[test]
    fn app_response_headers_are_found_case_insensitively() {
        let lines = b"Content-Type: text/plain\r\nX-Trace:  42 \r\n";
        assert_eq!(app_header(lines, "x-trace"), Some(&b"42"[..]));
        assert_eq!(app_header(lines, "content-type"), Some(&b"text/plain"[..]));
        assert_eq!(app_header(lines, "etag"), None);
    }

    #[test]
    fn clf_time_is_apache_style() {
        // 2000-10-10T13:55:36Z
        assert_eq!(clf_time(971_186_136), b"[10/Oct/2000:13:55:36 +0000]");
    }

    #[test]
    fn json_members_are_escaped() {
        let format = AccessFormat::parse(r#"%(h)s "%(r)s""#).unwrap();
        let r = record(b"GET /\"q\" HTTP/1.1", None);
        let mut out = b"{".to_vec();
        append_line(&mut out, LineStyle::Json, Some(&format), &r, |out| {
            out.extend_from_slice(b"10.0.0.1")
        });
        out.push(b'}');
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(value["remote"], "10.0.0.1");
        assert_eq!(value["request"], "GET /\"q\" HTTP/1.1");
        assert_eq!(value["status"], 200);
        assert_eq!(value["bytes"], 0);
        assert_eq!(value["message"], "10.0.0.1 \"GET /\"q\" HTTP/1.1\"");
        assert!(value["duration_us"].is_u64());
    }

    #[test]
    fn the_default_text_line_is_unchanged() {
        let mut r = record(b"GET / HTTP/1.1", None);
        r.body_bytes = 13;
        let mut out = Vec::new();
        append_line(&mut out, LineStyle::Text, None, &r, |out| {
            out.extend_from_slice(b"127.0.0.1")
        });
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with("127.0.0.1 \"GET / HTTP/1.1\" 200 13 ") && line.ends_with("us"),
            "{line}"
        );
    }
}
