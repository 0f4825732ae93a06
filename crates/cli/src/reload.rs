//! The development reloader (`--reload`): watches the application's source directories with
//! inotify and tells the supervisor once a save has settled, so that it restarts the workers.
//!
//! It runs inside the supervisor's own loop ([`CodeWatch`]): the inotify descriptor is
//! non-blocking and read once per tick, so the supervisor stays single-threaded (safe to fork)
//! and an idle reloader costs one failed `read` per tick. Directories are watched, not files: an
//! editor that saves by writing a new file and renaming it over the old one replaces the inode a
//! watch on the file would follow, while the directory sees the rename.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tern_core::supervisor::CodeWatch;

/// A save is over once no event came for this long: an editor's save (a temporary file, a
/// rename, a chmod) takes a few milliseconds, and the supervisor looks every 200 ms anyway.
const QUIET: Duration = Duration::from_millis(150);
/// Files that keep changing (a generator writing sources) still restart the workers this long
/// after the first change, rather than never.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Most directories watched: the kernel's default `fs.inotify.max_user_watches` on older
/// kernels, and far more than a project has (a tree this big is a home directory or a disk).
const MAX_WATCHED_DIRS: usize = 8192;
/// Bytes read from the inotify descriptor at once: many events of up to 16 + 256 bytes each.
const EVENT_BUFFER: usize = 16 * 1024;
/// The files whose change always restarts the workers (unless excluded).
const DEFAULT_INCLUDE: &str = "*.py";
/// Directories never descended into, besides hidden ones (`.git`, `.venv`) and virtual
/// environments (a directory holding `pyvenv.cfg`): caches and installed packages.
const SKIPPED_DIRS: &[&str] = &[
    "__pycache__",
    "node_modules",
    "site-packages",
    "dist-packages",
];
/// What a watched directory reports: files written and closed, created, removed, renamed in or
/// out, or touched (`touch app.py` is a common way to ask for a reload).
const WATCH_MASK: WatchMask = WatchMask::CLOSE_WRITE
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::DONT_FOLLOW)
    .union(WatchMask::EXCL_UNLINK);

/// What `--reload` watches, validated.
#[derive(Debug)]
pub struct ReloadConfig {
    /// Directories watched with all their subdirectories: the current directory, every
    /// --pythonpath that exists and every --reload-dir (absolute).
    pub roots: Vec<PathBuf>,
    /// Files whose change restarts the workers: `*.py` and every --reload-include.
    pub include: Patterns,
    /// Files and directories ignored: every --reload-exclude.
    pub exclude: Patterns,
    /// The include globs as given, for the start-up line.
    pub include_text: Vec<String>,
}

/// A set of globs: those without '/' are matched against a file's name, the others against its
/// whole path (a relative one matches anywhere: `tests/*.py` is `**/tests/*.py`).
#[derive(Debug)]
pub struct Patterns {
    /// Globs matched against the last component.
    names: GlobSet,
    /// Globs matched against the absolute path.
    paths: GlobSet,
}

