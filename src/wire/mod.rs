//! BitTorrent peer wire protocol: BEP 3 messages, BEP 6 fast extension,
//! BEP 10 extension protocol. Sans-IO: bytes in, values out, never panics on
//! peer input.
//!
//! Receiving: feed bytes into a [`MessageDecoder`] (`push`, or read straight
//! into [`MessageDecoder::buffer_mut`]), then call
//! [`MessageDecoder::next_handshake`] once and [`MessageDecoder::next_message`]
//! until it returns `Ok(None)`. `Piece` data, `Bitfield` and `Extended`
//! payloads are split off the receive buffer without copying.
//!
//! Sending: [`encode`] writes any message; for uploads use
//! [`encode_zero_copy`] (or [`encode_piece_header`]) which writes only the
//! 13-byte header and hands back the block `Bytes` (e.g. a slice of the
//! storage mmap) for a vectored/zero-copy send.

pub mod bitfield;
pub mod extension;
pub mod handshake;
pub mod message;
#[cfg(test)]
mod proptests;

pub use bitfield::Bitfield;
pub use extension::{ExtensionHandshake, EXTENSION_HANDSHAKE_ID, UT_METADATA_ID, UT_PEX_ID};
pub use handshake::{Handshake, HANDSHAKE_LEN, PROTOCOL};
pub use message::{
    encode, encode_bytes, encode_piece_header, encode_zero_copy, DecoderLimits, Message,
    MessageDecoder, MessageId, DEFAULT_MAX_BLOCK_LEN, DEFAULT_MAX_MESSAGE_LEN, PIECE_HEADER_LEN,
};

/// Errors decoding peer input.
///
/// [`WireError::is_fatal`] tells whether the byte stream is still in sync
/// (the offending message was consumed) or the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Handshake does not start with `\x13BitTorrent protocol`.
    #[error("not a BitTorrent handshake")]
    BadProtocol,
    /// A message id we do not know (message consumed).
    #[error("unknown message id {id} ({len} bytes)")]
    UnknownMessage {
        /// Message id.
        id: u8,
        /// Length prefix (id included).
        len: u32,
    },
    /// A known message with a length its type does not allow.
    #[error("message id {id} has invalid length {len}")]
    BadLength {
        /// Message id.
        id: u8,
        /// Length prefix (id included).
        len: u32,
    },
    /// Length prefix above the configured limit.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Length prefix.
        len: u32,
        /// Limit in force.
        max: u32,
    },
    /// Bitfield of the wrong size for the torrent.
    #[error("bitfield is {got} bytes, torrent needs {expected}")]
    BitfieldLength {
        /// Bytes received.
        got: usize,
        /// Bytes the torrent needs.
        expected: usize,
    },
    /// Bitfield with spare (padding) bits set.
    #[error("bitfield has spare bits set")]
    BitfieldSpareBits,
    /// A piece index beyond the torrent (message consumed).
    #[error("piece index {index} out of range ({num_pieces} pieces)")]
    PieceIndex {
        /// Index received.
        index: u32,
        /// Pieces in the torrent.
        num_pieces: u32,
    },
    /// Malformed BEP 10 payload.
    #[error("invalid extension message: {0}")]
    Extension(#[from] extension::ExtensionError),
}

impl WireError {
    /// True when the stream can no longer be trusted and the connection must
    /// be closed. Non-fatal errors (unknown id, out-of-range index, bad
    /// extension payload) had their message consumed; the caller may carry on.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            WireError::UnknownMessage { .. }
                | WireError::PieceIndex { .. }
                | WireError::Extension(_)
        )
    }
}
