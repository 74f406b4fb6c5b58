//! The daemon's state on disk: the torrents with their settings, each torrent's .torrent bytes,
//! and fast-resume data, so a restart neither forgets torrents nor re-hashes unchanged data.
//!
//! Layout (plain files, serde_json, one directory per torrent so damage stays local):
//!
//! ```text
//! <data-dir>/torrents/<info-hash>/settings.json     TorrentEntry
//! <data-dir>/torrents/<info-hash>/metainfo.torrent  the .torrent bytes (absent while a magnet
//!                                                   link's metadata is being fetched)
//! <data-dir>/torrents/<info-hash>/resume.json       ResumeData
//! <data-dir>/client.json                            ClientSettings (global limits, seeding)
//! ```
//!
//! Every file is replaced atomically ([`atomic::write_atomic`]): a crash leaves the old or the
//! new version, never a mix. A file that is damaged anyway (edited by hand, disk trouble) gives a
//! [`StoreError`] naming it; [`Store::load_all`] skips such files with a warning instead of
//! failing the whole daemon: a torrent without usable resume data is simply re-checked.

pub mod atomic;
mod resume_store;
pub use resume_store::ClientStore;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::client::control::{info_hash_hex, parse_info_hash, InfoHash, Limits};
pub use crate::client::resume::{ClientSettings, FileStamp, ResumeData};
use atomic::{sync_dir, write_atomic, TEMP_PREFIX};

const TORRENTS_DIR: &str = "torrents";
const SETTINGS: &str = "settings.json";
const METAINFO: &str = "metainfo.torrent";
const RESUME: &str = "resume.json";
const LOCK: &str = "lock";
const CLIENT_SETTINGS: &str = "client.json";
/// Version of the JSON files' shape; a newer one is refused rather than misread.
const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{} is in use by another daemon (its lock {} is held)", dir.display(), lock.display())]
    InUse { dir: PathBuf, lock: PathBuf },
}

impl StoreError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    fn corrupt(path: &Path, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// A torrent the daemon runs, with the settings it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TorrentEntry {
    #[serde(with = "hex_info_hash")]
    pub info_hash: InfoHash,
    /// Display name (from the metainfo, or the magnet link's `dn`).
    #[serde(default)]
    pub name: String,
    /// Where the data goes; already confined to the download root when it was added.
    pub out_dir: PathBuf,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub added_unix: u64,
    /// The magnet link it was added from, if any (needed until the metadata is known).
    #[serde(default)]
    pub magnet: Option<String>,
    /// Peers given by the user (command line, API), dialled again after a restart.
    #[serde(default)]
    pub peers: Vec<String>,
    /// File priorities, sequential mode, first/last-piece priority.
    #[serde(default)]
    pub files: crate::client::control::FileChoice,
    /// Its own path rules, as given (checked again when loaded).
    #[serde(default)]
    pub path_rules: crate::lanes::PathRules,
    /// Its category and tags.
    #[serde(default)]
    pub labels: crate::client::control::Labels,
    /// Its place in the queue (0 = first).
    #[serde(default)]
    pub queue_position: u32,
    /// Force-started: runs regardless of the queue's limits.
    #[serde(default)]
    pub force_start: bool,
}

/// One torrent as found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTorrent {
    pub entry: TorrentEntry,
    /// The .torrent bytes; `None` for a magnet link whose metadata is not known yet.
    pub metainfo: Option<Vec<u8>>,
    /// `None` when never saved or unusable (then the torrent is checked from scratch).
    pub resume: Option<ResumeData>,
}

/// What [`Store::load_all`] found: the usable torrents, and what it skipped (already logged).
#[derive(Debug, Default)]
pub struct Loaded {
    pub torrents: Vec<StoredTorrent>,
    pub skipped: Vec<StoreError>,
}

#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    format: u32,
    data: T,
}

/// The state directory. `Send + Sync`; writes block (fsync), so an event loop calls them off
/// its hot path.
#[derive(Debug)]
pub struct Store {
    torrents: PathBuf,
    /// Last settings bytes written per torrent: `save_torrents` rewrites only what changed.
    written: Mutex<HashMap<InfoHash, Vec<u8>>>,
    /// Held open: the data dir's lock (see `lock_data_dir`).
    _lock: fs::File,
}

