//! Helpers shared by the fuzz targets: splitting one input into reads, a scripted socket, the
//! switch for known disagreements, and (in [`uri`]) the RFC grammar of hosts and targets.
//!
//! Every target of a network decoder (tern-core's and tern-lines') feeds it the same bytes twice,
//! once whole and once cut into reads, and checks that both give the same result: network code
//! must not depend on where reads end. The cut points come from a hash of the input, so an input
//! (and a crash file) always replays the same way, and the seed corpus stays plain text with no
//! header of parameters.

use std::collections::VecDeque;
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tern_core::socket::{Peer, Socket};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

pub mod uri;

/// Whether the targets hold tern-core to the RFC even where it is known to disagree (each such
/// place says what it tolerates and why). Off by default, so the smoke run checks everything
/// else while a known disagreement is open; `TERN_FUZZ_STRICT=1` turns it on.
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("TERN_FUZZ_STRICT").is_some_and(|value| value == "1"))
}

/// A small deterministic generator (SplitMix64) seeded from the input.
#[derive(Debug, Clone)]
pub struct Rng {
    /// The generator's state; advanced by a fixed odd constant per draw.
    state: u64,
}

impl Rng {
    /// A generator whose draws depend on every byte of `data` (FNV-1a of the input).
    pub fn from_input(data: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &byte in data {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng { state: hash }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next_u64() % bound as u64) as usize
        }
    }

    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// Inputs up to this many bytes are also fed one byte per read (unit: bytes); longer ones only in
/// random pieces, since parsers that re-scan their buffer make byte-per-read quadratic.
pub const BYTE_PER_READ_MAX: usize = 512;

/// Cuts `data` into non-empty reads: one byte each for short inputs on a coin toss, otherwise
/// pieces of random length (mostly short, sometimes up to 4 KiB).
pub fn split_into_reads<'a>(data: &'a [u8], rng: &mut Rng) -> Vec<&'a [u8]> {
    if data.len() <= BYTE_PER_READ_MAX && rng.coin() {
        return data.chunks(1).collect();
    }
    let mut reads = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let longest = if rng.below(8) == 0 { 4096 } else { 16 };
        let take = 1 + rng.below(longest.min(rest.len()));
        let (piece, tail) = rest.split_at(take);
        reads.push(piece);
        rest = tail;
    }
    reads
}

/// Runs `future` to completion on this thread's current-thread runtime (time enabled, since the
/// line reader arms an idle timeout; it never fires because the scripted socket is always ready).
pub fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A socket whose peer sent the given reads, one per `read` call, and then closed.
#[derive(Debug)]
pub struct ScriptedSocket {
    /// What each coming read returns, in order; empty means end of stream.
    reads: VecDeque<Vec<u8>>,
}

impl ScriptedSocket {
    pub fn new(reads: &[&[u8]]) -> Self {
        ScriptedSocket {
            reads: reads.iter().map(|read| read.to_vec()).collect(),
        }
    }
}

impl AsyncRead for ScriptedSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut read) = self.reads.pop_front() {
            let fits = read.len().min(buf.remaining());
            buf.put_slice(&read[..fits]);
            if fits < read.len() {
                self.reads.push_front(read.split_off(fits));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A scripted socket has no descriptor of its own. It shows /dev/null's, opened read-only once, so
/// that a call on the descriptor (sendfile, writev, a peek) fails as it would on a dead socket.
impl AsFd for ScriptedSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        static DEV_NULL: OnceLock<File> = OnceLock::new();
        DEV_NULL
            .get_or_init(|| File::open("/dev/null").expect("open /dev/null"))
            .as_fd()
    }
}

impl Socket for ScriptedSocket {
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }

    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }

    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn try_io<R>(&self, _interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        f()
    }

    fn local_addr(&self) -> Option<std::net::SocketAddr> {
        None
    }

    fn into_owned_fd(self) -> io::Result<OwnedFd> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn from_owned_fd(_fd: OwnedFd) -> io::Result<(Self, Peer)> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
