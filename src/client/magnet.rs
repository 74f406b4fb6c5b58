//! Magnet links in the client. A torrent added from a magnet link exists with its info hash
//! only; while it fetches its metadata it has a [`Fetch`]: QUIC and TCP lanes of its own around
//! a [`MetadataSession`], dialled from the same peer book. When the info dictionary arrives
//! (verified against the info hash) the fetch lanes close, the .torrent is written from it, and
//! the torrent is checked and runs like any other, dialling the same peers again.

use std::time::Instant;

use crate::engine::liveness::LivenessRules;
use crate::engine::quic::{QuicBtApp, StopWhen};
use crate::engine::tcp::{TcpHub, TcpLanes};
use crate::net::ScionNet;
use crate::torrent::close::CloseReason;
use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::metadata_session::MetadataSession;
use crate::torrent::session::PeerId;

/// Why a magnet torrent has no metadata and gave up (the single-shot command maps it to an
/// exit code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    /// No peer to ask for the metadata (single shot: after its connect timeout).
    #[error("no peer gave the metadata: {0}")]
    NoPeer(String),
    /// The metadata arrived but does not make a usable torrent.
    #[error("unusable metadata: {0}")]
    Unusable(String),
}

/// The metadata fetch of one magnet torrent.
pub struct Fetch {
    pub app: QuicBtApp<MetadataSession>,
    pub tcp: TcpLanes,
    /// Since when no peer has had a handshaken lane (None while one has).
    no_peer_since: Option<Instant>,
}

impl Fetch {
    pub fn new(
        info_hash: [u8; 20],
        peer_id: PeerId,
        client_name: String,
        hub: &TcpHub,
        liveness: LivenessRules,
        now: Instant,
    ) -> Self {
        let session = MetadataSession::new(info_hash, peer_id, client_name);
        let mut tcp = TcpLanes::new(hub, info_hash);
        tcp.liveness = liveness;
        Self {
            app: QuicBtApp::new(session, Vec::new(), StopWhen::Never, now),
            tcp,
            no_peer_since: Some(now),
        }
    }

    /// How long it has had no peer to ask (zero while it has one).
    pub fn peerless_for(&mut self, now: Instant) -> std::time::Duration {
        if self.app.session.peer_count() > 0 {
            self.no_peer_since = None;
            return std::time::Duration::ZERO;
        }
        now.saturating_duration_since(*self.no_peer_since.get_or_insert(now))
    }

    /// Why the peers tried so far gave no metadata, for an error message.
    pub fn problem(&self) -> String {
        let mut why = Vec::new();
        if let Some(p) = &self.app.session.last_problem {
            why.push(p.clone());
        }
        if let Some(e) = self.tcp.last_error() {
            why.push(format!("TCP: {e}"));
        }
        if why.is_empty() {
            "no peer answered".into()
        } else {
            why.join("; ")
        }
    }

    /// Closes every lane and dial of the fetch.
    pub fn close(&mut self, net: &mut ScionNet, reason: CloseReason, now: Instant) {
        self.app.close_all(net, reason.clone(), now);
        self.tcp.close_lanes(&mut self.app.session, reason, now);
    }

    /// Whether it has lanes or dials under way.
    pub fn is_busy(&self) -> bool {
        self.app.session.lane_count() > 0
            || !self.app.dialers.is_empty()
            || self.tcp.lane_count() > 0
            || self.tcp.is_dialing()
    }
}
