//! [`DataPlace`]: where a torrent's data lives, and the only way storage reaches the
//! filesystem for it.
//!
//! The names inside a torrent come from strangers, and so may the symbolic links in a download
//! root that several users share. Every path of a torrent is therefore resolved *inside* one
//! directory opened once (cap-std: `openat2` with `RESOLVE_BENEATH` where the kernel has it,
//! component by component where not), for creating, opening and deleting alike — a link that
//! leads out of that directory is refused, never followed, whatever happens to the tree between
//! a check and a use. Links that stay inside it are followed.
//!
//! The directory is the daemon's per-torrent `out_dir` (already confined to the download root
//! by the API), or for a single-shot run the output path the user named on the command line,
//! which is the user's own choice and is followed as given.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, OpenOptions};

use crate::torrent::meta::{FileEntry, Metainfo};

use super::StorageError;

/// A directory and the data path below it (empty: the directory itself holds the torrent's
/// files). Cloning shares the open directory.
#[derive(Debug, Clone)]
pub struct DataPlace {
    dir: Arc<Dir>,
    /// The directory as a path: for messages, statvfs and the files' display paths only.
    dir_path: PathBuf,
    data: PathBuf,
}

impl DataPlace {
    /// `data` (one relative path of normal components, e.g. a torrent's name) below the
    /// directory `dir`, which is created if missing.
    pub fn below(dir: &Path, data: impl Into<PathBuf>) -> Result<Self, StorageError> {
        Self::below_with(dir, data.into(), Create::Yes)
    }

    fn below_with(dir: &Path, data: PathBuf, create: Create) -> Result<Self, StorageError> {
        if !is_plain_relative(&data) && !data.as_os_str().is_empty() {
            return Err(StorageError::UnsafePath(data));
        }
        if create == Create::Yes {
            std::fs::create_dir_all(dir).map_err(|e| StorageError::from_io(dir, 0, e))?;
        }
        let opened = Dir::open_ambient_dir(dir, cap_std::ambient_authority())
            .map_err(|e| StorageError::from_io(dir, 0, e))?;
        Ok(Self {
            dir: Arc::new(opened),
            dir_path: dir.to_path_buf(),
            data,
        })
    }

    /// The output path of a single-shot run, as the original client takes it: for a
    /// single-file torrent the file itself, for a multi-file one the directory that receives
    /// its files. The user named it, so links in it are followed; the torrent's own paths
    /// below it are confined.
    pub fn named(path: &Path, multi_file: bool) -> Result<Self, StorageError> {
        Self::named_with(path, multi_file, Create::Yes)
    }

    /// [`DataPlace::named`] for data that must already be there (seeding): nothing is created,
    /// a missing directory is an error.
    pub fn named_existing(path: &Path, multi_file: bool) -> Result<Self, StorageError> {
        Self::named_with(path, multi_file, Create::No)
    }

    fn named_with(path: &Path, multi_file: bool, create: Create) -> Result<Self, StorageError> {
        // A link the user named (a seed file kept elsewhere) is theirs to follow.
        let is_link = path
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        let path = match is_link {
            true => path
                .canonicalize()
                .map_err(|e| StorageError::from_io(path, 0, e))?,
            false => path.to_path_buf(),
        };
        if multi_file {
            return Self::below_with(&path, PathBuf::new(), create);
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(StorageError::UnsafePath(path));
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        Self::below_with(parent, name.into(), create)
    }

    /// The path of a torrent file relative to the directory.
    pub fn relative(&self, meta: &Metainfo, f: &FileEntry) -> Result<PathBuf, StorageError> {
        if !meta.is_multi_file() {
            return Ok(self.data.clone());
        }
        if !is_plain_relative(&f.path) {
            return Err(StorageError::UnsafePath(f.path.clone()));
        }
        Ok(self.data.join(&f.path))
    }

    /// Where a relative path is, for messages and fast-resume stamps.
    pub fn display(&self, rel: &Path) -> PathBuf {
        self.dir_path.join(rel)
    }

    /// The torrent's data path (its file, or its directory) as a path.
    pub fn data_path(&self) -> PathBuf {
        self.display(&self.data)
    }

    /// The size of the file at `rel`, `None` if there is none.
    pub fn len(&self, rel: &Path) -> Result<Option<u64>, StorageError> {
        self.check_links(rel)?;
        match self.dir.metadata(rel) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(rel, e)),
        }
    }

    /// Opens (creating it and its directories if missing) the file at `rel` for reading and
    /// writing; existing data is kept.
    pub fn open_rw(&self, rel: &Path) -> Result<File, StorageError> {
        self.check_links(rel)?;
        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dir
                .create_dir_all(parent)
                .map_err(|e| self.err(parent, e))?;
        }
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        self.dir
            .open_with(rel, &o)
            .map(|f| f.into_std())
            .map_err(|e| self.err(rel, e))
    }

    /// Opens the file at `rel` read-only.
    pub fn open_ro(&self, rel: &Path) -> Result<File, StorageError> {
        self.check_links(rel)?;
        self.dir
            .open(rel)
            .map(|f| f.into_std())
            .map_err(|e| self.err(rel, e))
    }

    /// Free bytes for unprivileged users on the directory's filesystem.
    pub fn available_bytes(&self) -> Option<u64> {
        // SAFETY: fstatvfs writes into the zeroed struct we pass; the fd is the open directory.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatvfs(self.dir.as_raw_fd(), &mut st) };
        (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    /// Deletes the regular files at `rels` and then the directories they leave empty, up to
    /// and including the data directory (never the directory itself). Links are never
    /// followed and never deleted: they are the user's. Failures are logged, not returned: a
    /// removed torrent is gone either way.
    pub fn delete(&self, rels: &[PathBuf]) {
        for rel in rels {
            let is_file = self
                .check_links(rel)
                .ok()
                .and_then(|()| self.dir.symlink_metadata(rel).ok())
                .is_some_and(|m| m.is_file());
            if !is_file {
                tracing::warn!(
                    "not deleting {}: not a regular file inside {}",
                    self.display(rel).display(),
                    self.dir_path.display()
                );
                continue;
            }
            if let Err(e) = self.dir.remove_file(rel) {
                tracing::warn!("cannot delete {}: {e}", self.display(rel).display());
            }
            let mut parent = rel.parent();
            while let Some(d) = parent.filter(|d| d.starts_with(&self.data) && is_plain_relative(d))
            {
                if self.dir.remove_dir(d).is_err() {
                    break;
                }
                parent = d.parent();
            }
        }
    }

    /// Refuses a path one of whose components is a link that leads out of the directory, with
    /// an error that says so (cap-std would refuse it too, with a less helpful message).
    fn check_links(&self, rel: &Path) -> Result<(), StorageError> {
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            prefix.push(c);
            let Ok(m) = self.dir.symlink_metadata(&prefix) else {
                return Ok(()); // nothing below a missing component can be a link yet
            };
            if m.file_type().is_symlink() && !self.stays_inside(&prefix) {
                return Err(StorageError::LinkOutside(self.display(&prefix)));
            }
        }
        Ok(())
    }

    /// Whether the link at `rel` resolves to something inside the directory (a dangling link
    /// whose target would be inside counts as inside: creating through it stays inside).
    fn stays_inside(&self, rel: &Path) -> bool {
        match self.dir.canonicalize(rel) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.dir.read_link(rel).is_ok_and(|t| {
                    t.is_relative() && self.dir.canonicalize(resolve_parent(rel, &t)).is_ok()
                })
            }
            Err(_) => false,
        }
    }

    fn err(&self, rel: &Path, e: io::Error) -> StorageError {
        StorageError::from_io(self.display(rel), 0, e)
    }
}

