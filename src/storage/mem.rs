//! [`MemStorage`]: the whole torrent in memory, for engine tests.

use std::sync::RwLock;

use bytes::Bytes;

use crate::torrent::meta::Metainfo;

use super::layout::Layout;
use super::{PieceData, Storage, StorageError};

/// In-memory storage (the torrent's byte stream in one buffer). Reads copy.
#[derive(Debug)]
pub struct MemStorage {
    layout: Layout,
    data: RwLock<Vec<u8>>,
}

impl MemStorage {
    /// Zero-filled storage for `meta` (a leecher's empty disk).
    pub fn new(meta: &Metainfo) -> Self {
        Self::with_data(meta, vec![0; meta.total_length as usize])
    }

    /// Storage holding `data` as the torrent's byte stream (a seeder).
    /// `data` is truncated or zero-extended to the torrent's length.
    pub fn with_data(meta: &Metainfo, mut data: Vec<u8>) -> Self {
        data.resize(meta.total_length as usize, 0);
        MemStorage {
            layout: Layout::new(meta),
            data: RwLock::new(data),
        }
    }

    /// Copy of the whole byte stream.
    pub fn contents(&self) -> Vec<u8> {
        self.data.read().map(|d| d.clone()).unwrap_or_default()
    }

    fn range(
        &self,
        piece: u32,
        begin: u32,
        len: u32,
    ) -> Result<std::ops::Range<usize>, StorageError> {
        let off = self.layout.block_offset(piece, begin, len)? as usize;
        Ok(off..off + len as usize)
    }
}

fn poisoned() -> StorageError {
    StorageError::Io {
        path: "<memory>".into(),
        source: std::io::Error::other("lock poisoned"),
    }
}

impl Storage for MemStorage {
    fn read_block(&self, piece: u32, begin: u32, len: u32) -> Result<Bytes, StorageError> {
        let r = self.range(piece, begin, len)?;
        let d = self.data.read().map_err(|_| poisoned())?;
        Ok(Bytes::copy_from_slice(&d[r]))
    }

    fn write_block(&self, piece: u32, begin: u32, data: &[u8]) -> Result<(), StorageError> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let r = self.range(piece, begin, len)?;
        let mut d = self.data.write().map_err(|_| poisoned())?;
        d[r].copy_from_slice(data);
        Ok(())
    }

    fn piece_data(&self, piece: u32) -> Result<PieceData, StorageError> {
        let plen = self.layout.piece_len(piece);
        Ok(self.read_block(piece, 0, plen)?.into())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
