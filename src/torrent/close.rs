//! Why a lane closed, as a value — as libtorrent's `disconnect(error_code, operation)`. The
//! session and the drivers name the reason where it happens; bans, exit codes and what a lane
//! shows as "closed" are read from the variant, never parsed back out of a message.

use std::time::Duration;

use crate::net::LaneCloseCode;

/// Why a lane (one QUIC connection on one path, or one TCP connection) closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    // The peer broke the protocol.
    #[error("bad handshake: {0}")]
    BadHandshake(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("peer offered another torrent (info hash {0})")]
    OtherTorrent(String),
    #[error("connected to ourselves")]
    OwnConnection,
    #[error("have for piece {0} out of range")]
    HaveOutOfRange(u32),
    #[error("invalid request piece {index} offset {begin} length {length}")]
    InvalidRequest { index: u32, begin: u32, length: u32 },
    #[error("peer sent {0} requests while choked")]
    RequestsWhileChoked(u32),
    #[error("peer floods requests and does not read the replies")]
    UnreadFlood,
    #[error("peer opened a second stream on a lane")]
    SecondStream,

    // Metadata (BEP 9) from a peer that cannot or will not give it.
    #[error("peer does not speak the extension protocol (BEP 10): no metadata")]
    NoExtensions,
    #[error("unreadable extension handshake: no metadata")]
    BadExtensionHandshake,
    #[error("peer does not offer the metadata (ut_metadata)")]
    NoMetadata,
    #[error("metadata offer refused: {0}")]
    MetadataOfferRefused(String),
    #[error("bad metadata: {0}")]
    BadMetadata(String),
    #[error("sent metadata that does not match the info hash")]
    WrongMetadata,

    // Smart ban.
    #[error("peer is banned (sent corrupt data)")]
    Banned,
    #[error("peer sent data that failed its hash: banned")]
    SentCorruptData,

    // Our side.
    #[error("storage error: {0}")]
    Storage(String),
    #[error("paused")]
    Paused,
    #[error("queued (waiting for a slot)")]
    Queued,
    #[error("torrent removed")]
    Removed,
    #[error("seeding goal reached")]
    SeedingGoalReached,
    #[error("re-checking its data")]
    Rechecking,
    #[error("its data moved")]
    Moved,
    #[error("shutting down")]
    ShuttingDown,
    #[error("metadata complete")]
    MetadataComplete,
    #[error("nothing more to fetch from this web seed")]
    NothingToFetch,
    #[error("path not allowed by the torrent's path rules")]
    PathNotAllowed,

    // The transport.
    #[error("remote closed the stream")]
    StreamFinished,
    #[error("{0}")]
    Quic(quinn_proto::ConnectionError),
    #[error("drained")]
    Drained,
    #[error("path down ({0})")]
    PathDown(String),
    #[error("{0}")]
    Tcp(String),
    #[error("peer silent for too long (nothing received in {0:?})")]
    Silent(Duration),
}

impl CloseReason {
    /// The peer is (now) banned: its address must not be dialled again.
    pub fn is_ban(&self) -> bool {
        matches!(self, Self::Banned | Self::SentCorruptData)
    }

    /// Writing to (or flushing) our own storage failed: a download cannot go on (exit code 5).
    pub fn is_storage(&self) -> bool {
        matches!(self, Self::Storage(_))
    }

    /// An orderly end (the peer closed with code 0, or the connection drained after a close),
    /// not an error worth reporting as why no lane works.
    pub fn is_orderly(&self) -> bool {
        match self {
            Self::Drained => true,
            Self::Quic(quinn_proto::ConnectionError::ApplicationClosed(c)) => {
                LaneCloseCode::from_var_int(c.error_code) == Some(LaneCloseCode::Done)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn_proto::{ConnectionError, VarInt};

    fn app_close(code: u32, reason: &'static [u8]) -> CloseReason {
        CloseReason::Quic(ConnectionError::ApplicationClosed(
            quinn_proto::ApplicationClose {
                error_code: VarInt::from_u32(code),
                reason: bytes::Bytes::from_static(reason),
            },
        ))
    }

    #[test]
    fn a_code_0_close_is_orderly_whatever_its_text() {
        assert!(app_close(0, b"").is_orderly());
        assert!(app_close(0, b"paused").is_orderly());
        assert!(!app_close(1, b"").is_orderly());
        assert!(
            !app_close(1, b"(code 0)").is_orderly(),
            "text is never read"
        );
        assert!(!CloseReason::Quic(ConnectionError::TimedOut).is_orderly());
        assert!(CloseReason::Drained.is_orderly());
    }

    #[test]
    fn bans_and_storage_are_told_by_the_variant() {
        assert!(CloseReason::SentCorruptData.is_ban() && CloseReason::Banned.is_ban());
        assert!(!CloseReason::Protocol("banned".into()).is_ban());
        assert!(CloseReason::Storage("x".into()).is_storage());
        assert!(!CloseReason::Tcp("storage error".into()).is_storage());
    }
}
