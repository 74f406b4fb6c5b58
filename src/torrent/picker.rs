//! Which block to ask for next: rarest-first piece selection, block bookkeeping and endgame.
//!
//! Pure and deterministic: the session tells it what peers have and what arrived, it hands out
//! blocks. A block may be outstanding on several lanes only in endgame, so no lane ever waits
//! on a slow lane for the last blocks of the torrent.
//!
//! Each piece has a priority (from the priorities of the files it touches, see
//! `client::wanted`): 0 is not wanted and never requested; otherwise higher priorities are
//! started first, and within one priority the rarest piece (or, in sequential mode, the
//! lowest index). "Complete" means every wanted piece is verified.

use std::collections::BTreeMap;

use crate::wire::Bitfield;

/// Streaming deadlines: pieces someone reads next come first.
mod deadline;
pub use deadline::{Deadlines, ReaderId};

/// Standard block size (BEP 3 recommends 16 KiB; larger requests are refused by most clients).
pub const BLOCK_LEN: u32 = 16 * 1024;

/// Requests for the same block allowed at once in endgame.
const ENDGAME_DUPLICATES: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    pub piece: u32,
    pub begin: u32,
    pub len: u32,
}

impl BlockRef {
    pub fn index_in_piece(&self) -> usize {
        (self.begin / BLOCK_LEN) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Not requested, already received, or not a block boundary: ignore the data.
    Unexpected,
    /// Stored; `piece_complete` when this was the piece's last missing block.
    Accepted { piece_complete: bool },
}

#[derive(Debug)]
struct Progress {
    /// Outstanding requests per block.
    requested: Vec<u8>,
    received: Vec<bool>,
    received_count: u32,
}

impl Progress {
    fn new(blocks: u32) -> Self {
        Self {
            requested: vec![0; blocks as usize],
            received: vec![false; blocks as usize],
            received_count: 0,
        }
    }
    fn complete(&self) -> bool {
        self.received_count as usize == self.received.len()
    }
}

#[derive(Debug)]
pub struct Picker {
    piece_len: u32,
    total_len: u64,
    num_pieces: u32,
    /// Verified pieces.
    have: Bitfield,
    /// Pieces with all blocks received, waiting for (or failing) verification.
    verifying: Bitfield,
    /// How many connected peers have each piece.
    availability: Vec<u32>,
    /// Pieces being downloaded.
    active: BTreeMap<u32, Progress>,
    /// Rotates the starting point of the rarest-first scan so that ties spread across the
    /// torrent instead of all peers starting at piece 0.
    scan_start: u32,
    /// Priority of each piece; 0: not wanted.
    priority: Vec<u8>,
    /// The highest priority of any piece (a scan can stop at a rarest piece of it).
    top: u8,
    /// Wanted pieces not verified yet: complete at 0.
    missing_wanted: u32,
    /// Lowest index first instead of rarest first.
    sequential: bool,
    /// Pieces streams read next, fetched before all others (see `deadline`).
    deadlines: Deadlines,
}

/// The priority every piece has until told otherwise.
pub const DEFAULT_PRIORITY: u8 = 1;

impl Picker {
    pub fn new(piece_len: u32, total_len: u64, have: Bitfield) -> Self {
        let num_pieces = have.len();
        let missing_wanted = num_pieces - have.count_ones();
        Self {
            piece_len,
            total_len,
            num_pieces,
            verifying: Bitfield::new(num_pieces),
            availability: vec![0; num_pieces as usize],
            active: BTreeMap::new(),
            scan_start: 0,
            have,
            priority: vec![DEFAULT_PRIORITY; num_pieces as usize],
            top: DEFAULT_PRIORITY,
            missing_wanted,
            sequential: false,
            deadlines: Deadlines::default(),
        }
    }

    /// New piece priorities (one per piece; 0: not wanted). A list of the wrong length is
    /// ignored. Pieces already started keep their received blocks; those no longer wanted are
    /// simply not asked for any more.
    pub fn set_priorities(&mut self, priority: Vec<u8>) {
        if priority.len() != self.num_pieces as usize {
            return;
        }
        self.top = priority.iter().copied().max().unwrap_or(0);
        self.missing_wanted = priority
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p > 0 && !self.have.get(i as u32))
            .count() as u32;
        self.priority = priority;
    }

