//! The parts file (libtorrent's `.parts`): where the bytes of skipped files go that share a
//! piece with a wanted file. A piece is verified whole, so those bytes must be fetched and kept
//! somewhere — but a skipped file is not created on disk.
//!
//! It is a sparse file that mirrors the torrent's byte stream: a byte at stream offset `o` is
//! at `o` in the parts file. Only the few pieces on the edges of skipped files are ever
//! written, so it takes the disk blocks of those and nothing else (its apparent size can be
//! large). A hole reads as zeros. It is created at the first write and deleted once no file
//! is kept in it any more.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::place::DataPlace;
use super::StorageError;

/// One torrent's parts file, opened when first used.
#[derive(Debug)]
pub struct PartsFile {
    place: DataPlace,
    rel: PathBuf,
    path: PathBuf,
    file: Mutex<Option<Arc<File>>>,
    /// Written since the last sync.
    dirty: AtomicBool,
}

impl PartsFile {
    /// The parts file at `rel` in `place` (not created until written).
    pub fn new(place: DataPlace, rel: PathBuf) -> Self {
        let path = place.display(&rel);
        Self {
            place,
            rel,
            path,
            file: Mutex::new(None),
            dirty: AtomicBool::new(false),
        }
    }

    /// Its path, for messages.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Its apparent length on disk (0: none yet).
    pub fn apparent_len(&self) -> Result<u64, StorageError> {
        Ok(self.place.len(&self.rel)?.unwrap_or(0))
    }

    fn state(&self) -> MutexGuard<'_, Option<Arc<File>>> {
        // Whoever panicked holding it left an `Option` that is still valid.
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open file; created when `create`, else `None` while there is none.
    fn open(&self, create: bool) -> Result<Option<Arc<File>>, StorageError> {
        let mut state = self.state();
        if let Some(f) = state.as_ref() {
            return Ok(Some(f.clone()));
        }
        if !create && self.place.len(&self.rel)?.is_none() {
            return Ok(None);
        }
        let f = Arc::new(self.place.open_rw(&self.rel)?);
        *state = Some(f.clone());
        Ok(Some(f))
    }

    fn io(&self, needed: u64) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        move |e| StorageError::from_io(&self.path, needed, e)
    }

    /// `len` bytes at stream offset `offset` (zeros where nothing was written).
    pub fn read(&self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let mut buf = vec![0u8; len];
        let Some(f) = self.open(false)? else {
            return Ok(Bytes::from(buf));
        };
        let mut done = 0;
        while done < len {
            match f.read_at(&mut buf[done..], offset + done as u64) {
                // Past its end: the rest is a hole.
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(0)(e)),
            }
        }
        Ok(Bytes::from(buf))
    }

    /// Stores `data` at stream offset `offset`.
    pub fn write(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let f = self.open(true)?.ok_or(StorageError::ReadOnly)?;
        self.dirty.store(true, Ordering::Release);
        f.write_all_at(data, offset)
            .map_err(self.io(data.len() as u64))
    }

    /// Waits until what was written is on disk.
    pub fn sync(&self) -> Result<(), StorageError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let f = self.state().clone();
        if let Some(f) = f {
            if let Err(e) = f.sync_data() {
                self.dirty.store(true, Ordering::Release);
                return Err(self.io(0)(e));
            }
        }
        Ok(())
    }

    /// Copies what was written of `[offset, offset + len)` into `dest` (at 0 for `offset`),
    /// reading only the parts that hold data (`SEEK_DATA`/`SEEK_HOLE`; all of it where the
    /// filesystem cannot say).
    pub fn copy_out(&self, offset: u64, len: u64, dest: &File) -> Result<(), StorageError> {
        let Some(f) = self.open(false)? else {
            return Ok(());
        };
        let end = offset.saturating_add(len).min(self.apparent_len()?);
        let mut at = offset;
        let mut buf = vec![0u8; 1 << 20];
        while at < end {
            let data = match seek(&f, at, libc::SEEK_DATA) {
                Ok(d) => d,
                // No data from here on.
                Err(libc::ENXIO) => break,
                // The filesystem cannot say: copy all of it.
                Err(_) => at,
            };
            if data >= end {
                break;
            }
            let hole = seek(&f, data, libc::SEEK_HOLE).unwrap_or(end).min(end);
            let mut pos = data;
            while pos < hole {
                let n = usize::try_from(hole - pos).map_or(buf.len(), |n| n.min(buf.len()));
                f.read_exact_at(&mut buf[..n], pos).map_err(self.io(0))?;
                dest.write_all_at(&buf[..n], pos - offset)
                    .map_err(|e| StorageError::from_io(&self.path, n as u64, e))?;
                pos += n as u64;
            }
            at = hole.max(data + 1);
        }
        Ok(())
    }

    /// Gives back the disk blocks of `[offset, offset + len)` (best effort: they are only
    /// space, never read again once their file left the parts file).
    pub fn release(&self, offset: u64, len: u64) {
        let Ok(Some(f)) = self.open(false) else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(off), Ok(l)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len))
            else {
                return;
            };
            // SAFETY: plain syscall on a descriptor we own.
            let _ = unsafe {
                libc::fallocate(
                    f.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    off,
                    l,
                )
            };
        }
    }

    /// Deletes it (no file is kept in it any more, or the torrent's data is deleted).
    pub fn delete(&self) {
        self.state().take();
        if matches!(self.place.len(&self.rel), Ok(Some(_))) {
            self.place.delete(std::slice::from_ref(&self.rel));
        }
    }
}

/// `lseek(fd, off, whence)`, or its errno (`ENXIO`: no data, or no hole, past `off`).
fn seek(f: &File, off: u64, whence: libc::c_int) -> Result<u64, i32> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(off).map_err(|_| libc::EINVAL)?;
    // SAFETY: plain syscall on a descriptor we own; moves only its offset, which no one uses
    // (every read and write here is positioned).
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    u64::try_from(r).map_err(|_| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_read_as_zeros_and_only_data_is_copied_out() {
        let dir = tempfile::tempdir().unwrap();
        let place = DataPlace::below(dir.path(), "t").unwrap();
        let parts = PartsFile::new(place, PathBuf::from(".x.parts"));
        assert_eq!(&parts.read(10, 4).unwrap()[..], &[0; 4]);
        assert!(
            !dir.path().join(".x.parts").exists(),
            "a read creates nothing"
        );
        parts.write(5 << 20, b"hello").unwrap();
        parts.write((5 << 20) + 4096 * 300, b"world").unwrap();
        parts.sync().unwrap();
        assert_eq!(&parts.read((5 << 20) - 2, 7).unwrap()[..], b"\0\0hello");
        assert_eq!(
            &parts.read((5 << 20) + 4096 * 300, 9).unwrap()[..],
            b"world\0\0\0\0"
        );
        let out = dir.path().join("out");
        let dest = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&out)
            .unwrap();
        dest.set_len(4096 * 400).unwrap();
        parts.copy_out(5 << 20, 4096 * 400, &dest).unwrap();
        let got = std::fs::read(&out).unwrap();
        assert_eq!(&got[..5], b"hello");
        assert_eq!(&got[4096 * 300..4096 * 300 + 5], b"world");
        assert!(got[5..4096 * 300].iter().all(|&b| b == 0));
        parts.release(5 << 20, 4096 * 400);
        parts.delete();
        assert!(!dir.path().join(".x.parts").exists());
    }
}
