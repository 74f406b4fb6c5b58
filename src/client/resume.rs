//! Fast-resume: what the client saves per torrent, the store it saves into, and the start-up
//! decision which saved pieces can be trusted without hashing.
//!
//! Safety rule: a piece is only ever saved as verified after the torrent's data files were
//! flushed to disk (the client syncs before it calls [`ResumeStore::save_resume`]), and it is only
//! trusted on start if every file it touches still has the size and mtime stamped at that save.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::control::{InfoHash, Limits, SeedPolicy, SettingsError};
use crate::torrent::meta::Metainfo;
use crate::wire::Bitfield;

/// Size and modification time of one file when its pieces were saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Relative to the torrent's output path, `/`-separated (empty for a single-file torrent).
    pub path: String,
    pub length: u64,
    /// Nanoseconds since the Unix epoch (negative before it).
    pub mtime_ns: i128,
}

/// A torrent's verified pieces and the stamps of its files at the time they were saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeData {
    /// Bitfield bytes (BEP 3 order: piece 0 is the high bit of byte 0); hex in JSON.
    #[serde(with = "hex_bytes")]
    pub have: Vec<u8>,
    pub num_pieces: u32,
    /// One stamp per file of the torrent, in torrent order (padding files included, with a
    /// zero stamp).
    pub files: Vec<FileStamp>,
}

/// Why saved resume data cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeDataError {
    #[error("bitfield has {have} bytes, {pieces} pieces need {want}")]
    BitfieldLength {
        have: usize,
        pieces: u32,
        want: usize,
    },
    #[error("bitfield has bits set past the last piece")]
    BitsPastLastPiece,
}

impl ResumeData {
    /// The bitfield has exactly the bytes `num_pieces` needs and no bits past the last piece.
    pub fn check(&self) -> Result<(), ResumeDataError> {
        let want = (self.num_pieces as usize).div_ceil(8);
        if self.have.len() != want {
            return Err(ResumeDataError::BitfieldLength {
                have: self.have.len(),
                pieces: self.num_pieces,
                want,
            });
        }
        let spare = want * 8 - self.num_pieces as usize;
        if spare > 0 && self.have[want - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(ResumeDataError::BitsPastLastPiece);
        }
        Ok(())
    }
}

mod hex_bytes {
    use data_encoding::HEXLOWER_PERMISSIVE;
    use serde::Deserialize;
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&HEXLOWER_PERMISSIVE.encode(b))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

/// What is remembered about a torrent besides its metainfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedTorrentSettings {
    pub out_dir: PathBuf,
    pub paused: bool,
    #[serde(default)]
    pub limits: Limits,
    /// Peer addresses given by the user (command line / API), redialled after a restart.
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default)]
    pub added_unix: u64,
    /// The magnet link it was added from (all there is until its metadata arrived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magnet: Option<String>,
    /// File priorities, sequential mode, first/last-piece priority.
    #[serde(default)]
    pub files: super::control::FileChoice,
    /// Its own path rules (sequence, ACL, path policy, preference), as given.
    #[serde(default)]
    pub path_rules: crate::lanes::PathRules,
    /// Its category and tags.
    #[serde(default)]
    pub labels: super::control::Labels,
    /// Its place in the queue (0 = first); renumbered without gaps on load.
    #[serde(default)]
    pub queue_position: u32,
    /// Force-started: runs regardless of the queue's limits.
    #[serde(default)]
    pub force_start: bool,
}

/// One entry of the torrent list handed to [`ResumeStore::save_torrents`].
#[derive(Debug, Clone, Copy)]
pub struct SavedTorrent<'a> {
    pub info_hash: InfoHash,
    /// Display name (empty while the metadata is unknown).
    pub name: &'a str,
    /// The .torrent file's bytes.
    pub torrent: &'a [u8],
    pub settings: &'a SavedTorrentSettings,
}