impl Patterns {
    /// Compiles `globs`; `flag` names the option in the error.
    pub fn new(flag: &str, globs: &[String]) -> Result<Self, String> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for text in globs {
            let bad = |error: globset::Error| format!("--{flag}: '{text}' is not a glob: {error}");
            if text.is_empty() {
                return Err(format!("--{flag}: an empty glob matches nothing"));
            }
            if text.contains('/') {
                let anchored = if text.starts_with('/') || text.starts_with("**/") {
                    text.clone()
                } else {
                    format!("**/{}", text.trim_start_matches("./"))
                };
                paths.add(
                    GlobBuilder::new(anchored.trim_end_matches('/'))
                        .literal_separator(true)
                        .build()
                        .map_err(bad)?,
                );
            } else {
                names.add(
                    GlobBuilder::new(text)
                        .literal_separator(true)
                        .build()
                        .map_err(bad)?,
                );
            }
        }
        let build = |set: GlobSetBuilder| set.build().map_err(|e| format!("--{flag}: {e}"));
        Ok(Patterns {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    fn matches(&self, path: &Path) -> bool {
        path.file_name()
            .is_some_and(|name| self.names.is_match(name))
            || self.paths.is_match(path)
    }
}

impl ReloadConfig {
    /// `roots` as given (relative ones against the current directory); the include list gets
    /// `*.py` first.
    pub fn new(
        roots: &[PathBuf],
        includes: &[String],
        excludes: &[String],
    ) -> Result<Self, String> {
        let mut include_text = vec![DEFAULT_INCLUDE.to_string()];
        include_text.extend(includes.iter().filter(|g| *g != DEFAULT_INCLUDE).cloned());
        let mut absolute_roots: Vec<PathBuf> = Vec::new();
        for root in roots {
            let root = std::path::absolute(root)
                .map_err(|e| format!("--reload: cannot resolve {}: {e}", root.display()))?;
            if !absolute_roots.contains(&root) {
                absolute_roots.push(root);
            }
        }
        Ok(ReloadConfig {
            roots: absolute_roots,
            include: Patterns::new("reload-include", &include_text)?,
            exclude: Patterns::new("reload-exclude", excludes)?,
            include_text,
        })
    }
}

/// A change seen but not acted on yet (more events of the same save may follow).
struct Pending {
    /// When the first event of this burst was read.
    first: Instant,
    /// When the latest one was read.
    last: Instant,
    /// The first file that changed, for the log.
    path: PathBuf,
    /// How many relevant events the burst had.
    events: usize,
}

/// Watches the directory trees of a [`ReloadConfig`]; the supervisor polls it.
pub struct CodeWatcher {
    config: ReloadConfig,
    inotify: Inotify,
    /// Each watch and the directory it is on.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// The burst of changes being waited out, if any.
    pending: Option<Pending>,
    /// Read buffer for events.
    buffer: Vec<u8>,
    /// A "cannot watch more" warning was logged already (said once, not per directory).
    limit_warned: bool,
}

impl CodeWatcher {
    /// Starts watching every root and the directories below them.
    pub fn new(config: ReloadConfig) -> io::Result<Self> {
        let mut watcher = CodeWatcher {
            config,
            inotify: Inotify::init()?,
            dirs: HashMap::new(),
            pending: None,
            buffer: vec![0; EVENT_BUFFER],
            limit_warned: false,
        };
        watcher.watch_roots();
        let roots: Vec<String> = watcher
            .config
            .roots
            .iter()
            .map(|r| r.display().to_string())
            .collect();
        let count = watcher.dirs.len();
        tracing::info!(
            "reload: watching {count} director{} under {} for changes to {}",
            if count == 1 { "y" } else { "ies" },
            roots.join(", "),
            watcher.config.include_text.join(", ")
        );
        Ok(watcher)
    }

    /// The inotify descriptor: a forked worker closes its copy, having no use for it.
    pub fn raw_fd(&self) -> RawFd {
        self.inotify.as_raw_fd()
    }

    fn watch_roots(&mut self) -> bool {
        let roots = self.config.roots.clone();
        let mut found = false;
        let mut seen = HashSet::new();
        for root in roots {
            found |= self.watch_tree(root, &mut seen);
        }
        found
    }

    /// Watches `top` and every directory below it that is not skipped; true if a file that
    /// matters is there (a new directory full of modules is a change).
    fn watch_tree(&mut self, top: PathBuf, seen: &mut HashSet<PathBuf>) -> bool {
        let mut found = false;
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            if !seen.insert(dir.clone()) {
                continue;
            }
            if self.dirs.len() >= MAX_WATCHED_DIRS {
                self.warn_limit(&format!(
                    "{MAX_WATCHED_DIRS} directories are watched already"
                ));
                break;
            }
            // Watch before listing: a file created in between shows up in one or the other.
            match self.inotify.watches().add(&dir, WATCH_MASK) {
                Ok(wd) => {
                    self.dirs.insert(wd, dir.clone());
                }
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => {
                    self.warn_limit("the kernel's fs.inotify.max_user_watches is reached");
                    break;
                }
                Err(error) => {
                    tracing::debug!("reload: cannot watch {}: {error}", dir.display());
                    continue;
                }
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() {
                    if !self.skipped_dir(&path) {
                        stack.push(path);
                    }
                } else if self.matters(&path) {
                    found = true;
                }
            }
        }
        found
    }

    fn warn_limit(&mut self, why: &str) {
        if !std::mem::replace(&mut self.limit_warned, true) {
            tracing::warn!(
                "reload: {why}; changes in the others go unnoticed. Leave out big directories \
                 with --reload-exclude, or start tern where the project is"
            );
        }
    }

    /// A directory not to descend into: hidden, a cache, installed packages, a virtual
    /// environment, or excluded.
    fn skipped_dir(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return true;
        };
        name.starts_with('.')
            || SKIPPED_DIRS.contains(&name)
            || self.config.exclude.matches(path)
            || path.join("pyvenv.cfg").exists()
    }

