//! Who holds the RTMP connection slots, and who goes when a new connection needs one. No I/O:
//! the accept loop asks [`ConnectionTable::make_room`] before it starts a connection, closes
//! what it is told to, and tells the table when a connection has ended.
//!
//! The rules, so that strangers cannot keep the streamer out (a connection that has not started
//! publishing has shown no secret: it is a stranger, whoever it is):
//!
//! - A new connection is always let in; room is made by closing strangers, never the
//!   connection that is publishing.
//! - An address (an IPv4 address or an IPv6 /64, [`crate::brute_force::address_key`]) holds at
//!   most [`ConnectionLimits::max_per_address`] connections that are not publishing: over that,
//!   its own weakest one goes.
//! - In all there are at most [`ConnectionLimits::max_connections`]: over that, the weakest
//!   stranger of the address holding the most strangers goes.
//! - "Weakest" is the one that got least far ([`Progress`]: a socket that has sent nothing
//!   before one whose first byte (RTMP's version) was waiting when it was accepted, before one
//!   whose first handshake packet was answered, before one that completed the handshake), then
//!   the oldest.
//!
//! So idle sockets, from one address or many, only ever push each other out: an encoder sends
//! its first handshake packet as soon as it connects (and on Linux the kernel hands over a
//! connection only once it has: `first_bytes.rs`), so it is ranked above silent sockets from the
//! moment it is accepted, before its task has even run; silent sockets, however fast they are
//! reopened, close each other and not it, even from the attacker's own address.
//! To close it before it publishes, an attacker must open, faster than the encoder's few round
//! trips, more handshaken connections than `max_connections` from as many addresses (or
//! `max_per_address` from the encoder's own address). The deadlines in `connection.rs` end
//! whatever is left idle.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::brute_force::address_key;

/// The connection limits (`[rtmp] max_connections`, `max_connections_per_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open RTMP connections in all.
    pub max_connections: usize,
    /// Connections from one address that are not publishing.
    pub max_per_address: usize,
}

/// How far a connection got. The later, the longer it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(super) enum Progress {
    Connected = 0,
    /// Its first byte, RTMP's version, was waiting when it was accepted (set by the accept loop).
    Spoke = 1,
    /// Sent a well-formed first handshake packet (C0 and C1), answered.
    Greeted = 2,
    Handshaken = 3,
    /// Publishing with the right stream key: never closed to make room.
    Publishing = 4,
}

/// A connection's [`Progress`], set by its task and read by the accept loop.
#[derive(Debug, Clone, Default)]
pub(super) struct ProgressCell(Arc<AtomicU8>);

impl ProgressCell {
    pub(super) fn new(progress: Progress) -> Self {
        ProgressCell(Arc::new(AtomicU8::new(progress as u8)))
    }

    pub(super) fn set(&self, progress: Progress) {
        self.0.store(progress as u8, Ordering::Relaxed);
    }

    fn get(&self) -> Progress {
        match self.0.load(Ordering::Relaxed) {
            0 => Progress::Connected,
            1 => Progress::Spoke,
            2 => Progress::Greeted,
            3 => Progress::Handshaken,
            _ => Progress::Publishing,
        }
    }
}

/// A connection to close to make room.
#[derive(Debug)]
pub(super) struct Evicted<Handle> {
    /// Its address (as counted: IPv6 cut to the /64).
    pub address: IpAddr,
    pub handle: Handle,
}

/// Every slot is held by a publishing connection (only with `max_connections` 1).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AllPublishing;

struct Slot<Id, Handle> {
    id: Id,
    address: IpAddr,
    progress: ProgressCell,
    handle: Handle,
}

/// The open connections, oldest first. `Id` names a connection (a tokio task id), `Handle`
/// closes it (the task's abort handle).
pub(super) struct ConnectionTable<Id, Handle> {
    limits: ConnectionLimits,
    open: Vec<Slot<Id, Handle>>,
}

impl<Id: PartialEq, Handle> ConnectionTable<Id, Handle> {
    pub(super) fn new(limits: ConnectionLimits) -> Self {
        ConnectionTable {
            limits,
            open: Vec::new(),
        }
    }

