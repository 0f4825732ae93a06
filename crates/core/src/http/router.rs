//! Chooses who answers a request: a static mount (longest prefix first) or, failing that, a 404.
//!
//! Static mounts answer only GET and HEAD; any other method gets 405 with `Allow: GET, HEAD`.
//! `OPTIONS *`, a question about the server rather than a resource, is answered here too, and so
//! is the health check (`--health-path`), without ever reaching the application.

use std::io;

use crate::config::StaticMount;
use crate::message::request::{Method, RequestHead, TargetForm};
use crate::message::response::{Body, Response};
use crate::static_files::path::{sanitize, PathRejection};
use crate::static_files::{StaticFiles, StaticRequest};

/// The mounts of one server, longest prefix first.
#[derive(Debug)]
pub struct Router {
    mounts: Vec<Mount>,
    /// Requests outside the mounts go to an application, whose methods are its own business:
    /// then `OPTIONS *` lists none.
    app_fallback: bool,
    /// The health check's path, if any.
    health_path: Option<String>,
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
    pub fn new(
        mounts: &[StaticMount],
        cache_validity: std::time::Duration,
        health_path: Option<String>,
    ) -> io::Result<Router> {
        let mut built = mounts
            .iter()
            .map(|m| {
                let files = StaticFiles::new(m, cache_validity)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", m.root.display())))?;
                Ok(Mount {
                    prefix: m.prefix.clone(),
                    files,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        built.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        Ok(Router {
            mounts: built,
            app_fallback: false,
            health_path,
        })
    }

    /// Notes that an application answers what the mounts do not.
    pub fn set_app_fallback(&mut self) {
        self.app_fallback = true;
    }

    /// The document roots, for the start-up log line.
    pub fn roots(&self) -> impl Iterator<Item = (&str, &std::path::Path)> {
        self.mounts
            .iter()
            .map(|m| (m.prefix.as_str(), m.files.root()))
    }

    /// Whether a static mount answers this (still percent-encoded) path.
    fn has_mount_for(&self, raw_path: &str) -> bool {
        self.mounts.iter().any(|m| raw_path.starts_with(&m.prefix))
    }

    /// Whether the router answers this request itself (else it goes to the application).
    pub fn answers(&self, head: &RequestHead) -> bool {
        let raw_path = head.path_and_query().0;
        head.target_form == TargetForm::Asterisk
            || self.is_health_check(raw_path)
            || self.has_mount_for(raw_path)
            || self.mount_without_slash(raw_path).is_some()
    }

    /// The mount whose prefix is `raw_path` plus a slash (`/site` for the mount `/site/`).
    fn mount_without_slash(&self, raw_path: &str) -> Option<&Mount> {
        self.mounts.iter().find(|m| {
            m.prefix.len() > 1
                && m.prefix.len() == raw_path.len() + 1
                && m.prefix.starts_with(raw_path)
        })
    }

    /// Whether `raw_path` is the health check's.
    pub fn is_health_check(&self, raw_path: &str) -> bool {
        self.health_path.as_deref() == Some(raw_path)
    }

    pub fn respond(&self, head: &RequestHead) -> Routed {
        if head.target_form == TargetForm::Asterisk {
            return Routed {
                response: self.server_options(),
                rejection: None,
            };
        }
        let (raw_path, query) = head.path_and_query();
        if self.is_health_check(raw_path) {
            return Routed {
                response: health_response(),
                rejection: None,
            };
        }
        if let Some(mount) = self.mount_without_slash(raw_path) {
            // As for a directory: the mount's pages link relative to its prefix.
            let mut location = mount.prefix.clone();
            if let Some(query) = query {
                location.push('?');
                location.push_str(query);
            }
            return Routed {
                response: Response::error_page(301).header("Location", location),
                rejection: None,
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

    /// The answer to `OPTIONS *` (RFC 9110 §9.3.7): 200 and, when only static files are served,
    /// the methods they accept. (nginx refuses the asterisk with 400; Apache answers like this.)
    fn server_options(&self) -> Response {
        let response = Response::new(200, Body::Empty);
        if self.app_fallback {
            response
        } else {
            response.header("Allow", "GET, HEAD")
        }
    }
}

/// The health check: 200 while this worker wants traffic, 503 once a drain was announced. Any
/// method gets it (load balancers use GET, HEAD or OPTIONS); never cached.
fn health_response() -> Response {
    let (status, text): (u16, &'static [u8]) = if crate::health::is_draining() {
        (503, b"draining\n")
    } else {
        (200, b"ok\n")
    };
    Response::new(status, Body::Bytes(bytes::Bytes::from_static(text)))
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-store")
}
