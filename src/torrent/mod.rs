//! Torrent-level logic: metainfo today; picker and session live here too.

pub mod choker;
pub mod close;
pub mod fair_share;
pub mod lane_protocol;
pub mod meta;
pub mod metadata_session;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod session;
pub mod smart_ban;
pub mod web_seeds;
