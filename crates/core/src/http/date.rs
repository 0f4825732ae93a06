//! The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), formatted at most once per second.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
const IMF_FIXDATE_LEN: usize = 29;

struct CachedDate {
    /// The Unix second `text` was formatted for.
    second: u64,
    text: [u8; IMF_FIXDATE_LEN],
}

thread_local! {
    static CACHE: RefCell<CachedDate> = const { RefCell::new(CachedDate { second: u64::MAX, text: [0; IMF_FIXDATE_LEN] }) };
}

/// Appends the current date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`, to `out`.
pub fn append_now(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let formatted = httpdate::fmt_http_date(now);
            if formatted.len() == IMF_FIXDATE_LEN {
                cache.text.copy_from_slice(formatted.as_bytes());
                cache.second = second;
            }
        }
        out.extend_from_slice(&cache.text);
    });
}
