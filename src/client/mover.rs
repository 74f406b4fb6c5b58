//! Moving a torrent's data to another directory of the download root across filesystems,
//! off the event loop: its files are copied beside their new place under a temporary name,
//! the pieces it had are hashed from the copy, and only then is the copy renamed into place.
//! The torrent keeps running from the old place meanwhile; the loop switches it over when
//! [`MoveJob::poll`] says the copy is done (and deletes the old data then), or keeps it where
//! it was when the copy failed (and the half copy is deleted).
//!
//! A move within one filesystem needs none of this: the loop renames the data at once.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use crate::storage::{hash::sha1_piece, Allocation, DataPlace, MmapStorage, Storage};
use crate::torrent::meta::Metainfo;
use crate::wire::Bitfield;

/// Why a move failed; the torrent stays at its old place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveError {
    #[error("{0} already exists")]
    Exists(PathBuf),
    #[error("cannot copy {0}: {1}")]
    Copy(PathBuf, String),
    #[error("{0} is a link or special file; only plain files and directories are moved")]
    NotPlain(PathBuf),
    #[error("piece {0} does not verify in the copy")]
    Corrupt(u32),
    #[error("storage error in the copy: {0}")]
    Storage(String),
    #[error("the copy thread stopped")]
    Thread,
}

/// A copy under way; the loop polls it.
pub struct MoveJob {
    /// The new out_dir.
    pub to: PathBuf,
    /// The pieces verified when the copy began: what the copy holds.
    pub have: Bitfield,
    rx: mpsc::Receiver<Result<(), MoveError>>,
}

/// What a move's data paths are: the data (file or directory, the torrent's name) and the
/// parts file of its skipped files, at the old and the new place.
#[derive(Debug, Clone)]
pub struct MovePlan {
    pub meta: Arc<Metainfo>,
    pub from: PathBuf,
    pub to: PathBuf,
    /// Files of the torrent that are not on disk (skipped files kept in the parts file).
    pub skipped: Vec<bool>,
}

impl MovePlan {
    pub fn data_from(&self) -> PathBuf {
        self.from.join(&self.meta.name)
    }
    pub fn data_to(&self) -> PathBuf {
        self.to.join(&self.meta.name)
    }
    pub fn parts_from(&self) -> PathBuf {
        self.from.join(crate::storage::mmap::parts_name(&self.meta))
    }
    pub fn parts_to(&self) -> PathBuf {
        self.to.join(crate::storage::mmap::parts_name(&self.meta))
    }
    /// The copy's name until it is verified.
    fn temp_name(&self) -> String {
        format!(".{}.moving", self.meta.name)
    }
}

impl MoveJob {
    /// Starts copying `plan`'s data; the pieces in `have` are hashed from the copy.
    pub fn start(plan: MovePlan, have: Bitfield) -> Self {
        let (tx, rx) = mpsc::channel();
        let to = plan.to.clone();
        let kept = have.clone();
        let spawned = std::thread::Builder::new()
            .name("bts-move".into())
            .spawn(move || {
                let r = copy_verified(&plan, &have);
                if r.is_err() {
                    let tmp = plan.to.join(plan.temp_name());
                    let _ = std::fs::remove_dir_all(&tmp).or_else(|_| std::fs::remove_file(&tmp));
                    if plan.parts_from().exists() {
                        let _ = std::fs::remove_file(plan.parts_to());
                    }
                }
                let _ = tx.send(r);
            });
        if spawned.is_err() {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(Err(MoveError::Thread));
            return Self { to, have: kept, rx };
        }
        Self { to, have: kept, rx }
    }

    /// `None` while it copies; then how it ended.
    pub fn poll(&self) -> Option<Result<(), MoveError>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(MoveError::Thread)),
        }
    }
}

fn copy_verified(plan: &MovePlan, have: &Bitfield) -> Result<(), MoveError> {
    let (data_to, tmp) = (plan.data_to(), plan.to.join(plan.temp_name()));
    for p in [&data_to, &tmp] {
        if p.symlink_metadata().is_ok() {
            return Err(MoveError::Exists(p.clone()));
        }
    }
    std::fs::create_dir_all(&plan.to)
        .map_err(|e| MoveError::Copy(plan.to.clone(), e.to_string()))?;
    copy_tree(&plan.data_from(), &tmp)?;
    let parts = plan.parts_from();
    if parts.exists() {
        copy_file(&parts, &plan.parts_to())?;
    }
    // Hashed from the copy as it is on disk (written back first), not from the page cache
    // of what was written alone.
    let place = DataPlace::below(&plan.to, plan.temp_name())
        .map_err(|e| MoveError::Storage(e.to_string()))?;
    let storage =
        MmapStorage::create_in_skipping(&plan.meta, place, Allocation::Sparse, &plan.skipped)
            .map_err(|e| MoveError::Storage(e.to_string()))?;
    for p in have.iter_ones() {
        let ok = match (storage.piece_data(p), plan.meta.piece_hash(p)) {
            (Ok(d), Some(want)) => sha1_piece(&d) == *want,
            _ => false,
        };
        if !ok {
            return Err(MoveError::Corrupt(p));
        }
    }
    drop(storage);
    if data_to.symlink_metadata().is_ok() {
        return Err(MoveError::Exists(data_to));
    }
    std::fs::rename(&tmp, &data_to).map_err(|e| MoveError::Copy(tmp.clone(), e.to_string()))
}

