//! Web seeds (BEP 19): HTTP servers that hold a torrent's files, used as one more source.
//!
//! Each seed is a peer with every piece on a lane of its own in the torrent's session
//! ([`seed`], sans-IO), so its data is picked, counted, verified and smart-banned exactly like
//! a peer's; its requests become HTTP range requests ([`fetch`], a task on the client's
//! runtime); [`lanes`] joins the two in the driver loop. Which URLs are usable and where a byte
//! range is on them: `torrent::web_seeds`. What an answer must look like: [`response`].

pub mod fetch;
pub mod lanes;
pub mod response;
pub mod seed;

pub use lanes::{WebSeedLanes, WebSeedStatus, WEB_LANE_BASE};
pub use seed::SeedState;