impl Store {
    /// Opens (creating if needed) the state under `data_dir`, and deletes temp files a crash
    /// left behind.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let torrents = data_dir.join(TORRENTS_DIR);
        fs::create_dir_all(&torrents).map_err(|e| StoreError::io(&torrents, e))?;
        let lock = lock_data_dir(data_dir)?;
        let store = Self {
            torrents,
            written: Mutex::new(HashMap::new()),
            _lock: lock,
        };
        for dir in store.torrent_dirs()? {
            remove_temp_files(&dir);
        }
        Ok(store)
    }

    /// `<data-dir>/torrents`.
    pub fn torrents_dir(&self) -> &Path {
        &self.torrents
    }

    /// Every torrent on disk, oldest first. Damaged files are skipped with a warning: a torrent
    /// whose settings or metainfo are unusable is left out (its files stay for inspection); a
    /// damaged resume file only costs a re-check.
    pub fn load_all(&self) -> Result<Loaded, StoreError> {
        let mut loaded = Loaded::default();
        for dir in self.torrent_dirs()? {
            match self.load_one(&dir) {
                Ok((t, resume_problem)) => {
                    if let Some(p) = resume_problem {
                        tracing::warn!("ignoring resume data: {p}; the torrent will be re-checked");
                        loaded.skipped.push(p);
                    }
                    loaded.torrents.push(t);
                }
                Err(e) => {
                    tracing::warn!("skipping a stored torrent: {e}");
                    loaded.skipped.push(e);
                }
            }
        }
        loaded
            .torrents
            .sort_by_key(|t| (t.entry.added_unix, t.entry.info_hash));
        Ok(loaded)
    }

    fn load_one(&self, dir: &Path) -> Result<(StoredTorrent, Option<StoreError>), StoreError> {
        let settings = dir.join(SETTINGS);
        let bytes = fs::read(&settings).map_err(|e| StoreError::io(&settings, e))?;
        let entry: TorrentEntry = decode(&settings, &bytes)?;
        // Rules that no longer parse would run the torrent on paths the user excluded.
        if let Err(e) = entry.path_rules.compile() {
            return Err(StoreError::corrupt(&settings, e.to_string()));
        }
        let dir_name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if dir_name.as_deref() != Some(info_hash_hex(&entry.info_hash).as_str()) {
            return Err(StoreError::corrupt(
                &settings,
                "info hash does not match its directory",
            ));
        }
        let meta_path = dir.join(METAINFO);
        let metainfo = match fs::read(&meta_path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::io(&meta_path, e)),
        };
        if metainfo.is_none() && entry.magnet.is_none() {
            return Err(StoreError::corrupt(
                &meta_path,
                "missing, and the torrent has no magnet link to fetch it again",
            ));
        }
        let (resume, problem) = match self.load_resume(&entry.info_hash) {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e)),
        };
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.info_hash, bytes);
        Ok((
            StoredTorrent {
                entry,
                metainfo,
                resume,
            },
            problem,
        ))
    }

    /// Makes the stored list exactly `list`: writes the settings that changed since the last
    /// save and removes torrents no longer listed.
    pub fn save_torrents(&self, list: &[TorrentEntry]) -> Result<(), StoreError> {
        for entry in list {
            self.save_torrent(entry)?;
        }
        let keep: Vec<String> = list.iter().map(|e| info_hash_hex(&e.info_hash)).collect();
        for dir in self.torrent_dirs()? {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            if let Some(ih) = name.filter(|n| !keep.contains(n)) {
                if let Ok(ih) = parse_info_hash(&ih) {
                    self.remove(&ih)?;
                }
            }
        }
        Ok(())
    }

    /// Writes one torrent's settings (if they changed since the last write).
    pub fn save_torrent(&self, entry: &TorrentEntry) -> Result<(), StoreError> {
        let bytes = encode(entry);
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if written.get(&entry.info_hash) == Some(&bytes) {
            return Ok(());
        }
        let dir = self.ensure_dir(&entry.info_hash)?;
        let path = dir.join(SETTINGS);
        write_atomic(&path, &bytes).map_err(|e| StoreError::io(&path, e))?;
        written.insert(entry.info_hash, bytes);
        Ok(())
    }

    /// Keeps a torrent's .torrent bytes (on add, or once a magnet link's metadata arrived).
    pub fn save_metainfo(&self, info_hash: &InfoHash, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.ensure_dir(info_hash)?.join(METAINFO);
        write_atomic(&path, bytes).map_err(|e| StoreError::io(&path, e))
    }

    pub fn save_resume(&self, info_hash: &InfoHash, data: &ResumeData) -> Result<(), StoreError> {
        let path = self.ensure_dir(info_hash)?.join(RESUME);
        write_atomic(&path, &encode(data)).map_err(|e| StoreError::io(&path, e))
    }

    /// `Ok(None)` when none was saved; an error names a damaged file.
    pub fn load_resume(&self, info_hash: &InfoHash) -> Result<Option<ResumeData>, StoreError> {
        let path = self.dir_of(info_hash).join(RESUME);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let data: ResumeData = decode(&path, &bytes)?;
        data.check()
            .map_err(|r| StoreError::corrupt(&path, r.to_string()))?;
        Ok(Some(data))
    }

    /// The client-wide settings (`<data-dir>/client.json`), `Ok(None)` when never saved.
    pub fn load_client_settings(&self) -> Result<Option<ClientSettings>, StoreError> {
        let path = self.client_settings_path();
        match fs::read(&path) {
            Ok(bytes) => decode(&path, &bytes).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    pub fn save_client_settings(&self, settings: &ClientSettings) -> Result<(), StoreError> {
        let path = self.client_settings_path();
        write_atomic(&path, &encode(settings)).map_err(|e| StoreError::io(&path, e))
    }

    fn client_settings_path(&self) -> PathBuf {
        self.torrents
            .parent()
            .unwrap_or(&self.torrents)
            .join(CLIENT_SETTINGS)
    }

    /// Forgets a torrent (its downloaded data is not touched). Removing an unknown one is fine.
    pub fn remove(&self, info_hash: &InfoHash) -> Result<(), StoreError> {
        let dir = self.dir_of(info_hash);
        // Settings first: once they are gone the directory is no torrent, even if a crash
        // interrupts the rest.
        for name in [SETTINGS, RESUME, METAINFO] {
            let p = dir.join(name);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&p, e)),
            }
        }
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(info_hash);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        }
        sync_dir(&self.torrents).map_err(|e| StoreError::io(&self.torrents, e))
    }

    fn dir_of(&self, info_hash: &InfoHash) -> PathBuf {
        self.torrents.join(info_hash_hex(info_hash))
    }

    fn ensure_dir(&self, info_hash: &InfoHash) -> Result<PathBuf, StoreError> {
        let dir = self.dir_of(info_hash);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
            sync_dir(&self.torrents).map_err(|e| StoreError::io(&self.torrents, e))?;
        }
        Ok(dir)
    }

    /// Directories named like an info hash (anything else is left alone).
    fn torrent_dirs(&self) -> Result<Vec<PathBuf>, StoreError> {
        let rd = fs::read_dir(&self.torrents).map_err(|e| StoreError::io(&self.torrents, e))?;
        let mut dirs = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| StoreError::io(&self.torrents, e))?;
            let name = entry.file_name();
            let is_hash = name.to_str().is_some_and(|n| parse_info_hash(n).is_ok());
            if is_hash && entry.path().is_dir() {
                dirs.push(entry.path());
            }
        }
        dirs.sort();
        Ok(dirs)
    }
}