    /// Before letting in a connection from `peer`: the connections to close so that it fits
    /// (already forgotten by the table); see the module docs for who they are.
    pub(super) fn make_room(
        &mut self,
        peer: IpAddr,
    ) -> Result<Vec<Evicted<Handle>>, AllPublishing> {
        let address = address_key(peer);
        let mut evicted = Vec::new();
        loop {
            let strangers_here = self
                .open
                .iter()
                .filter(|slot| {
                    slot.address == address && slot.progress.get() < Progress::Publishing
                })
                .count();
            let victim = if strangers_here >= self.limits.max_per_address.max(1) {
                self.weakest_of(address)
            } else if self.open.len() >= self.limits.max_connections.max(1) {
                self.weakest_of_busiest()
            } else {
                return Ok(evicted);
            };
            let Some(victim) = victim else {
                return Err(AllPublishing);
            };
            let slot = self.open.remove(victim);
            evicted.push(Evicted {
                address: slot.address,
                handle: slot.handle,
            });
        }
    }

    /// A connection was let in (after [`Self::make_room`]).
    pub(super) fn insert(&mut self, id: Id, peer: IpAddr, progress: ProgressCell, handle: Handle) {
        self.open.push(Slot {
            id,
            address: address_key(peer),
            progress,
            handle,
        });
    }

    /// A connection ended (nothing happens if it was evicted).
    pub(super) fn remove(&mut self, id: &Id) {
        self.open.retain(|slot| slot.id != *id);
    }