    /// A file whose change restarts the workers: included, not excluded, not hidden (an
    /// editor's lock or swap file such as `.#app.py`).
    fn matters(&self, path: &Path) -> bool {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        !hidden && self.config.include.matches(path) && !self.config.exclude.matches(path)
    }

    /// Reads every queued event; notes the ones that matter.
    fn read_events(&mut self) {
        loop {
            let batch: Vec<(WatchDescriptor, EventMask, Option<OsString>)> =
                match self.inotify.read_events(&mut self.buffer) {
                    Ok(events) => events
                        .map(|event| (event.wd, event.mask, event.name.map(|n| n.to_os_string())))
                        .collect(),
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        tracing::warn!("reload: cannot read file events: {error}");
                        return;
                    }
                };
            for (wd, mask, name) in batch {
                self.handle(wd, mask, name);
            }
        }
    }

    fn handle(&mut self, wd: WatchDescriptor, mask: EventMask, name: Option<OsString>) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            // Events were lost: look again at everything (new directories too), and restart.
            tracing::debug!("reload: the kernel's event queue overflowed");
            self.watch_roots();
            let root = self.config.roots.first().cloned().unwrap_or_default();
            self.note(root);
            return;
        }
        if mask.contains(EventMask::IGNORED) {
            // The directory is gone (or unmounted): the kernel dropped its watch.
            self.dirs.remove(&wd);
            return;
        }
        let (Some(dir), Some(name)) = (self.dirs.get(&wd), name) else {
            return;
        };
        let path = dir.join(name);
        if mask.contains(EventMask::ISDIR) {
            if self.skipped_dir(&path) {
                return;
            }
            if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                // A new directory, or one moved in: watch it, and whatever is already inside.
                if self.watch_tree(path.clone(), &mut HashSet::new()) {
                    self.note(path);
                }
            } else if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                self.note(path);
            }
            return;
        }
        if self.matters(&path) {
            self.note(path);
        }
    }

    fn note(&mut self, path: PathBuf) {
        let now = Instant::now();
        tracing::debug!("reload: {} changed", path.display());
        match &mut self.pending {
            Some(pending) => {
                pending.last = now;
                pending.events += 1;
            }
            None => {
                self.pending = Some(Pending {
                    first: now,
                    last: now,
                    path,
                    events: 1,
                })
            }
        }
    }
}

impl CodeWatch for CodeWatcher {
    fn changed(&mut self) -> bool {
        self.read_events();
        let Some(pending) = &self.pending else {
            return false;
        };
        let now = Instant::now();
        if now.duration_since(pending.last) < QUIET && now.duration_since(pending.first) < MAX_DELAY
        {
            return false;
        }
        let more = match pending.events {
            1 => String::new(),
            n => format!(" ({n} changes)"),
        };
        tracing::info!(
            "reload: {} changed{more}; restarting the workers",
            pending.path.display()
        );
        self.pending = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(globs: &[&str]) -> Patterns {
        let globs: Vec<String> = globs.iter().map(|g| g.to_string()).collect();
        Patterns::new("x", &globs).unwrap()
    }

    #[test]
    fn globs_without_a_slash_match_names_and_others_paths() {
        let set = patterns(&["*.py", "tests/*.py"]);
        assert!(set.matches(Path::new("/p/app.py")));
        assert!(set.matches(Path::new("/p/sub/app.py")));
        assert!(!set.matches(Path::new("/p/app.pyc")));
        let tests = patterns(&["tests/*.py"]);
        assert!(tests.matches(Path::new("/p/tests/a.py")));
        assert!(tests.matches(Path::new("/p/x/tests/a.py")));
        assert!(!tests.matches(Path::new("/p/tests/deep/a.py")));
        assert!(!tests.matches(Path::new("/p/a.py")));
    }

    #[test]
    fn bad_globs_are_refused() {
        assert!(Patterns::new("x", &["[".to_string()]).is_err());
        assert!(Patterns::new("x", &[String::new()]).is_err());
    }

    #[test]
    fn py_is_always_included() {
        let config = ReloadConfig::new(&[], &["*.html".into()], &[]).unwrap();
        assert!(config.include.matches(Path::new("/p/a.py")));
        assert!(config.include.matches(Path::new("/p/a.html")));
        assert_eq!(config.include_text, ["*.py", "*.html"]);
    }
}
