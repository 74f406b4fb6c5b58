/// Why an MSE handshake failed. Every variant is the peer's fault (or a mismatch of what both
/// sides allow); none is a bug on our side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MseError {
    #[error("MSE: the peer's Diffie-Hellman key is degenerate (0, 1 or P-1, or not below P)")]
    BadPublicKey,
    #[error("MSE: no sync mark ({mark}) within {window} bytes")]
    NoSyncMark { mark: &'static str, window: usize },
    #[error("MSE: the peer asked for a torrent we do not run (stream identification failed)")]
    UnknownTorrent,
    #[error("MSE: the verification constant is not zero (wrong key)")]
    BadVerification,
    #[error("MSE: pad of {0} bytes, more than 512")]
    PadTooLong(u16),
    #[error("MSE: initial payload of {0} bytes, more than 65535")]
    PayloadTooLong(usize),
    #[error(
        "MSE: no encryption both sides allow (peer offers {provided:#x}, we allow {allowed:#x})"
    )]
    NoCommonCrypto { provided: u32, allowed: u32 },
    #[error("MSE: the peer selected {0:#x}, not one method we offered")]
    BadSelect(u32),
    #[error("MSE: the handshake already failed")]
    Failed,
}
