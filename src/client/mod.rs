//! The client: one process running many torrents over shared sockets (see `control` for the
//! commands and snapshots front ends use to talk to it).

pub mod control;
pub mod trackers;
