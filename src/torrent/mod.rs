//! Torrent-level logic: metainfo today; picker and session live here too.

pub mod fair_share;
pub mod lenient;
pub mod meta;
pub mod picker;
pub mod rate;
pub mod session;
