//! One web seed as the torrent session sees it: a peer that has every piece, on a lane of its
//! own. Sans-IO. The session's bytes for the lane come in (handshake, requests, cancels); wire
//! bytes for the session go out (handshake, bitfield, unchoke, pieces, choke); in between,
//! runs of requested blocks become HTTP range jobs ([`Job`]) that the I/O side performs and
//! whose body bytes come back here to be cut into `piece` messages.
//!
//! So web seed data takes the same path as any peer's: the picker chooses what to ask for
//! (rarest first, over every source), the SHA-1 check decides whether it is kept, and the
//! smart ban convicts a seed that lies (the session then closes its lane, see `lanes`).
//!
//! A failed job backs the seed off: it chokes the session (whose outstanding requests go back
//! to the picker for other sources at once), waits a growing delay, then unchokes again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::response::{backoff, FetchError};
use crate::torrent::meta::Metainfo;
use crate::torrent::picker::BlockRef;
use crate::torrent::web_seeds::{Span, WebLayout};
use crate::wire::{
    encode_bytes, Bitfield, DecoderLimits, ExtensionHandshake, Handshake, Message, MessageDecoder,
};

/// Requests the session may have outstanding on a web seed (BEP 10 `reqq`): 64 blocks, 1 MiB.
/// Its share of a download is bounded by this and by its speed.
pub const REQQ: u32 = 64;
/// HTTP requests in flight per web seed.
pub const MAX_JOBS: usize = 2;
/// Bytes asked for in one job (contiguous requested blocks, across pieces and files).
pub const MAX_JOB_BYTES: u64 = 512 * 1024;

/// One HTTP job: the byte range `[offset, offset + len)` of the torrent, as spans on the web
/// server (one request per span, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: u64,
    pub spans: Vec<Span>,
}

/// Where a web seed is, as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedState {
    /// Waiting for the session to ask for something.
    Idle,
    /// Requests in flight.
    Downloading,
    /// Failed; asked again after the delay.
    BackingOff,
    /// Not used again for this torrent (it sent data that failed the hash check).
    Dropped,
}

struct Running {
    id: u64,
    /// The blocks it covers, in stream order; the front one is being filled.
    blocks: VecDeque<BlockRef>,
    buf: BytesMut,
}

pub struct WebSeed {
    url: String,
    layout: Arc<WebLayout>,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    num_pieces: u32,
    piece_length: u32,
    total_length: u64,
    decoder: MessageDecoder,
    handshake_seen: bool,
    /// Wire bytes for the session.
    out: VecDeque<Bytes>,
    /// What we last told the session.
    choking: bool,
    queue: VecDeque<BlockRef>,
    jobs: Vec<Running>,
    next_job: u64,
    /// Jobs the I/O side should stop (the seed failed or was dropped).
    aborted: Vec<u64>,
    state: SeedState,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    bytes_down: u64,
}

