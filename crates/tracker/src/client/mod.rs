//! The tracker client: [`transport`] does one announce over HTTP (TCP or QUIC/SCION) or UDP, [`announcer`] keeps a
//! torrent announced to its tiers.

pub mod announcer;
pub mod tls;
pub mod transport;

pub use announcer::{
    spawn, tiers_from_metainfo, AnnouncerConfig, AnnouncerHandle, AnnouncerStatus, BoxFuture,
    PeersNotTaken, ScrapeCounts, TorrentLink, TrackerState, TrackerStatus, TransferStats,
};
pub use tls::{TlsError, TlsSetupError, TrackerTls};
pub use transport::{
    parse_tracker_url, AnnounceError, HttpIo, HttpReach, ScionConnector, ScionHttp, ScrapeError,
    TrackerUrl,
};
