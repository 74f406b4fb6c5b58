//! Engines: a torrent session on a transport.

pub mod dialer;
pub mod liveness;
pub mod mse;
pub mod quic;
pub mod stream_chunks;
pub mod tcp;
pub mod verify;
pub mod web_seed;