    /// Pieces in index order (for playing a file while it downloads) or rarest first.
    pub fn set_sequential(&mut self, on: bool) {
        self.sequential = on;
    }

    /// Whether `piece` is wanted at all.
    pub fn is_wanted(&self, piece: u32) -> bool {
        self.priority.get(piece as usize).is_some_and(|&p| p > 0)
    }

    /// Whether every piece is verified (not only the wanted ones).
    pub fn has_all(&self) -> bool {
        self.have.is_full()
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// Every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        self.missing_wanted == 0
    }

    pub fn piece_len(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * u64::from(self.piece_len);
        (self.total_len.saturating_sub(start)).min(u64::from(self.piece_len)) as u32
    }

    fn blocks_in(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_LEN)
    }

    fn block(&self, piece: u32, i: u32) -> BlockRef {
        let begin = i * BLOCK_LEN;
        BlockRef {
            piece,
            begin,
            len: (self.piece_len(piece) - begin).min(BLOCK_LEN),
        }
    }

    pub fn peer_added(&mut self, has: &Bitfield) {
        for i in has.iter_ones() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a += 1;
            }
        }
    }

    pub fn peer_removed(&mut self, has: &Bitfield) {
        for i in has.iter_ones() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a = a.saturating_sub(1);
            }
        }
    }

    pub fn peer_has_piece(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// Whether we still need `piece` (not had, not being verified): O(1).
    pub fn wants_piece(&self, piece: u32) -> bool {
        self.is_wanted(piece) && !self.have.get(piece) && !self.verifying.get(piece)
    }

    /// Whether the peer has anything we still need.
    pub fn wants_from(&self, peer: &Bitfield) -> bool {
        // A seeder wants nothing: O(1) instead of a walk over the peer's pieces.
        if self.is_complete() {
            return false;
        }
        peer.iter_ones().any(|i| self.wants_piece(i))
    }

    /// Appends up to `max` blocks to request from a peer that has `peer`. `on_lane` says
    /// whether a block is already outstanding on the asking lane (endgame must not
    /// duplicate on the same lane).
    pub fn pick(
        &mut self,
        peer: &Bitfield,
        max: usize,
        on_lane: impl Fn(&BlockRef) -> bool,
        out: &mut Vec<BlockRef>,
    ) {
        let start = out.len();
        // 0. What streams read next (nothing to do unless one reads).
        if !self.deadlines.is_empty() {
            self.pick_urgent(peer, max, out);
        }
        // 1. Finish what is started (higher priority first): fewer partial pieces, earlier
        //    verification. Started pieces no longer wanted wait until they are again.
        let mut active: Vec<u32> = self
            .active
            .keys()
            .copied()
            .filter(|&p| self.is_wanted(p))
            .collect();
        active.sort_by_key(|&p| std::cmp::Reverse(self.priority[p as usize]));
        for piece in active {
            if out.len() - start >= max {
                return;
            }
            if peer.get(piece) {
                self.take_unrequested(piece, max - (out.len() - start), out);
            }
        }
        // 2. Start new pieces, rarest first.
        while out.len() - start < max {
            let Some(piece) = self.rarest_new_piece(peer) else {
                break;
            };
            let blocks = self.blocks_in(piece);
            self.active.insert(piece, Progress::new(blocks));
            self.take_unrequested(piece, max - (out.len() - start), out);
        }
        if out.len() - start >= max {
            return;
        }
        // 3. Endgame: everything is requested; duplicate outstanding blocks on this lane.
        if self.all_requested() {
            let mut dup = Vec::new();
            for (&piece, p) in &self.active {
                if !peer.get(piece) || !self.is_wanted(piece) {
                    continue;
                }
                for (i, (&r, &got)) in p.requested.iter().zip(&p.received).enumerate() {
                    if dup.len() + (out.len() - start) >= max {
                        break;
                    }
                    let b = self.block(piece, i as u32);
                    if !got && r < ENDGAME_DUPLICATES && !on_lane(&b) && !out[start..].contains(&b)
                    {
                        dup.push(b);
                    }
                }
            }
            for b in dup {
                if let Some(p) = self.active.get_mut(&b.piece) {
                    p.requested[b.index_in_piece()] += 1;
                }
                out.push(b);
            }
        }
    }

    fn take_unrequested(&mut self, piece: u32, max: usize, out: &mut Vec<BlockRef>) {
        let mut taken = Vec::new();
        if let Some(p) = self.active.get_mut(&piece) {
            for (i, r) in p.requested.iter_mut().enumerate() {
                if taken.len() >= max {
                    break;
                }
                if *r == 0 && !p.received[i] {
                    *r = 1;
                    taken.push(i as u32);
                }
            }
        }
        out.extend(taken.into_iter().map(|i| self.block(piece, i)));
    }

    fn rarest_new_piece(&mut self, peer: &Bitfield) -> Option<u32> {
        let n = self.num_pieces;
        if n == 0 {
            return None;
        }
        // (piece, priority, availability) of the best so far.
        let mut best: Option<(u32, u8, u32)> = None;
        let start = if self.sequential { 0 } else { self.scan_start };
        for k in 0..n {
            let i = (start + k) % n;
            let prio = self.priority[i as usize];
            if prio == 0
                || !peer.get(i)
                || self.have.get(i)
                || self.verifying.get(i)
                || self.active.contains_key(&i)
            {
                continue;
            }
            let a = self.availability[i as usize];
            let better = best
                .is_none_or(|(_, bp, ba)| prio > bp || (prio == bp && !self.sequential && a < ba));
            if better {
                best = Some((i, prio, a));
                // Nothing later can beat the first top-priority piece in sequential mode, or
                // one nobody else has in rarest-first.
                if prio == self.top && (self.sequential || a <= 1) {
                    break;
                }
            }
        }
        let (piece, _, _) = best?;
        self.scan_start = (piece + 1) % n;
        Some(piece)
    }

    fn all_requested(&self) -> bool {
        let unstarted =
            (0..self.num_pieces).any(|i| self.wants_piece(i) && !self.active.contains_key(&i));
        !unstarted
            && self
                .active
                .iter()
                .filter(|(&i, _)| self.is_wanted(i))
                .all(|(_, p)| {
                    p.requested
                        .iter()
                        .zip(&p.received)
                        .all(|(&r, &got)| got || r > 0)
                })
    }

    /// A request was cancelled, rejected, timed out or its lane died.
    pub fn request_dropped(&mut self, b: &BlockRef) {
        if let Some(p) = self.active.get_mut(&b.piece) {
            if let Some(r) = p.requested.get_mut(b.index_in_piece()) {
                *r = r.saturating_sub(1);
            }
        }
    }

    /// A block arrived. The caller stores the data only if `Accepted`.
    pub fn block_received(&mut self, b: &BlockRef) -> BlockOutcome {
        if !b.begin.is_multiple_of(BLOCK_LEN) || b.piece >= self.num_pieces {
            return BlockOutcome::Unexpected;
        }
        if b.begin >= self.piece_len(b.piece) {
            return BlockOutcome::Unexpected;
        }
        let expected = self.block(b.piece, b.begin / BLOCK_LEN);
        let Some(p) = self.active.get_mut(&b.piece) else {
            return BlockOutcome::Unexpected;
        };
        let i = b.index_in_piece();
        if expected.len != b.len || p.received[i] {
            return BlockOutcome::Unexpected;
        }
        p.received[i] = true;
        p.received_count += 1;
        p.requested[i] = p.requested[i].saturating_sub(1);
        let piece_complete = p.complete();
        if piece_complete {
            self.active.remove(&b.piece);
            self.verifying.set(b.piece);
        }
        BlockOutcome::Accepted { piece_complete }
    }

    /// Verification finished: a good piece is ours, a bad one is downloaded again.
    pub fn piece_verified(&mut self, piece: u32, ok: bool) {
        self.verifying.clear(piece);
        if ok && piece < self.num_pieces && !self.have.get(piece) {
            self.have.set(piece);
            if self.is_wanted(piece) {
                self.missing_wanted = self.missing_wanted.saturating_sub(1);
            }
        }
    }

    /// Blocks of a piece whose data is on its way in (for tests and metrics).
    pub fn active_pieces(&self) -> usize {
        self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picker(pieces: u32, piece_len: u32, total: u64) -> Picker {
        Picker::new(piece_len, total, Bitfield::new(pieces))
    }

    #[test]
    fn last_piece_and_block_are_short() {
        let p = picker(3, 40_000, 100_000);
        assert_eq!(p.piece_len(2), 20_000);
        assert_eq!(p.blocks_in(2), 2);
        assert_eq!(p.block(2, 1).len, 20_000 - BLOCK_LEN);
    }

    #[test]
    fn rarest_piece_is_started_first() {
        let mut p = picker(4, BLOCK_LEN, 4 * u64::from(BLOCK_LEN));
        let all = Bitfield::full(4);
        let mut some = Bitfield::new(4);
        some.set(0);
        some.set(1);
        some.set(3);
        p.peer_added(&all);
        p.peer_added(&some);
        // piece 2 is held by one peer only
        let mut out = Vec::new();
        p.pick(&all, 1, |_| false, &mut out);
        assert_eq!(out[0].piece, 2);
    }

    #[test]
    fn every_block_handed_out_once_then_endgame_duplicates() {
        let total = 3 * u64::from(BLOCK_LEN) + 100;
        let mut p = picker(2, 2 * BLOCK_LEN, total);
        let all = Bitfield::full(2);
        p.peer_added(&all);
        let mut a = Vec::new();
        p.pick(&all, 100, |_| false, &mut a);
        assert_eq!(a.len(), 4);
        let mut uniq = a.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 4);
        // a second lane gets duplicates only (endgame), never ones it already has
        let mut b = Vec::new();
        p.pick(&all, 2, |blk| blk.piece == 0, &mut b);
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|blk| blk.piece == 1));
    }

    #[test]
    fn completion_and_failed_verification_redownloads() {
        let mut p = picker(1, BLOCK_LEN * 2, u64::from(BLOCK_LEN) * 2);
        let all = Bitfield::full(1);
        let mut out = Vec::new();
        p.pick(&all, 10, |_| false, &mut out);
        assert_eq!(
            p.block_received(&out[0]),
            BlockOutcome::Accepted {
                piece_complete: false
            }
        );
        assert_eq!(p.block_received(&out[0]), BlockOutcome::Unexpected);
        assert_eq!(
            p.block_received(&out[1]),
            BlockOutcome::Accepted {
                piece_complete: true
            }
        );
        p.piece_verified(0, false);
        assert!(!p.is_complete());
        let mut again = Vec::new();
        p.pick(&all, 10, |_| false, &mut again);
        assert_eq!(again, out);
        for b in &again {
            p.block_received(b);
        }
        p.piece_verified(0, true);
        assert!(p.is_complete());
    }

    #[test]
    fn dropped_requests_are_handed_out_again() {
        let mut p = picker(1, BLOCK_LEN * 4, u64::from(BLOCK_LEN) * 4);
        let all = Bitfield::full(1);
        let mut first = Vec::new();
        p.pick(&all, 2, |_| false, &mut first);
        p.request_dropped(&first[0]);
        let mut next = Vec::new();
        p.pick(&all, 1, |_| false, &mut next);
        assert_eq!(next[0], first[0]);
    }

    /// Pieces 0..4 at priorities skip, low, high, normal.
    fn prioritised() -> Picker {
        let mut p = picker(4, BLOCK_LEN, 4 * u64::from(BLOCK_LEN));
        p.set_priorities(vec![0, 1, 3, 2]);
        p.peer_added(&Bitfield::full(4));
        p
    }

    fn next_piece(p: &mut Picker, peer: &Bitfield) -> Option<u32> {
        let mut out = Vec::new();
        p.pick(peer, 1, |_| false, &mut out);
        out.first().map(|b| b.piece)
    }

    #[test]
    fn higher_priority_first_and_skipped_pieces_never() {
        let mut p = prioritised();
        let all = Bitfield::full(4);
        let order: Vec<Option<u32>> = (0..3).map(|_| next_piece(&mut p, &all)).collect();
        assert_eq!(order, vec![Some(2), Some(3), Some(1)]);
        // Then endgame duplicates outstanding wanted blocks, never piece 0.
        for _ in 0..6 {
            assert_ne!(next_piece(&mut p, &all), Some(0));
        }
        let mut only_skipped = Bitfield::new(4);
        only_skipped.set(0);
        assert!(!p.wants_from(&only_skipped));
        assert!(!p.wants_piece(0));
        assert_eq!(next_piece(&mut p, &only_skipped), None);
    }

    #[test]
    fn complete_when_every_wanted_piece_is_verified() {
        let mut p = prioritised();
        for piece in [2, 3, 1] {
            assert!(!p.is_complete());
            p.piece_verified(piece, true);
        }
        assert!(p.is_complete(), "piece 0 is skipped");
        assert!(!p.has_all());
        // Wanting it again makes the torrent incomplete, and it is picked.
        p.set_priorities(vec![2, 1, 3, 2]);
        assert!(!p.is_complete());
        assert_eq!(next_piece(&mut p, &Bitfield::full(4)), Some(0));
        p.piece_verified(0, true);
        assert!(p.is_complete() && p.has_all());
        // A verification reported twice counts once.
        p.piece_verified(0, true);
        assert!(p.is_complete());
    }

    #[test]
    fn sequential_mode_takes_the_lowest_index_not_the_rarest() {
        let mut p = picker(5, BLOCK_LEN, 5 * u64::from(BLOCK_LEN));
        let all = Bitfield::full(5);
        p.peer_added(&all);
        p.peer_added(&all);
        let mut rare = Bitfield::new(5);
        rare.set(4);
        p.peer_removed(&rare); // piece 4 is the rarest
        assert_eq!(next_piece(&mut p, &all), Some(4));
        p.set_sequential(true);
        let order: Vec<Option<u32>> = (0..4).map(|_| next_piece(&mut p, &all)).collect();
        assert_eq!(order, vec![Some(0), Some(1), Some(2), Some(3)]);
        // Priorities still come first: first/last pieces boosted above the rest.
        let mut p = picker(5, BLOCK_LEN, 5 * u64::from(BLOCK_LEN));
        p.peer_added(&all);
        p.set_sequential(true);
        p.set_priorities(vec![4, 2, 2, 2, 4]);
        let order: Vec<Option<u32>> = (0..5).map(|_| next_piece(&mut p, &all)).collect();
        assert_eq!(order, vec![Some(0), Some(4), Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn a_started_piece_no_longer_wanted_is_not_finished_until_wanted_again() {
        let mut p = picker(2, 2 * BLOCK_LEN, 4 * u64::from(BLOCK_LEN));
        let all = Bitfield::full(2);
        p.peer_added(&all);
        let mut first = Vec::new();
        p.pick(&all, 1, |_| false, &mut first);
        let started = first[0].piece;
        let mut prio = vec![1, 1];
        prio[started as usize] = 0;
        p.set_priorities(prio);
        let mut next = Vec::new();
        p.pick(&all, 10, |_| false, &mut next);
        assert!(next.iter().all(|b| b.piece != started), "{next:?}");
        // A block of it still in flight is taken (the data is good), and it resumes later.
        assert!(matches!(
            p.block_received(&first[0]),
            BlockOutcome::Accepted { .. }
        ));
        p.set_priorities(vec![1, 1]);
        let mut again = Vec::new();
        p.pick(&all, 10, |_| false, &mut again);
        assert!(again
            .iter()
            .any(|b| b.piece == started && b.begin == BLOCK_LEN));
    }

    #[test]
    fn priorities_of_the_wrong_length_are_ignored() {
        let mut p = picker(2, BLOCK_LEN, 2 * u64::from(BLOCK_LEN));
        p.set_priorities(vec![0]);
        assert!(p.is_wanted(0) && p.is_wanted(1));
        assert!(!p.is_wanted(7));
    }

    #[test]
    fn unexpected_blocks_are_rejected() {
        let mut p = picker(2, BLOCK_LEN, 2 * u64::from(BLOCK_LEN));
        let bogus = BlockRef {
            piece: 5,
            begin: 0,
            len: BLOCK_LEN,
        };
        assert_eq!(p.block_received(&bogus), BlockOutcome::Unexpected);
        let unaligned = BlockRef {
            piece: 0,
            begin: 7,
            len: 10,
        };
        assert_eq!(p.block_received(&unaligned), BlockOutcome::Unexpected);
    }
}
