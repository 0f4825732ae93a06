//! The document root as an open directory, and opening files strictly beneath it.
//!
//! `openat2(RESOLVE_BENEATH)` makes the kernel refuse any resolution that leaves the root, through
//! `..` or through a symlink, atomically (no check-then-open race). Where openat2 is missing (old
//! kernels, or a seccomp filter answering ENOSYS or EPERM) the fallback walks the path one
//! component at a time with `openat(O_NOFOLLOW)` from the root's descriptor: just as race-free,
//! stricter (it refuses every symlink), and never consults a path by name.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Set once openat2 reported ENOSYS, so later opens go straight to the fallback.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// An open document root.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    /// The canonical path, for the fallback check and for logs.
    path: PathBuf,
}

/// What makes a file the same file: if any of these changed, cached bytes are stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    pub modified_seconds: i64,
    pub modified_nanos: i64,
    /// Status change time: moves on chmod/chown too, so a file made unreadable stops being served.
    pub changed_seconds: i64,
    pub changed_nanos: i64,
}

/// Why a file could not be opened beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    NotFound,
    /// Outside the root, a symlink loop, or no permission.
    Forbidden,
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = std::fs::canonicalize(path)?;
        let dir = File::open(&path)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", path.display()),
            ));
        }
        Ok(Root {
            dir: dir.into(),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `relative` (normal segments only) for reading, refusing anything outside the root.
    pub fn open_beneath(&self, relative: &Path) -> Result<File, OpenError> {
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        if !OPENAT2_MISSING.load(Ordering::Relaxed) {
            match self.openat2(relative) {
                Err(error @ (Errno::NOSYS | Errno::PERM)) => {
                    let error = io::Error::from(error);
                    tracing::warn!("openat2 is not available ({error}); symlinks in the document root will be refused");
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                }
                result => return result.map_err(classify),
            }
        }
        self.open_walking(relative).map_err(classify)
    }

    /// Identity of the regular file `relative` names now (following symlinks), or None.
    ///
    /// Used only to revalidate bytes that were read through [`Root::open_beneath`]; it never
    /// decides on its own that a file may be served.
    pub fn identity_beneath(&self, relative: &Path) -> Option<FileIdentity> {
        let stat = rustix::fs::statat(&self.dir, relative, AtFlags::empty()).ok()?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return None;
        }
        Some(FileIdentity {
            device: stat.st_dev,
            inode: stat.st_ino,
            size: stat.st_size as u64,
            modified_seconds: stat.st_mtime,
            modified_nanos: stat.st_mtime_nsec as i64,
            changed_seconds: stat.st_ctime,
            changed_nanos: stat.st_ctime_nsec as i64,
        })
    }

    fn openat2(&self, relative: &Path) -> rustix::io::Result<File> {
        let fd = rustix::fs::openat2(
            &self.dir,
            relative,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )?;
        Ok(File::from(fd))
    }

    /// Fallback without openat2: open each component from its parent's descriptor, following no
    /// symlink, so nothing but real directories beneath the root is ever traversed.
    fn open_walking(&self, relative: &Path) -> rustix::io::Result<File> {
        let names: Vec<&std::ffi::OsStr> = relative
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        let base =
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::NOFOLLOW;
        if names.is_empty() {
            let dir = rustix::fs::openat(&self.dir, c".", base | OFlags::DIRECTORY, Mode::empty())?;
            return Ok(File::from(dir));
        }
        let mut current: Option<File> = None;
        for (index, name) in names.iter().enumerate() {
            let last = index + 1 == names.len();
            let flags = if last { base } else { base | OFlags::DIRECTORY };
            let parent = current.as_ref().map_or(self.dir.as_fd(), |dir| dir.as_fd());
            let opened = rustix::fs::openat(parent, *name, flags, Mode::empty())?;
            current = Some(File::from(opened));
        }
        current.ok_or(Errno::NOENT)
    }
}

fn classify(error: Errno) -> OpenError {
    match error {
        Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => OpenError::NotFound,
        _ => OpenError::Forbidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A root with `a/b.txt`, a symlink inside pointing inside, and one pointing outside.
    fn scratch_root() -> (PathBuf, Root) {
        let base = std::env::temp_dir().join(format!(
            "tern-root-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root/a")).unwrap();
        std::fs::write(base.join("root/a/b.txt"), b"inside").unwrap();
        std::fs::write(base.join("secret.txt"), b"outside").unwrap();
        std::os::unix::fs::symlink("b.txt", base.join("root/a/link.txt")).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), base.join("root/escape.txt")).unwrap();
        std::os::unix::fs::symlink(&base, base.join("root/up")).unwrap();
        let root = Root::open(&base.join("root")).unwrap();
        (base, root)
    }

    #[test]
    fn both_openers_refuse_symlinks_leading_outside() {
        let (base, root) = scratch_root();
        let mut text = String::new();
        root.open_beneath(Path::new("a/b.txt"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "inside");
        assert_eq!(
            root.open_beneath(Path::new("escape.txt")).unwrap_err(),
            OpenError::Forbidden
        );
        assert!(root.open_beneath(Path::new("up/secret.txt")).is_err());
        assert_eq!(
            root.open_beneath(Path::new("missing")).unwrap_err(),
            OpenError::NotFound
        );

        // The fallback walks component by component and follows no symlink at all.
        text.clear();
        root.open_walking(Path::new("a/b.txt"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "inside");
        assert!(root
            .open_walking(Path::new(""))
            .unwrap()
            .metadata()
            .unwrap()
            .is_dir());
        for refused in ["escape.txt", "a/link.txt"] {
            assert_eq!(
                root.open_walking(Path::new(refused))
                    .map_err(classify)
                    .unwrap_err(),
                OpenError::Forbidden,
                "{refused}"
            );
        }
        // A symlinked directory on the way is not a directory to O_NOFOLLOW | O_DIRECTORY: 404.
        assert!(root.open_walking(Path::new("up/secret.txt")).is_err());
        assert_eq!(
            root.open_walking(Path::new("a/nope"))
                .map_err(classify)
                .unwrap_err(),
            OpenError::NotFound
        );
        std::fs::remove_dir_all(base).unwrap();
    }
}
