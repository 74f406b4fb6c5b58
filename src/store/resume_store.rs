//! The client's [`ResumeStore`] on top of the plain-file [`Store`]: the client speaks in saved
//! torrents and resume data, the store in per-torrent files.

use std::collections::HashSet;

use super::{Store, TorrentEntry};
use crate::client::control::InfoHash;
use crate::client::resume::{
    ClientSettings, ResumeData, ResumeStore, SavedTorrent, SavedTorrentSettings,
};

/// A [`Store`] as the client's resume store. Remembers which torrents' .torrent bytes are on
/// disk so the list can be saved often without rewriting them.
pub struct ClientStore {
    store: Store,
    metainfo_written: HashSet<InfoHash>,
}

impl ClientStore {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            metainfo_written: HashSet::new(),
        }
    }
}

impl ResumeStore for ClientStore {
    fn load_all(&mut self) -> Vec<(Vec<u8>, SavedTorrentSettings)> {
        let loaded = match self.store.load_all() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("cannot read the saved torrents: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for t in loaded.torrents {
            let bytes = match t.metainfo {
                Some(bytes) => {
                    self.metainfo_written.insert(t.entry.info_hash);
                    bytes
                }
                // A magnet link whose metadata had not arrived: added again from the link.
                None if t.entry.magnet.is_some() => Vec::new(),
                None => {
                    tracing::warn!(
                        name = %t.entry.name,
                        "saved torrent has neither metadata nor a magnet link; left on disk"
                    );
                    continue;
                }
            };
            let e = t.entry;
            out.push((
                bytes,
                SavedTorrentSettings {
                    out_dir: e.out_dir,
                    paused: e.paused,
                    limits: e.limits,
                    peers: e.peers,
                    added_unix: e.added_unix,
                    magnet: e.magnet,
                    files: e.files,
                    path_rules: e.path_rules,
                    labels: e.labels,
                    queue_position: e.queue_position,
                    force_start: e.force_start,
                },
            ));
        }
        out
    }

    fn load_resume(&mut self, info_hash: &InfoHash) -> Option<ResumeData> {
        match self.store.load_resume(info_hash) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("ignoring resume data: {e}; the torrent will be re-checked");
                None
            }
        }
    }

    fn save_resume(&mut self, info_hash: &InfoHash, r: &ResumeData) -> std::io::Result<()> {
        self.store
            .save_resume(info_hash, r)
            .map_err(std::io::Error::other)
    }

    fn save_torrents(&mut self, list: &[SavedTorrent<'_>]) -> std::io::Result<()> {
        for t in list {
            // Metainfo before settings: a settings file always has its .torrent beside it.
            if !t.torrent.is_empty() && !self.metainfo_written.contains(&t.info_hash) {
                self.store
                    .save_metainfo(&t.info_hash, t.torrent)
                    .map_err(std::io::Error::other)?;
                self.metainfo_written.insert(t.info_hash);
            }
        }
        let entries: Vec<TorrentEntry> = list.iter().map(entry_of).collect();
        self.store
            .save_torrents(&entries)
            .map_err(std::io::Error::other)?;
        self.metainfo_written
            .retain(|ih| list.iter().any(|t| t.info_hash == *ih));
        Ok(())
    }

    fn load_client_settings(&mut self) -> Option<ClientSettings> {
        self.store.load_client_settings().unwrap_or_else(|e| {
            tracing::warn!("ignoring the saved client settings: {e}");
            None
        })
    }

    fn save_client_settings(&mut self, settings: &ClientSettings) -> std::io::Result<()> {
        self.store
            .save_client_settings(settings)
            .map_err(std::io::Error::other)
    }

    fn remove(&mut self, info_hash: &InfoHash) -> std::io::Result<()> {
        self.metainfo_written.remove(info_hash);
        self.store.remove(info_hash).map_err(std::io::Error::other)
    }
}

fn entry_of(t: &SavedTorrent<'_>) -> TorrentEntry {
    let s = t.settings;
    TorrentEntry {
        info_hash: t.info_hash,
        name: t.name.to_string(),
        out_dir: s.out_dir.clone(),
        paused: s.paused,
        limits: s.limits,
        added_unix: s.added_unix,
        magnet: s.magnet.clone(),
        peers: s.peers.clone(),
        files: s.files.clone(),
        path_rules: s.path_rules.clone(),
        labels: s.labels.clone(),
        queue_position: s.queue_position,
        force_start: s.force_start,
    }
}
