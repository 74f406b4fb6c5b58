//! [`MmapStorage`]: the torrent's files mapped with `memmap2`.
//!
//! Reads (hashing, seeding) are zero-copy slices of a read-only map. Received blocks are
//! written with `pwrite`, not stored through the map: a store into a page that is not yet in
//! the page cache faults, and the kernel first reads (for a preallocated file: zeroes) the
//! page before our copy overwrites it. A 16 KiB `pwrite` covers whole pages, so the kernel
//! skips that; measured A/B on a 1 GiB QUIC/SCION download, leecher system time fell from
//! ~1.7 to ~0.9 s (perf/RESULTS.md). A failed write is an error value (ENOSPC, EIO), never
//! the SIGBUS a store through a map gets.
//!
//! Files are opened and mapped lazily, at their first read or write, and closed again when
//! the process-wide [`pool`](super::pool) needs room; a block handed out keeps its map alive
//! after that. A written file is remembered as dirty until [`MmapStorage::sync`] has synced
//! it, closed or not.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::{Bytes, BytesMut};
use memmap2::{Advice, MmapOptions, MmapRaw};

use crate::torrent::meta::Metainfo;

use super::layout::{Layout, Span};
use super::parts::PartsFile;
use super::place::DataPlace;
use super::pool::{self, Pooled};
use super::sigbus;
use super::{PieceData, Storage, StorageError};

/// One file of the torrent; opened when used (see [`OpenFile`]).
#[derive(Debug)]
struct FileMap {
    path: PathBuf,
    /// The path relative to the storage's [`DataPlace`] directory.
    rel: PathBuf,
    /// Its length in the torrent (the map's length once open).
    length: u64,
    /// Where it starts in the torrent's byte stream.
    offset: u64,
    /// Skipped and not on disk: its bytes (of pieces shared with wanted files) live in the
    /// parts file, and it is never opened or created until it is wanted again.
    parted: AtomicBool,
    /// A BEP 47 padding file: reads as zeros, writes are dropped, nothing on disk.
    pad: bool,
    /// Bytes that were on disk before we opened it (all of it when seeding): data beyond
    /// this was never written, so a resume check need not hash it.
    existing: u64,
    /// The file's size on disk as last looked at after a SIGBUS (see `sigbus`).
    on_disk: OnDisk,
    /// Open for writing (a download) or reading only (seeding).
    writable: bool,
    open: Mutex<Option<Arc<OpenFile>>>,
    /// `pool::tick()` of the last use.
    last_use: AtomicU64,
    /// Written since the last [`MmapStorage::sync`].
    dirty: AtomicBool,
}

/// A file while it is open: its read-only map (none when empty) and, for a download, the
/// descriptor that blocks are written through with `pwrite`. Blocks handed out share only
/// the map, so closing the file closes its descriptor at once, however many blocks of it are
/// still queued for hashing or sending. A seeder keeps no descriptor: the map outlives it.
#[derive(Debug)]
struct OpenFile {
    map: Option<Arc<MmapRaw>>,
    file: Option<File>,
}

/// A file's size on disk, re-read once per new SIGBUS fault in the process rather than on
/// every read: a fault is how a shrunk file shows itself.
#[derive(Debug, Default)]
struct OnDisk {
    /// `sigbus::faults()` when `len` was read (0: never).
    checked_at: AtomicU64,
    len: AtomicU64,
}

impl FileMap {
    fn new(path: PathBuf, rel: PathBuf, length: u64, existing: u64, writable: bool) -> Self {
        Self {
            path,
            rel,
            length,
            offset: 0,
            parted: AtomicBool::new(false),
            pad: false,
            existing,
            on_disk: OnDisk::default(),
            writable,
            open: Mutex::new(None),
            last_use: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        }
    }

    fn pad(path: PathBuf, rel: PathBuf, length: u64) -> Self {
        Self {
            pad: true,
            ..Self::new(path, rel, length, 0, false)
        }
    }

    fn is_parted(&self) -> bool {
        self.parted.load(Ordering::Acquire)
    }

    fn state(&self) -> MutexGuard<'_, Option<Arc<OpenFile>>> {
        // Whoever panicked holding it left an `Option` that is still valid.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Pooled for FileMap {
    fn last_use(&self) -> u64 {
        self.last_use.load(Ordering::Relaxed)
    }

    fn close(&self) {
        // Blocks handed out keep their own `Arc<OpenFile>`: the map goes when they do.
        self.state().take();
    }
}

/// Owner of a zero-copy block: keeps the map alive while the `Bytes` lives.
struct MapSlice {
    map: Option<Arc<MmapRaw>>,
    off: usize,
    len: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        match &self.map {
            // SAFETY: `off + len <= map.len()` was checked when the slice was
            // made, and the map lives as long as `self.map`. Concurrent
            // writes to the same range are excluded by the storage contract
            // (module docs of `storage`).
            Some(m) => unsafe { std::slice::from_raw_parts(m.as_ptr().add(self.off), self.len) },
            None => &[],
        }
    }
}

/// How [`MmapStorage::create_in`] treats disk space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Reserve every block now (`fallocate`): a download that starts has its space.
    Full,
    /// Files at full length without blocks (a paused torrent takes no disk until resumed,
    /// see [`MmapStorage::allocate`]); the free-space check still runs.
    Sparse,
}

/// Memory-mapped storage for one torrent.
///
/// Cloning is cheap and shares the maps.
#[derive(Debug, Clone)]
pub struct MmapStorage {
    layout: Arc<Layout>,
    files: Arc<[Arc<FileMap>]>,
    place: DataPlace,
    writable: bool,
    /// Where skipped files' bytes go (a download in the daemon; see `parts`).
    parts: Option<Arc<PartsFile>>,
}

