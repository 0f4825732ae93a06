//! The optional directory listing (`--list-dirs`): a plain HTML page of links.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters escaped in a link's path segment. `&` and `'` too: the href is not HTML-escaped, and
/// a name like `a&amp;b` would otherwise link to `a&b`.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\');

/// Renders the entries of the open directory `dir`, shown under the URL path `url_path`.
///
/// The directory is read through its descriptor (the one the checked opener returned), not by
/// name, so swapping the path for a symlink after the check cannot list another directory.
/// Names that start with a dot are left out unless `show_hidden`.
pub fn render(dir: &File, url_path: &str, show_hidden: bool) -> io::Result<String> {
    let mut names: Vec<(String, bool)> =
        std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
            .filter_map(Result::ok)
            .map(|entry| {
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                (entry.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .filter(|(name, _)| show_hidden || !name.starts_with('.'))
            .collect();
    names.sort();
    let title = escape_html(&percent_encoding::percent_decode_str(url_path).decode_utf8_lossy());
    let mut page = format!("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n");
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        let href = utf8_percent_encode(&name, SEGMENT);
        // "./" keeps a name like "javascript:..." or "http:..." a relative link, never a scheme.
        page.push_str(&format!(
            "<li><a href=\"./{href}{slash}\">{}{slash}</a></li>\n",
            escape_html(&name)
        ));
    }
    page.push_str("</ul></body></html>\n");
    Ok(page)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