/// Copies a file, or a directory with everything in it; links and special files are refused
/// (a torrent's data has none, and following one could copy from outside the root).
fn copy_tree(from: &Path, to: &Path) -> Result<(), MoveError> {
    let m = from
        .symlink_metadata()
        .map_err(|e| MoveError::Copy(from.to_path_buf(), e.to_string()))?;
    if m.is_file() {
        return copy_file(from, to);
    }
    if !m.is_dir() {
        return Err(MoveError::NotPlain(from.to_path_buf()));
    }
    let err = |p: &Path, e: std::io::Error| MoveError::Copy(p.to_path_buf(), e.to_string());
    std::fs::create_dir(to).map_err(|e| err(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| err(from, e))? {
        let entry = entry.map_err(|e| err(from, e))?;
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), MoveError> {
    let err = |e: std::io::Error| MoveError::Copy(from.to_path_buf(), e.to_string());
    std::fs::copy(from, to).map_err(err)?;
    std::fs::File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn torrent(dir: &Path) -> (Arc<Metainfo>, Vec<u8>) {
        let src = dir.join("a");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(src.join("sub/x.bin"), &data).unwrap();
        std::fs::write(src.join("y.bin"), &data[..5000]).unwrap();
        let bytes = crate::torrent::meta::create(&src, Some(16384), vec![], false, None).unwrap();
        (Arc::new(Metainfo::from_bytes(&bytes).unwrap()), data)
    }

    fn wait(job: &MoveJob) -> Result<(), MoveError> {
        loop {
            if let Some(r) = job.poll() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn copies_verifies_and_renames_into_place() {
        let d = tempfile::tempdir().unwrap();
        let (meta, data) = torrent(d.path());
        let have = Bitfield::full(meta.num_pieces());
        let plan = MovePlan {
            meta: meta.clone(),
            from: d.path().to_path_buf(),
            to: d.path().join("new/place"),
            skipped: vec![false; meta.files.len()],
        };
        wait(&MoveJob::start(plan.clone(), have)).unwrap();
        assert_eq!(
            std::fs::read(d.path().join("new/place/a/sub/x.bin")).unwrap(),
            data
        );
        assert!(!d.path().join("new/place/.a.moving").exists());
        // The old data is the loop's to delete, once it switched over.
        assert!(d.path().join("a/y.bin").exists());
    }

    #[test]
    fn a_piece_that_does_not_verify_fails_the_move_and_leaves_no_copy() {
        let d = tempfile::tempdir().unwrap();
        let (meta, _) = torrent(d.path());
        let have = Bitfield::full(meta.num_pieces());
        // The source no longer matches piece 0: its copy cannot verify.
        let x = d.path().join("a/sub/x.bin");
        let mut bytes = std::fs::read(&x).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&x, bytes).unwrap();
        let plan = MovePlan {
            meta: meta.clone(),
            from: d.path().to_path_buf(),
            to: d.path().join("new"),
            skipped: vec![false; meta.files.len()],
        };
        assert!(matches!(
            wait(&MoveJob::start(plan, have)),
            Err(MoveError::Corrupt(_))
        ));
        assert_eq!(std::fs::read_dir(d.path().join("new")).unwrap().count(), 0);
    }

    #[test]
    fn an_existing_target_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (meta, _) = torrent(d.path());
        std::fs::create_dir_all(d.path().join("new/a")).unwrap();
        let plan = MovePlan {
            meta: meta.clone(),
            from: d.path().to_path_buf(),
            to: d.path().join("new"),
            skipped: vec![false; meta.files.len()],
        };
        let have = Bitfield::new(meta.num_pieces());
        assert!(matches!(
            wait(&MoveJob::start(plan, have)),
            Err(MoveError::Exists(_))
        ));
        assert!(d.path().join("new/a").is_dir(), "what was there stays");
    }
}
