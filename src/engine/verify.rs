//! Piece verification for a session on the SHA-1 worker pool.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::storage::{HashPool, Storage};
use crate::torrent::meta::Metainfo;
use crate::torrent::session::Verifier;

pub struct PoolVerifier {
    pool: HashPool,
    storage: Arc<dyn Storage>,
    meta: Arc<Metainfo>,
    /// Pieces that could not even be read: failed without hashing.
    unreadable: VecDeque<u32>,
}

impl PoolVerifier {
    pub fn new(pool: HashPool, storage: Arc<dyn Storage>, meta: Arc<Metainfo>) -> Self {
        Self {
            pool,
            storage,
            meta,
            unreadable: VecDeque::new(),
        }
    }
}

impl Verifier for PoolVerifier {
    fn submit(&mut self, index: u32) {
        let (Some(expected), Ok(data)) =
            (self.meta.piece_hash(index), self.storage.piece_data(index))
        else {
            self.unreadable.push_back(index);
            return;
        };
        self.pool.submit(index, *expected, data);
    }

    fn poll(&mut self) -> Option<(u32, bool, Duration)> {
        if let Some(i) = self.unreadable.pop_front() {
            return Some((i, false, Duration::ZERO));
        }
        self.pool.try_recv().map(|r| (r.piece, r.valid, r.elapsed))
    }
}
