//! The watch folder (`daemon --watch-dir DIR`): `.torrent` files and `.magnet` files (a
//! magnet URI as text) dropped into DIR are added to the daemon, then moved aside — into
//! `DIR/.added/` when added, `DIR/.invalid/` when not, with the error logged and shown per
//! file in the snapshot's `watch` list.
//!
//! Polled once a second rather than watched with inotify (the `notify` crate): a file must
//! also be seen unchanged (same size and modification time) on two looks before it is read,
//! so a file still being written waits, and polling needs no platform code or extra thread
//! per directory. A symlink is never followed (it could point anywhere); a file that vanishes
//! or is garbage is an error for that file only.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client::control::{
    AddTorrent, ClientHandle, Command, ControlError, Labels, Limits, TorrentSource, WatchFile,
};

/// How often the folder is looked at.
const EVERY: Duration = Duration::from_secs(1);
/// Largest .torrent read (big torrents have megabytes of piece hashes).
const MAX_TORRENT: u64 = 64 << 20;
/// Largest .magnet read.
const MAX_MAGNET: u64 = 64 << 10;
/// Results kept for the snapshot, newest last.
const KEEP: usize = 100;

/// Why a dropped file was not added.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("a symbolic link is not followed")]
    Symlink,
    #[error("not a regular file")]
    NotAFile,
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("cannot read it (vanished while read?): {0}")]
    Read(std::io::Error),
    #[error("not a magnet link (a .magnet file holds one magnet: URI)")]
    NotMagnet,
    #[error("{0}")]
    Add(#[from] ControlError),
}

/// Starts the watcher thread; it ends when the client is gone.
pub fn spawn(
    dir: PathBuf,
    out_dir: PathBuf,
    handle: ClientHandle,
) -> std::io::Result<JoinHandle<()>> {
    std::fs::create_dir_all(&dir)?;
    // The API created the root; its absolute path, as the API's own adds pass it.
    let out_dir = std::fs::canonicalize(&out_dir).unwrap_or(out_dir);
    std::thread::Builder::new()
        .name("bts-watch".into())
        .spawn(move || run(&dir, &out_dir, &handle))
}

fn run(dir: &Path, out_dir: &Path, handle: &ClientHandle) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        tracing::error!("watch folder: cannot start its runtime");
        return;
    };
    let snapshots = handle.subscribe();
    let mut seen: HashMap<PathBuf, (u64, Option<SystemTime>)> = HashMap::new();
    let mut results: Vec<WatchFile> = Vec::new();
    // The client is gone when its snapshot sender is.
    while snapshots.has_changed().is_ok() {
        let mut changed = false;
        for (path, stamp) in candidates(dir) {
            // Unchanged since the last look: complete enough to read.
            if seen.get(&path) != Some(&stamp) {
                seen.insert(path, stamp);
                continue;
            }
            seen.remove(&path);
            let result = rt.block_on(add(&path, out_dir, handle));
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            let error = result.as_ref().err().map(|e| e.to_string());
            let aside = if error.is_some() {
                ".invalid"
            } else {
                ".added"
            };
            match &error {
                None => tracing::info!(file = %name, "watch folder: added"),
                Some(e) => tracing::warn!(file = %name, "watch folder: not added: {e}"),
            }
            if let Err(e) = move_aside(dir, &path, aside) {
                tracing::warn!(file = %name, "watch folder: cannot move it into {aside}: {e}");
            }
            results.push(WatchFile {
                file: name,
                added: error.is_none(),
                error,
                at_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
            if results.len() > KEEP {
                results.remove(0);
            }
            changed = true;
        }
        if changed && !handle.notify(Command::WatchReport(results.clone())) {
            return;
        }
        std::thread::sleep(EVERY);
    }
}

/// The `.torrent` and `.magnet` entries of `dir` (symlinks included, to be refused), with
/// their size and modification time.
fn candidates(dir: &Path) -> Vec<(PathBuf, (u64, Option<SystemTime>))> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| kind(&e.path()).is_some())
        .filter_map(|e| {
            let m = std::fs::symlink_metadata(e.path()).ok()?;
            (m.is_file() || m.file_type().is_symlink())
                .then(|| (e.path(), (m.len(), m.modified().ok())))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Torrent,
    Magnet,
}

fn kind(path: &Path) -> Option<Kind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "torrent" => Some(Kind::Torrent),
        "magnet" => Some(Kind::Magnet),
        _ => None,
    }
}

