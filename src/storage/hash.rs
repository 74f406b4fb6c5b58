//! SHA-1 piece hashing on a pool of worker threads.
//!
//! The event loop submits pieces with [`HashPool::submit`] and collects
//! results without blocking via [`HashPool::try_recv`], or awaits
//! [`HashPool::recv`] (a `tokio::sync::mpsc` channel: works on a
//! current-thread runtime, cancel-safe in `select!`). Piece data is passed as
//! zero-copy [`PieceData`] (slices of the file maps from
//! [`Storage::piece_data`]), so nothing is copied to hash it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::torrent::meta::Metainfo;
use crate::wire::Bitfield;

use super::{PieceData, Storage};

/// SHA-1 of `data` with the fastest implementation measured on our machines:
/// the `sha1` crate, which uses the CPU's SHA extensions (SHA-NI) when present
/// (see `benches/sha1.rs`).
#[inline]
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// SHA-1 over the concatenated chunks of a piece.
pub fn sha1_piece(data: &PieceData) -> [u8; 20] {
    let mut h = Sha1::new();
    for c in &data.chunks {
        h.update(c);
    }
    h.finalize().into()
}

/// Outcome of one piece check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashResult {
    /// Piece index, as submitted.
    pub piece: u32,
    /// Digest matched the expected hash.
    pub valid: bool,
    /// The computed digest.
    pub digest: [u8; 20],
    /// Time spent hashing on the worker.
    pub elapsed: Duration,
}

enum Reply {
    Async(tokio::sync::mpsc::UnboundedSender<HashResult>),
    Sync(crossbeam_channel::Sender<HashResult>),
}

struct Job {
    piece: u32,
    expected: [u8; 20],
    data: PieceData,
    reply: Reply,
}

/// A fixed pool of SHA-1 worker threads.
pub struct HashPool {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    results_tx: tokio::sync::mpsc::UnboundedSender<HashResult>,
    results_rx: tokio::sync::mpsc::UnboundedReceiver<HashResult>,
    pending: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for HashPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashPool")
            .field("threads", &self.workers.len())
            .field("pending", &self.pending())
            .finish()
    }
}

