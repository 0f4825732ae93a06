//! `--access-log-format`, compiled once at start-up: the segments a line is built from (gunicorn's
//! atoms and the text between them) and the request and response headers the format shows.
//!
//! The configuration holds the compiled format ([`crate::config::HttpConfig::access_format`]);
//! [`crate::http::access_log`] captures the header values it names and writes lines with it.

/// A compiled `--access-log-format`.
#[derive(Debug)]
pub struct AccessFormat {
    /// The line, in order: text and atoms.
    pub(crate) segments: Vec<Segment>,
    /// Lower-case names of the request headers the format shows;
    /// [`crate::http::access_log::Captured`] keeps their values in this order.
    pub(crate) request_headers: Vec<String>,
    /// The same for response headers.
    pub(crate) response_headers: Vec<String>,
    /// Whether an atom shows a part of the request line (`m`, `U`, `q`, `H`): only then is the
    /// line split for each request.
    pub(crate) splits_request_line: bool,
}

/// One piece of a compiled format.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Text between atoms, `%%` already turned into `%`.
    Text(Box<[u8]>),
    /// `h`: the client's address.
    Remote,
    /// `t`: `[10/Oct/2000:13:55:36 +0000]`.
    Time,
    /// `r`: the request line.
    RequestLine,
    /// `s`: the status code.
    Status,
    /// `b`: body bytes, `-` for none.
    BytesOrDash,
    /// `B`: body bytes.
    Bytes,
    /// `T`: whole seconds taken.
    Seconds,
    /// `M`: whole milliseconds taken.
    Millis,
    /// `D`: microseconds taken.
    Micros,
    /// `L`: seconds taken, with six decimals.
    DecimalSeconds,
    /// `p`: `<pid>`.
    Pid,
    /// `m`: the method.
    Method,
    /// `U`: the path, as sent (percent-encoded), without the query.
    Path,
    /// `q`: the query string without its `?` (empty if none).
    Query,
    /// `H`: the protocol (`HTTP/1.1`).
    Protocol,
    /// `{name}i`, `f` (Referer), `a` (User-Agent): a request header, by index into
    /// [`AccessFormat::request_headers`].
    RequestHeader(usize),
    /// `{name}o`: a response header, by index into [`AccessFormat::response_headers`].
    ResponseHeader(usize),
}

/// The atoms `--access-log-format` knows, for the error that names an unknown one.
const KNOWN_ATOMS: &str = "h l u t r s b B f a T M D L p m U q H {Header}i {Header}o, and %% for %";

impl AccessFormat {
    /// Compiles a gunicorn-style format: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s`.
    pub fn parse(text: &str) -> Result<AccessFormat, String> {
        let mut format = AccessFormat {
            segments: Vec::new(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            splits_request_line: false,
        };
        let mut literal = Vec::new();
        let mut rest = text;
        while let Some(percent) = rest.find('%') {
            literal.extend_from_slice(&rest.as_bytes()[..percent]);
            rest = &rest[percent + 1..];
            if let Some(after) = rest.strip_prefix('%') {
                literal.push(b'%');
                rest = after;
                continue;
            }
            let Some(inside) = rest.strip_prefix('(') else {
                return Err(format!(
                    "a '%' that starts no atom in '{text}' (atoms look like %(h)s; write %% for a percent sign)"
                ));
            };
            let Some(close) = inside.find(')') else {
                return Err(format!("an atom that is not closed in '{text}'"));
            };
            let name = &inside[..close];
            let Some(after) = inside[close + 1..].strip_prefix('s') else {
                return Err(format!(
                    "the atom %({name}) must end with 's', as %({name})s"
                ));
            };
            rest = after;
            // `l` (the identd user) and `u` (the authenticated user) are always `-` here: they
            // join the text around them, one copy per line instead of three.
            if name == "l" || name == "u" {
                literal.push(b'-');
                continue;
            }
            let segment = format.atom(name)?;
            format.splits_request_line |= matches!(
                segment,
                Segment::Method | Segment::Path | Segment::Query | Segment::Protocol
            );
            if !literal.is_empty() {
                let text = std::mem::take(&mut literal).into_boxed_slice();
                format.segments.push(Segment::Text(text));
            }
            format.segments.push(segment);
        }
        literal.extend_from_slice(rest.as_bytes());
        if !literal.is_empty() {
            format
                .segments
                .push(Segment::Text(literal.into_boxed_slice()));
        }
        Ok(format)
    }

    fn atom(&mut self, name: &str) -> Result<Segment, String> {
        Ok(match name {
            "h" => Segment::Remote,
            "t" => Segment::Time,
            "r" => Segment::RequestLine,
            "s" => Segment::Status,
            "b" => Segment::BytesOrDash,
            "B" => Segment::Bytes,
            "f" => Segment::RequestHeader(header_index(&mut self.request_headers, "referer")),
            "a" => Segment::RequestHeader(header_index(&mut self.request_headers, "user-agent")),
            "T" => Segment::Seconds,
            "M" => Segment::Millis,
            "D" => Segment::Micros,
            "L" => Segment::DecimalSeconds,
            "p" => Segment::Pid,
            "m" => Segment::Method,
            "U" => Segment::Path,
            "q" => Segment::Query,
            "H" => Segment::Protocol,
            _ => match header_atom(name) {
                Some((header, 'i')) => {
                    Segment::RequestHeader(header_index(&mut self.request_headers, header))
                }
                Some((header, 'o')) => {
                    Segment::ResponseHeader(header_index(&mut self.response_headers, header))
                }
                _ => return Err(format!("unknown atom %({name})s (known: {KNOWN_ATOMS})")),
            },
        })
    }
}

/// `{X-Request-Id}i` → ("x-request-id", 'i').
fn header_atom(name: &str) -> Option<(&str, char)> {
    let inner = name.strip_prefix('{')?;
    let (header, kind) = inner.split_once('}')?;
    let kind = match kind {
        "i" => 'i',
        "o" => 'o',
        _ => return None,
    };
    let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    (!header.is_empty() && header.chars().all(is_token)).then_some((header, kind))
}

/// The index of `name` (lower-cased) in `names`, added if new.
fn header_index(names: &mut Vec<String>, name: &str) -> usize {
    let name = name.to_ascii_lowercase();
    match names.iter().position(|known| *known == name) {
        Some(index) => index,
        None => {
            names.push(name);
            names.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorns_default_format_compiles_to_segments() {
        let format =
            AccessFormat::parse(r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#)
                .unwrap();
        // h, " - - ", t, " \"", r, "\" ", s, " ", b, " \"", f, "\" \"", a, "\""
        assert_eq!(format.segments.len(), 14);
        assert_eq!(format.segments[1], Segment::Text(b" - - "[..].into()));
        assert_eq!(format.request_headers, ["referer", "user-agent"]);
        assert!(format.response_headers.is_empty());
    }

    #[test]
    fn bad_formats_name_the_problem() {
        for (format, says) in [
            ("%(z)s", "unknown atom %(z)s"),
            ("%({X-Id}e)s", "unknown atom %({X-Id}e)s"),
            ("%({}i)s", "unknown atom %({}i)s"),
            ("%(h", "not closed"),
            ("50% off", "write %% for a percent sign"),
            ("%(h)d", "must end with 's'"),
        ] {
            let error = AccessFormat::parse(format).unwrap_err();
            assert!(error.contains(says), "{format}: {error}");
        }
    }
}
