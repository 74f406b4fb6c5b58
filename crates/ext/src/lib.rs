//! BitTorrent extensions over BEP 10, sans-IO: magnet URIs (BEP 9), ut_metadata (fetching
//! and serving the info dictionary, BEP 9) and ut_pex (BEP 11, plus SCION peers). No sockets,
//! no clocks: callers pass bytes and `Instant`s in and send what comes out. The extension
//! handshake itself is the main crate's `wire::extension`.
//!
//! The pure decoders for fuzzing: [`parse_magnet`], [`decode_metadata_message`],
//! [`decode_pex_message`]. None of them panics on any input.

mod bencode;
pub mod magnet;
pub mod metadata;
pub mod pex;

pub use bencode::NotADict;
pub use magnet::{parse_magnet, Magnet, MagnetError};
pub use metadata::{
    decode_metadata_message, torrent_file, torrent_file_with_web_seeds, MetadataAssembler,
    MetadataEvent, MetadataMessage, MetadataServer,
};
pub use pex::{decode_pex_message, PexFlags, PexMessage, PexState};
