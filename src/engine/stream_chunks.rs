//! What a QUIC lane hands to quinn: the protocol's small chunks joined into larger ones.
//!
//! quinn keeps a stream's unacknowledged data as a queue of the chunks it was given and finds
//! the bytes of every STREAM frame by walking that queue from its start (`SendBuffer::get`),
//! so its cost per packet grows with the number of chunks in flight. A lane alternates a
//! 13-byte piece header and a 16 KiB block: a 16 MiB window held ~2,000 chunks, and the walk
//! was 14 % of a seeder's CPU. Joining them into [`CHUNK`]-byte chunks costs one copy and
//! removes the walk (measured A/B in perf/RESULTS.md).
//!
//! The copies are the process's own memory, while the blocks they replace are slices of the
//! mapped files (page cache). So the bytes held in joined chunks have a process-wide
//! [`BUDGET`]: past it, chunks go to quinn as they are (zero-copy, slower), and a thousand
//! slow or hostile peers cannot each pin a send window of copies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::session::LaneId;

/// Size of a joined chunk.
pub const CHUNK: usize = 64 * 1024;

/// Bytes that joined chunks may hold at once.
pub struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub const fn new(limit: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes held in joined chunks now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes if they fit.
    fn take(&'static self, n: usize) -> bool {
        if self.held.fetch_add(n, Ordering::Relaxed) + n > self.limit {
            self.held.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// The process's budget: all lanes and runtimes together.
pub static BUDGET: Budget = Budget::new(128 << 20);

/// A joined chunk's memory, counted against its budget while it lives.
struct Joined {
    data: Vec<u8>,
    budget: &'static Budget,
}

impl AsRef<[u8]> for Joined {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(CHUNK, Ordering::Relaxed);
    }
}

/// Where chunks come from: a lane's output.
pub trait Output {
    fn poll(&mut self) -> Option<Bytes>;
    /// Puts back the part of a chunk that did not fit.
    fn unpoll(&mut self, rest: Bytes);
}

/// One lane of a [`LaneProtocol`] as an [`Output`].
pub struct LaneOutput<'a, S> {
    pub session: &'a mut S,
    pub lane: LaneId,
    pub now: Instant,
}

impl<S: LaneProtocol> Output for LaneOutput<'_, S> {
    fn poll(&mut self) -> Option<Bytes> {
        self.session.poll_output(self.lane, self.now)
    }
    fn unpoll(&mut self, rest: Bytes) {
        self.session.unpoll_output(self.lane, rest)
    }
}

/// The next chunk for a lane's stream: the output's chunks joined up to [`CHUNK`] bytes, or
/// the next chunk as it is when it is large already or `budget` is spent.
pub fn next(out: &mut impl Output, budget: &'static Budget) -> Option<Bytes> {
    let first = out.poll()?;
    if first.len() >= CHUNK || !budget.take(CHUNK) {
        return Some(first);
    }
    let mut buf = BytesMut::with_capacity(CHUNK);
    buf.extend_from_slice(&first);
    while buf.len() < CHUNK {
        let Some(mut more) = out.poll() else {
            break;
        };
        let room = CHUNK - buf.len();
        if more.len() > room {
            buf.extend_from_slice(&more.split_to(room));
            out.unpoll(more);
            break;
        }
        buf.extend_from_slice(&more);
    }
    Some(Bytes::from_owner(Joined {
        data: buf.into(),
        budget,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    impl Output for VecDeque<Bytes> {
        fn poll(&mut self) -> Option<Bytes> {
            self.pop_front()
        }
        fn unpoll(&mut self, rest: Bytes) {
            self.push_front(rest)
        }
    }

    /// A lane's output as the session makes it: header, block, header, block...
    fn lane_output(blocks: usize) -> (VecDeque<Bytes>, Vec<u8>) {
        let mut out = VecDeque::new();
        let mut all = Vec::new();
        for i in 0..blocks {
            let head = Bytes::from(vec![i as u8; 13]);
            let block = Bytes::from(
                (0..16384u32)
                    .map(|b| (b * 7 + i as u32) as u8)
                    .collect::<Vec<_>>(),
            );
            all.extend_from_slice(&head);
            all.extend_from_slice(&block);
            out.push_back(head);
            out.push_back(block);
        }
        (out, all)
    }

    #[test]
    fn joined_chunks_keep_every_byte_in_order() {
        static B: Budget = Budget::new(64 << 20);
        let (mut out, all) = lane_output(20);
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Some(c) = next(&mut out, &B) {
            sizes.push(c.len());
            got.extend_from_slice(&c);
        }
        assert_eq!(got, all);
        assert!(sizes.iter().all(|&n| n <= CHUNK), "{sizes:?}");
        // 20 blocks of 16,397 bytes fill five whole chunks and a partial one.
        assert_eq!(sizes.len(), all.len().div_ceil(CHUNK), "{sizes:?}");
        assert_eq!(B.held(), 0, "dropped chunks give their bytes back");
    }

    #[test]
    fn past_the_budget_chunks_go_as_they_are() {
        static B: Budget = Budget::new(3 * CHUNK);
        let (mut out, all) = lane_output(40);
        let mut kept = Vec::new();
        while let Some(c) = next(&mut out, &B) {
            kept.push(c);
        }
        let joined = kept.iter().filter(|c| c.len() > 16384).count();
        assert_eq!(joined, 3, "three joined chunks fit the budget");
        assert!(B.held() <= 3 * CHUNK);
        assert_eq!(kept.concat(), all);
        drop(kept);
        assert_eq!(B.held(), 0);
        // With the budget back, chunks are joined again.
        let (mut out, _) = lane_output(4);
        assert!(next(&mut out, &B).unwrap().len() > 16384);
    }
}
