//! Recently served small files, kept in memory with their validators, so a hot file costs one
//! `stat` per request instead of open, fstat, read and close.
//!
//! Every hit is revalidated: the path is stat'ed beneath the root and must still name the same file
//! (device, inode, size, modification time) that was read. Bytes only ever enter the cache through
//! the openat2-checked opener, so a path later swapped for a symlink that leads elsewhere names a
//! different file, misses, and goes through the full checks again.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::conditional::Validators;
use super::root::{FileIdentity, Root};

/// Files up to this size are kept in memory (larger ones go out by sendfile anyway).
pub const MAX_CACHED_FILE: u64 = 16 * 1024;
/// Most entries per worker; when full the cache starts over (simple, and bounded at 16 MiB).
const MAX_ENTRIES: usize = 1024;

/// A request path as the cache knows it: the relative path and whether it ended in '/'.
pub type CacheKey = (PathBuf, bool);

/// One cached file.
#[derive(Debug)]
pub struct CachedFile {
    /// The file actually read (for "dir/", the index file), relative to the root.
    path: PathBuf,
    identity: FileIdentity,
    pub contents: Bytes,
    pub validators: Validators,
    pub content_type: &'static str,
}

#[derive(Debug, Default)]
pub struct FileCache {
    entries: Mutex<HashMap<CacheKey, Arc<CachedFile>>>,
}

impl FileCache {
    /// The cached file for `key`, if the path still names the very file that was read.
    pub fn lookup(&self, root: &Root, key: &CacheKey) -> Option<Arc<CachedFile>> {
        let entry = self.lock().get(key).cloned()?;
        let current = root.identity_beneath(&entry.path)?;
        (current == entry.identity).then_some(entry)
    }

    /// Reads a small regular file that was opened through the checked opener and remembers it.
    pub fn admit(
        &self,
        key: CacheKey,
        path: &Path,
        file: &File,
        meta: &Metadata,
        validators: Validators,
        content_type: &'static str,
    ) -> Option<Arc<CachedFile>> {
        if meta.len() > MAX_CACHED_FILE || !meta.is_file() {
            return None;
        }
        let mut contents = vec![0; meta.len() as usize];
        file.read_exact_at(&mut contents, 0).ok()?;
        let entry = Arc::new(CachedFile {
            path: path.to_path_buf(),
            identity: FileIdentity::of(meta),
            contents: Bytes::from(contents),
            validators,
            content_type,
        });
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, entry.clone());
        Some(entry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Arc<CachedFile>>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl FileIdentity {
    pub fn of(meta: &Metadata) -> FileIdentity {
        FileIdentity {
            device: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            modified_seconds: meta.mtime(),
            modified_nanos: meta.mtime_nsec(),
        }
    }
}
