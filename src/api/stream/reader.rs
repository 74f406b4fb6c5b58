//! One stream reader: walks its byte range piece by piece, tells the client loop where it
//! reads (its window: the piece it reads and a few after, the picker's deadlines), waits —
//! bounded — for each piece to be verified, and reads it from storage on a blocking thread.
//! When it is dropped (done, or the HTTP client went away and hyper dropped the body) its
//! window is taken back, so an abandoned stream leaves no urgent pieces behind.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use super::PIECE_WAIT;
use crate::api::ApiFailure;
use crate::client::control::{ClientHandle, Command, ControlError, InfoHash};
use crate::client::stream::{StreamCommand, StreamError, StreamFile};
use crate::storage::{MmapStorage, Storage};
use crate::torrent::picker::ReaderId;

/// Bytes handed to hyper at once (zero-copy slices of the file's map).
const CHUNK: u64 = 256 << 10;
/// How far ahead of the reader pieces are urgent.
const READ_AHEAD: u64 = 4 << 20;
/// Most pieces in a window (with small pieces), at least one after the current.
const MAX_WINDOW: u64 = 64;

static NEXT_READER: AtomicU64 = AtomicU64::new(1);

/// Why a stream stopped after its headers were sent (the connection is cut).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("piece {piece} was not downloaded within {secs} s")]
    Timeout { piece: u32, secs: u64 },
    #[error("reading piece {piece}: {message}")]
    Storage { piece: u32, message: String },
}

impl From<ReadError> for ApiFailure {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Stream(s) => s.into(),
            e @ ReadError::Timeout { .. } => ApiFailure::new(
                axum::http::StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                e.to_string(),
            ),
            e @ ReadError::Storage { .. } => ControlError::Storage(e.to_string()).into(),
        }
    }
}

pub struct Reader {
    client: ClientHandle,
    info_hash: InfoHash,
    id: ReaderId,
    file: StreamFile,
    /// Next byte to send and the end of the range (file offsets).
    pos: u64,
    end: u64,
    /// The piece known to be verified, with the storage to read it from.
    ready: Option<(u32, Arc<MmapStorage>)>,
}

impl Reader {
    pub fn new(
        client: ClientHandle,
        info_hash: InfoHash,
        file: StreamFile,
        bytes: Range<u64>,
    ) -> Self {
        Self {
            client,
            info_hash,
            id: NEXT_READER.fetch_add(1, Ordering::Relaxed),
            file,
            pos: bytes.start,
            end: bytes.end,
            ready: None,
        }
    }

    /// The pieces from the one holding `pos` to a few ahead, within the range.
    fn window(&self, piece: u32) -> Range<u32> {
        let last = self.file.piece_of(self.end - 1);
        let ahead = (READ_AHEAD / self.file.piece_length.max(1)).clamp(1, MAX_WINDOW) as u32;
        piece..last.min(piece.saturating_add(ahead)) + 1
    }

    /// Waits until the piece holding `pos` is verified.
    pub async fn ready(&mut self) -> Result<(), ReadError> {
        let piece = self.file.piece_of(self.pos);
        if self.ready.as_ref().is_some_and(|(p, _)| *p == piece) {
            return Ok(());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.client.notify(Command::Stream(StreamCommand::Wait {
            info_hash: self.info_hash,
            reader: self.id,
            window: self.window(piece),
            reply: tx,
        }));
        let storage = match tokio::time::timeout(PIECE_WAIT, rx).await {
            Err(_) => {
                return Err(ReadError::Timeout {
                    piece,
                    secs: PIECE_WAIT.as_secs(),
                })
            }
            Ok(Err(_)) => return Err(StreamError::from(ControlError::ShuttingDown).into()),
            Ok(Ok(r)) => r?,
        };
        self.ready = Some((piece, storage));
        Ok(())
    }

    /// The next chunk of the range, `None` at its end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ReadError>> {
        if self.pos >= self.end {
            return None;
        }
        if let Err(e) = self.ready().await {
            return Some(Err(e));
        }
        let (piece, storage) = self.ready.clone()?;
        let (begin, len) = self.file.span_in_piece(piece, self.pos, self.end);
        let len = len.min(CHUNK) as u32;
        // A map's page faults may wait for the disk: not on the API's worker threads.
        let read = tokio::task::spawn_blocking(move || storage.read_block(piece, begin, len)).await;
        let data = match read {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return Some(Err(ReadError::Storage {
                    piece,
                    message: e.to_string(),
                }))
            }
            Err(e) => {
                return Some(Err(ReadError::Storage {
                    piece,
                    message: e.to_string(),
                }))
            }
        };
        self.pos += u64::from(len);
        Some(Ok(data))
    }

    /// The body: chunks until the range is sent; an error ends it (hyper cuts the
    /// connection, so the client sees a short body, never wrong bytes).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, ReadError>> + Send {
        futures_util::stream::unfold(self, |mut r| async move {
            let item = r.next_chunk().await?;
            if let Err(e) = &item {
                tracing::debug!("stream of {} ended: {e}", r.file.path);
                r.pos = r.end; // nothing more after an error
            }
            Some((item, r))
        })
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.client.notify(Command::Stream(StreamCommand::Close {
            info_hash: self.info_hash,
            reader: self.id,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::control::channel;

    fn file() -> StreamFile {
        StreamFile {
            path: "m.mkv".into(),
            offset: 1000,
            length: 10 << 20,
            piece_length: 1 << 20,
            skipped: false,
        }
    }

    #[tokio::test]
    async fn a_reader_whose_client_goes_away_takes_its_window_back() {
        let (handle, mut side) = channel();
        let ih = [7u8; 20];
        // Bytes 3 MiB .. 5 MiB of the file: pieces 3 to 5 of the torrent (it starts at 1000).
        let reader = Reader::new(handle, ih, file(), (3 << 20)..(5 << 20));
        let id = reader.id;
        let task = tokio::spawn(async move {
            let mut reader = reader;
            reader.ready().await
        });
        let Some(Command::Stream(StreamCommand::Wait {
            reader,
            window,
            reply,
            ..
        })) = side.commands.recv().await
        else {
            panic!("the reader asks for its first piece");
        };
        assert_eq!(
            (reader, window),
            (id, 3..6),
            "its window stays within its range"
        );
        // The HTTP client went away: hyper drops the body, and with it the reader.
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let Some(Command::Stream(StreamCommand::Close { reader, info_hash })) =
            side.commands.recv().await
        else {
            panic!("a dropped reader closes its window");
        };
        assert_eq!((reader, info_hash), (id, ih));
        assert!(reply.is_closed(), "the loop sees nobody waits any more");
    }
}
