//! The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), formatted at most once per second
//! from the coarse clock ([`crate::clock`]).

use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};

use crate::clock;

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
    let second = clock::coarse_wall().as_secs();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let formatted = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
            if formatted.len() == IMF_FIXDATE_LEN {
                cache.text.copy_from_slice(formatted.as_bytes());
                cache.second = second;
            }
        }
        out.extend_from_slice(&cache.text);
    });
}