/// Takes `<data-dir>/lock` for as long as the store lives: two daemons writing one torrent
/// list and one set of resume files would each overwrite what the other saved. The lock is
/// released by the kernel when the process ends, however it ends.
fn lock_data_dir(data_dir: &Path) -> Result<fs::File, StoreError> {
    use std::os::fd::AsRawFd;
    let path = data_dir.join(LOCK);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            StoreError::InUse {
                dir: data_dir.to_path_buf(),
                lock: path,
            }
        } else {
            StoreError::io(&path, e)
        });
    }
    Ok(file)
}

fn remove_temp_files(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(&Versioned {
        format: FORMAT,
        data: body,
    })
    .expect("plain data structs serialise");
    v.push(b'\n');
    v
}

fn decode<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, StoreError> {
    let v: Versioned<T> =
        serde_json::from_slice(bytes).map_err(|e| StoreError::corrupt(path, e.to_string()))?;
    if v.format != FORMAT {
        return Err(StoreError::corrupt(
            path,
            format!(
                "format {} (this build reads format {FORMAT}); written by another version?",
                v.format
            ),
        ));
    }
    Ok(v.data)
}

mod hex_info_hash {
    use super::*;
    pub fn serialize<S: serde::Serializer>(h: &InfoHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&info_hash_hex(h))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<InfoHash, D::Error> {
        let s = String::deserialize(d)?;
        parse_info_hash(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
