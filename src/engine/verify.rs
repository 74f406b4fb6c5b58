//! Piece verification for a session on the SHA-1 worker pool (shared by every torrent of the
//! client: each verifier reads its own results).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::storage::{HashPool, HashResult, Storage};
use crate::torrent::meta::Metainfo;
use crate::torrent::session::Verifier;

pub struct PoolVerifier {
    pool: Arc<HashPool>,
    storage: Arc<dyn Storage>,
    meta: Arc<Metainfo>,
    results_tx: mpsc::UnboundedSender<HashResult>,
    results: mpsc::UnboundedReceiver<HashResult>,
    /// Pieces that could not even be read: failed without hashing.
    unreadable: VecDeque<u32>,
    in_flight: usize,
}

impl PoolVerifier {
    pub fn new(pool: Arc<HashPool>, storage: Arc<dyn Storage>, meta: Arc<Metainfo>) -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        Self {
            pool,
            storage,
            meta,
            results_tx,
            results,
            unreadable: VecDeque::new(),
            in_flight: 0,
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
        self.in_flight += 1;
        self.pool
            .submit_to(index, *expected, data, self.results_tx.clone());
    }

    fn pending(&self) -> usize {
        self.in_flight + self.unreadable.len()
    }

    fn poll(&mut self) -> Option<(u32, bool, Duration)> {
        if let Some(i) = self.unreadable.pop_front() {
            return Some((i, false, Duration::ZERO));
        }
        let r = self.results.try_recv().ok()?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some((r.piece, r.valid, r.elapsed))
    }
}
