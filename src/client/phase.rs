//! Where a torrent is in its life, as one value per phase (rqbit's `ManagedTorrentState`):
//! `Magnet → Checking → Live`, or `Magnet → Fetched` for a metadata-only run. Each phase holds
//! exactly what it needs — a live torrent always has its data, session and TCP lanes; a magnet
//! torrent never has storage — so a transition takes the old phase and builds the new one, and
//! an illegal combination cannot be written.
//!
//! Paused, seeding and failed are not phases of their own: they are read from the phase and
//! the torrent's settings by [`Phase::state`], so they can never disagree with it.

use std::path::PathBuf;
use std::sync::Arc;

use super::checker::Checker;
use super::control::TorrentState;
use super::magnet::{Fetch, FetchFailure};
use crate::engine::quic::{Failure, QuicBtApp};
use crate::engine::tcp::TcpLanes;
use crate::storage::MmapStorage;
use crate::torrent::meta::Metainfo;

/// What a torrent that knows its metainfo owns on disk.
pub struct TorrentData {
    pub meta: Arc<Metainfo>,
    /// The .torrent bytes (saved with the torrent list).
    pub torrent_bytes: Vec<u8>,
    /// Where the data lives: the file of a single-file torrent, the directory of a multi-file.
    pub data_path: PathBuf,
    pub storage: Arc<MmapStorage>,
}

/// A magnet link whose metadata is not known yet.
pub struct MagnetPhase {
    /// The link (name, trackers and peers before the metadata).
    pub magnet: bt_ext::Magnet,
    /// The metadata fetch; None while paused or after it failed.
    pub fetch: Option<Box<Fetch>>,
    /// How the fetch failed, if it did (a resume tries again).
    pub failure: Option<FetchFailure>,
}

/// The metadata arrived in a metadata-only run: the caller takes the .torrent and goes on.
pub struct FetchedPhase {
    pub meta: Arc<Metainfo>,
    pub torrent_bytes: Vec<u8>,
}

/// Its data is being hashed on the client's pool.
pub struct CheckingPhase {
    pub data: TorrentData,
    pub checker: Checker,
}

/// Checked: its session and lanes run (or stand still while paused).
pub struct LivePhase {
    pub data: TorrentData,
    pub app: QuicBtApp,
    pub tcp: TcpLanes,
    /// Its web seeds (BEP 19), each a lane of the session.
    pub web: crate::engine::web_seed::WebSeedLanes,
}

pub enum Phase {
    Magnet(MagnetPhase),
    Fetched(FetchedPhase),
    Checking(CheckingPhase),
    Live(Box<LivePhase>),
}

impl LivePhase {
    /// The storage failure that stopped it, if one did.
    pub fn storage_failure(&self) -> Option<&str> {
        match &self.app.failure {
            Some(Failure::Storage(m)) => Some(m),
            _ => None,
        }
    }
}

impl Phase {
    /// The state the API shows, from the phase and whether the user paused it.
    pub fn state(&self, paused: bool) -> TorrentState {
        match self {
            Phase::Magnet(m) if m.failure.is_some() => TorrentState::Error,
            Phase::Magnet(m) if m.fetch.is_none() => TorrentState::Paused,
            Phase::Magnet(_) => TorrentState::FetchingMetadata,
            Phase::Fetched(_) => TorrentState::Paused,
            Phase::Checking(_) => TorrentState::Checking,
            Phase::Live(l) if l.storage_failure().is_some() => TorrentState::Error,
            Phase::Live(_) if paused => TorrentState::Paused,
            Phase::Live(l) if l.app.session.is_complete() => TorrentState::Seeding,
            Phase::Live(_) => TorrentState::Downloading,
        }
    }

    /// What went wrong, if the phase failed.
    pub fn failure(&self) -> Option<String> {
        match self {
            Phase::Magnet(m) => m.failure.as_ref().map(|f| f.to_string()),
            Phase::Live(l) => l.storage_failure().map(str::to_owned),
            Phase::Fetched(_) | Phase::Checking(_) => None,
        }
    }

    pub fn meta(&self) -> Option<&Arc<Metainfo>> {
        match self {
            Phase::Magnet(_) => None,
            Phase::Fetched(f) => Some(&f.meta),
            Phase::Checking(c) => Some(&c.data.meta),
            Phase::Live(l) => Some(&l.data.meta),
        }
    }

    /// Its data on disk, once it has storage.
    pub fn data(&self) -> Option<&TorrentData> {
        match self {
            Phase::Checking(c) => Some(&c.data),
            Phase::Live(l) => Some(&l.data),
            Phase::Magnet(_) | Phase::Fetched(_) => None,
        }
    }

    /// The .torrent bytes (empty while only a magnet link is known).
    pub fn torrent_bytes(&self) -> &[u8] {
        match self {
            Phase::Magnet(_) => &[],
            Phase::Fetched(f) => &f.torrent_bytes,
            Phase::Checking(c) => &c.data.torrent_bytes,
            Phase::Live(l) => &l.data.torrent_bytes,
        }
    }

    pub fn live(&self) -> Option<&LivePhase> {
        match self {
            Phase::Live(l) => Some(l),
            _ => None,
        }
    }

    pub fn live_mut(&mut self) -> Option<&mut LivePhase> {
        match self {
            Phase::Live(l) => Some(l),
            _ => None,
        }
    }

    /// The running metadata fetch of a magnet torrent.
    pub fn fetch(&self) -> Option<&Fetch> {
        match self {
            Phase::Magnet(m) => m.fetch.as_deref(),
            _ => None,
        }
    }

    pub fn fetch_mut(&mut self) -> Option<&mut Fetch> {
        match self {
            Phase::Magnet(m) => m.fetch.as_deref_mut(),
            _ => None,
        }
    }

    pub fn checker_mut(&mut self) -> Option<&mut CheckingPhase> {
        match self {
            Phase::Checking(c) => Some(c),
            _ => None,
        }
    }
}
