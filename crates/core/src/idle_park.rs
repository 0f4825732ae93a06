//! Idle keep-alive connections, held outside the runtime until their client speaks again.
//!
//! Inside tokio even a waiting connection costs a task (its future plus header, 128-byte aligned)
//! and an I/O registration (256 bytes with its alignment): about 1.5 KB each. Browsers keep such
//! connections open for seconds between requests, so 10,000 of them would hold 15 MB doing
//! nothing. A connection that has answered its requests and then stayed silent for a while is
//! handed here by its task (see [`crate::connection::Ended::Idle`]): its descriptor moves into the
//! park's own epoll set and the task ends. What remains per connection is a 16-byte slot and the
//! kernel's epoll entry. When the client sends again (or closes), the park registers the socket
//! with the runtime again and hands it to the accept loop's `resume` (which starts a fresh task
//! for it); when its keep-alive deadline passes first, the park closes it.
//!
//! Parking and resuming cost four `epoll_ctl` calls, a `getpeername` and a task spawn, a few
//! microseconds in all. The connection decides when to park (HTTP waits 10 ms of silence), so
//! clients that send back to back never pay it.
//!
//! A parked connection keeps its share of the worker's connection limit: its permit is merged
//! into one permit the park holds and split off again when it leaves.
//!
//! TLS connections are never parked: their session (keys, sequence numbers, buffered records)
//! lives in rustls, in user space, so the descriptor alone cannot carry them, and keeping the
//! session beside the slot would keep most of what parking saves. A TLS connection says so with
//! `Socket::RAW_DESCRIPTOR`, and the HTTP connection keeps it in its task while idle.
//!
//! Resuming learns the peer again from the socket (`getpeername`). A connection whose peer came
//! from a PROXY protocol header has no such record in the kernel, so the park keeps that peer
//! beside the slot, in a table that stays empty (and costs nothing) without `--proxy-protocol`.

use std::collections::HashMap;
use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::event::epoll;
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::shutdown::ShutdownWatch;
use crate::socket::{Peer, Socket};

/// Deadlines are checked in one pass over all slots, at most this often: a parked connection is
/// closed within this long after its keep-alive timeout.
const SWEEP_SPACING: Duration = Duration::from_millis(100);
/// Events taken from the park's epoll set per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 64;
/// The timeout of the park's `epoll_wait`: the runtime said the set is ready, so never block.
const NO_WAIT: rustix::event::Timespec = rustix::event::Timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// The parked connections of one listener in one worker.
pub(crate) struct IdlePark<S> {
    /// The park's own epoll set, itself watched by the runtime.
    epoll: AsyncFd<OwnedFd>,
    slots: Mutex<Slots>,
    /// Woken when a connection arrives whose deadline is earlier than the planned sweep.
    earlier_deadline: Notify,
    _socket: PhantomData<fn() -> S>,
}

/// A connection whose client spoke again, leaving the park for a task of its own.
pub(crate) struct Resumed<S> {
    pub(crate) socket: S,
    /// Its client: as `getpeername` tells, or as its PROXY protocol header named.
    pub(crate) peer: Peer,
    /// `peer` came from a PROXY protocol header (the park kept it).
    pub(crate) proxied: bool,
    /// Its share of the worker's connection limit, split off the park's.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// The table of parked descriptors. A slot is named in epoll by its index and generation, so an
/// event for a slot that was emptied (and perhaps reused) in the meantime is recognised as stale.
struct Slots {
    slots: Vec<Slot>,
    /// Indexes of empty slots.
    free: Vec<u32>,
    parked: usize,
    /// The permits of all parked connections, merged into one.
    permits: Option<OwnedSemaphorePermit>,
    /// When the next deadline sweep is due (`None` while the park is empty).
    next_sweep: Option<Instant>,
    /// Deadlines are stored as milliseconds since this instant.
    epoch: Instant,
    /// Set on shutdown: nothing may be parked any more.
    closed: bool,
    /// Slot index → the client a PROXY protocol header named for that slot's connection
    /// (`getpeername` would give the proxy's address).
    carried_peers: HashMap<u32, Peer>,
}

struct Slot {
    /// The parked descriptor, owned by the slot; `None` when the slot is empty. (`OwnedFd` can
    /// never be -1, so the `Option` costs no space.)
    fd: Option<OwnedFd>,
    /// Counts the connections this slot has held, so that an event naming an earlier one is stale.
    generation: u32,
    /// Close the connection if it is still parked at this time (ms since `Slots::epoch`).
    deadline_ms: u64,
}

// The 16 bytes per parked connection that the module comment promises.
const _: () = assert!(std::mem::size_of::<Slot>() == 16);

impl<S: Socket> IdlePark<S> {
    pub(crate) fn new() -> io::Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        // SAFETY: an `OwnedFd` is open until dropped, and the AsyncFd owns this one from here on:
        // it stays open, and the same descriptor, for as long as it is registered.
        let epoll =
            unsafe { AsyncFd::register_with_interest(epoll, tokio::io::Interest::READABLE) }
                .map_err(io::Error::from)?;
        Ok(IdlePark {
            epoll,
            slots: Mutex::new(Slots {
                slots: Vec::new(),
                free: Vec::new(),
                parked: 0,
                permits: None,
                next_sweep: None,
                epoch: Instant::now(),
                closed: false,
                carried_peers: HashMap::new(),
            }),
            earlier_deadline: Notify::new(),
            _socket: PhantomData,
        })
    }

