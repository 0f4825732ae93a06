//! Content-Type from the file extension, through mime_guess's maintained table, with the
//! `charset` parameter (`--charset`) on the types whose bytes mean nothing without one.
//!
//! A few types are pinned where the table's answer differs from what browsers expect. Which types
//! take a charset: every `text/*` type (nginx's default `charset_types` names text/html, text/xml,
//! text/plain and text/vnd.wap.wml; static-web-server does all of `text/*`, and so do we, since a
//! stylesheet or a script is decoded with the charset too), plus the two application types in
//! nginx's list, `application/javascript` and `application/rss+xml`. Not JSON (RFC 8259 defines
//! no charset parameter: JSON is UTF-8), not the other XML types (the document's own XML
//! declaration says its encoding, and a server-wide guess must not override it), never images,
//! fonts, media or archives.
//!
//! Every full value (`text/css; charset=utf-8`) is made once, when a mount is set up, and lives
//! for the rest of the process, so answering a request only looks it up.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Sent when the extension is unknown.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// Extensions whose type is not taken from mime_guess (lower case).
const PINNED: [(&str, &str); 7] = [
    // `text/html` exactly (the table's answer is the same today; pinned because it matters most).
    ("html", "text/html"),
    ("htm", "text/html"),
    // RFC 9239: text/javascript is the one type for scripts; the table says application/javascript.
    ("js", "text/javascript"),
    ("mjs", "text/javascript"),
    ("wasm", "application/wasm"),
    ("woff2", "font/woff2"),
    ("ico", "image/x-icon"),
];

/// Application types that take a charset too (the rest of nginx's default `charset_types`).
const TEXTUAL_APPLICATION_TYPES: [&str; 2] = ["application/javascript", "application/rss+xml"];

/// The media type for a file name, without parameters.
pub fn media_type(path: &Path) -> &'static str {
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return DEFAULT_TYPE;
    };
    if let Some((_, pinned)) = PINNED
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(extension))
    {
        return pinned;
    }
    mime_guess::from_ext(extension)
        .first_raw()
        .unwrap_or(DEFAULT_TYPE)
}

/// Whether a media type is sent with the charset parameter.
pub fn takes_charset(media_type: &str) -> bool {
    media_type.starts_with("text/") || TEXTUAL_APPLICATION_TYPES.contains(&media_type)
}

/// The Content-Type values one static mount sends, worked out when it is set up.
#[derive(Debug, Default)]
pub struct ContentTypes {
    /// Media type → the full value with `; charset=…`, for every type [`takes_charset`] accepts
    /// that a file name can map to; empty when the charset is off.
    with_charset: HashMap<&'static str, &'static str>,
}

impl ContentTypes {
    /// `charset`: the parameter's value (a validated token, e.g. `utf-8`), or None for bare types.
    pub fn new(charset: Option<&str>) -> ContentTypes {
        let Some(charset) = charset else {
            return ContentTypes::default();
        };
        let every_extension = mime_guess::get_extensions("*", "*").unwrap_or(&[]);
        let known = PINNED
            .iter()
            .map(|(_, media_type)| *media_type)
            .chain(
                every_extension
                    .iter()
                    .filter_map(|extension| mime_guess::from_ext(extension).first_raw()),
            )
            .chain(TEXTUAL_APPLICATION_TYPES);
        let with_charset = known
            .filter(|media_type| takes_charset(media_type))
            .map(|media_type| {
                let full = intern(format!("{media_type}; charset={charset}"));
                (media_type, full)
            })
            .collect();
        ContentTypes { with_charset }
    }

    /// The Content-Type for a file name.
    pub fn for_path(&self, path: &Path) -> &'static str {
        let media_type = media_type(path);
        self.with_charset
            .get(media_type)
            .copied()
            .unwrap_or(media_type)
    }
}

/// The one process-wide copy of a Content-Type value. The set is bounded: the known media types
/// times the charsets configured (one, in practice).
fn intern(value: String) -> &'static str {
    static VALUES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut values = VALUES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = values.get(value.as_str()) {
        return known;
    }
    let leaked: &'static str = Box::leak(value.into_boxed_str());
    values.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_common_types() {
        for (name, expected) in [
            ("a.html", "text/html"),
            ("a.HTM", "text/html"),
            ("a.css", "text/css"),
            ("a.js", "text/javascript"),
            ("a.MJS", "text/javascript"),
            ("a.jpg", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.png", "image/png"),
            ("a.gif", "image/gif"),
            ("a.swf", "application/x-shockwave-flash"),
            ("a.txt", "text/plain"),
            ("a.svg", "image/svg+xml"),
            ("a.json", "application/json"),
            ("a.wasm", "application/wasm"),
            ("a.woff2", "font/woff2"),
            ("a.ico", "image/x-icon"),
            ("a.mp4", "video/mp4"),
            ("a.pdf", "application/pdf"),
            ("a.unknownext", DEFAULT_TYPE),
            ("noextension", DEFAULT_TYPE),
        ] {
            assert_eq!(media_type(Path::new(name)), expected, "{name}");
            assert_eq!(
                ContentTypes::new(None).for_path(Path::new(name)),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn textual_types_carry_the_charset_and_others_do_not() {
        let types = ContentTypes::new(Some("utf-8"));
        for (name, expected) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.xml", "text/xml; charset=utf-8"),
            ("a.csv", "text/csv; charset=utf-8"),
            ("a.rss", "application/rss+xml; charset=utf-8"),
            ("a.json", "application/json"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.woff2", "font/woff2"),
            ("a.gz", "application/gzip"),
            ("noextension", DEFAULT_TYPE),
        ] {
            assert_eq!(types.for_path(Path::new(name)), expected, "{name}");
        }
        let latin = ContentTypes::new(Some("ISO-8859-1"));
        assert_eq!(
            latin.for_path(Path::new("a.txt")),
            "text/plain; charset=ISO-8859-1"
        );
    }

    /// The table is built from mime_guess's extension list: no extension may map to a textual
    /// type that was missed (it would be sent without its charset).
    #[test]
    fn every_extension_of_a_textual_type_gets_the_charset() {
        let types = ContentTypes::new(Some("utf-8"));
        let extensions = mime_guess::get_extensions("*", "*").unwrap();
        assert!(extensions.len() > 500, "{}", extensions.len());
        for extension in extensions.iter().copied().chain(PINNED.map(|(e, _)| e)) {
            let name = format!("a.{extension}");
            let bare = media_type(Path::new(&name));
            let full = types.for_path(Path::new(&name));
            if takes_charset(bare) {
                assert_eq!(full, format!("{bare}; charset=utf-8"), "{name}");
            } else {
                assert_eq!(full, bare, "{name}");
            }
        }
    }

    #[test]
    fn values_are_made_once_per_process() {
        let first = ContentTypes::new(Some("utf-8")).for_path(Path::new("a.css"));
        let second = ContentTypes::new(Some("utf-8")).for_path(Path::new("a.css"));
        assert!(std::ptr::eq(first, second));
    }
}
