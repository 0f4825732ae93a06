//! The document root as an open directory, and opening files strictly beneath it.
//!
//! `openat2(RESOLVE_BENEATH)` makes the kernel refuse any resolution that leaves the root, through
//! `..` or through a symlink, atomically (no check-then-open race). Kernels without openat2 fall
//! back to canonicalising the path and checking the prefix before opening.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", path.display())));
        }
        Ok(Root { dir: dir.into(), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `relative` (normal segments only) for reading, refusing anything outside the root.
    pub fn open_beneath(&self, relative: &Path) -> Result<File, OpenError> {
        let relative = if relative.as_os_str().is_empty() { Path::new(".") } else { relative };
        let c_path = CString::new(relative.as_os_str().as_bytes()).map_err(|_| OpenError::Forbidden)?;
        if !OPENAT2_MISSING.load(Ordering::Relaxed) {
            match self.openat2(&c_path) {
                Err(error) if error.raw_os_error() == Some(libc::ENOSYS) => {
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                }
                result => return result.map_err(classify),
            }
        }
        self.open_checked(relative).map_err(classify)
    }

    /// Identity of the regular file `relative` names now (following symlinks), or None.
    ///
    /// Used only to revalidate bytes that were read through [`Root::open_beneath`]; it never
    /// decides on its own that a file may be served.
    pub fn identity_beneath(&self, relative: &Path) -> Option<FileIdentity> {
        let c_path = CString::new(relative.as_os_str().as_bytes()).ok()?;
        // SAFETY: stat is plain data; fstatat fills it from a valid dirfd and NUL-terminated path.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatat(self.dir.as_raw_fd(), c_path.as_ptr(), &mut stat, 0) } != 0 {
            return None;
        }
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        Some(FileIdentity {
            device: stat.st_dev,
            inode: stat.st_ino,
            size: stat.st_size as u64,
            modified_seconds: stat.st_mtime,
            modified_nanos: stat.st_mtime_nsec,
        })
    }

    fn openat2(&self, c_path: &CString) -> io::Result<File> {
        // SAFETY: open_how is plain data; zeroed is a valid starting value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: valid dirfd, NUL-terminated path, and a pointer to an open_how of the given size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c_path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just gave us this descriptor.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }

    /// Fallback without openat2: resolve every symlink, check the prefix, then open.
    fn open_checked(&self, relative: &Path) -> io::Result<File> {
        let resolved = std::fs::canonicalize(self.path.join(relative))?;
        if !resolved.starts_with(&self.path) {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(resolved)
    }
}

fn classify(error: io::Error) -> OpenError {
    match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) => OpenError::NotFound,
        _ => OpenError::Forbidden,
    }
}
