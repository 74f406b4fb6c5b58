//! QUIC on top of quinn-proto, sans-IO. The drivers in [`crate::net`] feed it datagrams.

pub mod config;
pub mod endpoint;
pub mod remotes;

pub use config::QuicTuning;
pub use endpoint::{Outgoing, QuicEndpoint, QuicEvent};

#[cfg(test)]
mod pipe_tests;

/// Appends everything readable on stream `id` to `out` (test helper for in-memory transfers).
#[cfg(test)]
pub(crate) fn read_stream(
    conn: &mut quinn_proto::Connection,
    id: quinn_proto::StreamId,
    out: &mut Vec<u8>,
) {
    let mut rs = conn.recv_stream(id);
    let Ok(mut chunks) = rs.read(true) else {
        return;
    };
    while let Ok(Some(c)) = chunks.next(usize::MAX) {
        out.extend_from_slice(&c.bytes);
    }
    let _ = chunks.finalize();
}
