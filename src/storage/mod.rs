//! Piece storage: piece ↔ file mapping, mmap-backed files, SHA-1 hash pool.
//!
//! * [`Storage`] is what the engine talks to: blocks in, blocks out, whole
//!   pieces (as zero-copy slices) for hashing.
//! * [`MmapStorage`] maps the torrent's files with `memmap2`. Uploads are
//!   zero-copy: [`Storage::read_block`] returns `Bytes` pointing into the map
//!   (copying only for the rare block that crosses a file boundary).
//! * [`MemStorage`] keeps everything in memory, for engine tests.
//! * [`HashPool`] hashes pieces on worker threads; [`verify_all`] checks every
//!   piece (resume, seeding start-up).
//!
//! # Output path convention
//! As in the original client (`-outPath` / `-file`): for a single-file
//! torrent the output path *is the file*; for a multi-file torrent it is the
//! directory that receives the torrent's files (the torrent's `name` is not
//! appended — pass `out.join(&meta.name)` for that).
//!
//! # Concurrency contract
//! Blocks handed out by `read_block`/`piece_data` alias the shared file map.
//! The engine must not `write_block` into a piece while that piece is being
//! hashed or served (it never needs to: pieces are written before they are
//! verified, and only verified pieces are served).

pub mod hash;
pub mod layout;
pub mod mem;
pub mod mmap;
pub mod parts;
pub mod place;
pub mod pool;
mod sigbus;

use std::path::PathBuf;

use bytes::Bytes;

pub use hash::{verify_all, verify_all_with_progress, verify_where, HashPool, HashResult};
pub use layout::{Layout, Span};
pub use mem::MemStorage;
pub use mmap::{parts_name, Allocation, MmapStorage};
pub use place::DataPlace;

/// Storage errors.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Not enough space to preallocate a file.
    #[error("disk full: cannot allocate {needed} bytes for {path}")]
    DiskFull {
        /// File being allocated.
        path: PathBuf,
        /// Bytes requested.
        needed: u64,
    },
    /// Any other I/O error.
    #[error("{path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Block outside the piece or the torrent, or of length zero.
    #[error("block out of range: piece {piece}, begin {begin}, length {len}")]
    OutOfRange {
        /// Piece index.
        piece: u32,
        /// Offset in piece.
        begin: u32,
        /// Length.
        len: u32,
    },
    /// An existing file has a size other than the torrent says.
    #[error("{path}: size is {actual} bytes, the torrent says {expected}")]
    SizeMismatch {
        /// File.
        path: PathBuf,
        /// Size in the torrent.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A torrent path that would leave the output directory.
    #[error("path {0} escapes the output directory")]
    UnsafePath(PathBuf),
    /// A path component that must be a directory is something else (an `out_dir` that names a
    /// file, a file where the torrent has a directory).
    #[error("{0}: not a directory (a file is in the way)")]
    NotADirectory(PathBuf),
    /// A file name longer than the filesystem takes.
    #[error("{0}: name too long for this filesystem")]
    NameTooLong(PathBuf),
    /// A path that passes through a symbolic link leading out of the torrent's directory.
    #[error(
        "{0} is a symbolic link that leads outside the torrent's directory; refusing to follow it"
    )]
    LinkOutside(PathBuf),
    /// Write attempted on storage opened for seeding.
    #[error("storage is read-only")]
    ReadOnly,
}

impl StorageError {
    /// Maps an I/O error on `path`, turning ENOSPC/EDQUOT into [`StorageError::DiskFull`].
    pub fn from_io(path: impl Into<PathBuf>, needed: u64, e: std::io::Error) -> Self {
        let full = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            || e.kind() == std::io::ErrorKind::StorageFull;
        match e.raw_os_error() {
            Some(libc::ENOTDIR) | Some(libc::EEXIST) => {
                return StorageError::NotADirectory(path.into())
            }
            Some(libc::ENAMETOOLONG) => return StorageError::NameTooLong(path.into()),
            _ => {}
        }
        if full {
            StorageError::DiskFull {
                path: path.into(),
                needed,
            }
        } else {
            StorageError::Io {
                path: path.into(),
                source: e,
            }
        }
    }
}

/// A piece's bytes as one or more zero-copy chunks (several when the piece
/// spans files), in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PieceData {
    /// The chunks, concatenated in order.
    pub chunks: Vec<Bytes>,
}

impl PieceData {
    /// Total length.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Concatenated copy (tests, small pieces).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in &self.chunks {
            v.extend_from_slice(c);
        }
        v
    }
}

impl From<Bytes> for PieceData {
    fn from(b: Bytes) -> Self {
        PieceData { chunks: vec![b] }
    }
}

impl From<Vec<u8>> for PieceData {
    fn from(v: Vec<u8>) -> Self {
        PieceData::from(Bytes::from(v))
    }
}

/// Block and piece access for the engine. Implementations are shared between
/// the event loop and hash workers, hence `&self` everywhere.
pub trait Storage: Send + Sync {
    /// `len` bytes at `begin` in `piece`. Zero-copy where the backend allows.
    fn read_block(&self, piece: u32, begin: u32, len: u32) -> Result<Bytes, StorageError>;
    /// Stores a received block.
    fn write_block(&self, piece: u32, begin: u32, data: &[u8]) -> Result<(), StorageError>;
    /// The whole piece, for hashing (zero-copy chunks where possible).
    fn piece_data(&self, piece: u32) -> Result<PieceData, StorageError>;
    /// Hands written data to the OS for writing back. Does not wait for the disk: the
    /// session calls it on its event loop when the download completes, and a synchronous
    /// msync of a large torrent took longer than the transfer itself. Data in the page cache
    /// survives the process; after a crash a restart re-verifies what is on disk.
    fn flush(&self) -> Result<(), StorageError>;
}

impl<S: Storage + ?Sized> Storage for std::sync::Arc<S> {
    fn read_block(&self, piece: u32, begin: u32, len: u32) -> Result<Bytes, StorageError> {
        (**self).read_block(piece, begin, len)
    }
    fn write_block(&self, piece: u32, begin: u32, data: &[u8]) -> Result<(), StorageError> {
        (**self).write_block(piece, begin, data)
    }
    fn piece_data(&self, piece: u32) -> Result<PieceData, StorageError> {
        (**self).piece_data(piece)
    }
    fn flush(&self) -> Result<(), StorageError> {
        (**self).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_maps_to_disk_full() {
        let e = StorageError::from_io("x", 5, std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(e, StorageError::DiskFull { needed: 5, .. }));
        assert!(e.to_string().starts_with("disk full"));
        let e = StorageError::from_io("x", 5, std::io::Error::from_raw_os_error(libc::EDQUOT));
        assert!(matches!(e, StorageError::DiskFull { .. }));
        let e = StorageError::from_io("x", 5, std::io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, StorageError::Io { .. }));
    }
}