/// The name of a torrent's parts file in its directory (libtorrent's is `.<info hash>.parts`
/// too).
pub fn parts_name(meta: &Metainfo) -> PathBuf {
    let hex: String = meta.info_hash.iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from(format!(".{hex}.parts"))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::from_io(path, 0, e)
}

/// Whether `file` already has `len` bytes, all backed by disk blocks: then there is nothing to
/// reserve, and leaving it alone keeps its mtime (fallocate sets it, which would make a
/// seeder's data look modified and void its fast-resume data).
fn fully_allocated(file: &File, len: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata()
        .is_ok_and(|m| m.len() == len && m.blocks().saturating_mul(512) >= len)
}

/// Reserves `len` bytes for `file` so that a full disk fails here rather than
/// with SIGBUS on a later write through the map. Uses `fallocate` on Linux
/// and writes zeros where the filesystem cannot ([`fill_holes`]).
fn preallocate(file: &File, path: &Path, len: u64) -> Result<(), StorageError> {
    if len == 0 {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let off_len = libc::off_t::try_from(len).map_err(|_| StorageError::DiskFull {
            path: path.to_path_buf(),
            needed: len,
        })?;
        let before = file.metadata().map_err(io(path))?.len();
        // SAFETY: plain syscall on a file descriptor we own.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, off_len) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {}
            _ => {
                // ext4 keeps the blocks it managed to allocate before failing
                // with ENOSPC: give them back.
                let _ = file.set_len(before);
                return Err(StorageError::from_io(path, len, e));
            }
        }
    }
    // No fallocate here: a sparse file would turn a full disk into SIGBUS later, so write
    // zeros into every hole instead (existing data is kept for resume).
    fill_holes(file, len).map_err(|e| StorageError::from_io(path, len, e))
}

/// Extends `file` to `len` and writes zeros into every hole below `len`, so each block is
/// really allocated (the fallback for filesystems without `fallocate`). Holes are found with
/// `SEEK_HOLE`/`SEEK_DATA`; where those are unsupported the whole file counts as data and
/// only the extension is written.
fn fill_holes(file: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    const CHUNK: usize = 1 << 20;
    let zeros = vec![0u8; CHUNK];
    let end = file.metadata()?.len();
    let fd = file.as_raw_fd();
    let seek = |off: u64, whence| -> Option<u64> {
        let off = libc::off_t::try_from(off).ok()?;
        // SAFETY: plain syscall on a file descriptor we own; moves only its offset.
        let r = unsafe { libc::lseek(fd, off, whence) };
        u64::try_from(r).ok()
    };
    // (start, end) of each hole inside the current file, then the extension.
    let mut holes = Vec::new();
    let mut at = 0;
    while at < end.min(len) {
        let Some(hole) = seek(at, libc::SEEK_HOLE).filter(|&h| h < end.min(len)) else {
            break;
        };
        let data = seek(hole, libc::SEEK_DATA).unwrap_or(end).min(len);
        holes.push((hole, data));
        at = data;
    }
    if end < len {
        holes.push((end, len));
    }
    for (mut off, stop) in holes {
        while off < stop {
            let n = usize::try_from(stop - off).map_or(CHUNK, |n| n.min(CHUNK));
            file.write_all_at(&zeros[..n], off)?;
            off += n as u64;
        }
    }
    Ok(())
}

/// Maps `len` bytes of `file` read-only (none for an empty file).
fn map_file(file: &File, path: &Path, len: u64) -> Result<Option<MmapRaw>, StorageError> {
    if len == 0 {
        return Ok(None);
    }
    let ulen = usize::try_from(len).map_err(|_| StorageError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("file too large to map on this platform"),
    })?;
    MmapOptions::new()
        .len(ulen)
        .map_raw_read_only(file)
        .map(Some)
        .map_err(io(path))
}

impl MmapStorage {
    /// Opens storage for downloading at a single-shot run's output path (see the output path
    /// convention in the module docs); [`MmapStorage::create_in`] does the work.
    pub fn create(meta: &Metainfo, out: &Path) -> Result<Self, StorageError> {
        Self::create_in(
            meta,
            DataPlace::named(out, meta.is_multi_file())?,
            Allocation::Full,
        )
    }

    /// Opens storage for seeding at a single-shot run's data path;
    /// [`MmapStorage::open_readonly_in`] does the work.
    pub fn open_readonly(meta: &Metainfo, out: &Path) -> Result<Self, StorageError> {
        Self::open_readonly_in(meta, DataPlace::named_existing(out, meta.is_multi_file())?)
    }

    /// Opens storage for downloading: creates missing directories and files in `place`,
    /// keeps existing data (resume), preallocates every file to its full length and maps it
    /// read-only (blocks are written with `pwrite`).
    ///
    /// Fails with [`StorageError::DiskFull`] before writing anything if the filesystem
    /// reports too little free space, with [`StorageError::SizeMismatch`] if an existing file
    /// is *longer* than the torrent says (it is never truncated), and with
    /// [`StorageError::LinkOutside`] if a path would pass through a link out of the place.
    pub fn create_in(
        meta: &Metainfo,
        place: DataPlace,
        allocation: Allocation,
    ) -> Result<Self, StorageError> {
        Self::create_in_skipping(meta, place, allocation, &[])
    }

