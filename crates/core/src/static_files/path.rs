//! Turning a request path into a path relative to the document root, refusing anything that could
//! name a file outside it.
//!
//! Only normal segments survive: the path is percent-decoded once, then NUL bytes, backslashes and
//! `..` segments are refused outright (never "resolved"), and empty or `.` segments are dropped.
//! Symlinks are the opener's business ([`super::root`]), which proves containment in the kernel.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// A request path reduced to normal segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    /// Relative to the root; empty for the root itself.
    pub relative: PathBuf,
    /// The decoded path ended with '/' (a directory was asked for).
    pub trailing_slash: bool,
}

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRejection {
    /// The path tried to leave the root or smuggle bytes the file system treats specially (403).
    Forbidden(&'static str),
    /// The target is not an absolute path (400).
    NotAbsolute,
}

/// Decodes and checks `raw_path` (the path part of the target, query already removed).
pub fn sanitize(raw_path: &str) -> Result<SafePath, PathRejection> {
    if !raw_path.starts_with('/') {
        return Err(PathRejection::NotAbsolute);
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(raw_path).collect();
    if decoded.contains(&0) {
        return Err(PathRejection::Forbidden("NUL byte in path"));
    }
    if decoded.contains(&b'\\') {
        return Err(PathRejection::Forbidden("backslash in path"));
    }
    let mut relative = PathBuf::new();
    for segment in decoded.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => continue,
            b".." => return Err(PathRejection::Forbidden("'..' segment in path")),
            name => relative.push(OsStr::from_bytes(name)),
        }
    }
    let trailing_slash = decoded.ends_with(b"/");
    Ok(SafePath {
        relative,
        trailing_slash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> (String, bool) {
        let safe = sanitize(raw).unwrap();
        (
            safe.relative.to_string_lossy().into_owned(),
            safe.trailing_slash,
        )
    }

    #[test]
    fn keeps_normal_segments() {
        assert_eq!(ok("/"), (String::new(), true));
        assert_eq!(ok("/a/b.html"), ("a/b.html".into(), false));
        assert_eq!(ok("/dir/"), ("dir".into(), true));
        assert_eq!(ok("/%70%61%67%65.html"), ("page.html".into(), false));
        assert_eq!(ok("/a%20b/./c"), ("a b/c".into(), false));
        assert_eq!(ok("//x"), ("x".into(), false));
        assert_eq!(ok("/text..txt"), ("text..txt".into(), false));
        assert_eq!(ok("/caf%C3%A9"), ("café".into(), false));
    }

    #[test]
    fn refuses_escapes() {
        for raw in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/a%2f..%2fb",
            "/x%00.html",
            "/a\\..\\b",
            "/%5c..",
            "/..",
        ] {
            assert!(
                matches!(sanitize(raw), Err(PathRejection::Forbidden(_))),
                "{raw}"
            );
        }
        assert_eq!(sanitize("*"), Err(PathRejection::NotAbsolute));
        assert_eq!(sanitize("http://x/"), Err(PathRejection::NotAbsolute));
    }
}