    /// Takes an idle connection until its client sends something or `until` passes. On failure
    /// (the worker is shutting down, or the kernel refuses) the connection is closed.
    /// `carried_peer`: the client its PROXY protocol header named, to be served as again.
    pub(crate) fn hold(
        &self,
        socket: S,
        permit: OwnedSemaphorePermit,
        until: Instant,
        carried_peer: Option<Peer>,
    ) {
        let fd = match socket.into_owned_fd() {
            Ok(fd) => fd,
            Err(error) => {
                tracing::debug!("cannot park an idle connection: {error}");
                return;
            }
        };
        let mut slots = self.lock();
        if slots.closed {
            return;
        }
        let index = match slots.free.pop() {
            Some(index) => index,
            None => {
                slots.slots.push(Slot {
                    fd: None,
                    generation: 0,
                    deadline_ms: 0,
                });
                (slots.slots.len() - 1) as u32
            }
        };
        let generation = slots.slots[index as usize].generation;
        if let Err(error) = epoll::add(
            self.epoll.get_ref(),
            &fd,
            epoll::EventData::new_u64(slot_key(index, generation)),
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT,
        ) {
            tracing::warn!(
                "cannot park an idle connection, closing it: {}",
                io::Error::from(error)
            );
            slots.free.push(index);
            return;
        }
        let deadline_ms = slots.millis(until);
        let slot = &mut slots.slots[index as usize];
        slot.fd = Some(fd);
        slot.deadline_ms = deadline_ms;
        slots.parked += 1;
        crate::metrics::add_parked(1);
        if let Some(peer) = carried_peer {
            slots.carried_peers.insert(index, peer);
        }
        match &mut slots.permits {
            Some(held) => held.merge(permit),
            none => *none = Some(permit),
        }
        if slots.next_sweep.is_none_or(|next| until < next) {
            slots.next_sweep = Some(until);
            self.earlier_deadline.notify_one();
        }
    }

    /// The park's task: resumes connections whose clients speak (hands each to `resume`, with a
    /// watch on the shutdown), closes those whose deadline passed. When the worker shuts down it
    /// takes no more connections, and those it holds stay until the drain's idle deadline at the
    /// latest: a client that sends meanwhile is served (with `Connection: close`).
    pub(crate) async fn run(
        self: Arc<Self>,
        mut shutdown: ShutdownWatch,
        resume: impl Fn(Resumed<S>, ShutdownWatch),
    ) {
        let mut draining = false;
        loop {
            let next_sweep = {
                let slots = self.lock();
                if draining && slots.parked == 0 {
                    break;
                }
                slots.next_sweep
            };
            tokio::select! {
                biased;
                _ = shutdown.recv(), if !draining => {
                    draining = true;
                    match shutdown.idle_deadline() {
                        Some(until) => self.lock().begin_drain(until),
                        None => break,
                    }
                }
                ready = self.epoll.readable() => match ready {
                    Ok(mut guard) => {
                        if self.resume_ready(&shutdown, &resume) < EVENTS_PER_WAIT {
                            guard.clear_ready();
                        }
                    }
                    Err(error) => {
                        tracing::error!("the idle-connection park failed: {error}");
                        break;
                    }
                },
                _ = tokio::time::sleep_until(next_sweep.unwrap_or_else(Instant::now).into()), if next_sweep.is_some() => {
                    self.sweep();
                }
                _ = self.earlier_deadline.notified() => {}
            }
        }
        self.close_all();
    }

