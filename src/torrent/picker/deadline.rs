//! Streaming deadlines (libtorrent's `set_piece_deadline`, simplified): someone reads a file
//! while it downloads and names the pieces they read next. The picker starts those before any
//! other piece, whatever their priority, and the nearest to each reader first, so a player
//! that seeks gets the pieces at its new position next instead of wherever rarest-first was.
//!
//! A reader's window moves with it (it sets a new one as it reads on) and goes when it does
//! (closed stream, client gone). Pure bookkeeping: which pieces, in which order.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{BlockRef, Picker, Progress};
use crate::wire::Bitfield;

/// Who reads: an id the caller hands out (one per open stream).
pub type ReaderId = u64;

/// Every reader's window of pieces (from the one it reads now, up to the end of what it
/// wants soon).
#[derive(Debug, Default, Clone)]
pub struct Deadlines {
    windows: BTreeMap<ReaderId, Range<u32>>,
}

impl Deadlines {
    /// Reader `reader` reads piece `window.start` now and the rest of `window` next. An empty
    /// window removes the reader.
    pub fn set(&mut self, reader: ReaderId, window: Range<u32>) {
        if window.is_empty() {
            self.windows.remove(&reader);
        } else {
            self.windows.insert(reader, window);
        }
    }

    /// The reader is gone: its pieces are no longer urgent.
    pub fn clear(&mut self, reader: ReaderId) {
        self.windows.remove(&reader);
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether `piece` is in some reader's window.
    pub fn contains(&self, piece: u32) -> bool {
        self.windows.values().any(|w| w.contains(&piece))
    }

    /// The urgent pieces in the order to fetch them: each reader's current piece, then each
    /// one's next, and so on (readers take turns, so one long window does not starve another
    /// reader's current piece). A piece in two windows comes once, at its earliest turn.
    pub fn order(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        let longest = self.windows.values().map(|w| w.len()).max().unwrap_or(0);
        for k in 0..longest as u32 {
            for w in self.windows.values() {
                let p = w.start.saturating_add(k);
                if w.contains(&p) && !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

impl Picker {
    /// Reader `reader` reads `window.start` now and the rest of `window` next (empty: gone).
    pub fn set_deadline(&mut self, reader: ReaderId, window: Range<u32>) {
        let end = window.end.min(self.num_pieces);
        self.deadlines.set(reader, window.start..end);
    }

    pub fn clear_deadline(&mut self, reader: ReaderId) {
        self.deadlines.clear(reader);
    }

    /// Step 0 of `pick`: blocks of the urgent pieces this peer has, in their order, started
    /// if they are not yet. Only wanted pieces (a stream wants its file: the caller un-skips
    /// it); verified ones and those being verified need nothing.
    pub(super) fn pick_urgent(&mut self, peer: &Bitfield, max: usize, out: &mut Vec<BlockRef>) {
        let start = out.len();
        for piece in self.deadlines.order() {
            if out.len() - start >= max {
                return;
            }
            if !peer.get(piece) || !self.wants_piece(piece) {
                continue;
            }
            if !self.active.contains_key(&piece) {
                let blocks = self.blocks_in(piece);
                self.active.insert(piece, Progress::new(blocks));
            }
            self.take_unrequested(piece, max - (out.len() - start), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::picker::BLOCK_LEN;

    #[test]
    fn pieces_nearest_each_reader_come_first_taking_turns() {
        let mut d = Deadlines::default();
        assert!(d.order().is_empty() && d.is_empty());
        d.set(1, 10..14);
        d.set(2, 50..52);
        assert_eq!(d.order(), vec![10, 50, 11, 51, 12, 13]);
        assert!(d.contains(13) && !d.contains(14) && !d.contains(52));
    }

    #[test]
    fn a_window_moves_with_its_reader_and_goes_with_it() {
        let mut d = Deadlines::default();
        d.set(7, 0..4);
        // The reader read on (or seeked): the pieces behind it are not urgent any more.
        d.set(7, 3..6);
        assert_eq!(d.order(), vec![3, 4, 5]);
        d.set(8, 4..5);
        assert_eq!(d.order(), vec![3, 4, 5], "a shared piece comes once");
        d.clear(7);
        assert_eq!(d.order(), vec![4]);
        d.set(8, 9..9);
        assert!(d.is_empty(), "an empty window removes the reader");
    }

    fn next_piece(p: &mut Picker, peer: &Bitfield) -> Option<u32> {
        let mut out = Vec::new();
        p.pick(peer, 1, |_| false, &mut out);
        out.first().map(|b| b.piece)
    }

    #[test]
    fn the_picker_fetches_a_readers_window_before_anything_else() {
        let n = 8;
        let mut p = Picker::new(BLOCK_LEN, u64::from(n * BLOCK_LEN), Bitfield::new(n));
        let all = Bitfield::full(n);
        p.peer_added(&all);
        // Pieces 0 and 1 at high priority (first/last-piece style), the rest normal.
        p.set_priorities(vec![3, 3, 1, 1, 1, 1, 1, 1]);
        p.set_sequential(true);
        p.set_deadline(1, 5..7);
        assert_eq!(next_piece(&mut p, &all), Some(5));
        assert_eq!(next_piece(&mut p, &all), Some(6));
        assert_eq!(
            next_piece(&mut p, &all),
            Some(0),
            "then priorities as before"
        );
        // A seek: the new window comes first; a peer without it gets other pieces.
        p.set_deadline(1, 3..4);
        let mut without = Bitfield::full(n);
        without.clear(3);
        assert_eq!(next_piece(&mut p, &without), Some(1));
        assert_eq!(next_piece(&mut p, &all), Some(3));
        // Verified urgent pieces need nothing; a gone reader leaves plain priorities.
        p.piece_verified(3, true);
        p.set_deadline(1, 3..5);
        assert_eq!(next_piece(&mut p, &all), Some(4));
        p.clear_deadline(1);
        assert_eq!(next_piece(&mut p, &all), Some(2));
    }

    #[test]
    fn skipped_pieces_stay_skipped_and_windows_past_the_end_are_cut() {
        let mut p = Picker::new(BLOCK_LEN, u64::from(4 * BLOCK_LEN), Bitfield::new(4));
        let all = Bitfield::full(4);
        p.peer_added(&all);
        p.set_priorities(vec![1, 0, 1, 1]);
        p.set_deadline(9, 1..100);
        assert_eq!(p.deadlines.order(), vec![1, 2, 3]);
        assert_eq!(next_piece(&mut p, &all), Some(2), "piece 1 is not wanted");
    }
}
