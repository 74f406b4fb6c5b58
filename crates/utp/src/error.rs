/// Why a datagram is not a uTP packet. Every variant is the sender's doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("uTP: packet of {0} bytes, shorter than the 20-byte header")]
    Short(usize),
    #[error("uTP: version {0}, only version 1 is spoken")]
    Version(u8),
    #[error("uTP: packet type {0} unknown")]
    Type(u8),
    #[error("uTP: extension header cut short")]
    TruncatedExtension,
    #[error("uTP: selective ACK of 0 bytes")]
    EmptySack,
}

/// Why a uTP connection ended or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UtpError {
    #[error("uTP: the peer reset the connection")]
    Reset,
    #[error("uTP: no acknowledgement after {0} retransmissions")]
    TimedOut(u32),
    #[error("uTP: nothing heard from the peer for {0} s")]
    Idle(u64),
    #[error("uTP: the connection was closed locally")]
    Aborted,
    #[error("uTP: {0} connections already, no room for another")]
    TooManyConnections(usize),
    #[error("uTP: no free connection id toward this peer")]
    NoConnectionId,
}