impl WebSeed {
    /// A web seed at `url` (checked, see `torrent::web_seeds`) for `meta`.
    pub fn new(url: String, meta: &Metainfo, layout: Arc<WebLayout>) -> Self {
        Self {
            peer_id: peer_id_for(&url),
            url,
            layout,
            info_hash: meta.info_hash,
            num_pieces: meta.num_pieces(),
            piece_length: meta.piece_length,
            total_length: meta.total_length,
            decoder: MessageDecoder::new(DecoderLimits::for_torrent(meta.num_pieces())),
            handshake_seen: false,
            out: VecDeque::new(),
            choking: true,
            queue: VecDeque::new(),
            jobs: Vec::new(),
            next_job: 1,
            aborted: Vec::new(),
            state: SeedState::Idle,
            failures: 0,
            retry_at: None,
            last_error: None,
            bytes_down: 0,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn state(&self) -> SeedState {
        self.state
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Bytes of piece data it delivered.
    pub fn bytes_down(&self) -> u64 {
        self.bytes_down
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When a backing-off seed is asked again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// A fresh lane (the session closed the last one for a reason other than a ban): the
    /// wire conversation starts again; status and counters stay.
    pub fn reset_wire(&mut self) {
        self.decoder = MessageDecoder::new(DecoderLimits::for_torrent(self.num_pieces));
        self.handshake_seen = false;
        self.out.clear();
        self.choking = true;
        self.queue.clear();
        self.aborted.extend(self.jobs.drain(..).map(|j| j.id));
        if self.state == SeedState::Downloading {
            self.state = SeedState::Idle;
        }
    }

    /// Never used again for this torrent.
    pub fn drop_for(&mut self, why: String) {
        self.state = SeedState::Dropped;
        self.last_error = Some(why);
        self.retry_at = None;
        self.queue.clear();
        self.aborted.extend(self.jobs.drain(..).map(|j| j.id));
    }

    /// Bytes the session wrote on the lane.
    pub fn on_session_bytes(&mut self, data: &[u8]) {
        self.decoder.push(data);
        if !self.handshake_seen {
            match self.decoder.next_handshake() {
                Ok(Some(_)) => self.greet(),
                Ok(None) | Err(_) => return,
            }
        }
        while let Ok(Some(msg)) = self.decoder.next_message() {
            self.on_message(msg);
        }
    }

    fn greet(&mut self) {
        self.handshake_seen = true;
        // No fast extension: a choke then drops the session's outstanding requests at once.
        let mut hs = Handshake::new(self.info_hash, self.peer_id);
        hs.set_fast(false);
        self.out.push_back(Bytes::copy_from_slice(&hs.to_bytes()));
        let ext = ExtensionHandshake {
            v: Some("web seed (BEP 19)".into()),
            reqq: Some(REQQ),
            ..Default::default()
        };
        if let Ok(m) = ext.to_message() {
            self.send(&m);
        }
        self.send(&Message::bitfield(&Bitfield::full(self.num_pieces)));
        if matches!(self.state, SeedState::Idle | SeedState::Downloading) {
            self.set_choking(false);
        }
    }

    fn on_message(&mut self, msg: Message) {
        match msg {
            Message::Request {
                index,
                begin,
                length,
            } if !self.choking => {
                let b = BlockRef {
                    piece: index,
                    begin,
                    len: length,
                };
                if self.valid(&b) && self.queue.len() < 4 * REQQ as usize {
                    self.queue.push_back(b);
                }
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => self.queue.retain(|b| {
                *b != BlockRef {
                    piece: index,
                    begin,
                    len: length,
                }
            }),
            Message::NotInterested => self.queue.clear(),
            _ => {}
        }
    }

    fn valid(&self, b: &BlockRef) -> bool {
        b.piece < self.num_pieces
            && b.len > 0
            && u64::from(b.begin) + u64::from(b.len) <= u64::from(self.piece_len(b.piece))
    }

    fn piece_len(&self, piece: u32) -> u32 {
        let start = u64::from(piece) * u64::from(self.piece_length);
        self.total_length
            .saturating_sub(start)
            .min(u64::from(self.piece_length)) as u32
    }

    fn offset_of(&self, b: &BlockRef) -> u64 {
        u64::from(b.piece) * u64::from(self.piece_length) + u64::from(b.begin)
    }

    fn send(&mut self, m: &Message) {
        self.out.push_back(encode_bytes(m));
    }

    fn set_choking(&mut self, choke: bool) {
        if self.choking != choke && self.handshake_seen {
            self.choking = choke;
            self.send(if choke {
                &Message::Choke
            } else {
                &Message::Unchoke
            });
        }
    }

    /// The next wire bytes for the session.
    pub fn poll_wire(&mut self) -> Option<Bytes> {
        self.out.pop_front()
    }

    /// Jobs the I/O side should stop.
    pub fn take_aborted(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.aborted)
    }

    /// Ends a back-off whose time came.
    pub fn tick(&mut self, now: Instant) {
        if self.state == SeedState::BackingOff && self.retry_at.is_some_and(|t| now >= t) {
            self.state = SeedState::Idle;
            self.retry_at = None;
            self.set_choking(false);
        }
    }

    /// The next HTTP job: the longest run of contiguous requested blocks from the first one
    /// waiting, up to [`MAX_JOB_BYTES`].
    pub fn poll_job(&mut self) -> Option<Job> {
        if self.choking || self.jobs.len() >= MAX_JOBS {
            return None;
        }
        let first = self.queue.pop_front()?;
        let start = self.offset_of(&first);
        let mut end = start + u64::from(first.len);
        let mut blocks = VecDeque::from([first]);
        while end - start < MAX_JOB_BYTES {
            let next = self.queue.iter().position(|b| self.offset_of(b) == end);
            let Some(i) = next else { break };
            let Some(b) = self.queue.remove(i) else { break };
            end += u64::from(b.len);
            blocks.push_back(b);
        }
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.push(Running {
            id,
            blocks,
            buf: BytesMut::new(),
        });
        self.state = SeedState::Downloading;
        Some(Job {
            id,
            spans: self.layout.spans(&self.url, start, end - start),
        })
    }

    /// Body bytes of job `id`, in order across its spans (padding spans as zeros). Every
    /// whole block goes to the session as a `piece` message.
    pub fn on_body(&mut self, id: u64, data: &[u8]) {
        let Some(j) = self.jobs.iter_mut().find(|j| j.id == id) else {
            return;
        };
        j.buf.extend_from_slice(data);
        let mut done = Vec::new();
        while let Some(b) = j.blocks.front() {
            if j.buf.len() < b.len as usize {
                break;
            }
            let data = j.buf.split_to(b.len as usize).freeze();
            done.push((*b, data));
            j.blocks.pop_front();
        }
        for (b, data) in done {
            self.bytes_down += u64::from(b.len);
            self.send(&Message::Piece {
                index: b.piece,
                begin: b.begin,
                data,
            });
        }
    }

    /// Job `id` ended. A failure backs the seed off (a growing delay) and chokes the session,
    /// which gives its requests to other sources; so does a body that ended early.
    pub fn on_job_done(&mut self, id: u64, result: Result<(), FetchError>, now: Instant) {
        let Some(i) = self.jobs.iter().position(|j| j.id == id) else {
            return;
        };
        let j = self.jobs.remove(i);
        let result = match result {
            Ok(()) if !j.blocks.is_empty() => Err(FetchError::ShortBody {
                got: 0,
                want: j.blocks.iter().map(|b| u64::from(b.len)).sum(),
            }),
            r => r,
        };
        match result {
            Ok(()) => {
                self.failures = 0;
                if self.jobs.is_empty() && self.state == SeedState::Downloading {
                    self.state = SeedState::Idle;
                }
            }
            Err(e) => {
                if self.state == SeedState::Dropped {
                    return;
                }
                self.failures += 1;
                let wait = backoff(self.failures);
                tracing::warn!(url = %self.url, "web seed failed: {e}; next try in {wait:?}");
                self.last_error = Some(e.to_string());
                self.state = SeedState::BackingOff;
                self.retry_at = Some(now + wait);
                self.queue.clear();
                self.aborted.extend(self.jobs.drain(..).map(|j| j.id));
                self.set_choking(true);
            }
        }
    }

    /// When it next needs [`WebSeed::tick`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retry_at
    }

    /// How long until the next try, for the status.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.retry_at.map(|t| t.saturating_duration_since(now))
    }
}

/// A peer id per URL (so the smart ban remembers a lying seed), in the `-WS…` style of
/// client ids.
fn peer_id_for(url: &str) -> [u8; 20] {
    let h = crate::storage::hash::sha1(url.as_bytes());
    let mut id = [0u8; 20];
    id[..4].copy_from_slice(b"-WS-");
    id[4..].copy_from_slice(&h[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MessageDecoder;

    /// Two pieces of 32 KiB, one file "f.bin".
    fn meta() -> Metainfo {
        let mut info = b"d6:lengthi65536e4:name5:f.bin12:piece lengthi32768e6:pieces40:".to_vec();
        info.extend_from_slice(&[0u8; 40]);
        info.push(b'e');
        Metainfo::from_info_bytes(&info).unwrap()
    }

    fn seed() -> WebSeed {
        let m = meta();
        let layout = Arc::new(WebLayout::new(&m));
        WebSeed::new("http://h.example/f.bin".into(), &m, layout)
    }

    /// What the session reads (messages; the handshake was read in `started`).
    fn read(s: &mut WebSeed, dec: &mut MessageDecoder) -> Vec<Message> {
        while let Some(b) = s.poll_wire() {
            dec.push(&b);
        }
        let mut v = Vec::new();
        while let Ok(Some(m)) = dec.next_message() {
            v.push(m);
        }
        v
    }

    fn request(s: &mut WebSeed, piece: u32, begin: u32) {
        let m = Message::Request {
            index: piece,
            begin,
            length: 16384,
        };
        s.on_session_bytes(&encode_bytes(&m));
    }

    fn started() -> (WebSeed, MessageDecoder) {
        let mut s = seed();
        let hs = Handshake::new(s.info_hash, [9; 20]);
        s.on_session_bytes(&hs.to_bytes());
        let mut dec = MessageDecoder::new(DecoderLimits::for_torrent(2));
        dec.push(&s.poll_wire().unwrap());
        let theirs = dec.next_handshake().unwrap().unwrap();
        assert!(!theirs.supports_fast() && theirs.supports_extensions());
        let msgs = read(&mut s, &mut dec);
        assert!(matches!(msgs[0], Message::Extended { .. }));
        assert!(matches!(&msgs[1], Message::Bitfield(b) if b[0] == 0b1100_0000));
        assert_eq!(msgs[2], Message::Unchoke);
        (s, dec)
    }

    #[test]
    fn contiguous_requests_become_one_range_and_the_body_becomes_pieces() {
        let (mut s, mut dec) = started();
        // Blocks 1 and 2 of the stream, out of order, and a lone block 0 of piece 1 after a
        // cancelled one.
        request(&mut s, 0, 16384);
        request(&mut s, 1, 0);
        let job = s.poll_job().expect("a job");
        assert_eq!(job.spans.len(), 1);
        assert_eq!(
            (job.spans[0].start, job.spans[0].len),
            (16384, 32768),
            "the two blocks are contiguous across the piece boundary"
        );
        assert_eq!(s.state(), SeedState::Downloading);
        s.on_body(job.id, &[7u8; 20000]);
        let msgs = read(&mut s, &mut dec);
        assert_eq!(msgs.len(), 1, "one whole block so far");
        assert!(
            matches!(&msgs[0], Message::Piece { index: 0, begin: 16384, data } if data.len() == 16384)
        );
        s.on_body(job.id, &[7u8; 32768 - 20000]);
        let msgs = read(&mut s, &mut dec);
        assert!(matches!(
            &msgs[0],
            Message::Piece {
                index: 1,
                begin: 0,
                ..
            }
        ));
        s.on_job_done(job.id, Ok(()), Instant::now());
        assert_eq!(s.state(), SeedState::Idle);
        assert_eq!(s.bytes_down(), 32768);
    }

    #[test]
    fn a_cancelled_request_is_not_fetched() {
        let (mut s, _dec) = started();
        request(&mut s, 1, 0);
        let cancel = Message::Cancel {
            index: 1,
            begin: 0,
            length: 16384,
        };
        s.on_session_bytes(&encode_bytes(&cancel));
        assert_eq!(s.poll_job(), None);
    }

    #[test]
    fn a_failure_chokes_backs_off_with_growing_delays_and_then_unchokes() {
        let (mut s, mut dec) = started();
        let t0 = Instant::now();
        request(&mut s, 0, 0);
        let job = s.poll_job().unwrap();
        s.on_job_done(job.id, Err(FetchError::ServerError(500)), t0);
        assert_eq!(s.state(), SeedState::BackingOff);
        assert_eq!(s.last_error(), Some("server error (HTTP 500)"));
        assert_eq!(read(&mut s, &mut dec), vec![Message::Choke]);
        // Requests while choked are not taken.
        request(&mut s, 0, 0);
        assert_eq!(s.poll_job(), None);
        let first = s.retry_in(t0).unwrap();
        s.tick(t0 + first - Duration::from_millis(1));
        assert_eq!(s.state(), SeedState::BackingOff);
        s.tick(t0 + first);
        assert_eq!(s.state(), SeedState::Idle);
        assert_eq!(read(&mut s, &mut dec), vec![Message::Unchoke]);
        // A body that ends early is a failure too, and the delay grows.
        request(&mut s, 0, 0);
        let job = s.poll_job().unwrap();
        s.on_body(job.id, &[1u8; 100]);
        let t1 = t0 + first;
        s.on_job_done(job.id, Ok(()), t1);
        assert!(s.last_error().unwrap().contains("body ended"));
        assert!(s.retry_in(t1).unwrap() > first);
        assert_eq!(s.failures(), 2);
    }

    #[test]
    fn a_dropped_seed_stops_its_jobs_and_stays_dropped() {
        let (mut s, _dec) = started();
        request(&mut s, 0, 0);
        let job = s.poll_job().unwrap();
        s.drop_for("sent data that failed the hash check".into());
        assert_eq!(s.take_aborted(), vec![job.id]);
        s.tick(Instant::now() + Duration::from_secs(3600));
        assert_eq!(s.state(), SeedState::Dropped);
        s.on_job_done(job.id, Err(FetchError::NotFound), Instant::now());
        assert_eq!(s.last_error(), Some("sent data that failed the hash check"));
    }
}