    /// The index of the stranger to close when the table is full: one of the address holding
    /// the most strangers, the one that got least far, the oldest of those.
    fn weakest_of_busiest(&self) -> Option<usize> {
        let mut strangers: HashMap<IpAddr, usize> = HashMap::new();
        for slot in &self.open {
            if slot.progress.get() < Progress::Publishing {
                *strangers.entry(slot.address).or_default() += 1;
            }
        }
        self.open
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let count = strangers.get(&slot.address).copied().unwrap_or(0);
                (Reverse(count), slot.progress.get(), index)
            })
            .filter(|(_, progress, _)| *progress < Progress::Publishing)
            .min()
            .map(|(_, _, index)| index)
    }

    /// Among the strangers from `address`, the index of the one that got least far, the
    /// oldest of those.
    fn weakest_of(&self, address: IpAddr) -> Option<usize> {
        self.open
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.address == address)
            .map(|(index, slot)| (slot.progress.get(), index))
            .filter(|(progress, _)| *progress < Progress::Publishing)
            .min()
            .map(|(_, index)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A table where each connection's id and handle are the same number.
    struct Harness {
        table: ConnectionTable<u32, u32>,
        progress: HashMap<u32, ProgressCell>,
        next: u32,
    }

    impl Harness {
        fn new(max_connections: usize, max_per_address: usize) -> Self {
            Harness {
                table: ConnectionTable::new(ConnectionLimits {
                    max_connections,
                    max_per_address,
                }),
                progress: HashMap::new(),
                next: 0,
            }
        }

        /// Lets a connection in; returns its id and the ids closed for it.
        fn connect(&mut self, peer: &str) -> (u32, Vec<u32>) {
            let evicted = self.table.make_room(ip(peer)).expect("room");
            let id = self.next;
            self.next += 1;
            let progress = ProgressCell::default();
            self.progress.insert(id, progress.clone());
            self.table.insert(id, ip(peer), progress, id);
            (id, evicted.into_iter().map(|e| e.handle).collect())
        }

        fn set(&self, id: u32, progress: Progress) {
            self.progress[&id].set(progress);
        }
    }

    #[test]
    fn an_address_over_its_cap_loses_its_own_oldest() {
        let mut h = Harness::new(10, 2);
        let (a, _) = h.connect("192.0.2.1");
        let (_b, _) = h.connect("192.0.2.1");
        let (_other, closed) = h.connect("192.0.2.2");
        assert!(closed.is_empty());
        let (_c, closed) = h.connect("192.0.2.1");
        assert_eq!(closed, [a]);
        assert_eq!(h.table.open.len(), 3);
    }

    #[test]
    fn the_publisher_is_never_closed_and_not_counted_against_its_address() {
        let mut h = Harness::new(3, 1);
        let (publisher, _) = h.connect("192.0.2.1");
        h.set(publisher, Progress::Publishing);
        let (_stranger, closed) = h.connect("192.0.2.1");
        assert!(closed.is_empty(), "the publisher is not a stranger");
        for _ in 0..5 {
            let (_, closed) = h.connect("192.0.2.1");
            assert!(!closed.contains(&publisher));
            let (_, closed) = h.connect("192.0.2.7");
            assert!(!closed.contains(&publisher));
        }
        assert_eq!(h.table.open.len(), 3);
    }

    #[test]
    fn when_full_the_busiest_address_gives_way() {
        let mut h = Harness::new(6, 4);
        let mut attacker = Vec::new();
        for _ in 0..4 {
            attacker.push(h.connect("198.51.100.1").0);
        }
        let (streamer, _) = h.connect("192.0.2.1");
        let (_, _) = h.connect("198.51.100.2");
        // Full: every newcomer takes a slot from 198.51.100.1 (most strangers), oldest first;
        // its last one too (one each everywhere then: the oldest goes).
        for (i, old) in attacker.iter().enumerate() {
            let (_, closed) = h.connect(&format!("203.0.113.{i}"));
            assert_eq!(closed, [*old]);
        }
        // Now every address holds one: the oldest connection goes, the streamer among them.
        let (_, closed) = h.connect("203.0.113.9");
        assert_eq!(closed, [streamer]);
        assert_eq!(h.table.open.len(), 6);
    }

    #[test]
    fn idle_sockets_go_before_handshaken_ones() {
        let mut h = Harness::new(4, 4);
        let (streamer, _) = h.connect("127.0.0.1");
        h.set(streamer, Progress::Handshaken);
        let mut idle: Vec<u32> = (0..3).map(|_| h.connect("127.0.0.1").0).collect();
        // The same address, at its cap and full: however often idle sockets come back, the
        // handshaken (older) connection stays.
        for _ in 0..20 {
            let (new, closed) = h.connect("127.0.0.1");
            assert_eq!(closed.len(), 1);
            assert_ne!(closed[0], streamer);
            assert_eq!(closed[0], idle.remove(0));
            idle.push(new);
        }
        // Many addresses, one idle socket each: the same.
        for i in 0..20 {
            let (_, closed) = h.connect(&format!("198.51.100.{i}"));
            assert!(!closed.contains(&streamer));
        }
    }

    /// The encoder's own address at its cap (4): three silent sockets and the encoder, which
    /// got as far as `encoder`; `reconnects` silent newcomers close each other, never it. Once
    /// the others are greeted, it (the oldest) is the first of them to go.
    fn encoder_outlives_silent_reconnects(encoder: Progress, reconnects: usize) {
        let mut h = Harness::new(32, 4);
        let mut silent: Vec<u32> = (0..3).map(|_| h.connect("127.0.0.1").0).collect();
        let (streamer, _) = h.connect("127.0.0.1");
        h.set(streamer, encoder);
        for _ in 0..reconnects {
            let (new, closed) = h.connect("127.0.0.1");
            assert_eq!(closed, [silent.remove(0)]);
            silent.push(new);
        }
        for &id in &silent {
            h.set(id, Progress::Greeted);
        }
        let (_, closed) = h.connect("127.0.0.1");
        assert_eq!(closed, [streamer]);
    }

    /// Silent sockets reopened faster than the encoder's handshake completes: once its C0 and
    /// C1 are answered, they close each other.
    #[test]
    fn a_greeting_outranks_silent_sockets_from_the_same_address() {
        encoder_outlives_silent_reconnects(Progress::Greeted, 50);
    }

    /// The race CI lost: the encoder's task has not run yet (nothing answered), and silent
    /// sockets from its own address are accepted in a burst behind it. Its version byte was
    /// waiting at accept (`first_bytes.rs`), so they close each other, however many come.
    #[test]
    fn a_socket_that_spoke_before_its_task_ran_outlives_a_burst_of_silent_ones() {
        encoder_outlives_silent_reconnects(Progress::Spoke, 200);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let mut h = Harness::new(10, 2);
        let (first, _) = h.connect("2001:db8:1:2::1");
        h.connect("2001:db8:1:2::2");
        let (_, closed) = h.connect("2001:db8:1:2:ffff::3");
        assert_eq!(closed, [first]);
        let (_, closed) = h.connect("2001:db8:1:3::1");
        assert!(closed.is_empty());
    }

    #[test]
    fn ended_connections_free_their_slot() {
        let mut h = Harness::new(2, 2);
        let (a, _) = h.connect("192.0.2.1");
        h.connect("192.0.2.2");
        h.table.remove(&a);
        let (_, closed) = h.connect("192.0.2.3");
        assert!(closed.is_empty());
        h.table.remove(&99); // unknown (already evicted): nothing happens
        assert_eq!(h.table.open.len(), 2);
    }

    #[test]
    fn only_publishers_left_means_no_room() {
        let mut h = Harness::new(1, 1);
        let (publisher, _) = h.connect("192.0.2.1");
        h.set(publisher, Progress::Publishing);
        assert!(matches!(
            h.table.make_room(ip("192.0.2.2")),
            Err(AllPublishing)
        ));
    }
}
