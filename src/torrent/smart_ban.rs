//! Smart ban (as libtorrent's `smart_ban` plugin): who sent each block of a piece is
//! remembered until the piece is verified. A piece that fails with one sender convicts it at
//! once; one that fails with several keeps a digest of each sender's block, and when the piece
//! later verifies, whoever sent a block that differs from the good data lied. Only liars are
//! banned, never a peer that merely shared a piece with one.

use std::collections::{HashMap, HashSet};

use super::picker::BlockRef;
use crate::storage::hash::sha1;
use crate::storage::Storage;

/// A peer's identity as the session keys it (the origin-bound peer id).
pub type PeerKey = [u8; 20];

#[derive(Default)]
pub struct SmartBan {
    /// Peers banned for sending corrupt data.
    banned: HashSet<PeerKey>,
    /// Who sent each block of a piece still being assembled.
    contributors: HashMap<u32, Vec<(BlockRef, PeerKey)>>,
    /// Pieces that failed with several contributors: each block's sender and the SHA-1 of
    /// what it sent.
    suspects: HashMap<u32, Vec<(BlockRef, PeerKey, [u8; 20])>>,
}

impl SmartBan {
    pub fn is_banned(&self, peer: &PeerKey) -> bool {
        self.banned.contains(peer)
    }

    pub fn ban(&mut self, peer: PeerKey) {
        self.banned.insert(peer);
    }

    /// `peer` sent block `b`, which was written to storage.
    pub fn block_received(&mut self, b: BlockRef, peer: PeerKey) {
        self.contributors
            .entry(b.piece)
            .or_default()
            .push((b, peer));
    }

    /// A piece's hash check came back; the peers it proves to have lied (they are banned).
    pub fn piece_checked(&mut self, piece: u32, ok: bool, storage: &dyn Storage) -> Vec<PeerKey> {
        let blocks = self.contributors.remove(&piece).unwrap_or_default();
        let liars = if ok {
            self.convict(piece, storage)
        } else {
            let senders: HashSet<PeerKey> = blocks.iter().map(|(_, p)| *p).collect();
            if senders.len() == 1 {
                // Only a sole contributor is certainly the liar.
                senders.into_iter().collect()
            } else {
                self.remember(piece, blocks, storage);
                Vec::new()
            }
        };
        self.banned.extend(liars.iter().copied());
        liars
    }

    /// Keeps a digest of each sender's block as it is on disk now, to compare with the good
    /// data once the piece verifies.
    fn remember(&mut self, piece: u32, blocks: Vec<(BlockRef, PeerKey)>, storage: &dyn Storage) {
        let record = self.suspects.entry(piece).or_default();
        for (b, peer) in blocks {
            if let Ok(data) = storage.read_block(b.piece, b.begin, b.len) {
                record.push((b, peer, sha1(&data)));
            }
        }
    }

    /// Every peer that earlier sent a block of a now verified piece that differs from it.
    fn convict(&mut self, piece: u32, storage: &dyn Storage) -> Vec<PeerKey> {
        let Some(record) = self.suspects.remove(&piece) else {
            return Vec::new();
        };
        let mut liars: Vec<PeerKey> = Vec::new();
        for (b, peer, digest) in record {
            let lied = matches!(storage.read_block(b.piece, b.begin, b.len),
                Ok(good) if sha1(&good) != digest);
            if lied && !liars.contains(&peer) {
                liars.push(peer);
            }
        }
        liars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;
    use crate::torrent::meta::Metainfo;

    /// One piece of two blocks.
    fn storage() -> MemStorage {
        let good = vec![7u8; 32 * 1024];
        let mut info = format!(
            "d6:lengthi{0}e4:name1:x12:piece lengthi{0}e6:pieces20:",
            good.len()
        )
        .into_bytes();
        info.extend_from_slice(&sha1(&good));
        info.push(b'e');
        MemStorage::new(&Metainfo::from_info_bytes(&info).unwrap())
    }

    fn block(begin: u32) -> BlockRef {
        BlockRef {
            piece: 0,
            begin,
            len: 16 * 1024,
        }
    }

    #[test]
    fn a_sole_sender_of_a_bad_piece_is_banned_at_once() {
        let s = storage();
        let mut ban = SmartBan::default();
        ban.block_received(block(0), [1; 20]);
        ban.block_received(block(16 * 1024), [1; 20]);
        assert_eq!(ban.piece_checked(0, false, &s), vec![[1; 20]]);
        assert!(ban.is_banned(&[1; 20]));
    }

    #[test]
    fn of_two_senders_only_the_one_whose_block_differs_from_the_good_data_is_banned() {
        let s = storage();
        let mut ban = SmartBan::default();
        // The bad round: peer 1's block is good, peer 2's is garbage.
        s.write_block(0, 0, &[7u8; 16 * 1024]).unwrap();
        s.write_block(0, 16 * 1024, &[9u8; 16 * 1024]).unwrap();
        ban.block_received(block(0), [1; 20]);
        ban.block_received(block(16 * 1024), [2; 20]);
        assert!(
            ban.piece_checked(0, false, &s).is_empty(),
            "nobody is certain yet"
        );
        // The piece comes right from someone else.
        s.write_block(0, 16 * 1024, &[7u8; 16 * 1024]).unwrap();
        ban.block_received(block(0), [3; 20]);
        ban.block_received(block(16 * 1024), [3; 20]);
        assert_eq!(ban.piece_checked(0, true, &s), vec![[2; 20]]);
        assert!(ban.is_banned(&[2; 20]));
        assert!(!ban.is_banned(&[1; 20]) && !ban.is_banned(&[3; 20]));
    }
}
