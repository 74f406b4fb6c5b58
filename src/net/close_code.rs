//! The QUIC application close codes a lane ends with, in one table: what the peer reads in the
//! close frame, and what we read in theirs (code 0 is an orderly end, never an error).

use quinn_proto::VarInt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneCloseCode {
    /// Done: the lane's work ended in order (paused, removed, complete, shutting down).
    Done,
    /// The peer broke the protocol, lied or failed us.
    Error,
    /// An SCMP error said the lane's path broke.
    PathDown,
    /// The handshake named no torrent we run here.
    UnknownTorrent,
    /// The peer opened a second stream on a lane (one lane, one stream).
    SecondStream,
}

impl LaneCloseCode {
    pub fn code(self) -> u32 {
        match self {
            Self::Done => 0,
            Self::Error => 1,
            Self::PathDown => 2,
            Self::UnknownTorrent => 3,
            Self::SecondStream => 4,
        }
    }

    pub fn var_int(self) -> VarInt {
        VarInt::from_u32(self.code())
    }

    /// The code a peer's close carried, if it is one of ours.
    pub fn from_var_int(v: VarInt) -> Option<Self> {
        [
            Self::Done,
            Self::Error,
            Self::PathDown,
            Self::UnknownTorrent,
            Self::SecondStream,
        ]
        .into_iter()
        .find(|c| c.var_int() == v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_read_back() {
        let codes = [0, 1, 2, 3, 4];
        for (c, want) in [
            LaneCloseCode::Done,
            LaneCloseCode::Error,
            LaneCloseCode::PathDown,
            LaneCloseCode::UnknownTorrent,
            LaneCloseCode::SecondStream,
        ]
        .into_iter()
        .zip(codes)
        {
            assert_eq!(
                c.code(),
                want,
                "{c:?}: peers and older versions read this number"
            );
            assert_eq!(LaneCloseCode::from_var_int(c.var_int()), Some(c));
        }
        assert_eq!(LaneCloseCode::from_var_int(VarInt::from_u32(9)), None);
    }
}
