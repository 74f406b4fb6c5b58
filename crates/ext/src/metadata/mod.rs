//! BEP 9 ut_metadata: the messages, fetching the info dictionary from peers
//! ([`MetadataAssembler`]), serving ours ([`MetadataServer`]), and writing a .torrent from
//! fetched metadata ([`torrent_file`]).

mod assembler;
mod message;
mod server;
mod torrent_file;

pub use assembler::{
    AddPeerError, MetadataAssembler, MetadataEvent, Request, DEFAULT_REQUEST_TIMEOUT,
    MAX_IN_FLIGHT_PER_PEER, MAX_PEERS, MAX_STRIKES, MAX_TIMEOUTS,
};
pub use message::{decode_metadata_message, MetadataMessage, MetadataMessageError};
pub use server::{serve_piece, MetadataServer};
pub use torrent_file::{torrent_file, torrent_file_with_web_seeds, TorrentFileError};

/// Metadata is exchanged in pieces of 16 KiB (the last one shorter).
pub const METADATA_PIECE_LEN: usize = 16 * 1024;
/// Largest info dictionary we fetch or serve (BEP 9 leaves it open; libtorrent uses 4 MiB by
/// default for the torrents it accepts, 8 MiB covers 400k pieces).
pub const MAX_METADATA_SIZE: usize = 8 * 1024 * 1024;

/// Number of pieces of metadata of `size` bytes.
pub fn piece_count(size: usize) -> u32 {
    size.div_ceil(METADATA_PIECE_LEN) as u32
}

/// Length of metadata piece `piece` of metadata of `size` bytes (0 if out of range).
pub fn piece_len(size: usize, piece: u32) -> usize {
    let start = (piece as usize).saturating_mul(METADATA_PIECE_LEN);
    size.saturating_sub(start).min(METADATA_PIECE_LEN)
}
