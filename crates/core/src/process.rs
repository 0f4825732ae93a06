//! What the supervisor does to its own process at start-up, as a daemon manager expects: the file
//! mode mask, a pid file, and dropping root privileges once the listening sockets are bound (so
//! a server started as root can listen on port 80 and still run the application unprivileged).

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// The validated `--umask`, `--pid`, `--user` and `--group`.
#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    pub umask: Option<libc::mode_t>,
    pub pid_file: Option<PathBuf>,
    /// Run as this user after binding (name or number), and as its group unless `group` says.
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Sets the file mode mask (before binding, so Unix socket files get it).
pub fn apply_umask(config: &ProcessConfig) {
    if let Some(mask) = config.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    }
}

/// Writes this process's id to the pid file; it is removed by [`remove_pid_file`].
pub fn write_pid_file(path: &Path) -> io::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
}

/// Removes the pid file, if it still names this process (a newer server may have replaced it).
pub fn remove_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

/// Switches to `--user` / `--group` for good (supplementary groups too). Called once the
/// sockets are bound and before any worker exists; the supervisor is single-threaded then, as
/// the non-reentrant user database calls need.
pub fn drop_privileges(config: &ProcessConfig) -> Result<(), String> {
    let user = config.user.as_deref().map(lookup_user).transpose()?;
    let gid = match (config.group.as_deref(), user) {
        (Some(group), _) => lookup_group(group)?,
        (None, Some((_, gid))) => gid,
        (None, None) => return Ok(()),
    };
    // SAFETY: plain system calls with values looked up above; results are checked.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(format!(
                "--group: setgroups: {}",
                io::Error::last_os_error()
            ));
        }
        if libc::setgid(gid) != 0 {
            return Err(format!(
                "--group: setgid({gid}): {}",
                io::Error::last_os_error()
            ));
        }
        if let Some((uid, _)) = user {
            if libc::setuid(uid) != 0 {
                return Err(format!(
                    "--user: setuid({uid}): {}",
                    io::Error::last_os_error()
                ));
            }
        }
    }
    Ok(())
}

/// A user name or number → (uid, primary gid).
fn lookup_user(name: &str) -> Result<(libc::uid_t, libc::gid_t), String> {
    let c_name = CString::new(name).map_err(|_| format!("--user: bad name {name:?}"))?;
    // SAFETY: getpwnam/getpwuid return a pointer into static storage or null; we copy the two
    // fields out at once, on the only thread.
    unsafe {
        let mut entry = libc::getpwnam(c_name.as_ptr());
        if entry.is_null() {
            if let Ok(uid) = name.parse::<libc::uid_t>() {
                entry = libc::getpwuid(uid);
                if entry.is_null() {
                    return Ok((uid, uid));
                }
            }
        }
        if entry.is_null() {
            return Err(format!("--user: no user named {name:?}"));
        }
        Ok(((*entry).pw_uid, (*entry).pw_gid))
    }
}

/// A group name or number → gid.
fn lookup_group(name: &str) -> Result<libc::gid_t, String> {
    if let Ok(gid) = name.parse::<libc::gid_t>() {
        return Ok(gid);
    }
    let c_name = CString::new(name).map_err(|_| format!("--group: bad name {name:?}"))?;
    // SAFETY: as in `lookup_user`.
    unsafe {
        let entry = libc::getgrnam(c_name.as_ptr());
        if entry.is_null() {
            return Err(format!("--group: no group named {name:?}"));
        }
        Ok((*entry).gr_gid)
    }
}