impl HashPool {
    /// Starts `threads` workers (0 = one per available core). Fails only if
    /// the OS refuses to start a thread.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<Job>();
        let (results_tx, results_rx) = tokio::sync::mpsc::unbounded_channel();
        let pending = Arc::new(AtomicUsize::new(0));
        let mut pool = HashPool {
            jobs: Some(jobs_tx),
            results_tx,
            results_rx,
            pending,
            workers: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let rx = jobs_rx.clone();
            let pending = pool.pending.clone();
            // On error, dropping `pool` stops and joins the workers started so far.
            let w = std::thread::Builder::new()
                .name(format!("sha1-{i}"))
                .spawn(move || worker(rx, pending))?;
            pool.workers.push(w);
        }
        Ok(pool)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Jobs submitted whose result has not been produced yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            self.pending.fetch_add(1, Ordering::Relaxed);
            if tx.send(job).is_err() {
                self.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues `piece` for hashing against `expected`. The result arrives via
    /// [`HashPool::try_recv`] / [`HashPool::recv`].
    pub fn submit(&self, piece: u32, expected: [u8; 20], data: PieceData) {
        self.send(Job {
            piece,
            expected,
            data,
            reply: Reply::Async(self.results_tx.clone()),
        });
    }

    /// Like [`HashPool::submit`], but the result goes to `reply`: one pool serves many
    /// torrents, each reading its own results.
    pub fn submit_to(
        &self,
        piece: u32,
        expected: [u8; 20],
        data: PieceData,
        reply: tokio::sync::mpsc::UnboundedSender<HashResult>,
    ) {
        self.send(Job {
            piece,
            expected,
            data,
            reply: Reply::Async(reply),
        });
    }

    /// A finished result if one is ready; never blocks.
    pub fn try_recv(&mut self) -> Option<HashResult> {
        self.results_rx.try_recv().ok()
    }

    /// Waits for the next result (cancel-safe). Never returns `None` while
    /// the pool is alive, so only await it when [`HashPool::pending`] > 0 or
    /// inside a `select!`.
    pub async fn recv(&mut self) -> Option<HashResult> {
        self.results_rx.recv().await
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.jobs.take(); // workers finish queued jobs, then exit
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(rx: crossbeam_channel::Receiver<Job>, pending: Arc<AtomicUsize>) {
    while let Ok(job) = rx.recv() {
        let t = Instant::now();
        let digest = sha1_piece(&job.data);
        drop(job.data);
        let r = HashResult {
            piece: job.piece,
            valid: digest == job.expected,
            digest,
            elapsed: t.elapsed(),
        };
        pending.fetch_sub(1, Ordering::Relaxed);
        match job.reply {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Sync(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// Checks every piece of `storage` on the pool and returns the ones that
/// match. Blocks the calling thread: call it before starting the event loop
/// (or from `spawn_blocking`), not on it. Pieces that cannot be read count
/// as missing.
pub fn verify_all(storage: &dyn Storage, meta: &Metainfo, pool: &HashPool) -> Bitfield {
    verify_all_with_progress(storage, meta, pool, |_, _| {})
}

/// [`verify_all`] calling `progress(done, total)` after each piece.
pub fn verify_all_with_progress(
    storage: &dyn Storage,
    meta: &Metainfo,
    pool: &HashPool,
    progress: impl FnMut(u32, u32),
) -> Bitfield {
    verify_where(storage, meta, pool, |_| true, progress)
}

/// Like [`verify_all_with_progress`], but only pieces for which `candidate` is true are
/// read and hashed; the others count as missing.
pub fn verify_where(
    storage: &dyn Storage,
    meta: &Metainfo,
    pool: &HashPool,
    candidate: impl Fn(u32) -> bool,
    mut progress: impl FnMut(u32, u32),
) -> Bitfield {
    let total = meta.num_pieces();
    let mut have = Bitfield::new(total);
    let (tx, rx) = crossbeam_channel::unbounded();
    // Bounded window keeps the pool busy without queueing the whole torrent.
    let window = pool.threads().max(1) * 4;
    let mut next = 0u32;
    let mut in_flight = 0usize;
    let mut done = 0u32;
    while done < total {
        while in_flight < window && next < total {
            let piece = next;
            next += 1;
            if !candidate(piece) {
                done += 1;
                progress(done, total);
                continue;
            }
            match (storage.piece_data(piece), meta.piece_hash(piece)) {
                (Ok(data), Some(expected)) => {
                    pool.send(Job {
                        piece,
                        expected: *expected,
                        data,
                        reply: Reply::Sync(tx.clone()),
                    });
                    in_flight += 1;
                }
                _ => {
                    done += 1;
                    progress(done, total);
                }
            }
        }
        if in_flight == 0 {
            continue;
        }
        match rx.recv() {
            Ok(r) => {
                in_flight -= 1;
                if r.valid {
                    have.set(r.piece);
                }
                done += 1;
                progress(done, total);
            }
            Err(_) => break, // pool gone
        }
    }
    have
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha1(b"abc"),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
            ]
        );
        let split = PieceData {
            chunks: vec![
                bytes::Bytes::from_static(b"a"),
                bytes::Bytes::from_static(b"bc"),
            ],
        };
        assert_eq!(sha1_piece(&split), sha1(b"abc"));
        let ring = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &[7u8; 100_000]);
        assert_eq!(&sha1(&[7u8; 100_000])[..], ring.as_ref());
    }

    #[test]
    fn pool_try_recv_and_async_recv() {
        let mut pool = HashPool::new(2).unwrap();
        assert_eq!(pool.threads(), 2);
        for i in 0..20u32 {
            let data = vec![i as u8; 1000 + i as usize];
            let expected = if i % 3 == 0 { [0; 20] } else { sha1(&data) };
            pool.submit(i, expected, data.into());
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < 20 && Instant::now() < deadline {
            match pool.try_recv() {
                Some(r) => got.push(r),
                None => std::thread::yield_now(),
            }
        }
        assert_eq!(got.len(), 20);
        got.sort_by_key(|r| r.piece);
        for r in &got {
            assert_eq!(r.valid, r.piece % 3 != 0, "piece {}", r.piece);
        }
        assert_eq!(pool.pending(), 0);
        assert!(pool.try_recv().is_none());

        // Awaiting on a current-thread runtime wakes up when a worker finishes.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        pool.submit(99, sha1(b"x"), b"x".to_vec().into());
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), pool.recv())
                .await
                .unwrap()
        });
        assert_eq!(r.unwrap().piece, 99);
    }

    #[test]
    fn drop_joins_workers() {
        let pool = HashPool::new(3).unwrap();
        pool.submit(0, [0; 20], vec![0; 10].into());
        drop(pool);
        assert!(HashPool::new(0).unwrap().threads() >= 1);
    }
}
