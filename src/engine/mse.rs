//! MSE/PE on a TCP connection: runs [`bt_mse`]'s handshake over a tokio-uring stream before
//! the BitTorrent handshake (dialling and answering), under the client's [`Policy`].
//!
//! A stalled or hostile peer costs little: the whole exchange has [`HANDSHAKE_DEADLINE`] (a
//! watchdog shuts the socket down, so the pending read completes rather than being abandoned:
//! tokio-uring must never drop an operation in flight), reads are [`READ_CHUNK`] bytes, and the
//! state machine bounds its pads and sync windows.

use std::cell::Cell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use bt_mse::{
    classify_incoming, CryptoSet, FirstBytes, Initiator, MseError, Policy, Progress, Rc4Stream,
    Responder, StreamKeys,
};
use tokio_uring::net::TcpStream;

/// The most a handshake (plain classification or MSE) may take.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes read at once while handshaking.
const READ_CHUNK: usize = 4096;

/// Why a connection was refused or dropped before the BitTorrent handshake.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error(transparent)]
    Mse(#[from] MseError),
    #[error("plain BitTorrent handshake refused: encryption is required")]
    PlaintextRefused,
    #[error("MSE handshake refused: encryption is disabled")]
    EncryptedRefused,
    #[error("handshake not finished within {0:?}")]
    Deadline(Duration),
    #[error("connection closed during the encryption handshake")]
    Closed,
    #[error("I/O error during the encryption handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The TCP connect itself failed (before any handshake).
    #[error("{0}")]
    Connect(std::io::Error),
}

/// How a connection carries the BitTorrent protocol once the handshake is over.
pub struct Negotiated {
    /// RC4 keystreams (what we send, what we receive), None for plaintext.
    pub streams: Option<(Rc4Stream, Rc4Stream)>,
    /// Plain bytes already received that belong to the BitTorrent stream.
    pub payload: Vec<u8>,
}

impl Negotiated {
    pub fn plain() -> Self {
        Self {
            streams: None,
            payload: Vec::new(),
        }
    }
}

/// Shuts a stream down at its deadline unless the handshake ended (the watchdog dropped)
/// first.
pub struct Watchdog {
    done: Rc<Cell<bool>>,
    fired: Rc<Cell<bool>>,
    timer: tokio::task::JoinHandle<()>,
}

impl Watchdog {
    /// Drop it before the stream: the descriptor must still be the stream's when it fires.
    pub fn start(fd: RawFd, after: Duration) -> Self {
        let done = Rc::new(Cell::new(false));
        let fired = Rc::new(Cell::new(false));
        let (d, f) = (done.clone(), fired.clone());
        let timer = tokio_uring::spawn(async move {
            tokio::time::sleep(after).await;
            if !d.get() {
                f.set(true);
                // SAFETY: the watchdog is alive, so the stream is still open; no memory passed.
                unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            }
        });
        Self { done, fired, timer }
    }

    /// Whether the deadline passed (and the stream was shut down).
    pub fn fired(&self) -> bool {
        self.fired.get()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.set(true);
        self.timer.abort();
    }
}

/// Runs `handshake` on `stream` within [`HANDSHAKE_DEADLINE`].
async fn with_deadline<T>(
    stream: &TcpStream,
    handshake: impl std::future::Future<Output = Result<T, EncryptionError>>,
) -> Result<T, EncryptionError> {
    let dog = Watchdog::start(stream.as_raw_fd(), HANDSHAKE_DEADLINE);
    let r = handshake.await;
    if dog.fired() {
        return Err(EncryptionError::Deadline(HANDSHAKE_DEADLINE));
    }
    r
}

/// Reads what the peer sends next (empty: closed).
async fn read_some(stream: &TcpStream) -> Result<Vec<u8>, EncryptionError> {
    let (res, mut buf) = stream.read(Vec::with_capacity(READ_CHUNK)).await;
    match res? {
        0 => Err(EncryptionError::Closed),
        n => {
            buf.truncate(n);
            Ok(buf)
        }
    }
}

async fn write(stream: &TcpStream, data: Vec<u8>) -> Result<(), EncryptionError> {
    if data.is_empty() {
        return Ok(());
    }
    stream.write_all(data).await.0?;
    Ok(())
}

/// The dialling side: an MSE handshake for torrent `skey` offering `provide`.
pub async fn dial(
    stream: &TcpStream,
    skey: [u8; 20],
    provide: CryptoSet,
) -> Result<Negotiated, EncryptionError> {
    with_deadline(stream, async {
        let mut a = Initiator::new(skey, provide, Vec::new(), &mut rand::rng())?;
        loop {
            write(stream, a.take_output()).await?;
            let data = read_some(stream).await?;
            if a.feed(&data)? == Progress::Done {
                break;
            }
        }
        write(stream, a.take_output()).await?;
        let done = a.finish().ok_or(MseError::Failed)?;
        Ok(Negotiated {
            streams: done.streams,
            payload: done.payload,
        })
    })
    .await
}

/// The answering side: a plain BitTorrent handshake or MSE, as the first bytes and `policy`
/// say; `torrents` identifies an MSE stream.
pub async fn answer(
    stream: &TcpStream,
    policy: Policy,
    torrents: &impl StreamKeys,
) -> Result<Negotiated, EncryptionError> {
    with_deadline(stream, async {
        let mut first = Vec::new();
        loop {
            match classify_incoming(&first) {
                FirstBytes::NeedMore => first.extend(read_some(stream).await?),
                FirstBytes::Plaintext if policy.accepts_plaintext() => {
                    return Ok(Negotiated {
                        streams: None,
                        payload: first,
                    })
                }
                FirstBytes::Plaintext => return Err(EncryptionError::PlaintextRefused),
                FirstBytes::Encrypted if !policy.accepts_encrypted() => {
                    return Err(EncryptionError::EncryptedRefused)
                }
                FirstBytes::Encrypted => break,
            }
        }
        let mut b = Responder::new(policy.allowed(), &mut rand::rng());
        let mut progress = b.feed(&first, torrents)?;
        while progress == Progress::NeedMore {
            write(stream, b.take_output()).await?;
            progress = b.feed(&read_some(stream).await?, torrents)?;
        }
        write(stream, b.take_output()).await?;
        let done = b.finish().ok_or(MseError::Failed)?;
        Ok(Negotiated {
            streams: done.streams,
            payload: done.payload,
        })
    })
    .await
}
