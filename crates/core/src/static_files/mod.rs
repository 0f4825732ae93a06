//! The static file server: maps a request to a file beneath a root and answers it the way nginx
//! would (index files, redirects for directories, validators, ranges, precompressed siblings),
//! with [`crate::message`]'s request head and response, so it needs nothing from the HTTP
//! connection that calls it. Names starting with a dot are 404 unless `--serve-dotfiles`
//! (`/.well-known/` stays served).
//!
//! Path safety is in two steps, each in its own module: [`path`] keeps only normal segments, and
//! [`root`] opens them with the kernel proving the result is inside the root. [`cache`] keeps
//! recently served files (small ones' bytes, larger ones' open descriptors); [`conditional`]
//! holds the validators and ranges, [`mime`] the content types, [`listing`] the directory pages.

pub mod cache;
pub mod conditional;
pub mod listing;
pub mod mime;
pub mod path;
pub mod root;

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::StaticMount;
use crate::message::request::RequestHead;
use crate::message::response::{Body, FileBody, HeaderValue, Response};
use bytes::Bytes;
use cache::{CacheKey, CachedContents, Described, FileCache, Siblings};
use conditional::{parse_range, RangeRequest, Validators};
use mime::ContentTypes;
use path::SafePath;
use root::{OpenError, Root};

/// The file served for a directory URL ending in '/'.
const INDEX_FILE: &str = "index.html";

/// Precompressed siblings, in order of preference: (extension, Content-Encoding, ETag suffix).
pub(crate) const PRECOMPRESSED: [(&str, &str, &str); 2] =
    [("br", "br", "-br"), ("gz", "gzip", "-gz")];

/// One document root and how to serve it.
#[derive(Debug)]
pub struct StaticFiles {
    root: Root,
    list_dirs: bool,
    /// See [`StaticMount::serve_dotfiles`].
    serve_dotfiles: bool,
    /// Files recently served (small ones' bytes, larger ones open), revalidated by a stat once
    /// their validity window has passed.
    cache: FileCache,
    /// The Content-Type of each file name, with the mount's charset on textual types.
    content_types: ContentTypes,
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
    /// `cache_validity`: how long a cached file is trusted before it is stat'ed again.
    pub fn new(mount: &StaticMount, cache_validity: std::time::Duration) -> io::Result<Self> {
        Ok(StaticFiles {
            root: Root::open(&mount.root)?,
            list_dirs: mount.list_dirs,
            serve_dotfiles: mount.serve_dotfiles,
            cache: FileCache::new(cache_validity),
            content_types: ContentTypes::new(mount.charset.as_deref()),
        })
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Answers a GET or HEAD request.
    pub fn respond(&self, request: &StaticRequest<'_>) -> Response {
        let relative = &request.path.relative;
        if !self.serve_dotfiles && is_hidden(relative) {
            // A document root of "." would otherwise publish .git/config, .env and the like.
            return Response::error_page(404);
        }
        let key: CacheKey = (relative.clone(), request.path.trailing_slash);
        // The cache holds plain files, with which siblings they have: a client that accepts one
        // of those takes the full path, which serves the sibling.
        let accept_encoding = request
            .head
            .header("accept-encoding")
            .filter(|accepted| accepts_any_precompressed(accepted));
        if let Some(hit) = self.cache.lookup(&self.root, &key) {
            let siblings = hit.siblings();
            if !accept_encoding.is_some_and(|accepted| siblings.any_accepted(accepted)) {
                let contents = match &hit.contents {
                    CachedContents::Bytes(bytes) => Contents::Cached(bytes.clone()),
                    CachedContents::Open(file, size) => Contents::File(file.clone(), *size),
                };
                return answer(
                    contents,
                    &hit.validators,
                    hit.content_type,
                    Encoding::Plain {
                        varies: siblings.any(),
                    },
                    request.head,
                );
            }
        }
        let file = match self.root.open_beneath(relative) {
            Ok(file) => file,
            Err(error) => return open_error_page(error),
        };
        let Ok(meta) = file.metadata() else {
            return Response::error_page(404);
        };
        if meta.is_dir() {
            return self.respond_directory(request, &file);
        }
        if !meta.is_file() {
            return Response::error_page(403);
        }
        if request.path.trailing_slash {
            // "/file.html/" names a directory that does not exist.
            return Response::error_page(404);
        }
        self.respond_file(key, relative, file, meta, request.head)
    }

    fn respond_directory(&self, request: &StaticRequest<'_>, dir: &File) -> Response {
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
                Ok(meta) if meta.is_file() => {
                    let key = (request.path.relative.clone(), true);
                    return self.respond_file(key, &index, file, meta, request.head);
                }
                _ => {}
            },
            Err(OpenError::Forbidden) => return Response::error_page(403),
            Err(OpenError::NotFound) => {}
        }
        if !self.list_dirs {
            return Response::error_page(404);
        }
        match listing::render(dir, request.raw_path, self.serve_dotfiles) {
            Ok(page) => Response::new(200, Body::Bytes(page.into()))
                .header("Content-Type", "text/html; charset=utf-8"),
            Err(_) => Response::error_page(403),
        }
    }

    fn respond_file(
        &self,
        key: CacheKey,
        relative: &Path,
        file: File,
        meta: Metadata,
        head: &RequestHead,
    ) -> Response {
        let content_type = self.content_types.for_path(relative);
        if let Some((file, meta, encoding)) = self.precompressed_sibling(relative, head) {
            let validators = Validators::new(modified(&meta), meta.len(), encoding.1);
            return answer(
                Contents::File(file, meta.len()),
                &validators,
                content_type,
                Encoding::Precompressed(encoding.0),
                head,
            );
        }
        let siblings = Siblings::of(&self.root, relative);
        let validators = Validators::new(modified(&meta), meta.len(), "");
        let file = Arc::new(file);
        let contents = match self.cache.admit(
            key,
            relative,
            &file,
            &meta,
            Described {
                validators: validators.clone(),
                content_type,
                siblings,
            },
        ) {
            Some(entry) => match &entry.contents {
                CachedContents::Bytes(bytes) => Contents::Cached(bytes.clone()),
                CachedContents::Open(..) => Contents::File(file, meta.len()),
            },
            None => Contents::File(file, meta.len()),
        };
        let encoding = Encoding::Plain {
            varies: siblings.any(),
        };
        answer(contents, &validators, content_type, encoding, head)
    }

    /// `name.br` or `name.gz`, when the client accepts that coding and the sibling is a file.
    fn precompressed_sibling(
        &self,
        relative: &Path,
        head: &RequestHead,
    ) -> Option<(Arc<File>, Metadata, (&'static str, &'static str))> {
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
                        return Some((Arc::new(file), meta, (coding, suffix)));
                    }
                }
            }
        }
        None
    }
}

