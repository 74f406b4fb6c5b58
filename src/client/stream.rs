//! Reading a torrent's file while it downloads (the API's `.../files/{index}/stream`): what a
//! reader asks the client loop, and what it gets back. The loop's side is
//! `client::driver::stream`; the HTTP side is `api::stream`.
//!
//! A reader opens a file (a skipped file is wanted again: streaming it is asking for it), then
//! for each piece it reads names a window of pieces — the one it reads and a few after — and
//! waits until that piece is verified. The window is the picker's streaming deadline, so those
//! pieces are fetched first; only verified pieces are ever read.

use std::ops::Range;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::control::{ControlError, InfoHash};
use crate::storage::MmapStorage;
use crate::torrent::picker::ReaderId;

/// What a reader asks the client loop.
#[derive(Debug)]
pub enum StreamCommand {
    /// Opens file `file` (index as in the snapshot's `files`) for reading; with `want`, a
    /// skipped file becomes `normal` (and is saved so).
    Open {
        info_hash: InfoHash,
        file: usize,
        want: bool,
        reply: oneshot::Sender<Result<StreamFile, StreamError>>,
    },
    /// Reader `reader` reads piece `window.start` now and the rest of `window` next: replies
    /// (with the storage to read from) once `window.start` is verified.
    Wait {
        info_hash: InfoHash,
        reader: ReaderId,
        window: Range<u32>,
        reply: oneshot::Sender<Result<Arc<MmapStorage>, StreamError>>,
    },
    /// The reader is gone (done, or its client went away): its pieces are no longer urgent.
    Close {
        info_hash: InfoHash,
        reader: ReaderId,
    },
}

impl StreamCommand {
    pub fn info_hash(&self) -> &InfoHash {
        match self {
            Self::Open { info_hash, .. }
            | Self::Wait { info_hash, .. }
            | Self::Close { info_hash, .. } => info_hash,
        }
    }

    /// Answers it with `e` (the client is shutting down).
    pub fn reject(self, e: ControlError) {
        match self {
            Self::Open { reply, .. } => drop(reply.send(Err(e.into()))),
            Self::Wait { reply, .. } => drop(reply.send(Err(e.into()))),
            Self::Close { .. } => {}
        }
    }
}

/// Where a file lies in its torrent's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFile {
    /// Its path in the torrent (`/`-separated), for its name and content type.
    pub path: String,
    /// Its first byte's offset in the torrent's byte stream.
    pub offset: u64,
    pub length: u64,
    pub piece_length: u64,
    /// Skipped when it was opened (without `want`).
    pub skipped: bool,
}

impl StreamFile {
    /// The piece holding byte `pos` of the file.
    pub fn piece_of(&self, pos: u64) -> u32 {
        ((self.offset + pos) / self.piece_length.max(1)) as u32
    }

    /// Of piece `piece`, the bytes that are the file's from `pos` on, up to `end` (file
    /// offsets): (begin in the piece, length).
    pub fn span_in_piece(&self, piece: u32, pos: u64, end: u64) -> (u32, u64) {
        let piece_start = u64::from(piece) * self.piece_length;
        let piece_end = piece_start + self.piece_length;
        let from = self.offset + pos;
        let to = (self.offset + end).min(piece_end);
        ((from - piece_start) as u32, to.saturating_sub(from))
    }
}

/// Why a stream cannot be read (on top of the client's own errors).
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("no file {index}: the torrent has {count} files (indexes from 0)")]
    NoSuchFile { index: usize, count: usize },
    #[error("its files are not known until its metadata has arrived")]
    NoMetadata,
    #[error("the torrent is paused and piece {0} is not downloaded yet: resume it to stream")]
    Paused(u32),
    #[error("piece {0} is not wanted (its file was skipped while streaming)")]
    Skipped(u32),
    #[error("the torrent failed: {0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_bytes_map_onto_its_pieces() {
        // A file from byte 100 to 350 of a torrent of 100-byte pieces.
        let f = StreamFile {
            path: "x".into(),
            offset: 100,
            length: 250,
            piece_length: 100,
            skipped: false,
        };
        assert_eq!(f.piece_of(0), 1);
        assert_eq!(f.piece_of(249), 3);
        assert_eq!(f.span_in_piece(1, 0, 250), (0, 100));
        assert_eq!(f.span_in_piece(2, 150, 250), (50, 50));
        assert_eq!(f.span_in_piece(3, 200, 250), (0, 50));
        assert_eq!(f.span_in_piece(2, 120, 130), (20, 10));
    }
}
