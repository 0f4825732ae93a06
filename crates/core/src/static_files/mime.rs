//! Content-Type from the file extension, through mime_guess's maintained table.
//!
//! A few types are pinned where the table's answer differs from what browsers and the lab server's
//! users expect (`text/html` exactly, no parameters).

use std::path::Path;

/// Sent when the extension is unknown.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// The Content-Type for a file name.
pub fn content_type(path: &Path) -> &'static str {
    let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
        return DEFAULT_TYPE;
    };
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html",
        "js" | "mjs" => "text/javascript",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        "ico" => "image/x-icon",
        _ => mime_guess::from_ext(extension)
            .first_raw()
            .unwrap_or(DEFAULT_TYPE),
    }
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
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }
}
