//! Fetching the info dictionary from peers, sans-IO.
//!
//! The driver tells the assembler which peers offer metadata (and the `metadata_size` each
//! claims), hands in their ut_metadata messages and the time, and sends the [`Request`]s it
//! gets back. The assembler:
//! * adopts a size (the first valid claim; rejects 0 and more than [`MAX_METADATA_SIZE`]) and
//!   only asks peers that claim the same size;
//! * asks at most [`MAX_IN_FLIGHT_PER_PEER`] pieces of one peer at a time, spreading pieces
//!   over peers; a request unanswered after the timeout, or rejected, goes to another peer (a
//!   peer is not asked again for a piece it rejected or let time out in this attempt; after
//!   [`MAX_TIMEOUTS`] timeouts it is not asked at all);
//! * bans a peer that sends a piece of the wrong length or a different total size, and drops
//!   what it contributed;
//! * on the last piece checks SHA-1 against the info hash. On a mismatch it discards
//!   everything and starts over. If one peer sent every piece, that peer is banned. If several
//!   did, the culprit is unknown: each gets a strike ([`MAX_STRIKES`] strikes ban), and from
//!   then on each attempt fetches all pieces from a single peer, so the next mismatch is
//!   attributable.
//!
//! Memory is bounded: one buffer of the adopted size, one slot per 16 KiB piece, at most
//! [`MAX_PEERS`] peers (banned ones included, so a banned peer cannot come back).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use super::{piece_count, piece_len, MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE_LEN};

/// Pieces requested from one peer at a time.
pub const MAX_IN_FLIGHT_PER_PEER: u32 = 2;
/// Timeouts after which a peer is no longer asked.
pub const MAX_TIMEOUTS: u32 = 3;
/// Unattributable hash mismatches a peer may take part in before it is banned.
pub const MAX_STRIKES: u32 = 2;
/// Peers (including banned ones) the assembler keeps track of.
pub const MAX_PEERS: usize = 512;
/// Default time a peer has to answer a request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a peer's metadata offer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddPeerError {
    #[error("peer offers metadata of 0 bytes")]
    ZeroSize,
    #[error("peer offers metadata of {0} bytes (limit {MAX_METADATA_SIZE})")]
    TooLarge(u64),
    #[error("peer is banned from sending metadata")]
    Banned,
    #[error("already tracking {MAX_PEERS} metadata peers")]
    TooManyPeers,
    #[error("metadata is already complete")]
    Complete,
}

/// Send `MetadataMessage::Request { piece }` to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<P> {
    pub peer: P,
    pub piece: u32,
}

impl<P> Request<P> {
    /// The message to send.
    pub fn message(&self) -> MetadataMessage {
        MetadataMessage::Request { piece: self.piece }
    }
}