/// Whether opening a place may create its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
}

/// The directory a relative link target at `link` points into.
fn resolve_parent(link: &Path, target: &Path) -> PathBuf {
    let base = link.parent().unwrap_or(Path::new(""));
    let joined = base.join(target);
    joined.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// One or more normal components: no root, no `..`, no `.`.
fn is_plain_relative(p: &Path) -> bool {
    p.components().count() > 0 && p.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), b"precious").unwrap();
        (t, root, outside)
    }

    #[test]
    fn links_out_of_the_directory_are_refused_for_every_operation() {
        let (_t, root, outside) = setup();
        symlink(&outside, root.join("dir")).unwrap();
        symlink(outside.join("victim"), root.join("file")).unwrap();
        symlink("../outside/victim", root.join("relative")).unwrap();
        let place = DataPlace::below(&root, "x").unwrap();
        for rel in ["dir/new", "dir/victim", "file", "relative"] {
            let rel = Path::new(rel);
            assert!(
                matches!(place.open_rw(rel), Err(StorageError::LinkOutside(_))),
                "{rel:?}"
            );
            assert!(matches!(
                place.open_ro(rel),
                Err(StorageError::LinkOutside(_))
            ));
            assert!(matches!(place.len(rel), Err(StorageError::LinkOutside(_))));
            place.delete(&[rel.to_path_buf()]);
        }
        assert!(!outside.join("new").exists());
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
        assert!(
            root.join("file").symlink_metadata().is_ok(),
            "links are kept"
        );
    }

    #[test]
    fn links_that_stay_inside_are_followed() {
        let (_t, root, _outside) = setup();
        std::fs::create_dir_all(root.join("real")).unwrap();
        symlink("real", root.join("alias")).unwrap();
        let place = DataPlace::below(&root, "alias").unwrap();
        let f = place.open_rw(Path::new("alias/a/b")).unwrap();
        f.set_len(3).unwrap();
        assert_eq!(place.len(Path::new("alias/a/b")).unwrap(), Some(3));
        assert!(root.join("real/a/b").is_file());
    }

    #[test]
    fn delete_removes_files_and_the_directories_they_leave_empty() {
        let (_t, root, _outside) = setup();
        let place = DataPlace::below(&root, "t").unwrap();
        let rels = [PathBuf::from("t/a/1"), PathBuf::from("t/b")];
        for r in &rels {
            place.open_rw(r).unwrap();
        }
        std::fs::write(root.join("keep"), b"k").unwrap();
        place.delete(&rels);
        assert!(!root.join("t").exists());
        assert!(root.join("keep").exists() && root.exists());
    }

    #[test]
    fn seeding_data_that_is_not_there_creates_nothing() {
        let (t, _root, _outside) = setup();
        let missing = t.path().join("no/such/dir/file.bin");
        assert!(DataPlace::named_existing(&missing, false).is_err());
        assert!(DataPlace::named_existing(&t.path().join("no/dir"), true).is_err());
        assert!(!t.path().join("no").exists());
    }

    #[test]
    fn data_paths_must_be_plain() {
        let (_t, root, _outside) = setup();
        for bad in ["..", "/abs", "a/../b"] {
            assert!(DataPlace::below(&root, bad).is_err(), "{bad}");
        }
    }
}
