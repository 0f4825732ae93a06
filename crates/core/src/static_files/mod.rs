//! The static file server: maps a request to a file beneath a root and answers it the way nginx
//! would (index files, redirects for directories, validators, ranges, precompressed siblings).
//!
//! Path safety is in two steps, each in its own module: [`path`] keeps only normal segments, and
//! [`root`] opens them with the kernel proving the result is inside the root.

pub mod conditional;
pub mod listing;
pub mod mime;
pub mod path;
pub mod root;

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::http::request::RequestHead;
use crate::http::response::{Body, FileBody, Response};
use conditional::{parse_range, RangeRequest, Validators};
use path::SafePath;
use root::{OpenError, Root};

/// The file served for a directory URL ending in '/'.
const INDEX_FILE: &str = "index.html";

/// Precompressed siblings, in order of preference: (extension, Content-Encoding, ETag suffix).
const PRECOMPRESSED: [(&str, &str, &str); 2] = [("br", "br", "-br"), ("gz", "gzip", "-gz")];

/// One document root and how to serve it.
#[derive(Debug)]
pub struct StaticFiles {
    root: Root,
    list_dirs: bool,
}

/// What the static server needs to know about a request.
pub struct StaticRequest<'a> {
    /// The path below the mount, already sanitised.
    pub path: &'a SafePath,
    /// The path as the client sent it (for redirects).
    pub raw_path: &'a str,
    pub query: Option<&'a str>,
    pub head: &'a RequestHead,
}

impl StaticFiles {
    pub fn new(root: &Path, list_dirs: bool) -> io::Result<Self> {
        Ok(StaticFiles { root: Root::open(root)?, list_dirs })
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Answers a GET or HEAD request.
    pub fn respond(&self, request: &StaticRequest<'_>) -> Response {
        let relative = &request.path.relative;
        let file = match self.root.open_beneath(relative) {
            Ok(file) => file,
            Err(error) => return open_error_page(error),
        };
        let Ok(meta) = file.metadata() else { return Response::error_page(404) };
        if meta.is_dir() {
            return self.respond_directory(request);
        }
        if !meta.is_file() {
            return Response::error_page(403);
        }
        if request.path.trailing_slash {
            // "/file.html/" names a directory that does not exist.
            return Response::error_page(404);
        }
        self.respond_file(relative, file, meta, request.head)
    }

    fn respond_directory(&self, request: &StaticRequest<'_>) -> Response {
        if !request.path.trailing_slash {
            // One leading slash only: "//name/" would be a protocol-relative URL (another host).
            let mut location = format!("/{}/", request.raw_path.trim_start_matches('/'));
            if let Some(query) = request.query {
                location.push('?');
                location.push_str(query);
            }
            return Response::error_page(301).header("Location", location);
        }
        let index = request.path.relative.join(INDEX_FILE);
        match self.root.open_beneath(&index) {
            Ok(file) => match file.metadata() {
                Ok(meta) if meta.is_file() => return self.respond_file(&index, file, meta, request.head),
                _ => {}
            },
            Err(OpenError::Forbidden) => return Response::error_page(403),
            Err(OpenError::NotFound) => {}
        }
        if !self.list_dirs {
            return Response::error_page(404);
        }
        match listing::render(&self.root.path().join(&request.path.relative), request.raw_path) {
            Ok(page) => Response::new(200, Body::Bytes(page.into())).header("Content-Type", "text/html; charset=utf-8"),
            Err(_) => Response::error_page(403),
        }
    }

    fn respond_file(&self, relative: &Path, file: File, meta: Metadata, head: &RequestHead) -> Response {
        let content_type = mime::content_type(relative);
        let (file, meta, encoding) = match self.precompressed_sibling(relative, head) {
            Some((file, meta, encoding)) => (file, meta, Some(encoding)),
            None => (file, meta, None),
        };
        let size = meta.len();
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let validators = Validators::new(modified, size, encoding.map_or("", |(_, suffix)| suffix));

        let mut headers: Vec<(&'static str, crate::http::response::HeaderValue)> = Vec::with_capacity(7);
        headers.push(("Content-Type", content_type.into()));
        headers.push(("Last-Modified", validators.last_modified.clone().into()));
        headers.push(("ETag", validators.etag.clone().into()));
        if let Some((coding, _)) = encoding {
            headers.push(("Content-Encoding", coding.into()));
            headers.push(("Vary", "Accept-Encoding".into()));
        }

        if validators.not_modified(head.header("if-none-match"), head.header_str("if-modified-since")) {
            return Response { status: 304, headers, body: Body::Empty };
        }
        headers.push(("Accept-Ranges", "bytes".into()));
        let range = if validators.if_range_holds(head.header("if-range")) {
            parse_range(head.header("range"), size)
        } else {
            RangeRequest::Full
        };
        match range {
            RangeRequest::Full => Response { status: 200, headers, body: Body::File(FileBody { file, offset: 0, len: size }) },
            RangeRequest::Partial { start, end } => {
                headers.push(("Content-Range", format!("bytes {start}-{end}/{size}").into()));
                let body = Body::File(FileBody { file, offset: start, len: end - start + 1 });
                Response { status: 206, headers, body }
            }
            RangeRequest::Unsatisfiable => {
                Response::error_page(416).header("Content-Range", format!("bytes */{size}"))
            }
        }
    }

    /// `name.br` or `name.gz`, when the client accepts that coding and the sibling is a file.
    fn precompressed_sibling(
        &self,
        relative: &Path,
        head: &RequestHead,
    ) -> Option<(File, Metadata, (&'static str, &'static str))> {
        let accepted = head.header("accept-encoding")?;
        for (extension, coding, suffix) in PRECOMPRESSED {
            if !accepts_coding(accepted, coding) {
                continue;
            }
            let mut sibling: PathBuf = relative.to_path_buf().into_os_string().into();
            sibling.as_mut_os_string().push(".");
            sibling.as_mut_os_string().push(extension);
            if let Ok(file) = self.root.open_beneath(&sibling) {
                if let Ok(meta) = file.metadata() {
                    if meta.is_file() {
                        return Some((file, meta, (coding, suffix)));
                    }
                }
            }
        }
        None
    }
}

fn open_error_page(error: OpenError) -> Response {
    match error {
        OpenError::NotFound => Response::error_page(404),
        OpenError::Forbidden => Response::error_page(403),
    }
}

/// Whether an Accept-Encoding value allows `coding` (listed with q > 0, or `*` with q > 0).
fn accepts_coding(accept_encoding: &[u8], coding: &str) -> bool {
    let mut wildcard = false;
    for item in accept_encoding.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let name = parts.next().unwrap_or(b"").trim_ascii();
        let refused = parts.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 2 && p[..2].eq_ignore_ascii_case(b"q=") && p[2..].iter().all(|&b| b == b'0' || b == b'.')
        });
        if name.eq_ignore_ascii_case(coding.as_bytes()) {
            return !refused;
        }
        if name == b"*" {
            wildcard = !refused;
        }
    }
    wildcard
}

#[cfg(test)]
mod tests {
    use super::accepts_coding;

    #[test]
    fn accept_encoding() {
        assert!(accepts_coding(b"gzip, deflate, br", "br"));
        assert!(accepts_coding(b"gzip;q=0.5", "gzip"));
        assert!(!accepts_coding(b"gzip;q=0", "gzip"));
        assert!(!accepts_coding(b"deflate", "gzip"));
        assert!(accepts_coding(b"*", "gzip"));
        assert!(!accepts_coding(b"*, gzip;q=0.0", "gzip"));
    }
}
