//! Keeps freed memory in the allocator instead of handing it back to the kernel after every burst.
//!
//! glibc returns the free top of a heap to the kernel once it exceeds 128 KiB. A worker frees that
//! much after every batch of requests (a batch of 64 ten-kilobyte POST bodies is 640 KiB), so the
//! next batch faulted the same pages back in: on the WSGI echo benchmark, 0.4 page faults and 0.01
//! `madvise` calls per request, all in the Python threads' `PyBytes_FromStringAndSize`. Here the
//! free top may reach 8 MiB before it is returned. Setting that turns off glibc's sliding mmap
//! threshold, so blocks up to 1 MiB are set to come from the heap (reused) rather than from
//! a fresh `mmap` each time; larger ones (a big upload read whole) still get their own mapping.

/// Free memory at the top of a heap kept for reuse.
const TRIM_THRESHOLD: i32 = 8 << 20;
/// Blocks at least this large get their own mapping.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Applies the thresholds to this process (a worker, after the fork). Without glibc: nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before the worker's threads.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