/// Where a representation's bytes come from.
enum Contents {
    /// An open file and its size: sent with sendfile (or copied, when small).
    File(Arc<File>, u64),
    /// A cached copy of a small file.
    Cached(Bytes),
}

impl Contents {
    fn len(&self) -> u64 {
        match self {
            Contents::File(_, size) => *size,
            Contents::Cached(bytes) => bytes.len() as u64,
        }
    }

    /// The body for bytes `start..start + len`.
    fn body(self, start: u64, len: u64) -> Body {
        match self {
            Contents::File(file, _) => Body::File(FileBody {
                file,
                offset: start,
                len,
            }),
            Contents::Cached(bytes) => {
                Body::Bytes(bytes.slice(start as usize..(start + len) as usize))
            }
        }
    }
}

/// Which representation of a file is sent.
#[derive(Debug, Clone, Copy)]
enum Encoding {
    /// The file itself; `varies`: it has a precompressed sibling, so what a client gets depends on
    /// its Accept-Encoding (and a shared cache must key on it).
    Plain { varies: bool },
    /// A precompressed sibling, with its Content-Encoding.
    Precompressed(&'static str),
}

/// The response to GET/HEAD for one representation: 200, 206, 304 or 416.
fn answer(
    contents: Contents,
    validators: &Validators,
    content_type: &'static str,
    encoding: Encoding,
    head: &RequestHead,
) -> Response {
    let size = contents.len();
    let mut headers: Vec<(&'static str, HeaderValue)> = Vec::with_capacity(7);
    headers.push(("Content-Type", content_type.into()));
    headers.push(("Last-Modified", validators.last_modified.clone().into()));
    headers.push(("ETag", validators.etag.clone().into()));
    match encoding {
        Encoding::Precompressed(coding) => {
            headers.push(("Content-Encoding", coding.into()));
            headers.push(("Vary", "Accept-Encoding".into()));
        }
        Encoding::Plain { varies: true } => headers.push(("Vary", "Accept-Encoding".into())),
        Encoding::Plain { varies: false } => {}
    }
    if validators.not_modified(
        head.header("if-none-match"),
        head.header_str("if-modified-since"),
    ) {
        return Response {
            status: 304,
            headers,
            body: Body::Empty,
        };
    }
    headers.push(("Accept-Ranges", "bytes".into()));
    let range = if validators.if_range_holds(head.header("if-range")) {
        parse_range(head.header("range"), size)
    } else {
        RangeRequest::Full
    };
    match range {
        RangeRequest::Full => Response {
            status: 200,
            headers,
            body: contents.body(0, size),
        },
        RangeRequest::Partial { start, end } => {
            headers.push((
                "Content-Range",
                format!("bytes {start}-{end}/{size}").into(),
            ));
            Response {
                status: 206,
                headers,
                body: contents.body(start, end - start + 1),
            }
        }
        RangeRequest::Unsatisfiable => {
            Response::error_page(416).header("Content-Range", format!("bytes */{size}"))
        }
    }
}

fn modified(meta: &Metadata) -> std::time::SystemTime {
    meta.modified().unwrap_or(std::time::UNIX_EPOCH)
}

/// Whether the client would take one of the precompressed codings we look for.
fn accepts_any_precompressed(accept_encoding: &[u8]) -> bool {
    PRECOMPRESSED
        .iter()
        .any(|(_, coding, _)| accepts_coding(accept_encoding, coding))
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
            p.len() >= 2
                && p[..2].eq_ignore_ascii_case(b"q=")
                && p[2..].iter().all(|&b| b == b'0' || b == b'.')
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

/// A path with a segment that starts with a dot, other than a leading `.well-known` (RFC 8615:
/// ACME challenges and the like live there).
fn is_hidden(relative: &Path) -> bool {
    relative.components().enumerate().any(|(i, component)| {
        let name = component.as_os_str().as_encoded_bytes();
        name.starts_with(b".") && !(i == 0 && name == b".well-known")
    })
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
