//! BitTorrent message stream encryption (MSE, also called protocol encryption, PE), sans-IO.
//!
//! The handshake of Vuze/libtorrent's specification: a 768-bit Diffie-Hellman exchange with
//! random pads, the initiator proves it knows the torrent (`HASH('req2', SKEY)`, SKEY being
//! the info hash) without naming it, both sides agree on plaintext or RC4 for the rest of the
//! stream. [`Initiator`] and [`Responder`] take the bytes read from the connection and give
//! the bytes to write; they touch no socket and no clock, so the caller bounds the time (a
//! handshake deadline) and the memory per connection is bounded here (pads of at most
//! [`MAX_PAD`] bytes, the sync marks searched for in [`REQ1_WINDOW`] and [`VC_WINDOW`] bytes).
//!
//! [`Policy`] is the user's choice (disabled / enabled / required) and what it means for
//! each side; [`classify_incoming`] tells a plain BitTorrent handshake from an MSE one on the
//! first bytes of an incoming connection.

mod crypt;
mod dh;
mod error;
mod handshake;
mod policy;

pub use crypt::Rc4Stream;
pub use error::MseError;
pub use handshake::{
    req2_hash, Crypto, CryptoSet, Established, Initiator, Progress, Responder, StreamKeys,
};
pub use policy::{classify_incoming, FirstBytes, Policy, PolicyParseError};

/// Longest pad (PadA, PadB, PadC, PadD) either side may send.
pub const MAX_PAD: usize = 512;
/// Bytes of a Diffie-Hellman public key on the wire.
pub const KEY_LEN: usize = 96;
/// How far after the initiator's key the responder looks for `HASH('req1', S)`: PadA and the
/// hash (the specification's 532 bytes).
pub const REQ1_WINDOW: usize = MAX_PAD + 20;
/// How far after the responder's key the initiator looks for the encrypted VC: PadB and VC.
pub const VC_WINDOW: usize = MAX_PAD + 8;
/// Longest initial payload (IA): its length is a 16-bit field.
pub const MAX_IA: usize = u16::MAX as usize;