    /// [`MmapStorage::create_in`] for a torrent some of whose files are skipped
    /// (`skipped[i]` for `meta.files[i]`; missing entries: wanted). A skipped file that is not
    /// on disk is not created: its bytes go to the parts file ([`parts_name`] in the place's
    /// directory) until [`MmapStorage::set_skipped`] wants it. One already on disk is used
    /// as it is.
    pub fn create_in_skipping(
        meta: &Metainfo,
        place: DataPlace,
        allocation: Allocation,
        skipped: &[bool],
    ) -> Result<Self, StorageError> {
        sigbus::install();
        let parts = PartsFile::new(place.clone(), parts_name(meta));
        let parts_len = parts.apparent_len()?;
        let mut rels = Vec::with_capacity(meta.files.len());
        let mut existing = Vec::with_capacity(meta.files.len());
        let mut parted = Vec::with_capacity(meta.files.len());
        let mut needed: u64 = 0;
        for (i, f) in meta.files.iter().enumerate() {
            let rel = place.relative(meta, f)?;
            let on_disk = if f.pad { None } else { place.len(&rel)? };
            let in_parts = !f.pad && on_disk.is_none() && skipped.get(i).copied().unwrap_or(false);
            parted.push(in_parts);
            if in_parts {
                // What the parts file holds of it (it may hold pieces shared with wanted files).
                rels.push(rel);
                existing.push(parts_len.saturating_sub(f.offset).min(f.length));
                continue;
            }
            let have = on_disk.unwrap_or(0);
            if have > f.length {
                return Err(StorageError::SizeMismatch {
                    path: place.display(&rel),
                    expected: f.length,
                    actual: have,
                });
            }
            if !f.pad {
                needed = needed.saturating_add(f.length - have);
            }
            rels.push(rel);
            existing.push(have);
        }
        if let Some(avail) = place.available_bytes() {
            if avail < needed {
                return Err(StorageError::DiskFull {
                    path: place.data_path(),
                    needed,
                });
            }
        }
        let mut files = Vec::with_capacity(rels.len());
        for (((rel, f), existing), in_parts) in
            rels.into_iter().zip(&meta.files).zip(existing).zip(parted)
        {
            let p = place.display(&rel);
            if f.pad {
                files.push(Arc::new(FileMap::pad(p, rel, f.length)));
                continue;
            }
            if in_parts {
                let mut fm = FileMap::new(p, rel, f.length, existing, true);
                fm.offset = f.offset;
                fm.parted = AtomicBool::new(true);
                files.push(Arc::new(fm));
                continue;
            }
            // Created and sized now, so a full disk or a bad name fails the add; opened
            // again when used (one descriptor at a time here, whatever the file count).
            let file = place.open_rw(&rel)?;
            match allocation {
                Allocation::Full if !fully_allocated(&file, f.length) => {
                    preallocate(&file, &p, f.length)?
                }
                Allocation::Full => {}
                // Full length without blocks: the map covers it, the disk holds nothing yet.
                Allocation::Sparse if existing < f.length => {
                    file.set_len(f.length).map_err(io(&p))?
                }
                Allocation::Sparse => {}
            }
            let mut fm = FileMap::new(p, rel, f.length, existing, true);
            fm.offset = f.offset;
            files.push(Arc::new(fm));
        }
        Ok(MmapStorage {
            layout: Arc::new(Layout::new(meta)),
            files: files.into(),
            place,
            writable: true,
            parts: Some(Arc::new(parts)),
        })
    }

    /// Opens existing files in `place` read-only for seeding; each must exist with exactly
    /// the torrent's size (a missing *empty* file is tolerated: there is nothing to serve
    /// from it).
    pub fn open_readonly_in(meta: &Metainfo, place: DataPlace) -> Result<Self, StorageError> {
        sigbus::install();
        let mut files = Vec::with_capacity(meta.files.len());
        for f in &meta.files {
            let rel = place.relative(meta, f)?;
            let p = place.display(&rel);
            if f.pad {
                files.push(Arc::new(FileMap::pad(p, rel, f.length)));
                continue;
            }
            let actual = match place.len(&rel)? {
                Some(actual) => actual,
                // Nothing to serve from a missing empty file.
                None if f.length == 0 => 0,
                // Opening says why in the words every other open failure uses.
                None => {
                    place.open_ro(&rel)?;
                    0
                }
            };
            if actual != f.length {
                return Err(StorageError::SizeMismatch {
                    path: p,
                    expected: f.length,
                    actual,
                });
            }
            files.push(Arc::new(FileMap::new(p, rel, f.length, actual, false)));
        }
        Ok(MmapStorage {
            layout: Arc::new(Layout::new(meta)),
            files: files.into(),
            place,
            writable: false,
            parts: None,
        })
    }

    /// Reserves every file's blocks now (storage created with [`Allocation::Sparse`] for a
    /// paused torrent that is resumed): a full disk fails here, not with the first blocks.
    pub fn allocate(&self) -> Result<(), StorageError> {
        if !self.writable {
            return Ok(());
        }
        for f in self
            .files
            .iter()
            .filter(|f| !f.pad && f.length > 0 && !f.is_parted())
        {
            let file = self.place.open_rw(&f.rel)?;
            if !fully_allocated(&file, f.length) {
                preallocate(&file, &f.path, f.length)?;
            }
        }
        Ok(())
    }

