//! Chooses who answers a request: a static mount (longest prefix first) or, failing that, a 404.
//!
//! Static mounts answer only GET and HEAD; any other method gets 405 with `Allow: GET, HEAD`.

use std::io;

use crate::config::StaticMount;
use crate::http::request::{Method, RequestHead};
use crate::http::response::Response;
use crate::static_files::path::{sanitize, PathRejection};
use crate::static_files::{StaticFiles, StaticRequest};

/// The mounts of one server, longest prefix first.
#[derive(Debug)]
pub struct Router {
    mounts: Vec<Mount>,
}

#[derive(Debug)]
struct Mount {
    /// URL prefix, starting and ending with '/'.
    prefix: String,
    files: StaticFiles,
}

/// What the router made of a request, with the reason a request was refused, for the log.
pub struct Routed {
    pub response: Response,
    pub rejection: Option<&'static str>,
}

impl Router {
    pub fn new(mounts: &[StaticMount], cache_validity: std::time::Duration) -> io::Result<Router> {
        let mut built = mounts
            .iter()
            .map(|m| {
                let files = StaticFiles::new(&m.root, m.list_dirs, cache_validity)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", m.root.display())))?;
                Ok(Mount {
                    prefix: m.prefix.clone(),
                    files,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        built.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Ok(Router { mounts: built })
    }

    /// The document roots, for the start-up log line.
    pub fn roots(&self) -> impl Iterator<Item = (&str, &std::path::Path)> {
        self.mounts
            .iter()
            .map(|m| (m.prefix.as_str(), m.files.root()))
    }

    /// Whether a static mount answers this (still percent-encoded) path.
    pub fn has_mount_for(&self, raw_path: &str) -> bool {
        self.mounts.iter().any(|m| raw_path.starts_with(&m.prefix))
    }

    pub fn respond(&self, head: &RequestHead) -> Routed {
        let (raw_path, query) = head.path_and_query();
        if !raw_path.starts_with('/') {
            return Routed {
                response: Response::error_page(400),
                rejection: Some("request target is not a path"),
            };
        }
        let Some(mount) = self.mounts.iter().find(|m| raw_path.starts_with(&m.prefix)) else {
            return Routed {
                response: Response::error_page(404),
                rejection: None,
            };
        };
        if !matches!(head.method, Method::Get | Method::Head) {
            let response = Response::error_page(405).header("Allow", "GET, HEAD");
            return Routed {
                response,
                rejection: Some("method not allowed"),
            };
        }
        let below_mount = &raw_path[mount.prefix.len() - 1..];
        match sanitize(below_mount) {
            Ok(path) => {
                let request = StaticRequest {
                    path: &path,
                    raw_path,
                    query,
                    head,
                };
                Routed {
                    response: mount.files.respond(&request),
                    rejection: None,
                }
            }
            Err(PathRejection::Forbidden(why)) => Routed {
                response: Response::error_page(403),
                rejection: Some(why),
            },
            Err(PathRejection::NotAbsolute) => Routed {
                response: Response::error_page(400),
                rejection: Some("request target is not a path"),
            },
        }
    }
}