/// Where the client keeps its torrent list and fast-resume data. Implementations write
/// atomically (temp file, fsync, rename); the client calls them from its event loop.
pub trait ResumeStore: Send {
    /// Every saved torrent: its .torrent bytes (empty for a magnet link whose metadata had not
    /// arrived: `settings.magnet` has the link) and settings.
    fn load_all(&mut self) -> Vec<(Vec<u8>, SavedTorrentSettings)>;
    /// The last saved resume data of a torrent, if any.
    fn load_resume(&mut self, info_hash: &InfoHash) -> Option<ResumeData>;
    fn save_resume(&mut self, info_hash: &InfoHash, r: &ResumeData) -> std::io::Result<()>;
    /// Replaces the whole torrent list.
    fn save_torrents(&mut self, list: &[SavedTorrent<'_>]) -> std::io::Result<()>;
    /// Forgets a torrent (its entry and its resume data).
    fn remove(&mut self, info_hash: &InfoHash) -> std::io::Result<()>;
    /// The client-wide settings last saved, if any.
    fn load_client_settings(&mut self) -> Option<ClientSettings> {
        None
    }
    fn save_client_settings(&mut self, _settings: &ClientSettings) -> std::io::Result<()> {
        Ok(())
    }
}

/// Settings of the whole client that survive a restart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientSettings {
    /// Every category by name.
    #[serde(default)]
    pub categories: std::collections::BTreeMap<String, super::control::Category>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub seed_policy: SeedPolicy,
    /// None: never set (the default policy, or the daemon's --encryption).
    #[serde(default)]
    pub encryption: Option<bt_mse::Policy>,
    /// The queue's limits.
    #[serde(default)]
    pub queue: super::queue::QueueSettings,
}

impl ClientSettings {
    /// These settings with every part out of its range replaced by its default, and what was
    /// replaced: a bad value saved by an older version (or edited by hand) must not stop the
    /// daemon from starting.
    pub fn validated(mut self) -> (Self, Vec<SettingsError>) {
        let mut rejected = Vec::new();
        if let Err(e) = self.seed_policy.validate() {
            rejected.push(e);
            self.seed_policy = SeedPolicy::default();
        }
        if let Err(e) = self.queue.validate() {
            rejected.push(SettingsError::Queue(e.to_string()));
            self.queue = Default::default();
        }
        self.categories
            .retain(|name, _| match super::labels::check_category(name) {
                Ok(()) => true,
                Err(e) => {
                    rejected.push(SettingsError::Category(e.to_string()));
                    false
                }
            });
        (self, rejected)
    }
}

/// How a torrent's data is checked on start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    /// Pieces trusted from the resume data (no hashing).
    pub trusted: Bitfield,
    /// Pieces to hash (they touch a file that changed, or there was no usable resume data).
    pub recheck: Vec<u32>,
    /// Whether resume data was used at all.
    pub resumed: bool,
}