    /// Deletes the torrent's files from disk, and the directories they leave empty, without
    /// following a link out of its place (see [`DataPlace::delete`]). The maps stay valid
    /// until the storage is dropped.
    pub fn delete_files(&self) {
        let rels: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|f| !f.pad && !f.is_parted())
            .map(|f| f.rel.clone())
            .collect();
        self.place.delete(&rels);
        if let Some(parts) = &self.parts {
            parts.delete();
        }
    }

    /// Whether file `i` is skipped and kept in the parts file (not on disk).
    pub fn is_parted(&self, i: usize) -> bool {
        self.files.get(i).is_some_and(|f| f.is_parted())
    }

    /// Skips file `i` or wants it again.
    ///
    /// Wanting a file kept in the parts file creates it (full length, space reserved), copies
    /// what the parts file holds of it into it, and from then on reads and writes go there.
    /// Skipping a file on disk deletes it and keeps it in the parts file only when `discard`
    /// says none of its data is needed (the caller knows no verified piece touches it);
    /// otherwise it stays on disk as it is. Called on the event loop, where every write
    /// happens, so no block is written to the old place while it moves.
    pub fn set_skipped(&self, i: usize, skip: bool, discard: bool) -> Result<(), StorageError> {
        let (Some(f), Some(parts)) = (self.files.get(i), &self.parts) else {
            return Ok(());
        };
        if f.pad || !self.writable {
            return Ok(());
        }
        match (skip, f.is_parted()) {
            (false, true) => {
                let file = self.place.open_rw(&f.rel)?;
                if !fully_allocated(&file, f.length) {
                    preallocate(&file, &f.path, f.length)?;
                }
                parts.copy_out(f.offset, f.length, &file)?;
                file.sync_data().map_err(io(&f.path))?;
                // Readers on other threads (hashing) see the file's data from now on.
                f.parted.store(false, Ordering::Release);
                f.dirty.store(true, Ordering::Release);
                parts.release(f.offset, f.length);
                if !self.files.iter().any(|f| f.is_parted()) {
                    parts.delete();
                }
            }
            (true, false) if discard && f.length > 0 => {
                f.parted.store(true, Ordering::Release);
                f.state().take();
                f.dirty.store(false, Ordering::Release);
                self.place.delete(std::slice::from_ref(&f.rel));
            }
            _ => {}
        }
        Ok(())
    }

    /// True if opened with [`MmapStorage::create`].
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The on-disk path of every file, in torrent order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Whether `piece` lies entirely in data that was on disk when the storage was opened
    /// (or in padding): only such pieces can already be complete. A fresh download skips
    /// hashing (and faulting in) gigabytes of zeros at start-up.
    pub fn may_hold(&self, piece: u32) -> bool {
        let plen = self.layout.piece_len(piece);
        let Ok(off) = self.layout.block_offset(piece, 0, plen) else {
            return false;
        };
        // A piece all in padding and parted files was never fetched: those are skipped.
        let mut on_disk = false;
        self.layout.spans(off, u64::from(plen)).all(|s| {
            self.files.get(s.file).is_some_and(|f| {
                on_disk |= !f.pad && !f.is_parted();
                f.pad || s.file_offset + s.len <= f.existing
            })
        }) && on_disk
    }

    /// Writes every dirty page to disk and waits for it (`fdatasync`): after this returns,
    /// every piece written so far survives a crash. Fast-resume calls it before it records
    /// pieces as verified.
    pub fn sync(&self) -> Result<(), StorageError> {
        if !self.writable {
            return Ok(());
        }
        if let Some(parts) = &self.parts {
            parts.sync()?;
        }
        for f in self.files.iter() {
            // Cleared first: a write racing with this sync marks it dirty again.
            if !f.dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            let open = f.state().clone();
            // A file the pool closed still has dirty pages: syncing any descriptor of it
            // writes them.
            let synced = match open.as_ref().and_then(|o| o.file.as_ref()) {
                Some(file) => file.sync_data().map_err(io(&f.path)),
                None => self
                    .place
                    .open_rw(&f.rel)
                    .and_then(|file| file.sync_data().map_err(io(&f.path))),
            };
            if let Err(e) = synced {
                f.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The piece geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Asks the kernel to start reading a block into the page cache
    /// (`MADV_WILLNEED`), so serving it later does not fault on the event
    /// loop. Best effort; errors are ignored.
    pub fn prefetch(&self, piece: u32, begin: u32, len: u32) {
        let Ok(off) = self.layout.block_offset(piece, begin, len) else {
            return;
        };
        for s in self.layout.spans(off, u64::from(len)) {
            let Ok(f) = self.file_for(s) else { continue };
            if f.pad || f.is_parted() {
                continue;
            }
            if let Ok(open) = self.opened(f) {
                if let Some(m) = &open.map {
                    let _ =
                        m.advise_range(Advice::WillNeed, s.file_offset as usize, s.len as usize);
                }
            }
        }
    }

    /// Zero-copy `Bytes` for one span (zeros for padding).
    fn slice(&self, s: Span) -> Result<Bytes, StorageError> {
        let file = self.file_for(s)?;
        if file.pad {
            return Ok(Bytes::from(vec![0u8; s.len as usize]));
        }
        if let (true, Some(parts)) = (file.is_parted(), &self.parts) {
            return parts.read(file.offset + s.file_offset, s.len as usize);
        }
        let open = self.opened(file)?;
        let faults = sigbus::faults();
        if faults > 0 {
            // Some map read past its file's end (see `sigbus`): a read checks that its file
            // still holds the span, so a shrunk file is an error, not zeros. The size is read
            // again only after a new fault.
            if file.on_disk.checked_at.load(Ordering::Acquire) != faults {
                let len = self.place.len(&file.rel)?.unwrap_or(0);
                file.on_disk.len.store(len, Ordering::Release);
                file.on_disk.checked_at.store(faults, Ordering::Release);
            }
            let now = file.on_disk.len.load(Ordering::Acquire);
            if s.file_offset + s.len > now {
                return Err(StorageError::Io {
                    path: file.path.clone(),
                    source: std::io::Error::other(format!(
                        "the file shrank to {now} bytes on disk; the torrent needs {}",
                        file.length
                    )),
                });
            }
        }
        Ok(Bytes::from_owner(MapSlice {
            map: open.map.clone(),
            off: s.file_offset as usize,
            len: s.len as usize,
        }))
    }

    /// `f` open (opened and mapped now if it was not), its use recorded for the pool.
    fn opened(&self, f: &Arc<FileMap>) -> Result<Arc<OpenFile>, StorageError> {
        f.last_use.store(pool::tick(), Ordering::Relaxed);
        let mut state = f.state();
        if let Some(open) = state.as_ref() {
            return Ok(open.clone());
        }
        let file = if f.writable {
            self.place.open_rw(&f.rel)?
        } else {
            self.place.open_ro(&f.rel)?
        };
        let map = map_file(&file, &f.path, f.length)?.map(Arc::new);
        if let (Some(m), false) = (&map, f.writable) {
            // Peers request pieces in no particular order.
            let _ = m.advise(Advice::Random);
        }
        let open = Arc::new(OpenFile {
            map,
            file: f.writable.then_some(file),
        });
        *state = Some(open.clone());
        drop(state);
        pool::opened(Arc::downgrade(f) as Weak<dyn Pooled>);
        Ok(open)
    }

    /// The file of a span, with the span checked against the map.
    fn file_for(&self, s: Span) -> Result<&Arc<FileMap>, StorageError> {
        let f = self.files.get(s.file).ok_or(StorageError::OutOfRange {
            piece: 0,
            begin: 0,
            len: 0,
        })?;
        let ok = s
            .file_offset
            .checked_add(s.len)
            .is_some_and(|e| e <= f.length);
        if !ok {
            return Err(StorageError::Io {
                path: f.path.clone(),
                source: std::io::Error::other("span outside the file map"),
            });
        }
        Ok(f)
    }
}

impl Storage for MmapStorage {
    fn read_block(&self, piece: u32, begin: u32, len: u32) -> Result<Bytes, StorageError> {
        let off = self.layout.block_offset(piece, begin, len)?;
        let mut spans = self.layout.spans(off, u64::from(len));
        let first = spans
            .next()
            .ok_or(StorageError::OutOfRange { piece, begin, len })?;
        if first.len == u64::from(len) {
            return self.slice(first);
        }
        // Crosses a file boundary: copy (rare).
        let mut buf = BytesMut::with_capacity(len as usize);
        buf.extend_from_slice(&self.slice(first)?);
        for s in spans {
            buf.extend_from_slice(&self.slice(s)?);
        }
        Ok(buf.freeze())
    }

    fn write_block(&self, piece: u32, begin: u32, data: &[u8]) -> Result<(), StorageError> {
        if !self.writable {
            return Err(StorageError::ReadOnly);
        }
        let len = u32::try_from(data.len()).map_err(|_| StorageError::OutOfRange {
            piece,
            begin,
            len: u32::MAX,
        })?;
        let off = self.layout.block_offset(piece, begin, len)?;
        let mut pos = 0usize;
        for s in self.layout.spans(off, u64::from(len)) {
            let f = self.file_for(s)?;
            if f.pad {
                pos += s.len as usize;
            } else if let (true, Some(parts)) = (f.is_parted(), &self.parts) {
                let n = s.len as usize;
                parts.write(f.offset + s.file_offset, &data[pos..pos + n])?;
                pos += n;
            } else {
                let open = self.opened(f)?;
                let file = open.file.as_ref().ok_or(StorageError::ReadOnly)?;
                let n = s.len as usize;
                f.dirty.store(true, Ordering::Release);
                file.write_all_at(&data[pos..pos + n], s.file_offset)
                    .map_err(io(&f.path))?;
                pos += n;
            }
        }
        Ok(())
    }

    fn piece_data(&self, piece: u32) -> Result<PieceData, StorageError> {
        let plen = self.layout.piece_len(piece);
        let off = self.layout.block_offset(piece, 0, plen)?;
        let chunks = self
            .layout
            .spans(off, u64::from(plen))
            .map(|s| self.slice(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PieceData { chunks })
    }

    fn flush(&self) -> Result<(), StorageError> {
        // Nothing to hand over: `pwrite` put every block into the page cache already, and the
        // kernel writes it back on its own. [`MmapStorage::sync`] is the barrier that waits.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::hash::{verify_all, HashPool};
    use crate::torrent::meta::{create, FileEntry};
    use std::fs::{self, OpenOptions};
    use std::path::Component;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
            .collect()
    }

    /// A multi-file torrent: piece 1 crosses a→(empty b)→c, sizes not
    /// multiples of the piece length, nested directory.
    fn fixture(dir: &Path) -> (Metainfo, Vec<u8>, PathBuf) {
        let src = dir.join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        let parts: Vec<(&str, Vec<u8>)> = vec![
            ("a", pattern(20_000, 1)),
            ("b_empty", Vec::new()),
            ("sub/c", pattern(30_000, 2)),
            ("z", pattern(7, 3)),
        ];
        let mut stream = Vec::new();
        for (p, d) in &parts {
            fs::write(src.join(p), d).unwrap();
            stream.extend_from_slice(d);
        }
        let m =
            Metainfo::from_bytes(&create(&src, Some(16384), vec![], false, None).unwrap()).unwrap();
        (m, stream, src)
    }

    fn map_range(s: &MmapStorage, file: usize) -> std::ops::Range<usize> {
        let open = s.opened(&s.files[file]).unwrap();
        let m = open.map.as_ref().unwrap();
        m.as_ptr() as usize..m.as_ptr() as usize + m.len()
    }

    #[test]
    fn download_then_seed_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let (m, stream, src) = fixture(dir.path());
        assert_eq!(m.num_pieces(), 4);
        let out = dir.path().join("out");
        let st = MmapStorage::create(&m, &out).unwrap();
        // File tree created, preallocated, empty file present.
        assert_eq!(fs::metadata(out.join("a")).unwrap().len(), 20_000);
        assert_eq!(fs::metadata(out.join("b_empty")).unwrap().len(), 0);
        assert_eq!(fs::metadata(out.join("sub/c")).unwrap().len(), 30_000);
        let pool = HashPool::new(2).unwrap();
        assert!(verify_all(&st, &m, &pool).is_clear());

        // Write every piece in 5000-byte blocks (crossing file boundaries).
        for p in 0..m.num_pieces() {
            let plen = m.piece_len(p);
            let base = m.piece_offset(p) as usize;
            let mut b = 0;
            while b < plen {
                let n = (plen - b).min(5000);
                let s = base + b as usize;
                st.write_block(p, b, &stream[s..s + n as usize]).unwrap();
                b += n;
            }
        }
        st.flush().unwrap();
        assert!(verify_all(&st, &m, &pool).is_full());
        for (i, f) in m.files.iter().enumerate() {
            let on_disk = fs::read(out.join(&f.path)).unwrap();
            let o = f.offset as usize;
            assert_eq!(on_disk, &stream[o..o + f.length as usize], "file {i}");
        }
        drop(st);

        // Seed from the original source directory, read-only.
        let seed = MmapStorage::open_readonly(&m, &src).unwrap();
        assert!(!seed.is_writable());
        assert!(matches!(
            seed.write_block(0, 0, b"x"),
            Err(StorageError::ReadOnly)
        ));
        assert!(verify_all(&seed, &m, &pool).is_full());
        for p in 0..m.num_pieces() {
            let d = seed.piece_data(p).unwrap();
            let o = m.piece_offset(p) as usize;
            assert_eq!(d.to_vec(), &stream[o..o + m.piece_len(p) as usize]);
        }
        // Piece 1 spans a and c (b is empty): two zero-copy chunks.
        let d = seed.piece_data(1).unwrap();
        assert_eq!(d.chunks.len(), 2);
        assert!(map_range(&seed, 0).contains(&(d.chunks[0].as_ptr() as usize)));
        assert!(map_range(&seed, 2).contains(&(d.chunks[1].as_ptr() as usize)));
    }

    #[test]
    fn read_block_is_zero_copy_inside_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (m, stream, src) = fixture(dir.path());
        let st = MmapStorage::open_readonly(&m, &src).unwrap();
        let b = st.read_block(0, 100, 16000).unwrap();
        assert_eq!(&b[..], &stream[100..16100]);
        let r = map_range(&st, 0);
        let p = b.as_ptr() as usize;
        assert!(r.contains(&p) && p + b.len() <= r.end);
        assert_eq!(p, r.start + 100);
        // The block keeps the map alive after the storage is gone.
        drop(st);
        assert_eq!(&b[..10], &stream[100..110]);

        // A block across the a|c boundary is copied but correct.
        let st = MmapStorage::open_readonly(&m, &src).unwrap();
        let x = st.read_block(1, 3000, 2000).unwrap();
        assert_eq!(&x[..], &stream[16384 + 3000..16384 + 5000]);
        assert!(!map_range(&st, 0).contains(&(x.as_ptr() as usize)));
        // Last, short piece.
        let last = st.read_block(3, 0, m.piece_len(3)).unwrap();
        assert_eq!(&last[..], &stream[3 * 16384..]);
        // Out of range.
        for (p, b, l) in [
            (3, 0, m.piece_len(3) + 1),
            (4, 0, 1),
            (0, 16384, 1),
            (0, 0, 0),
        ] {
            assert!(matches!(
                st.read_block(p, b, l),
                Err(StorageError::OutOfRange { .. })
            ));
        }
    }

    #[test]
    fn single_file_out_path_is_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("one.bin");
        let data = pattern(40_000, 9);
        fs::write(&f, &data).unwrap();
        let m =
            Metainfo::from_bytes(&create(&f, Some(16384), vec![], false, None).unwrap()).unwrap();
        let out = dir.path().join("dl/renamed.bin");
        let st = MmapStorage::create(&m, &out).unwrap();
        assert_eq!(st.paths().collect::<Vec<_>>(), vec![out.as_path()]);
        for p in 0..m.num_pieces() {
            let o = m.piece_offset(p) as usize;
            st.write_block(p, 0, &data[o..o + m.piece_len(p) as usize])
                .unwrap();
        }
        st.flush().unwrap();
        assert_eq!(fs::read(&out).unwrap(), data);
        // Resume: reopening keeps the data.
        drop(st);
        let st = MmapStorage::create(&m, &out).unwrap();
        let pool = HashPool::new(1).unwrap();
        assert!(verify_all(&st, &m, &pool).is_full());
    }

    #[test]
    fn size_checks() {
        let dir = tempfile::tempdir().unwrap();
        let (m, _, src) = fixture(dir.path());
        // Seeding a file of the wrong size.
        fs::write(src.join("z"), b"toolonggg").unwrap();
        assert!(matches!(
            MmapStorage::open_readonly(&m, &src),
            Err(StorageError::SizeMismatch {
                expected: 7,
                actual: 9,
                ..
            })
        ));
        // Download never truncates a longer existing file.
        assert!(matches!(
            MmapStorage::create(&m, &src),
            Err(StorageError::SizeMismatch { .. })
        ));
        // Missing file when seeding.
        fs::remove_file(src.join("z")).unwrap();
        assert!(matches!(
            MmapStorage::open_readonly(&m, &src),
            Err(StorageError::Io { .. })
        ));
        // A missing empty file is fine for seeding.
        fs::write(src.join("z"), b"1234567").unwrap();
        fs::remove_file(src.join("b_empty")).unwrap();
        MmapStorage::open_readonly(&m, &src).unwrap();
        // A shorter existing file is grown for download.
        fs::write(src.join("z"), b"ab").unwrap();
        MmapStorage::create(&m, &src).unwrap();
        assert_eq!(fs::metadata(src.join("z")).unwrap().len(), 7);
    }

    #[test]
    fn paths_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let (mut m, _, _) = fixture(dir.path());
        let out = dir.path().join("out");
        for evil in ["../evil", "/etc/evil", "a/../../evil", "", "./x"] {
            m.files[0] = FileEntry {
                path: PathBuf::from(evil),
                length: 20_000,
                offset: 0,
                pad: false,
            };
            assert!(
                matches!(
                    MmapStorage::create(&m, &out),
                    Err(StorageError::UnsafePath(_))
                ),
                "{evil}"
            );
            assert!(matches!(
                MmapStorage::open_readonly(&m, &out),
                Err(StorageError::UnsafePath(_))
            ));
        }
        assert!(!dir.path().join("evil").exists());
        // Every resolved path of a parsed torrent stays under out.
        let (m, _, _) = fixture(&dir.path().join("again"));
        let place = DataPlace::named(&out, true).unwrap();
        for f in &m.files {
            let rel = place.relative(&m, f).unwrap();
            assert!(place.display(&rel).starts_with(&out));
            assert!(rel.components().all(|c| matches!(c, Component::Normal(_))));
        }
    }

    #[test]
    fn disk_full_is_reported_up_front() {
        // A torrent far larger than any test filesystem (128 TiB): the
        // statvfs check trips before any file is created or allocated.
        // (Never test by really fallocating past free space on a shared
        // disk: ext4 keeps what it allocated before failing.)
        let len: u64 = 1 << 47;
        let pl: u64 = 256 << 20;
        let n = len.div_ceil(pl) as usize;
        let mut raw = format!(
            "d4:infod6:lengthi{len}e4:name4:huge12:piece lengthi{pl}e6:pieces{}:",
            n * 20
        )
        .into_bytes();
        raw.extend(std::iter::repeat_n(0u8, n * 20));
        raw.extend_from_slice(b"ee");
        let m = Metainfo::from_bytes(&raw).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("huge");
        let e = MmapStorage::create(&m, &out).unwrap_err();
        assert!(matches!(e, StorageError::DiskFull { .. }), "{e}");
        assert!(e.to_string().starts_with("disk full"));
        assert!(!out.exists());
    }

    /// Real ENOSPC from `fallocate`, on a 1 MiB tmpfs mounted in a private
    /// mount namespace (needs root and `unshare`; skipped otherwise). The
    /// outer test re-runs this binary's `enospc_on_tiny_tmpfs_inner` inside
    /// the namespace.
    #[test]
    fn enospc_on_tiny_tmpfs() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=1m tmpfs \"$0\" || exit 77; \
                 exec \"$1\" --exact storage::mmap::tests::enospc_on_tiny_tmpfs_inner \
                 --ignored --test-threads=1",
            )
            .arg(dir.path())
            .arg(&exe)
            .env("BTSCION_TINY_TMPFS", dir.path())
            .output();
        match out {
            Ok(o) if !String::from_utf8_lossy(&o.stdout).contains("running 1 test") => {
                // The suite runs as root (CI too); a refused mount is a real failure.
                panic!(
                    "cannot mount a private tmpfs (needs root and unshare): {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout);
                assert!(
                    o.status.success(),
                    "{text}{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                assert!(text.contains("1 passed"), "{text}");
            }
            Err(e) => panic!("unshare (util-linux) is not available: {e}"),
        }
    }

    #[test]
    #[ignore = "run by enospc_on_tiny_tmpfs inside a private mount namespace"]
    fn enospc_on_tiny_tmpfs_inner() {
        let root = PathBuf::from(
            std::env::var_os("BTSCION_TINY_TMPFS")
                .expect("run by enospc_on_tiny_tmpfs, which sets BTSCION_TINY_TMPFS"),
        );
        // The zero-writing fallback (filesystems without fallocate) fails with ENOSPC too,
        // as an error, never SIGBUS.
        let p = root.join("zeros");
        let f = File::create(&p).unwrap();
        let e = fill_holes(&f, 2 << 20).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        drop(f);
        fs::remove_file(&p).unwrap();
        // fallocate itself fails with ENOSPC → DiskFull, and gives back what
        // it had allocated.
        let p = root.join("big");
        let f = File::create(&p).unwrap();
        let e = preallocate(&f, &p, 2 << 20).unwrap_err();
        assert!(
            matches!(e, StorageError::DiskFull { needed, .. } if needed == 2 << 20),
            "{e}"
        );
        assert_eq!(f.metadata().unwrap().len(), 0);
        drop(f);
        fs::remove_file(&p).unwrap();
        // Whole-storage path: caught up front by statvfs.
        let src = root.join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("small"), b"abc").unwrap();
        let mut m =
            Metainfo::from_bytes(&create(&src.join("small"), None, vec![], false, None).unwrap())
                .unwrap();
        m.files[0].length = 2 << 20;
        m.total_length = 2 << 20;
        let e = MmapStorage::create(&m, &root.join("out.bin")).unwrap_err();
        assert!(matches!(e, StorageError::DiskFull { .. }), "{e}");
    }

    /// The fallback for filesystems without fallocate: a sparse file with data in the middle
    /// gets zeros in its holes and its extension, really allocated, and keeps its data.
    #[test]
    fn fill_holes_allocates_and_keeps_data() {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sparse");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(3 << 20).unwrap();
        f.write_all_at(b"resume me", 1 << 20).unwrap();
        fill_holes(&f, 5 << 20).unwrap();
        let m = f.metadata().unwrap();
        assert_eq!(m.len(), 5 << 20);
        assert!(m.blocks() * 512 >= 5 << 20, "{} blocks", m.blocks());
        let mut buf = [0u8; 9];
        f.read_exact_at(&mut buf, 1 << 20).unwrap();
        assert_eq!(&buf, b"resume me");
    }

    /// A hybrid-style torrent as libtorrent 2 writes it: files a and b each padded to a
    /// piece boundary with ".pad/12768" (the same path twice), then c.
    fn padded_torrent() -> (Metainfo, Vec<u8>, [Vec<u8>; 3]) {
        let parts = [pattern(20_000, 1), pattern(20_000, 2), pattern(5, 3)];
        let pad = vec![0u8; 32768 - 20_000];
        let stream = [&parts[0][..], &pad, &parts[1], &pad, &parts[2]].concat();
        let mut pieces = Vec::new();
        for c in stream.chunks(32768) {
            pieces.extend_from_slice(&crate::storage::hash::sha1(c));
        }
        let file =
            |name: &str, len: usize| format!("d6:lengthi{len}e4:pathl{}:{name}ee", name.len());
        let padf = "d4:attr1:p6:lengthi12768e4:pathl4:.pad5:12768ee";
        let mut info = format!(
            "d5:filesl{}{padf}{}{padf}{}e4:name1:t12:piece lengthi32768e6:pieces{}:",
            file("a", 20_000),
            file("b", 20_000),
            file("c", 5),
            pieces.len()
        )
        .into_bytes();
        info.extend_from_slice(&pieces);
        info.push(b'e');
        let m = Metainfo::from_info_bytes(&info).unwrap();
        (m, stream, parts)
    }

    #[test]
    fn padding_files_are_zeros_and_never_touch_the_disk() {
        let (m, stream, parts) = padded_torrent();
        assert_eq!(m.files.iter().filter(|f| f.pad).count(), 2);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t");
        let st = MmapStorage::create(&m, &out).unwrap();
        // A lying peer's non-zero padding is dropped; the pieces still verify.
        let mut sent = stream.clone();
        sent[20_000..32768].fill(0xEE);
        for (i, piece) in sent.chunks(32768).enumerate() {
            st.write_block(i as u32, 0, piece).unwrap();
        }
        let pad_block = st.read_block(0, 20_000, 12768).unwrap();
        assert!(pad_block.iter().all(|&b| b == 0));
        st.flush().unwrap();
        assert!(!out.join(".pad").exists(), "no padding file on disk");
        for (name, data) in ["a", "b", "c"].iter().zip(&parts) {
            assert_eq!(&fs::read(out.join(name)).unwrap(), data);
        }
        let seed = MmapStorage::open_readonly(&m, &out).unwrap();
        let have = verify_all(&seed, &m, &HashPool::new(1).unwrap());
        assert!(
            have.is_full(),
            "every piece verifies from a, b, c and zeros"
        );
    }

    /// The fixture with `sub/c` (file 2: bytes 20000..50000, pieces 1-3) skipped: it is never
    /// created, the bytes of it that pieces 1 and 3 share with a and z go to the parts file,
    /// and wanting it again moves them into it.
    #[test]
    fn a_skipped_file_lives_in_the_parts_file_until_wanted() {
        let dir = tempfile::tempdir().unwrap();
        let (m, stream, _) = fixture(dir.path());
        let out = dir.path().join("out");
        let place = || DataPlace::below(&out, "t").unwrap();
        let skipped = [false, false, true, false];
        let st = MmapStorage::create_in_skipping(&m, place(), Allocation::Full, &skipped).unwrap();
        assert!(st.is_parted(2) && !st.is_parted(0));
        let data = out.join("t");
        assert!(data.join("a").exists() && data.join("z").exists());
        assert!(
            !data.join("sub").exists(),
            "the skipped file is not created"
        );
        // Pieces 1 and 3 touch wanted files: fetched whole.
        for p in [1u32, 3] {
            let o = m.piece_offset(p) as usize;
            st.write_block(p, 0, &stream[o..o + m.piece_len(p) as usize])
                .unwrap();
        }
        st.sync().unwrap();
        assert!(!data.join("sub").exists());
        let parts = out.join(parts_name(&m));
        assert!(parts.exists());
        let pool = HashPool::new(1).unwrap();
        let have = verify_all(&st, &m, &pool);
        assert_eq!(have.iter_ones().collect::<Vec<_>>(), vec![1, 3]);
        drop(st);
        // Reopened (a restart): still not created, the shared pieces may hold data; a piece
        // all inside the skipped file may not (it was never fetched).
        let st = MmapStorage::create_in_skipping(&m, place(), Allocation::Full, &skipped).unwrap();
        assert!(st.may_hold(1) && st.may_hold(3) && !st.may_hold(2));
        assert!(verify_all(&st, &m, &pool).get(3));
        // Wanted again: created, holding what the parts file had; the parts file goes.
        st.set_skipped(2, false, false).unwrap();
        assert!(!st.is_parted(2) && !parts.exists());
        let c = fs::read(data.join("sub/c")).unwrap();
        assert_eq!(c.len(), 30_000);
        let p1 = m.piece_offset(1) as usize;
        let p3 = m.piece_offset(3) as usize;
        assert_eq!(&c[..p1 + 16384 - 20_000], &stream[20_000..p1 + 16384]);
        assert_eq!(&c[p3 - 20_000..], &stream[p3..50_000]);
        assert_eq!(verify_all(&st, &m, &pool).iter_ones().count(), 2);
        // Skipping a file on disk deletes it only when told its data is not needed.
        st.set_skipped(0, true, false).unwrap();
        assert!(data.join("a").exists() && !st.is_parted(0));
        st.set_skipped(3, true, true).unwrap();
        assert!(!data.join("z").exists() && st.is_parted(3));
    }

    #[test]
    fn only_data_that_was_on_disk_may_hold_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let (m, stream, _) = fixture(dir.path());
        let out = dir.path().join("out");
        let fresh = MmapStorage::create(&m, &out).unwrap();
        assert!(
            (0..m.num_pieces()).all(|p| !fresh.may_hold(p)),
            "nothing to resume"
        );
        for (i, piece) in stream.chunks(16384).enumerate() {
            fresh.write_block(i as u32, 0, piece).unwrap();
        }
        fresh.flush().unwrap();
        drop(fresh);
        let again = MmapStorage::create(&m, &out).unwrap();
        assert!(
            (0..m.num_pieces()).all(|p| again.may_hold(p)),
            "a restart re-checks all"
        );
        let seed = MmapStorage::open_readonly(&m, &out).unwrap();
        assert!((0..m.num_pieces()).all(|p| seed.may_hold(p)));
    }
}
