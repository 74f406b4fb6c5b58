//! The loop's side of streaming (see `client::stream`): opening a file for a reader, the
//! readers' windows as the picker's deadlines, and the readers waiting for a piece, answered
//! once it is verified (checked after every loop turn while anyone waits).

use std::ops::Range;

use super::*;
use crate::client::control::FilePriority;
use crate::client::stream::{StreamCommand, StreamError, StreamFile};
use crate::torrent::picker::ReaderId;

/// A reader waiting for a piece.
pub(super) struct Waiter {
    info_hash: InfoHash,
    piece: u32,
    reply: tokio::sync::oneshot::Sender<Result<Arc<MmapStorage>, StreamError>>,
}

impl Client {
    pub(super) fn stream_command(&mut self, cmd: StreamCommand) {
        match cmd {
            StreamCommand::Open {
                info_hash,
                file,
                want,
                reply,
            } => {
                let r = self.open_stream(&info_hash, file, want);
                let _ = reply.send(r);
            }
            StreamCommand::Wait {
                info_hash,
                reader,
                window,
                reply,
            } => {
                let piece = window.start;
                self.set_window(&info_hash, reader, window);
                self.stream_waiters.push(Waiter {
                    info_hash,
                    piece,
                    reply,
                });
                self.wake_streams();
            }
            StreamCommand::Close { info_hash, reader } => {
                self.set_window(&info_hash, reader, 0..0);
            }
        }
    }

    fn set_window(&mut self, ih: &InfoHash, reader: ReaderId, window: Range<u32>) {
        if let Some(l) = self.torrents.get_mut(ih).and_then(|t| t.phase.live_mut()) {
            l.app.session.set_stream_window(reader, window);
        }
    }

    /// Where file `index` lies; with `want`, a skipped file is wanted again (saved so).
    fn open_stream(
        &mut self,
        ih: &InfoHash,
        index: usize,
        want: bool,
    ) -> Result<StreamFile, StreamError> {
        let t = self
            .torrents
            .get_mut(ih)
            .ok_or_else(|| ControlError::UnknownTorrent(info_hash_hex(ih)))?;
        let meta = t.meta().cloned().ok_or(StreamError::NoMetadata)?;
        let (_, f) = crate::client::wanted::visible_files(&meta)
            .nth(index)
            .ok_or_else(|| StreamError::NoSuchFile {
                index,
                count: crate::client::wanted::visible_count(&meta),
            })?;
        let skipped = t.settings.files.priority(index) == FilePriority::Skip;
        let file = StreamFile {
            path: f.path.to_string_lossy().into_owned(),
            offset: f.offset,
            length: f.length,
            piece_length: u64::from(meta.piece_length),
            skipped: skipped && !want,
        };
        if skipped && want {
            t.set_file_priorities(&[(index, FilePriority::Normal)])?;
            tracing::info!(torrent = %t.name(), file = %file.path, "streamed: no longer skipped");
            self.save_torrent_list();
            self.publish_due = true;
        }
        Ok(file)
    }

    /// Answers the readers whose piece is verified (or can no longer come); drops those whose
    /// reader went away.
    pub(super) fn wake_streams(&mut self) {
        if self.stream_waiters.is_empty() {
            return;
        }
        for w in std::mem::take(&mut self.stream_waiters) {
            if w.reply.is_closed() {
                continue;
            }
            let outcome = match self.torrents.get(&w.info_hash) {
                None => Some(Err(ControlError::UnknownTorrent(info_hash_hex(
                    &w.info_hash,
                ))
                .into())),
                Some(t) => piece_outcome(t, w.piece),
            };
            match outcome {
                Some(r) => drop(w.reply.send(r)),
                None => self.stream_waiters.push(w),
            }
        }
    }
}

/// What a reader waiting for `piece` of `t` gets now: the storage once the piece is verified,
/// an error when it cannot come, `None` while it may still.
fn piece_outcome(t: &Torrent, piece: u32) -> Option<Result<Arc<MmapStorage>, StreamError>> {
    match &t.phase {
        Phase::Live(l) => {
            let s = &l.app.session;
            if s.have().get(piece) {
                Some(Ok(l.data.storage.clone()))
            } else if let Some(why) = l.storage_failure() {
                Some(Err(StreamError::Failed(why.to_owned())))
            } else if t.settings.paused {
                Some(Err(StreamError::Paused(piece)))
            } else if !s.is_wanted(piece) {
                Some(Err(StreamError::Skipped(piece)))
            } else {
                None
            }
        }
        // Its pieces are known once the check is done.
        Phase::Checking(_) => None,
        Phase::Magnet(_) | Phase::Fetched(_) => Some(Err(StreamError::NoMetadata)),
    }
}