    /// Resumes the connections epoll reports (up to one batch); returns how many events it took.
    fn resume_ready(
        &self,
        shutdown: &ShutdownWatch,
        resume: &impl Fn(Resumed<S>, ShutdownWatch),
    ) -> usize {
        let mut events = [epoll::Event {
            flags: epoll::EventFlags::empty(),
            data: epoll::EventData::new_u64(0),
        }; EVENTS_PER_WAIT];
        // A zero timeout never blocks.
        let count = match epoll::wait(self.epoll.get_ref(), &mut events[..], Some(&NO_WAIT)) {
            Ok(count) => count,
            Err(error) => {
                if error != rustix::io::Errno::INTR {
                    tracing::warn!(
                        "epoll_wait on the idle-connection park failed: {}",
                        io::Error::from(error)
                    );
                }
                return 0;
            }
        };
        for event in &events[..count] {
            let key = event.data.u64();
            let Some((fd, permit, carried_peer)) = self.take(key as u32, (key >> 32) as u32) else {
                continue;
            };
            match S::from_owned_fd(fd) {
                Ok((socket, peer)) => {
                    let connection = Resumed {
                        socket,
                        peer: carried_peer.unwrap_or(peer),
                        proxied: carried_peer.is_some(),
                        permit,
                    };
                    resume(connection, shutdown.clone())
                }
                Err(error) => tracing::debug!("cannot resume an idle connection: {error}"),
            }
        }
        count
    }

    /// Removes a slot's connection from the park, if the slot still holds the same one; with it
    /// comes the peer its PROXY header named, if it had one.
    fn take(
        &self,
        index: u32,
        generation: u32,
    ) -> Option<(OwnedFd, OwnedSemaphorePermit, Option<Peer>)> {
        let mut slots = self.lock();
        let slot = slots.slots.get(index as usize)?;
        if slot.generation != generation || slot.fd.is_none() {
            return None;
        }
        let carried_peer = if slots.carried_peers.is_empty() {
            None
        } else {
            slots.carried_peers.get(&index).copied()
        };
        let fd = slots.empty(index)?;
        // Leaving the epoll set before the runtime registers the socket keeps the two sets from
        // both reporting it. (It cannot fail for a descriptor that is in the set.)
        let _ = epoll::delete(self.epoll.get_ref(), &fd);
        let permit = slots.permits.as_mut().and_then(|held| held.split(1))?;
        Some((fd, permit, carried_peer))
    }

    /// Closes every connection whose deadline has passed and plans the next sweep.
    fn sweep(&self) {
        let mut slots = self.lock();
        let now = Instant::now();
        let now_ms = slots.millis(now);
        let mut earliest: Option<u64> = None;
        for index in 0..slots.slots.len() {
            let slot = &slots.slots[index];
            if slot.fd.is_none() {
                continue;
            }
            if slot.deadline_ms <= now_ms {
                drop(slots.empty(index as u32));
                if let Some(held) = slots.permits.as_mut() {
                    drop(held.split(1));
                }
            } else {
                earliest = Some(earliest.map_or(slot.deadline_ms, |e| e.min(slot.deadline_ms)));
            }
        }
        slots.next_sweep =
            earliest.map(|ms| (slots.epoch + Duration::from_millis(ms)).max(now + SWEEP_SPACING));
    }

    fn close_all(&self) {
        self.lock().close_all();
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // The table stays consistent at every step, so a panic elsewhere cannot leave it broken.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<S> Drop for IdlePark<S> {
    fn drop(&mut self) {
        self.slots
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .close_all();
    }
}

impl Slots {
    /// The worker drains: take no more connections, and close the ones held by `until`.
    fn begin_drain(&mut self, until: Instant) {
        self.closed = true;
        let until_ms = self.millis(until);
        for slot in &mut self.slots {
            slot.deadline_ms = slot.deadline_ms.min(until_ms);
        }
        if self.parked > 0 {
            self.next_sweep = Some(self.next_sweep.map_or(until, |next| next.min(until)));
        }
    }

    /// Closes every parked connection and refuses new ones.
    fn close_all(&mut self) {
        self.closed = true;
        for index in 0..self.slots.len() {
            if self.slots[index].fd.is_some() {
                drop(self.empty(index as u32));
            }
        }
        self.permits = None;
        self.next_sweep = None;
    }

    /// Empties a slot and returns its descriptor (closing it is up to the caller); `None` if the
    /// slot was empty already.
    fn empty(&mut self, index: u32) -> Option<OwnedFd> {
        let slot = &mut self.slots[index as usize];
        let fd = slot.fd.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        if !self.carried_peers.is_empty() {
            self.carried_peers.remove(&index);
        }
        self.free.push(index);
        self.parked -= 1;
        crate::metrics::add_parked(-1);
        if self.parked == 0 {
            self.next_sweep = None;
        }
        Some(fd)
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }
}

/// A slot's name in the epoll set: its generation in the high half, its index in the low one.
fn slot_key(index: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(index)
}
