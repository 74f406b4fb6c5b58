//! Mapping from (piece, begin, length) to byte ranges of the torrent's files.

use crate::torrent::meta::Metainfo;

use super::StorageError;

/// A contiguous part of a block inside one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Index into `Metainfo::files`.
    pub file: usize,
    /// Offset inside that file.
    pub file_offset: u64,
    /// Bytes in this span (> 0).
    pub len: u64,
}

#[derive(Debug, Clone, Copy)]
struct FileRange {
    file: usize,
    offset: u64,
    len: u64,
}

/// Piece geometry plus the non-empty files sorted by stream offset.
#[derive(Debug, Clone)]
pub struct Layout {
    piece_length: u32,
    total_length: u64,
    num_pieces: u32,
    files: Vec<FileRange>,
}

impl Layout {
    /// Layout of a parsed torrent.
    pub fn new(meta: &Metainfo) -> Self {
        let files = meta
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.length > 0)
            .map(|(i, f)| FileRange {
                file: i,
                offset: f.offset,
                len: f.length,
            })
            .collect();
        Layout {
            piece_length: meta.piece_length,
            total_length: meta.total_length,
            num_pieces: meta.num_pieces(),
            files,
        }
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Total bytes.
    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Length of `piece` (0 if out of range).
    pub fn piece_len(&self, piece: u32) -> u32 {
        if piece >= self.num_pieces {
            return 0;
        }
        let start = u64::from(piece) * u64::from(self.piece_length);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    /// Stream offset of a block, validating that it lies inside the piece and
    /// is not empty.
    pub fn block_offset(&self, piece: u32, begin: u32, len: u32) -> Result<u64, StorageError> {
        let plen = self.piece_len(piece);
        let end = u64::from(begin) + u64::from(len);
        if len == 0 || plen == 0 || end > u64::from(plen) {
            return Err(StorageError::OutOfRange { piece, begin, len });
        }
        Ok(u64::from(piece) * u64::from(self.piece_length) + u64::from(begin))
    }

    /// The file spans covering `len` bytes at stream `offset` (clipped to the
    /// end of the torrent). Empty files never appear.
    pub fn spans(&self, offset: u64, len: u64) -> impl Iterator<Item = Span> + '_ {
        let end = offset.saturating_add(len).min(self.total_length);
        let first = self.files.partition_point(|f| f.offset + f.len <= offset);
        self.files[first..]
            .iter()
            .take_while(move |f| f.offset < end)
            .map(move |f| {
                let s = offset.max(f.offset);
                let e = end.min(f.offset + f.len);
                Span {
                    file: f.file,
                    file_offset: s - f.offset,
                    len: e - s,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::meta::create;

    #[test]
    fn spans_cross_files_and_skip_empty() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir(&root).unwrap();
        // a: 20000, b: empty, c: 30000, d: 1 → total 50001, pl 16 KiB → 4 pieces
        std::fs::write(root.join("a"), vec![1u8; 20000]).unwrap();
        std::fs::write(root.join("b"), b"").unwrap();
        std::fs::write(root.join("c"), vec![2u8; 30000]).unwrap();
        std::fs::write(root.join("d"), b"x").unwrap();
        let m = Metainfo::from_bytes(&create(&root, Some(16384), vec![], false, None).unwrap())
            .unwrap();
        let l = Layout::new(&m);
        assert_eq!(l.num_pieces(), 4);
        assert_eq!(l.piece_len(3), 50001 - 3 * 16384);
        assert_eq!(l.piece_len(4), 0);
        let s: Vec<Span> = l.spans(16384, 16384).collect();
        assert_eq!(
            s,
            vec![
                Span {
                    file: 0,
                    file_offset: 16384,
                    len: 20000 - 16384
                },
                Span {
                    file: 2,
                    file_offset: 0,
                    len: 32768 - 20000
                },
            ]
        );
        let s: Vec<Span> = l.spans(49999, 100).collect();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[1],
            Span {
                file: 3,
                file_offset: 0,
                len: 1
            }
        );
        assert_eq!(l.spans(50001, 10).count(), 0);
        assert_eq!(l.block_offset(1, 100, 10).unwrap(), 16484);
        assert!(l.block_offset(3, 0, 50001 - 3 * 16384).is_ok());
        assert!(l.block_offset(3, 0, 50001 - 3 * 16384 + 1).is_err());
        assert!(l.block_offset(4, 0, 1).is_err());
        assert!(l.block_offset(0, 0, 0).is_err());
        assert!(l.block_offset(0, u32::MAX, u32::MAX).is_err());
    }
}