/// What a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataEvent<P> {
    /// Nothing changed: unsolicited, duplicate, a request (for the server), or already done.
    Ignored,
    /// The peer rejected a piece; it will be asked of another peer.
    Requeued,
    /// A piece was stored.
    Progress { have: u32, total: u32 },
    /// The peer sent a piece of the wrong length or claimed another total size: banned, and
    /// the pieces it had sent were dropped.
    Misbehaved { peer: P, reason: &'static str },
    /// All pieces arrived and their SHA-1 is the info hash: the raw info dictionary.
    Complete(Vec<u8>),
    /// All pieces arrived but hash to something else: discarded, starting over. `banned` are
    /// the peers found guilty (empty if the culprit could not be told apart).
    HashMismatch { banned: Vec<P> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot<P> {
    Missing,
    Requested { peer: P, deadline: Instant },
    Have { from: P },
}

#[derive(Debug, Default)]
struct PeerState {
    size: usize,
    in_flight: u32,
    /// Pieces asked of this peer in this attempt (late answers are still welcome).
    asked: BTreeSet<u32>,
    /// Pieces it rejected or let time out in this attempt: not asked again.
    refused: BTreeSet<u32>,
    timeouts: u32,
    strikes: u32,
    banned: bool,
    /// Still connected (removed peers stay only if banned).
    present: bool,
}

impl PeerState {
    fn usable(&self, size: usize) -> bool {
        self.present && !self.banned && self.size == size && self.timeouts < MAX_TIMEOUTS
    }
}

/// Assembles an info dictionary from ut_metadata pieces. `P` identifies a peer (e.g. its
/// peer id or connection id).
#[derive(Debug)]
pub struct MetadataAssembler<P> {
    info_hash: [u8; 20],
    request_timeout: Duration,
    size: Option<usize>,
    buf: Vec<u8>,
    slots: Vec<Slot<P>>,
    peers: BTreeMap<P, PeerState>,
    /// After an unattributable mismatch: fetch each attempt from one peer.
    single_source: bool,
    source: Option<P>,
    done: bool,
}

impl<P: Clone + Ord> MetadataAssembler<P> {
    pub fn new(info_hash: [u8; 20]) -> Self {
        Self {
            info_hash,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            size: None,
            buf: Vec::new(),
            slots: Vec::new(),
            peers: BTreeMap::new(),
            single_source: false,
            source: None,
            done: false,
        }
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The adopted metadata size, once a peer offered one.
    pub fn size(&self) -> Option<usize> {
        self.size
    }

    /// Pieces stored so far and pieces in total (0/0 before a size is known).
    pub fn progress(&self) -> (u32, u32) {
        let have = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Have { .. }))
            .count() as u32;
        (have, self.slots.len() as u32)
    }

    pub fn is_complete(&self) -> bool {
        self.done
    }

    pub fn is_banned(&self, peer: &P) -> bool {
        self.peers.get(peer).is_some_and(|p| p.banned)
    }

    /// A peer said (extension handshake) it has metadata of `metadata_size` bytes.
    pub fn add_peer(&mut self, peer: P, metadata_size: u64) -> Result<(), AddPeerError> {
        if self.done {
            return Err(AddPeerError::Complete);
        }
        if metadata_size == 0 {
            return Err(AddPeerError::ZeroSize);
        }
        let size = usize::try_from(metadata_size)
            .ok()
            .filter(|&s| s <= MAX_METADATA_SIZE)
            .ok_or(AddPeerError::TooLarge(metadata_size))?;
        match self.peers.get_mut(&peer) {
            Some(p) if p.banned => return Err(AddPeerError::Banned),
            Some(p) => {
                p.size = size;
                p.present = true;
            }
            None => {
                if self.peers.len() >= MAX_PEERS {
                    self.peers.retain(|_, p| p.present || p.banned);
                    if self.peers.len() >= MAX_PEERS {
                        return Err(AddPeerError::TooManyPeers);
                    }
                }
                let state = PeerState {
                    size,
                    present: true,
                    ..PeerState::default()
                };
                self.peers.insert(peer, state);
            }
        }
        if self.size.is_none() {
            self.adopt(size);
        }
        Ok(())
    }

    /// The peer disconnected: its requests go back to the queue.
    pub fn remove_peer(&mut self, peer: &P) {
        self.requeue_requests_of(peer);
        if let Some(p) = self.peers.get_mut(peer) {
            p.present = false;
            p.in_flight = 0;
            if !p.banned {
                self.peers.remove(peer);
            }
        }
    }

    /// Requests to send now: missing pieces assigned to peers with room.
    pub fn poll_requests(&mut self, now: Instant) -> Vec<Request<P>> {
        let mut out = Vec::new();
        let Some(size) = self.size.filter(|_| !self.done) else {
            return out;
        };
        if self.single_source {
            self.pick_source(size);
        }
        for piece in 0..self.slots.len() as u32 {
            if self.slots[piece as usize] != Slot::Missing {
                continue;
            }
            let candidate = self
                .peers
                .iter()
                .filter(|(id, p)| {
                    p.usable(size)
                        && p.in_flight < MAX_IN_FLIGHT_PER_PEER
                        && !p.refused.contains(&piece)
                        && (!self.single_source || self.source.as_ref() == Some(*id))
                })
                .min_by_key(|(_, p)| p.in_flight)
                .map(|(id, _)| id.clone());
            let Some(peer) = candidate else {
                continue;
            };
            if let Some(p) = self.peers.get_mut(&peer) {
                p.in_flight += 1;
                p.asked.insert(piece);
            }
            self.slots[piece as usize] = Slot::Requested {
                peer: peer.clone(),
                deadline: now + self.request_timeout,
            };
            out.push(Request { peer, piece });
        }
        out
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Requested { deadline, .. } => Some(*deadline),
                _ => None,
            })
            .min()
    }

    /// Requests past their deadline go back to the queue, for other peers.
    pub fn handle_timeout(&mut self, now: Instant) {
        for piece in 0..self.slots.len() {
            let Slot::Requested { peer, deadline } = &self.slots[piece] else {
                continue;
            };
            if *deadline > now {
                continue;
            }
            if let Some(p) = self.peers.get_mut(peer) {
                p.in_flight = p.in_flight.saturating_sub(1);
                p.timeouts += 1;
                p.refused.insert(piece as u32);
            }
            self.slots[piece] = Slot::Missing;
        }
    }

    /// Missing pieces that no usable peer can be asked for: more peers are needed.
    pub fn is_stalled(&self) -> bool {
        let Some(size) = self.size.filter(|_| !self.done) else {
            return self.size.is_none();
        };
        let in_flight = self
            .slots
            .iter()
            .any(|s| matches!(s, Slot::Requested { .. }));
        !in_flight
            && self.slots.iter().enumerate().any(|(i, s)| {
                *s == Slot::Missing
                    && !self
                        .peers
                        .values()
                        .any(|p| p.usable(size) && !p.refused.contains(&(i as u32)))
            })
    }

    /// A ut_metadata message from `peer`.
    pub fn on_message(&mut self, peer: &P, msg: &MetadataMessage) -> MetadataEvent<P> {
        if self.done {
            return MetadataEvent::Ignored;
        }
        match msg {
            MetadataMessage::Request { .. } => MetadataEvent::Ignored,
            MetadataMessage::Reject { piece } => self.on_reject(peer, *piece),
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => self.on_data(peer, *piece, *total_size, data),
        }
    }

    fn on_reject(&mut self, peer: &P, piece: u32) -> MetadataEvent<P> {
        let requested_here = matches!(
            self.slots.get(piece as usize),
            Some(Slot::Requested { peer: p, .. }) if p == peer
        );
        if !requested_here {
            return MetadataEvent::Ignored;
        }
        self.slots[piece as usize] = Slot::Missing;
        if let Some(p) = self.peers.get_mut(peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
            p.refused.insert(piece);
        }
        MetadataEvent::Requeued
    }

    fn on_data(&mut self, peer: &P, piece: u32, total_size: u64, data: &[u8]) -> MetadataEvent<P> {
        let Some(size) = self.size else {
            return MetadataEvent::Ignored;
        };
        let asked = self
            .peers
            .get(peer)
            .is_some_and(|p| !p.banned && p.asked.contains(&piece));
        let slot = match self.slots.get(piece as usize) {
            Some(s) if asked => s.clone(),
            _ => return MetadataEvent::Ignored,
        };
        if total_size != size as u64 {
            return self.ban(peer, "claimed another metadata size");
        }
        if data.len() != piece_len(size, piece) {
            return self.ban(peer, "sent a metadata piece of the wrong length");
        }
        match slot {
            Slot::Have { .. } => return MetadataEvent::Ignored,
            Slot::Requested { peer: holder, .. } => {
                if let Some(p) = self.peers.get_mut(&holder) {
                    p.in_flight = p.in_flight.saturating_sub(1);
                }
            }
            Slot::Missing => {}
        }
        let start = piece as usize * METADATA_PIECE_LEN;
        self.buf[start..start + data.len()].copy_from_slice(data);
        self.slots[piece as usize] = Slot::Have { from: peer.clone() };
        let (have, total) = self.progress();
        if have < total {
            return MetadataEvent::Progress { have, total };
        }
        self.verify()
    }

    fn verify(&mut self) -> MetadataEvent<P> {
        let digest: [u8; 20] = Sha1::digest(&self.buf).into();
        if digest == self.info_hash {
            self.done = true;
            self.slots.clear();
            return MetadataEvent::Complete(std::mem::take(&mut self.buf));
        }
        let contributors: BTreeSet<P> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Have { from } => Some(from.clone()),
                _ => None,
            })
            .collect();
        let mut banned = Vec::new();
        let attributable = contributors.len() == 1;
        for c in contributors {
            if let Some(p) = self.peers.get_mut(&c) {
                p.strikes += 1;
                if attributable || p.strikes >= MAX_STRIKES {
                    p.banned = true;
                    banned.push(c);
                }
            }
        }
        if !attributable {
            self.single_source = true;
        }
        self.restart();
        MetadataEvent::HashMismatch { banned }
    }

    /// A new attempt: forget pieces and per-attempt refusals; re-adopt a size if nobody
    /// usable claims the current one any more.
    fn restart(&mut self) {
        for p in self.peers.values_mut() {
            p.in_flight = 0;
            p.asked.clear();
            p.refused.clear();
        }
        self.source = None;
        let mut claims: BTreeMap<usize, usize> = BTreeMap::new();
        for p in self.peers.values().filter(|p| p.present && !p.banned) {
            *claims.entry(p.size).or_default() += 1;
        }
        let current = self.size.and_then(|s| claims.get(&s).map(|_| s));
        match current.or_else(|| claims.iter().max_by_key(|(_, n)| **n).map(|(s, _)| *s)) {
            Some(size) => self.adopt(size),
            None => {
                self.size = None;
                self.buf = Vec::new();
                self.slots.clear();
            }
        }
    }

    fn adopt(&mut self, size: usize) {
        self.size = Some(size);
        self.buf = vec![0; size];
        self.slots = vec![Slot::Missing; piece_count(size) as usize];
    }

    fn ban(&mut self, peer: &P, reason: &'static str) -> MetadataEvent<P> {
        self.requeue_requests_of(peer);
        for s in &mut self.slots {
            if matches!(s, Slot::Have { from } if from == peer) {
                *s = Slot::Missing;
            }
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.banned = true;
            p.in_flight = 0;
        }
        MetadataEvent::Misbehaved {
            peer: peer.clone(),
            reason,
        }
    }

    fn requeue_requests_of(&mut self, peer: &P) {
        for s in &mut self.slots {
            if matches!(s, Slot::Requested { peer: p, .. } if p == peer) {
                *s = Slot::Missing;
            }
        }
    }

    /// Keeps the single source while it can still be asked for something; else picks the
    /// usable peer with the fewest strikes.
    fn pick_source(&mut self, size: usize) {
        let can_serve = |p: &PeerState| -> bool {
            p.usable(size)
                && self
                    .slots
                    .iter()
                    .enumerate()
                    .any(|(i, s)| *s == Slot::Missing && !p.refused.contains(&(i as u32)))
        };
        if let Some(src) = &self.source {
            if self.peers.get(src).is_some_and(&can_serve) {
                return;
            }
            // Do not switch while the source still has requests out.
            if self.peers.get(src).is_some_and(|p| p.in_flight > 0) {
                return;
            }
        }
        self.source = self
            .peers
            .iter()
            .filter(|(_, p)| can_serve(p))
            .min_by_key(|(_, p)| p.strikes)
            .map(|(id, _)| id.clone());
    }
}