/// Decides which pieces to trust and which to hash. `on_disk` holds the current stamp of each
/// file of `meta` (None: missing); `may_hold(piece)` says whether the piece lies in data that
/// exists on disk (pieces that cannot hold data are never hashed).
pub fn plan_check(
    meta: &Metainfo,
    saved: Option<&ResumeData>,
    on_disk: &[Option<FileStamp>],
    may_hold: impl Fn(u32) -> bool,
) -> CheckPlan {
    let n = meta.num_pieces();
    let all = || (0..n).filter(|&p| may_hold(p)).collect::<Vec<u32>>();
    let usable = saved.filter(|r| {
        r.num_pieces == n && r.files.len() == meta.files.len() && on_disk.len() == meta.files.len()
    });
    let Some(r) = usable else {
        return CheckPlan {
            trusted: Bitfield::new(n),
            recheck: all(),
            resumed: false,
        };
    };
    let Ok(saved_have) = Bitfield::from_bytes(&r.have, n) else {
        return CheckPlan {
            trusted: Bitfield::new(n),
            recheck: all(),
            resumed: false,
        };
    };
    let unchanged: Vec<bool> = meta
        .files
        .iter()
        .zip(&r.files)
        .zip(on_disk)
        .map(|((f, stamp), now)| {
            f.pad || f.length == 0 || now.as_ref().is_some_and(|d| same_file(stamp, d))
        })
        .collect();
    let mut trusted = Bitfield::new(n);
    let mut recheck = Vec::new();
    for p in 0..n {
        let start = meta.piece_offset(p);
        let end = start + u64::from(meta.piece_len(p));
        let intact = meta
            .files
            .iter()
            .zip(&unchanged)
            .filter(|(f, _)| f.length > 0 && f.offset < end && f.offset + f.length > start)
            .all(|(_, ok)| *ok);
        if intact {
            if saved_have.get(p) {
                trusted.set(p);
            }
        } else if may_hold(p) {
            recheck.push(p);
        }
    }
    CheckPlan {
        trusted,
        recheck,
        resumed: true,
    }
}

fn same_file(saved: &FileStamp, now: &FileStamp) -> bool {
    saved.length == now.length && saved.mtime_ns == now.mtime_ns
}

/// The current stamp of every file of `meta` under `paths` (the storage's resolved paths, in
/// torrent order); `root` is the output path the stamps' relative paths are taken against.
pub fn stamp_files<'a>(
    meta: &Metainfo,
    root: &Path,
    paths: impl Iterator<Item = &'a Path>,
) -> Vec<Option<FileStamp>> {
    meta.files
        .iter()
        .zip(paths)
        .map(|(f, p)| {
            let rel = p
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            if f.pad {
                return Some(FileStamp {
                    path: rel,
                    length: 0,
                    mtime_ns: 0,
                });
            }
            let m = std::fs::metadata(p).ok()?;
            let mtime_ns = m
                .modified()
                .ok()
                .map(|t| match t.duration_since(UNIX_EPOCH) {
                    Ok(d) => d.as_nanos() as i128,
                    Err(e) => -(e.duration().as_nanos() as i128),
                })
                .unwrap_or(0);
            Some(FileStamp {
                path: rel,
                length: m.len(),
                mtime_ns,
            })
        })
        .collect()
}

