//! Checking a torrent's data on the client's shared hash pool without blocking the loop: a
//! window of pieces is in flight, results come back on the torrent's own channel.

use std::collections::VecDeque;

use tokio::sync::mpsc;

use crate::storage::{HashPool, HashResult, Storage};
use crate::torrent::meta::Metainfo;
use crate::wire::Bitfield;

/// Pieces in flight per hash worker.
const WINDOW_PER_THREAD: usize = 4;

pub struct Checker {
    queue: VecDeque<u32>,
    in_flight: usize,
    have: Bitfield,
    total: usize,
    done: usize,
    tx: mpsc::UnboundedSender<HashResult>,
    rx: mpsc::UnboundedReceiver<HashResult>,
}

impl Checker {
    /// `trusted` pieces count as verified; `recheck` ones are hashed.
    pub fn new(trusted: Bitfield, recheck: Vec<u32>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            total: recheck.len(),
            queue: recheck.into(),
            in_flight: 0,
            have: trusted,
            done: 0,
            tx,
            rx,
        }
    }

    /// Submits what fits in the window and collects results; true when every piece is checked.
    pub fn pump(&mut self, pool: &HashPool, storage: &dyn Storage, meta: &Metainfo) -> bool {
        while let Ok(r) = self.rx.try_recv() {
            self.in_flight -= 1;
            self.done += 1;
            if r.valid {
                self.have.set(r.piece);
            }
        }
        let window = pool.threads().max(1) * WINDOW_PER_THREAD;
        while self.in_flight < window {
            let Some(piece) = self.queue.pop_front() else {
                break;
            };
            match (storage.piece_data(piece), meta.piece_hash(piece)) {
                (Ok(data), Some(expected)) => {
                    pool.submit_to(piece, *expected, data, self.tx.clone());
                    self.in_flight += 1;
                }
                // Unreadable: missing.
                _ => self.done += 1,
            }
        }
        self.in_flight == 0 && self.queue.is_empty()
    }

    /// (pieces checked, pieces to check)
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.total)
    }

    pub fn into_have(self) -> Bitfield {
        self.have
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    #[test]
    fn hashes_only_the_recheck_list_and_keeps_trusted_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d");
        std::fs::write(&f, vec![5u8; 64 << 10]).unwrap();
        let bytes = crate::torrent::meta::create(&f, Some(16 << 10), vec![], false, None).unwrap();
        let meta = Metainfo::from_bytes(&bytes).unwrap();
        let storage = MemStorage::new(&meta);
        storage.write_block(2, 0, &[5u8; 16 << 10]).unwrap();
        let pool = HashPool::new(1).unwrap();
        let mut trusted = Bitfield::new(4);
        trusted.set(0);
        let mut c = Checker::new(trusted, vec![1, 2]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !c.pump(&pool, &storage, &meta) {
            assert!(std::time::Instant::now() < deadline, "check did not finish");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(c.progress(), (2, 2));
        // 0 trusted, 1 empty (fails), 2 written (passes), 3 never looked at.
        assert_eq!(c.into_have().iter_ones().collect::<Vec<_>>(), vec![0, 2]);
    }
}
