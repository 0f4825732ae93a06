//! Recently served files, with their validators: small ones in memory, so a hot file costs one
//! `stat` per request instead of open, fstat, read and close; larger ones as an open descriptor,
//! so sendfile needs no `openat2` path walk and no `close` per request (as nginx's
//! open_file_cache keeps descriptors).
//!
//! A hit is revalidated once the entry is older than the validity window (`--file-cache-validity`,
//! default 1 s; nginx's open_file_cache_valid is 60 s): the path is stat'ed beneath the root and
//! must still name the same file (device, inode, size, modification and status-change times) that
//! was read. Skipping
//! that stat within the window is worth about a third more requests per second on small files
//! (measured: 97k → 131k req/s for a 19-byte file); a changed file is seen within the window. Bytes only ever enter the cache through
//! the openat2-checked opener, so a path later swapped for a symlink that leads elsewhere names a
//! different file, misses, and goes through the full checks again.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conditional::Validators;
use super::root::{FileIdentity, Root};
use super::PRECOMPRESSED;

/// Files up to this size are kept in memory; larger ones are kept open.
pub const MAX_CACHED_FILE: u64 = 16 * 1024;
/// Most entries per worker; when full the cache starts over (simple, and bounded at 16 MiB).
const MAX_ENTRIES: usize = 1024;
/// Most open descriptors the cache holds per worker; when reached the cache starts over.
const MAX_OPEN_ENTRIES: usize = 256;

/// A request path as the cache knows it: the relative path and whether it ended in '/'.
pub type CacheKey = (PathBuf, bool);

/// One cached file.
#[derive(Debug)]
pub struct CachedFile {
    /// The file actually read (for "dir/", the index file), relative to the root.
    path: PathBuf,
    identity: FileIdentity,
    /// When the identity was last confirmed, as nanoseconds since [`epoch`].
    verified_at: AtomicU64,
    /// Which precompressed siblings existed when the identity was last confirmed.
    siblings: AtomicU8,
    pub contents: CachedContents,
    pub validators: Validators,
    pub content_type: &'static str,
}

/// Where a cached file's bytes come from.
#[derive(Debug, Clone)]
pub enum CachedContents {
    /// A small file's bytes.
    Bytes(Bytes),
    /// A larger file, open, and its size when it was opened.
    Open(Arc<File>, u64),
}

#[derive(Debug)]
pub struct FileCache {
    entries: Mutex<Entries>,
    /// How long a confirmed entry is trusted without another stat (zero: stat on every hit).
    validity: Duration,
}

/// The process-wide reference point for `verified_at`.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_nanos() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<CacheKey, Arc<CachedFile>>,
    /// How many of them hold an open descriptor.
    open: usize,
}

impl Entries {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(entry) = self.map.remove(key) {
            if matches!(entry.contents, CachedContents::Open(..)) {
                self.open -= 1;
            }
        }
    }
}

impl FileCache {
    pub fn new(validity: Duration) -> Self {
        FileCache {
            entries: Mutex::new(Entries::default()),
            validity,
        }
    }

    /// The cached file for `key`, if it was confirmed within the validity window or the path still
    /// names the very file that was read.
    pub fn lookup(&self, root: &Root, key: &CacheKey) -> Option<Arc<CachedFile>> {
        let entry = self.lock().map.get(key).cloned()?;
        let now = now_nanos();
        let verified_at = entry.verified_at.load(Ordering::Relaxed);
        if now.saturating_sub(verified_at) < self.validity.as_nanos() as u64 {
            return Some(entry);
        }
        // Gone or replaced: forget it (and close its descriptor, if it holds one).
        if root.identity_beneath(&entry.path).as_ref() != Some(&entry.identity) {
            self.lock().remove(key);
            return None;
        }
        entry
            .siblings
            .store(Siblings::of(root, &entry.path).0, Ordering::Relaxed);
        entry.verified_at.store(now, Ordering::Relaxed);
        Some(entry)
    }

    /// Remembers a regular file that was opened through the checked opener: a small one's bytes,
    /// a larger one's descriptor.
    pub fn admit(
        &self,
        key: CacheKey,
        path: &Path,
        file: &Arc<File>,
        meta: &Metadata,
        described: Described,
    ) -> Option<Arc<CachedFile>> {
        let Described {
            validators,
            content_type,
            siblings,
        } = described;
        if !meta.is_file() {
            return None;
        }
        let contents = if meta.len() <= MAX_CACHED_FILE {
            let mut contents = vec![0; meta.len() as usize];
            file.read_exact_at(&mut contents, 0).ok()?;
            CachedContents::Bytes(Bytes::from(contents))
        } else {
            CachedContents::Open(file.clone(), meta.len())
        };
        let opens = matches!(contents, CachedContents::Open(..));
        let entry = Arc::new(CachedFile {
            path: path.to_path_buf(),
            identity: FileIdentity::of(meta),
            verified_at: AtomicU64::new(now_nanos()),
            siblings: AtomicU8::new(siblings.0),
            contents,
            validators,
            content_type,
        });
        let mut entries = self.lock();
        if entries.map.len() >= MAX_ENTRIES || (opens && entries.open >= MAX_OPEN_ENTRIES) {
            entries.map.clear();
            entries.open = 0;
        }
        entries.remove(&key);
        entries.map.insert(key, entry.clone());
        entries.open += usize::from(opens);
        Some(entry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CachedFile {
    /// The precompressed siblings seen when the file was last confirmed.
    pub fn siblings(&self) -> Siblings {
        Siblings(self.siblings.load(Ordering::Relaxed))
    }
}

/// What a file is served with besides its bytes, worked out before it is admitted.
#[derive(Debug)]
pub struct Described {
    pub validators: Validators,
    pub content_type: &'static str,
    pub siblings: Siblings,
}

/// Which of a file's precompressed siblings ([`PRECOMPRESSED`]) exist, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Siblings(u8);

impl Siblings {
    /// Looks for `path.br` and `path.gz` as regular files (one `fstatat` each). Only a header and
    /// the choice of the cache depend on this; a sibling is served only through the checked opener.
    pub fn of(root: &Root, path: &Path) -> Siblings {
        let mut found = 0;
        for (bit, (extension, _, _)) in PRECOMPRESSED.iter().enumerate() {
            let mut sibling = path.as_os_str().to_os_string();
            sibling.push(".");
            sibling.push(extension);
            if root.identity_beneath(Path::new(&sibling)).is_some() {
                found |= 1 << bit;
            }
        }
        Siblings(found)
    }

    /// Whether any sibling exists: the plain file's response then varies with Accept-Encoding.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    /// Whether a sibling exists in a coding the client accepts.
    pub fn any_accepted(self, accept_encoding: &[u8]) -> bool {
        PRECOMPRESSED
            .iter()
            .enumerate()
            .any(|(bit, (_, coding, _))| {
                self.0 & (1 << bit) != 0 && super::accepts_coding(accept_encoding, coding)
            })
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
            changed_seconds: meta.ctime(),
            changed_nanos: meta.ctime_nsec(),
        }
    }
}
