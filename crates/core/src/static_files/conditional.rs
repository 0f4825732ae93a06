//! Validators and the requests that use them: ETag/Last-Modified, If-None-Match/If-Modified-Since
//! (RFC 9110 §13), and single byte ranges with If-Range (RFC 9110 §14).

use std::time::{SystemTime, UNIX_EPOCH};

/// A file's validators, computed from its metadata.
#[derive(Debug, Clone)]
pub struct Validators {
    /// Strong entity tag: `"<mtime seconds hex>-<size hex>"` plus a suffix per encoding.
    pub etag: String,
    pub modified: SystemTime,
    /// `modified` as an IMF-fixdate.
    pub last_modified: String,
}

impl Validators {
    pub fn new(modified: SystemTime, size: u64, encoding_suffix: &str) -> Self {
        let seconds = modified
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Validators {
            etag: format!("\"{seconds:x}-{size:x}{encoding_suffix}\""),
            modified,
            last_modified: httpdate::fmt_http_date(modified),
        }
    }

    /// RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since; true means answer 304.
    pub fn not_modified(
        &self,
        if_none_match: Option<&[u8]>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(list) = if_none_match {
            return etag_list_matches(list, &self.etag, true);
        }
        if let Some(since) = if_modified_since.and_then(|s| httpdate::parse_http_date(s).ok()) {
            return truncate_to_seconds(self.modified) <= since;
        }
        false
    }

    /// RFC 9110 §13.1.5: a Range is honoured only if If-Range (an ETag or a date) still matches.
    pub fn if_range_holds(&self, if_range: Option<&[u8]>) -> bool {
        let Some(value) = if_range else { return true };
        let value = value.trim_ascii();
        if value.starts_with(b"\"") || value.starts_with(b"W/") {
            // If-Range needs a strong match.
            return etag_list_matches(value, &self.etag, false);
        }
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .is_some_and(|date| date == truncate_to_seconds(self.modified))
    }
}

fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + std::time::Duration::from_secs(seconds)
}

/// Whether `etag` is in the comma-separated `list` (or the list is `*`).
fn etag_list_matches(list: &[u8], etag: &str, weak_comparison: bool) -> bool {
    let list = list.trim_ascii();
    if list == b"*" {
        return true;
    }
    list.split(|&b| b == b',').any(|candidate| {
        let candidate = candidate.trim_ascii();
        let candidate = match candidate.strip_prefix(b"W/") {
            Some(_) if !weak_comparison => return false,
            Some(stripped) => stripped,
            None => candidate,
        };
        candidate == etag.as_bytes()
    })
}

/// What a Range header asks of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable Range: send the whole representation.
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416: the range lies beyond the end.
    Unsatisfiable,
}

/// Interprets a `Range` header for a representation of `size` bytes.
///
/// Only one range is served; a multi-range or unparsable header is ignored (a full 200 is valid).
pub fn parse_range(header: Option<&[u8]>, size: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Full;
    };
    let Some(spec) = header.trim_ascii().strip_prefix(b"bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(&b',') {
        return RangeRequest::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (spec[..dash].trim_ascii(), spec[dash + 1..].trim_ascii());
    let number = |digits: &[u8]| -> Option<u64> {
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    match (first.is_empty(), last.is_empty()) {
        // "-N": the last N bytes.
        (true, false) => match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(suffix) => RangeRequest::Partial {
                start: size.saturating_sub(suffix),
                end: size - 1,
            },
            None => RangeRequest::Full,
        },
        // "N-": from N to the end.
        (false, true) => match number(first) {
            Some(start) if start < size => RangeRequest::Partial {
                start,
                end: size - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start > end => RangeRequest::Full,
            (Some(start), Some(_)) if start >= size => RangeRequest::Unsatisfiable,
            (Some(start), Some(end)) => RangeRequest::Partial {
                start,
                end: end.min(size - 1),
            },
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range(Some(b"bytes=0-4"), 10),
            RangeRequest::Partial { start: 0, end: 4 }
        );
        assert_eq!(
            parse_range(Some(b"bytes=5-"), 10),
            RangeRequest::Partial { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some(b"bytes=-3"), 10),
            RangeRequest::Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some(b"bytes=-30"), 10),
            RangeRequest::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range(Some(b"bytes=8-100"), 10),
            RangeRequest::Partial { start: 8, end: 9 }
        );
        assert_eq!(
            parse_range(Some(b"bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some(b"bytes=0-1,3-4"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some(b"items=0-1"), 10), RangeRequest::Full);
        assert_eq!(parse_range(None, 10), RangeRequest::Full);
    }

    #[test]
    fn conditionals() {
        let v = Validators::new(
            UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
            42,
            "",
        );
        assert!(v.not_modified(Some(v.etag.as_bytes()), None));
        assert!(v.not_modified(Some(format!("\"x\", W/{}", v.etag).as_bytes()), None));
        assert!(!v.not_modified(Some(b"\"other\""), Some(&v.last_modified)));
        assert!(v.not_modified(None, Some(&v.last_modified)));
        assert!(!v.not_modified(None, Some("Thu, 01 Jan 1970 00:00:01 GMT")));
        assert!(v.if_range_holds(Some(v.etag.as_bytes())));
        assert!(!v.if_range_holds(Some(b"\"stale\"")));
    }
}