/// Resume data for `have`, if every file could be stamped.
pub fn resume_data(have: &Bitfield, stamps: Vec<Option<FileStamp>>) -> Option<ResumeData> {
    Some(ResumeData {
        have: have.as_bytes().to_vec(),
        num_pieces: have.len(),
        files: stamps.into_iter().collect::<Option<Vec<_>>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::meta::create;

    #[test]
    fn saved_settings_out_of_range_fall_back_to_defaults() {
        let bad = ClientSettings {
            limits: Limits {
                download_bps: Some(1000),
                upload_bps: None,
            },
            seed_policy: SeedPolicy {
                stop_at_ratio: Some(-1.0),
                stop_after_secs: Some(u64::MAX),
            },
            encryption: Some(bt_mse::Policy::Required),
            // A name edited by hand into the file: dropped, the good one kept.
            categories: ["tv", "a//b"]
                .map(|n| (n.to_string(), Default::default()))
                .into(),
            queue: Default::default(),
        };
        let (ok, rejected) = bad.clone().validated();
        assert_eq!(ok.seed_policy, SeedPolicy::default());
        assert_eq!(ok.limits, bad.limits, "valid parts are kept");
        assert_eq!(ok.encryption, bad.encryption);
        assert_eq!(ok.categories.keys().collect::<Vec<_>>(), ["tv"]);
        assert_eq!(rejected.len(), 2, "{rejected:?}");
        assert_eq!(rejected[0], SettingsError::SeedRatio(-1.0));
        assert!(matches!(&rejected[1], SettingsError::Category(m) if m.contains("a//b")));
        let good = ClientSettings::default();
        assert_eq!(good.clone().validated(), (good, vec![]));
    }

    /// Two files of 40 and 24 KiB, 16 KiB pieces: piece 2 spans both files.
    fn two_files() -> Metainfo {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 40 << 10]).unwrap();
        std::fs::write(root.join("b"), vec![2u8; 24 << 10]).unwrap();
        let bytes = create(&root, Some(16 << 10), Vec::new(), false, None).unwrap();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.num_pieces(), 4);
        m
    }

    fn stamp(path: &str, length: u64, mtime_ns: i128) -> FileStamp {
        FileStamp {
            path: path.into(),
            length,
            mtime_ns,
        }
    }

    fn saved(have: &[u32]) -> ResumeData {
        let mut bf = Bitfield::new(4);
        for &p in have {
            bf.set(p);
        }
        ResumeData {
            have: bf.as_bytes().to_vec(),
            num_pieces: 4,
            files: vec![stamp("a", 40 << 10, 100), stamp("b", 24 << 10, 200)],
        }
    }

    fn ones(bf: &Bitfield) -> Vec<u32> {
        bf.iter_ones().collect()
    }

    #[test]
    fn unchanged_files_trust_saved_pieces_without_hashing() {
        let m = two_files();
        let disk = [
            Some(stamp("a", 40 << 10, 100)),
            Some(stamp("b", 24 << 10, 200)),
        ];
        let plan = plan_check(&m, Some(&saved(&[0, 2, 3])), &disk, |_| true);
        assert!(plan.resumed);
        assert_eq!(ones(&plan.trusted), vec![0, 2, 3]);
        assert!(plan.recheck.is_empty());
    }

    #[test]
    fn a_changed_file_rechecks_only_the_pieces_touching_it() {
        let m = two_files();
        // b's mtime moved: pieces 2 (spans a and b) and 3 are hashed again.
        let disk = [
            Some(stamp("a", 40 << 10, 100)),
            Some(stamp("b", 24 << 10, 999)),
        ];
        let plan = plan_check(&m, Some(&saved(&[0, 1, 2, 3])), &disk, |_| true);
        assert_eq!(ones(&plan.trusted), vec![0, 1]);
        assert_eq!(plan.recheck, vec![2, 3]);
        // A size change counts too, and a missing file can hold nothing.
        let disk = [Some(stamp("a", 39 << 10, 100)), None];
        let plan = plan_check(&m, Some(&saved(&[0, 1, 2, 3])), &disk, |p| p < 2);
        assert!(plan.trusted.is_clear());
        assert_eq!(plan.recheck, vec![0, 1]);
    }

    #[test]
    fn unusable_resume_data_falls_back_to_a_full_check() {
        let m = two_files();
        let disk = [
            Some(stamp("a", 40 << 10, 100)),
            Some(stamp("b", 24 << 10, 200)),
        ];
        let plan = plan_check(&m, None, &disk, |_| true);
        assert!(!plan.resumed);
        assert_eq!(plan.recheck, vec![0, 1, 2, 3]);
        let mut wrong = saved(&[0]);
        wrong.num_pieces = 5;
        let plan = plan_check(&m, Some(&wrong), &disk, |p| p != 1);
        assert!(!plan.resumed && plan.trusted.is_clear());
        assert_eq!(plan.recheck, vec![0, 2, 3]);
    }

    #[test]
    fn resume_data_needs_every_stamp() {
        let mut have = Bitfield::new(4);
        have.set(1);
        let r = resume_data(&have, vec![Some(stamp("a", 1, 1)), Some(stamp("b", 1, 1))]).unwrap();
        assert_eq!(r.num_pieces, 4);
        assert!(Bitfield::from_bytes(&r.have, 4).unwrap().get(1));
        assert!(resume_data(&have, vec![Some(stamp("a", 1, 1)), None]).is_none());
    }
}
