//! Trackers as a discovery source of the client: the `bt-tracker` crate's announcer, linked to
//! a torrent through the [`ClientHandle`] (peers in with `AddPeers`, counters from snapshots).
//!
//! The daemon starts one announcer per torrent with [`spawn_announcer`] (on any tokio runtime)
//! and keeps the handle: `status()` for the API, `stop().await` when the torrent is removed or
//! the client shuts down.

use std::sync::Arc;

use bt_tracker::client::{
    self, AnnouncerConfig, AnnouncerHandle, BoxFuture, PeersNotTaken, TorrentLink, TransferStats,
};

use super::control::{info_hash_hex, ClientHandle, Command, InfoHash, PeerSource};
use crate::scion::PeerAddr;

pub use bt_tracker::client::{tiers_from_metainfo, AnnouncerStatus, TrackerState, TrackerStatus};

/// One torrent of the client, as its announcer sees it.
pub struct ClientTorrentLink {
    handle: ClientHandle,
    info_hash: InfoHash,
    hex: String,
}

impl ClientTorrentLink {
    pub fn new(handle: ClientHandle, info_hash: InfoHash) -> Self {
        Self {
            handle,
            info_hash,
            hex: info_hash_hex(&info_hash),
        }
    }
}

impl TorrentLink for ClientTorrentLink {
    fn stats(&self) -> Option<TransferStats> {
        let snap = self.handle.snapshot();
        let t = snap.torrents.iter().find(|t| t.info_hash == self.hex)?;
        let verified: u64 = if t.files.is_empty() {
            (t.progress.clamp(0.0, 1.0) * t.size as f64) as u64
        } else {
            t.files.iter().map(|f| f.done).sum()
        };
        Some(TransferStats {
            uploaded: t.bytes_up,
            downloaded: t.bytes_down,
            left: t.size.saturating_sub(verified),
        })
    }

    fn add_peers(&self, peers: Vec<PeerAddr>) -> BoxFuture<'_, Result<usize, PeersNotTaken>> {
        Box::pin(async move {
            self.handle
                .call(|reply| Command::AddPeers {
                    info_hash: self.info_hash,
                    peers,
                    source: PeerSource::Tracker,
                    reply,
                })
                .await
                .map_err(|e| PeersNotTaken(Box::new(e)))
        })
    }
}

/// Starts announcing `info_hash` to `tiers` (see [`tiers_from_metainfo`]); `config` carries
/// our peer id, TCP listen port and SCION address.
pub fn spawn_announcer(
    handle: ClientHandle,
    info_hash: InfoHash,
    tiers: Vec<Vec<String>>,
    config: AnnouncerConfig,
) -> AnnouncerHandle {
    client::spawn(
        info_hash,
        tiers,
        config,
        Arc::new(ClientTorrentLink::new(handle, info_hash)),
    )
}