/// Reads a dropped file (never through a symlink) and adds it.
async fn add(path: &Path, out_dir: &Path, handle: &ClientHandle) -> Result<(), WatchError> {
    let kind = kind(path).ok_or(WatchError::NotMagnet)?;
    let limit = match kind {
        Kind::Torrent => MAX_TORRENT,
        Kind::Magnet => MAX_MAGNET,
    };
    let bytes = read_regular(path, limit)?;
    let source = match kind {
        Kind::Torrent => TorrentSource::Metainfo(bytes),
        Kind::Magnet => {
            let text = String::from_utf8(bytes).map_err(|_| WatchError::NotMagnet)?;
            let uri = text.trim();
            if !uri.starts_with("magnet:?") {
                return Err(WatchError::NotMagnet);
            }
            TorrentSource::Magnet(uri.to_string())
        }
    };
    let add = AddTorrent {
        source,
        out_dir: out_dir.to_path_buf(),
        paused: false,
        peers: Vec::new(),
        limits: Limits::default(),
        files: Default::default(),
        path_rules: Default::default(),
        labels: Labels::default(),
    };
    handle
        .call(|reply| Command::Add(Box::new(add), reply))
        .await?;
    Ok(())
}

/// The file's bytes, if it is a regular file (not a symlink) of at most `limit` bytes.
fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, WatchError> {
    // Checked on the open itself, not before it: the entry may be swapped for a link or a FIFO
    // between a check and the open. O_NONBLOCK keeps a FIFO from blocking the open.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => WatchError::Symlink,
            _ => WatchError::Read(e),
        })?;
    if !f.metadata().map_err(WatchError::Read)?.is_file() {
        return Err(WatchError::NotAFile);
    }
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(WatchError::Read)?;
    if bytes.len() as u64 > limit {
        return Err(WatchError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Moves `path` into `dir/aside/`, under a new name if that one is taken.
fn move_aside(dir: &Path, path: &Path, aside: &str) -> std::io::Result<()> {
    let to_dir = dir.join(aside);
    std::fs::create_dir_all(&to_dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut to = to_dir.join(&*name);
    let mut n = 1;
    while std::fs::symlink_metadata(&to).is_ok() {
        to = to_dir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(path, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_the_two_kinds_are_read() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(kind(Path::new("a.TORRENT")), Some(Kind::Torrent));
        assert_eq!(kind(Path::new("a.magnet")), Some(Kind::Magnet));
        assert_eq!(kind(Path::new("a.txt")), None);
        let target = d.path().join("elsewhere.torrent");
        std::fs::write(&target, b"d4:infod4:name1:xee").unwrap();
        let link = d.path().join("link.torrent");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(read_regular(&link, 100), Err(WatchError::Symlink)));
        assert!(matches!(
            read_regular(&target, 5),
            Err(WatchError::TooLarge(5))
        ));
        assert!(matches!(
            read_regular(&d.path().join("gone.torrent"), 100),
            Err(WatchError::Read(_))
        ));
        // A FIFO (swapped in after the listing) is refused at once, not waited on.
        let fifo = d.path().join("pipe.torrent");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_regular(&fifo, 100)).unwrap());
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert!(matches!(got, Ok(Err(WatchError::NotAFile))), "{got:?}");
        // A second file of the same name moved aside gets a suffix.
        for _ in 0..2 {
            std::fs::write(d.path().join("x.torrent"), b"x").unwrap();
            move_aside(d.path(), &d.path().join("x.torrent"), ".invalid").unwrap();
        }
        assert!(d.path().join(".invalid/x.torrent").exists());
        assert!(d.path().join(".invalid/x.torrent.1").exists());
    }
}
