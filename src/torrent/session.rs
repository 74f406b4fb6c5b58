//! One torrent: its peers and their lanes, request scheduling, serving, choking, verification.
//!
//! Sans-IO: the driver hands in lane bytes, lane closures, verification results and the time;
//! it takes out bytes to write per lane and actions (close a lane, done). A lane is one byte
//! stream speaking the BitTorrent wire protocol (a QUIC stream on one SCION path, or a TCP
//! connection). Lanes whose handshakes carry the same peer id are one peer: one bitfield, one
//! choke state, and the scheduler spreads that peer's blocks over all of its lanes.

use rustc_hash::FxHashMap;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bt_ext::PexFlags;
use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;

use crate::metrics::{self, RateEstimator};
use crate::scion::PeerAddr;
use crate::storage::Storage;
use crate::torrent::choker::{self, Candidate, Choker};
use crate::torrent::close::CloseReason;
use crate::torrent::fair_share::{fair_shares, LaneRoom};
use crate::torrent::meta::Metainfo;
use crate::torrent::pex::Pex;
use crate::torrent::picker::{BlockOutcome, BlockRef, Picker, BLOCK_LEN};
use crate::torrent::rate::Limiter;
use crate::torrent::smart_ban::SmartBan;
use crate::wire::{
    encode_bytes, encode_piece_header, Bitfield, DecoderLimits, ExtensionHandshake, Handshake,
    Message, MessageDecoder, EXTENSION_HANDSHAKE_ID, UT_METADATA_ID, UT_PEX_ID,
};

pub type LaneId = u64;
pub type PeerId = [u8; 20];

/// Largest block a remote may request (BEP 3 clients use 16 KiB; some ask for up to 128 KiB).
const MAX_REQUEST_LEN: u32 = 128 * 1024;
/// Requests a remote may queue on one lane before we refuse more.
const MAX_QUEUED_REQUESTS: usize = 4096;
/// Bytes of piece data materialised into a lane's outbox ahead of the transport.
const OUTBOX_TARGET: usize = 4 << 20;
/// DHT nodes from `port` messages kept until the client collects them.
const MAX_DHT_NODES: usize = 64;
/// How often the session looks whether a peer exchange message is due.
const PEX_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Messages a lane may have waiting unread before a flood of requests (each refused with a
/// message) closes it; a full outbox of piece data is about 2 * OUTBOX_TARGET / 16 KiB = 512.
const MAX_UNREAD_MESSAGES: usize = 2048;
/// Requests a lane we never unchoked may send before it is closed (a well-behaved peer sends
/// none: we give no allowed-fast pieces). libtorrent disconnects after 300.
const MAX_REQUESTS_NEVER_UNCHOKED: u32 = 512;
/// The same once it was unchoked: it may have our whole advertised queue (`reqq`) in flight
/// when our choke reaches it.
const MAX_REQUESTS_WHILE_CHOKED: u32 = MAX_QUEUED_REQUESTS as u32 + 512;
const MIN_PIPELINE: usize = 16;
const MAX_PIPELINE: usize = 4096;
/// Lanes without an RTT estimate keep this much data requested ahead.
const REQUEST_QUEUE_TIME: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub peer_id: PeerId,
    pub client_name: String,
    /// Peers unchoked at once (regular + one optimistic slot).
    pub upload_slots: usize,
    /// A lane with requests outstanding and no block for this long is stalled: its requests
    /// move to the other lanes.
    pub stall_timeout: Duration,
    /// Serve requests (a leecher also uploads to other leechers).
    pub upload: bool,
    /// The UDP port of our DHT node, if one runs: advertised in the handshake and sent to
    /// peers that run one too (BEP 5 `port`).
    pub dht_port: Option<u16>,
    /// The same for our DHT over SCION (sent to SCION peers instead).
    pub dht_scion_port: Option<u16>,
    /// Our TCP listen port, told to peers in the extension handshake (`p`), so that a peer we
    /// dialled can name us in its peer exchange.
    pub tcp_port: Option<u16>,
    /// Most lanes of one peer we upload on (`-numPaths`, the original client's per-leecher
    /// path limit); its other lanes stay open but choked. None: no cap.
    pub max_served_lanes: Option<usize>,
}

impl SessionConfig {
    pub fn new(peer_id: PeerId) -> Self {
        Self {
            peer_id,
            client_name: format!("bittorrent-over-scion {}", env!("CARGO_PKG_VERSION")),
            upload_slots: 8,
            stall_timeout: Duration::from_secs(3),
            upload: true,
            dht_port: None,
            dht_scion_port: None,
            tcp_port: None,
            max_served_lanes: None,
        }
    }
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CloseLane {
        lane: LaneId,
        reason: CloseReason,
    },
    /// Every piece is verified.
    Complete,
}

/// Checks pieces off the event loop (a worker pool in production, inline in tests).
pub trait Verifier {
    /// Queue piece `index` for hashing.
    fn submit(&mut self, index: u32);
    /// A finished check: (piece, hash matched, time spent hashing).
    fn poll(&mut self) -> Option<(u32, bool, Duration)>;
    /// Checks submitted whose result was not polled yet (0 if unknown).
    fn pending(&self) -> usize {
        0
    }
}

/// Per-lane numbers for the summary and the live display.
#[derive(Debug, Clone)]
pub struct LaneStats {
    pub label: String,
    /// The remote's address, once the transport proved it (for per-connection metrics).
    pub peer: Option<PeerAddr>,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub blocks_down: u64,
    pub block_latency: Histogram<u64>,
    pub opened: Instant,
    pub closed: Option<(Instant, CloseReason)>,
}

struct Lane {
    peer: Option<PeerId>,
    decoder: MessageDecoder,
    outbound: bool,
    handshake_seen: bool,
    fast: bool,
    extended: bool,
    outbox: VecDeque<Bytes>,
    outbox_bytes: usize,
    /// Our requests on this lane and when each was sent.
    outstanding: FxHashMap<BlockRef, Instant>,
    peer_choking: bool,
    am_interested: bool,
    /// What we last told the remote on this lane.
    am_choking: bool,
    /// Whether we ever unchoked it, and requests it sent since our last choke (see
    /// `MAX_REQUESTS_WHILE_CHOKED`).
    ever_unchoked: bool,
    requests_while_choked: u32,
    /// What the transport proves about the remote (see [`Session::set_lane_remote`]).
    origin: Option<[u8; 20]>,
    /// Links of the lane's path (see [`Session::set_lane_links`]); empty if unknown.
    links: Vec<u64>,
    /// Seeding fairness: whether this lane may be unchoked (see `admit_lanes`).
    admitted: bool,
    /// Remote's requests waiting to be served.
    requests_in: VecDeque<BlockRef>,
    last_block: Instant,
    /// When requests were last added (a count of `fill_requests` rounds): turns for a
    /// rate-limited budget (see `fair_share`).
    last_asked: u64,
    stalled: bool,
    rate: RateEstimator,
    /// The transport's RTT, if it has one (QUIC); TCP lanes do not know theirs.
    rtt: Option<Duration>,
    /// How many requests the peer says it queues (BEP 10 `reqq`).
    peer_reqq: Option<usize>,
    /// The id the peer wants ut_metadata messages on (None: it does not fetch metadata).
    peer_ut_metadata: Option<u8>,
    /// The id the peer wants ut_pex messages on (None: no peer exchange with it).
    peer_ut_pex: Option<u8>,
    /// The remote's address as the transport knows it, and whether its port is one the
    /// remote accepts connections on (see [`Session::set_lane_remote`]).
    remote: Option<(PeerAddr, bool)>,
    stats: LaneStats,
}

struct Peer {
    has: Bitfield,
    lanes: Vec<LaneId>,
    am_choking: bool,
    interested: bool,
    optimistic: bool,
    uploaded: RateEstimator,
    downloaded: RateEstimator,
    client: Option<String>,
}

/// `fill_requests`' buffers, kept between calls.
#[derive(Default)]
struct FillScratch {
    order: Vec<(LaneId, f64)>,
    rooms: Vec<LaneRoom>,
    shares: Vec<usize>,
}

/// Closed lanes whose stats a session keeps: a seeder sees leechers come and go all its life.
pub const FINISHED_LANES_KEPT: usize = 64;

pub struct Session {
    meta: Arc<Metainfo>,
    storage: Box<dyn Storage>,
    verifier: Box<dyn Verifier>,
    cfg: SessionConfig,
    picker: Picker,
    lanes: FxHashMap<LaneId, Lane>,
    peers: HashMap<PeerId, Peer>,
    /// Who sent which block, and who is banned for lying.
    smart_ban: SmartBan,
    actions: VecDeque<Action>,
    choker: Choker,
    completed_sent: bool,
    pub verify_time: Histogram<u64>,
    pub pieces_verified: u32,
    pub pieces_failed: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// Closed lanes' stats, the newest [`FINISHED_LANES_KEPT`], for the summary.
    finished_lanes: VecDeque<LaneStats>,
    scratch: Vec<BlockRef>,
    /// Counts `fill_requests` rounds (for `Lane::last_asked`).
    fill_round: u64,
    fill_scratch: FillScratch,
    /// Peer exchange (off for private torrents).
    pex: Pex,
    next_pex_check: Instant,
    /// DHT nodes from peers' `port` messages, not yet collected.
    dht_nodes: Vec<PeerAddr>,
    /// Rate limits on what we request and what we serve.
    down_limit: Limiter,
    up_limit: Limiter,
}

impl Session {
    pub fn new(
        meta: Arc<Metainfo>,
        storage: Box<dyn Storage>,
        verifier: Box<dyn Verifier>,
        have: Bitfield,
        cfg: SessionConfig,
        now: Instant,
    ) -> Self {
        let picker = Picker::new(meta.piece_length, meta.total_length, have);
        Self {
            meta,
            storage,
            verifier,
            cfg,
            picker,
            lanes: FxHashMap::default(),
            peers: HashMap::new(),
            smart_ban: SmartBan::default(),
            actions: VecDeque::new(),
            choker: Choker::new(now),
            completed_sent: false,
            verify_time: metrics::latency_histogram(),
            pieces_verified: 0,
            pieces_failed: 0,
            bytes_down: 0,
            bytes_up: 0,
            finished_lanes: VecDeque::new(),
            scratch: Vec::new(),
            fill_round: 0,
            fill_scratch: FillScratch::default(),
            pex: Pex::default(),
            next_pex_check: now,
            dht_nodes: Vec::new(),
            down_limit: Limiter::unlimited(),
            up_limit: Limiter::unlimited(),
        }
    }

    /// Limits what this session requests (`down`) and serves (`up`).
    pub fn set_rate_limits(&mut self, down: Limiter, up: Limiter) {
        self.down_limit = down;
        self.up_limit = up;
    }

    pub fn meta(&self) -> &Metainfo {
        &self.meta
    }

    pub fn have(&self) -> &Bitfield {
        self.picker.have()
    }

    /// Every wanted piece is verified (all of them unless some files are skipped).
    pub fn is_complete(&self) -> bool {
        self.picker.is_complete()
    }

    /// Every piece is verified.
    pub fn has_all(&self) -> bool {
        self.picker.has_all()
    }

    /// Which pieces to fetch and in what order (see `torrent::picker`): one priority per
    /// piece, 0 = not wanted. Interest in each peer follows at once; a torrent that wants
    /// more than it has is downloading again (and says `Complete` again when done).
    pub fn set_piece_priorities(&mut self, priority: Vec<u8>, sequential: bool) {
        self.picker.set_priorities(priority);
        self.picker.set_sequential(sequential);
        if !self.picker.is_complete() {
            self.completed_sent = false;
        }
        let pids: Vec<PeerId> = self.peers.keys().copied().collect();
        for pid in pids {
            self.update_interest(pid);
        }
    }

    /// A stream reads piece `window.start` now and the rest of `window` next: those pieces
    /// are fetched before all others (an empty window: the reader is gone; see
    /// `picker::Deadlines`).
    pub fn set_stream_window(
        &mut self,
        reader: crate::torrent::picker::ReaderId,
        window: std::ops::Range<u32>,
    ) {
        self.picker.set_deadline(reader, window);
    }

    /// Whether `piece` is wanted at all (a file of it is not skipped).
    pub fn is_wanted(&self, piece: u32) -> bool {
        self.picker.is_wanted(piece)
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// A new byte stream. For outbound lanes our handshake goes out at once; inbound lanes
    /// answer after the remote's handshake named our torrent.
    pub fn add_lane(&mut self, id: LaneId, outbound: bool, label: String, now: Instant) {
        let mut lane = Lane {
            peer: None,
            decoder: MessageDecoder::new(DecoderLimits::for_torrent(self.meta.num_pieces())),
            outbound,
            handshake_seen: false,
            fast: false,
            extended: false,
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            outstanding: FxHashMap::default(),
            peer_choking: true,
            am_interested: false,
            am_choking: true,
            ever_unchoked: false,
            requests_while_choked: 0,
            origin: None,
            links: Vec::new(),
            admitted: true,
            requests_in: VecDeque::new(),
            last_block: now,
            last_asked: 0,
            stalled: false,
            rate: RateEstimator::new(now),
            rtt: None,
            peer_reqq: None,
            peer_ut_metadata: None,
            peer_ut_pex: None,
            remote: None,
            stats: LaneStats {
                label,
                peer: None,
                bytes_down: 0,
                bytes_up: 0,
                blocks_down: 0,
                block_latency: metrics::latency_histogram(),
                opened: now,
                closed: None,
            },
        };
        if outbound {
            let dht = self.cfg.dht_port.or(self.cfg.dht_scion_port);
            push_handshake(&mut lane, self.meta.info_hash, self.cfg.peer_id, dht);
        }
        self.lanes.insert(id, lane);
    }

    /// The transport's current RTT estimate for a lane (sizes its request pipeline).
    pub fn set_lane_rtt(&mut self, id: LaneId, rtt: Duration) {
        if let Some(l) = self.lanes.get_mut(&id) {
            l.rtt = Some(rtt);
        }
    }

    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Bytes received on a lane.
    pub fn on_lane_data(&mut self, id: LaneId, data: &[u8], now: Instant) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        lane.decoder.push(data);
        if let Err(reason) = self.process_lane(id, now) {
            self.close_lane(id, reason, now);
        }
    }

    fn process_lane(&mut self, id: LaneId, now: Instant) -> Result<(), CloseReason> {
        if !self.lanes.get(&id).is_some_and(|l| l.handshake_seen) {
            let Some(lane) = self.lanes.get_mut(&id) else {
                return Ok(());
            };
            let hs = match lane.decoder.next_handshake() {
                Ok(Some(hs)) => hs,
                Ok(None) => return Ok(()),
                Err(e) => return Err(CloseReason::BadHandshake(e.to_string())),
            };
            self.on_handshake(id, hs, now)?;
        }
        loop {
            let Some(lane) = self.lanes.get_mut(&id) else {
                return Ok(());
            };
            match lane.decoder.next_message() {
                Ok(Some(msg)) => self.on_message(id, msg, now)?,
                Ok(None) => return Ok(()),
                Err(e) if e.is_fatal() => return Err(CloseReason::Protocol(e.to_string())),
                Err(e) => tracing::debug!(lane = id, "ignoring message: {e}"),
            }
        }
    }

    fn on_handshake(&mut self, id: LaneId, hs: Handshake, now: Instant) -> Result<(), CloseReason> {
        if hs.info_hash != self.meta.info_hash {
            return Err(CloseReason::OtherTorrent(hex(&hs.info_hash)));
        }
        if hs.peer_id == self.cfg.peer_id {
            return Err(CloseReason::OwnConnection);
        }
        // Peers are told apart by what the transport proves (see `set_lane_remote`), not by
        // the id they claim: another host claiming the same id is another peer.
        let key = self
            .lanes
            .get(&id)
            .and_then(|l| l.origin)
            .map_or(hs.peer_id, |o| origin_key(&o, &hs.peer_id));
        if self.smart_ban.is_banned(&key) {
            return Err(CloseReason::Banned);
        }
        let scion_peer = self
            .lanes
            .get(&id)
            .is_some_and(|l| matches!(l.remote, Some((PeerAddr::Scion(_), _))));
        let dht_port = if scion_peer {
            self.cfg.dht_scion_port
        } else {
            self.cfg.dht_port
        };
        let any_dht = self.cfg.dht_port.or(self.cfg.dht_scion_port);
        let (info_hash, our_id) = (self.meta.info_hash, self.cfg.peer_id);
        let have = self.picker.have().clone();
        let upload = self.cfg.upload;
        let client = self.cfg.client_name.clone();
        let num_pieces = self.meta.num_pieces();
        let private = self.meta.private;
        let tcp_port = self.cfg.tcp_port;
        let metadata_size = Some(self.meta.info_bytes.len())
            .filter(|&n| n > 0 && n <= bt_ext::metadata::MAX_METADATA_SIZE);
        let Some(lane) = self.lanes.get_mut(&id) else {
            return Ok(());
        };
        lane.handshake_seen = true;
        lane.fast = hs.supports_fast();
        lane.extended = hs.supports_extensions();
        lane.peer = Some(key);
        if let Some((addr, true)) = lane.remote {
            // We dialled it, or it reached us from the socket it listens on.
            let flags = if lane.outbound {
                PexFlags::REACHABLE
            } else {
                0
            };
            self.pex.set_addr(key, addr, PexFlags(flags));
        }
        if !lane.outbound {
            push_handshake(lane, info_hash, our_id, any_dht);
        }
        if lane.extended {
            let mut m: std::collections::BTreeMap<String, u8> =
                [("ut_metadata".to_string(), UT_METADATA_ID)].into();
            if !private {
                m.insert("ut_pex".to_string(), UT_PEX_ID);
            }
            let ext = ExtensionHandshake {
                m,
                v: Some(client),
                p: tcp_port,
                reqq: Some(MAX_QUEUED_REQUESTS as u32),
                metadata_size: metadata_size.map(|n| n as u64),
                // Where the peer's packets come from, as we see it (BEP 10 `yourip`): lets a
                // client behind NAT learn its public address.
                yourip: match lane.remote {
                    Some((PeerAddr::Ip(a), _)) => Some(a.ip()),
                    _ => None,
                },
                ..Default::default()
            };
            if let Ok(msg) = ext.to_message() {
                push(lane, &msg);
            }
        }
        let announce = if upload {
            have
        } else {
            Bitfield::new(num_pieces)
        };
        if lane.fast && announce.is_full() {
            push(lane, &Message::HaveAll);
        } else if lane.fast && announce.is_clear() {
            push(lane, &Message::HaveNone);
        } else if !announce.is_clear() {
            push(lane, &Message::bitfield(&announce));
        }
        if let (Some(port), true) = (dht_port, hs.supports_dht()) {
            push(lane, &Message::Port(port));
        }
        let peer = self.peers.entry(key).or_insert_with(|| Peer {
            has: Bitfield::new(num_pieces),
            lanes: Vec::new(),
            am_choking: true,
            interested: false,
            optimistic: false,
            uploaded: RateEstimator::new(now),
            downloaded: RateEstimator::new(now),
            client: None,
        });
        peer.lanes.push(id);
        // A new lane of an already unchoked peer is unchoked too; lane admission is
        // recomputed right away.
        if !peer.am_choking {
            self.choker.wake(now);
        }
        self.update_interest(key);
        Ok(())
    }

    fn peer_of(&self, id: LaneId) -> Option<PeerId> {
        self.lanes.get(&id).and_then(|l| l.peer)
    }

    /// The client name (BEP 10 `v`) of the peer on a lane, once its extension handshake came.
    pub fn lane_client(&self, id: LaneId) -> Option<&str> {
        let pid = self.peer_of(id)?;
        self.peers.get(&pid)?.client.as_deref()
    }

    fn on_message(&mut self, id: LaneId, msg: Message, now: Instant) -> Result<(), CloseReason> {
        let pid = self
            .peer_of(id)
            .ok_or_else(|| CloseReason::Protocol("message before handshake".into()))?;
        match msg {
            Message::Port(port) => self.on_dht_port(id, port),
            Message::KeepAlive | Message::SuggestPiece { .. } => {}
            Message::AllowedFast { .. } => {}
            Message::Choke => {
                if let Some(l) = self.lanes.get_mut(&id) {
                    l.peer_choking = true;
                }
                // Without the fast extension a choke discards our requests; with it the
                // remote rejects them explicitly, but re-requesting early is harmless.
                self.drop_outstanding(id);
            }
            Message::Unchoke => {
                if let Some(l) = self.lanes.get_mut(&id) {
                    l.peer_choking = false;
                }
            }
            Message::Interested | Message::NotInterested => {
                let interested = matches!(msg, Message::Interested);
                if let Some(p) = self.peers.get_mut(&pid) {
                    let changed = p.interested != interested;
                    p.interested = interested;
                    if changed && (interested || !p.am_choking) {
                        self.choker.wake(now); // react now, not at the next round
                    }
                }
            }
            Message::Have { index } => {
                if index >= self.meta.num_pieces() {
                    return Err(CloseReason::HaveOutOfRange(index));
                }
                let p = self
                    .peers
                    .get_mut(&pid)
                    .ok_or_else(|| CloseReason::Protocol("unknown peer".into()))?;
                if !p.has.get(index) {
                    p.has.set(index);
                    self.picker.peer_has_piece(index);
                    // One more piece can only make us interested: O(1), where re-checking the
                    // peer's whole bitfield made every Have (and a Have flood) O(pieces).
                    if self.picker.wants_piece(index) {
                        self.set_interest(pid, true);
                    }
                }
            }
            Message::Bitfield(raw) => {
                let bf = Bitfield::from_bytes(&raw, self.meta.num_pieces())
                    .map_err(|e| CloseReason::Protocol(format!("bad bitfield: {e}")))?;
                self.set_peer_has(pid, bf);
            }
            Message::HaveAll => self.set_peer_has(pid, Bitfield::full(self.meta.num_pieces())),
            Message::HaveNone => {}
            Message::Request {
                index,
                begin,
                length,
            } => self.on_request(id, index, begin, length)?,
            Message::Cancel {
                index,
                begin,
                length,
            } => {
                if let Some(l) = self.lanes.get_mut(&id) {
                    let b = BlockRef {
                        piece: index,
                        begin,
                        len: length,
                    };
                    l.requests_in.retain(|r| *r != b);
                }
            }
            Message::RejectRequest {
                index,
                begin,
                length,
            } => {
                let b = BlockRef {
                    piece: index,
                    begin,
                    len: length,
                };
                if let Some(l) = self.lanes.get_mut(&id) {
                    if l.outstanding.remove(&b).is_some() {
                        self.picker.request_dropped(&b);
                    }
                }
            }
            Message::Piece { index, begin, data } => {
                self.on_block(id, pid, index, begin, data, now)?
            }
            Message::Extended { id: ext, payload } => {
                if ext == UT_METADATA_ID {
                    self.serve_metadata(id, &payload);
                } else if ext == UT_PEX_ID && !self.meta.private {
                    self.pex.on_message(pid, &payload, now);
                } else if ext == EXTENSION_HANDSHAKE_ID {
                    if let Ok(h) = ExtensionHandshake::decode(&payload) {
                        if let Some(l) = self.lanes.get_mut(&id) {
                            l.peer_reqq = h.reqq.map(|r| r as usize);
                            l.peer_ut_metadata = h.id_of("ut_metadata");
                            l.peer_ut_pex = h.id_of("ut_pex");
                            // An inbound TCP peer names its listen port here.
                            if let (Some((PeerAddr::Ip(a), false)), Some(port)) = (l.remote, h.p) {
                                if port != 0 {
                                    let addr =
                                        PeerAddr::Ip(std::net::SocketAddr::new(a.ip(), port));
                                    l.remote = Some((addr, true));
                                    self.pex.set_addr(pid, addr, PexFlags(0));
                                }
                            }
                        }
                        if let Some(p) = self.peers.get_mut(&pid) {
                            p.client = h.v;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers a peer's ut_metadata request (BEP 9) from the info dictionary we hold.
    /// Malformed messages are ignored; a peer that does not read its answers gets rejects.
    fn serve_metadata(&mut self, id: LaneId, payload: &[u8]) {
        use bt_ext::MetadataMessage;
        let Ok(MetadataMessage::Request { piece }) = bt_ext::decode_metadata_message(payload)
        else {
            return;
        };
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        let Some(their_id) = lane.peer_ut_metadata else {
            return;
        };
        let answer = if lane.outbox_bytes < OUTBOX_TARGET {
            bt_ext::metadata::serve_piece(&self.meta.info_bytes, piece)
        } else {
            MetadataMessage::Reject { piece }
        };
        push(
            lane,
            &Message::Extended {
                id: their_id,
                payload: Bytes::from(answer.encode()),
            },
        );
    }

    fn set_peer_has(&mut self, pid: PeerId, bf: Bitfield) {
        let Some(p) = self.peers.get_mut(&pid) else {
            return;
        };
        // Lanes of one peer repeat its bitfield; count availability once.
        let mut merged = p.has.clone();
        for i in bf.iter_ones() {
            if !merged.get(i) {
                merged.set(i);
                self.picker.peer_has_piece(i);
            }
        }
        p.has = merged;
        self.update_interest(pid);
    }

    fn on_request(
        &mut self,
        id: LaneId,
        index: u32,
        begin: u32,
        length: u32,
    ) -> Result<(), CloseReason> {
        let valid = index < self.meta.num_pieces()
            && length > 0
            && length <= MAX_REQUEST_LEN
            && u64::from(begin) + u64::from(length) <= u64::from(self.meta.piece_len(index));
        if !valid {
            return Err(CloseReason::InvalidRequest {
                index,
                begin,
                length,
            });
        }
        let have = self.picker.have().get(index);
        let Some(lane) = self.lanes.get_mut(&id) else {
            return Ok(());
        };
        if lane.am_choking {
            lane.requests_while_choked += 1;
            let limit = if lane.ever_unchoked {
                MAX_REQUESTS_WHILE_CHOKED
            } else {
                MAX_REQUESTS_NEVER_UNCHOKED
            };
            if lane.requests_while_choked > limit {
                return Err(CloseReason::RequestsWhileChoked(lane.requests_while_choked));
            }
        }
        let servable = self.cfg.upload && !lane.am_choking && have;
        let b = BlockRef {
            piece: index,
            begin,
            len: length,
        };
        if !servable || lane.requests_in.len() >= MAX_QUEUED_REQUESTS {
            if lane.outbox.len() > MAX_UNREAD_MESSAGES {
                // Each refusal is a message to send: a peer that floods requests and never
                // reads would otherwise grow our outbox without bound.
                return Err(CloseReason::UnreadFlood);
            }
            if lane.fast {
                push(
                    lane,
                    &Message::RejectRequest {
                        index,
                        begin,
                        length,
                    },
                );
            }
            return Ok(());
        }
        lane.requests_in.push_back(b);
        Ok(())
    }

    fn on_block(
        &mut self,
        id: LaneId,
        pid: PeerId,
        index: u32,
        begin: u32,
        data: Bytes,
        now: Instant,
    ) -> Result<(), CloseReason> {
        let b = BlockRef {
            piece: index,
            begin,
            len: data.len() as u32,
        };
        let Some(lane) = self.lanes.get_mut(&id) else {
            return Ok(());
        };
        let sent_at = lane.outstanding.remove(&b);
        lane.last_block = now;
        lane.stalled = false;
        if sent_at.is_none() {
            // Late answer to a request we dropped (choke, stall); still useful if needed.
            tracing::trace!(lane = id, ?b, "unrequested block");
        }
        match self.picker.block_received(&b) {
            BlockOutcome::Unexpected => return Ok(()),
            BlockOutcome::Accepted { piece_complete } => {
                if let Err(e) = self.storage.write_block(index, begin, &data) {
                    // Keep the data consistent: the piece will fail verification and be
                    // fetched again; a persistent error (disk full) stops the session.
                    tracing::error!("write failed: {e}");
                    return Err(CloseReason::Storage(e.to_string()));
                }
                let lane = self.lanes.get_mut(&id).expect("lane checked above");
                lane.stats.bytes_down += b.len as u64;
                lane.stats.blocks_down += 1;
                lane.rate.add(b.len as u64, now);
                if let Some(t) = sent_at {
                    metrics::record(
                        &mut lane.stats.block_latency,
                        now.saturating_duration_since(t),
                    );
                }
                self.bytes_down += b.len as u64;
                if let Some(p) = self.peers.get_mut(&pid) {
                    p.downloaded.add(b.len as u64, now);
                }
                self.smart_ban.block_received(b, pid);
                self.cancel_duplicates(id, &b);
                if piece_complete {
                    self.verifier.submit(index);
                }
            }
        }
        Ok(())
    }

    /// In endgame a block may be outstanding on other lanes: cancel those requests.
    fn cancel_duplicates(&mut self, got_on: LaneId, b: &BlockRef) {
        let mut cancelled = 0;
        for (&lid, lane) in self.lanes.iter_mut() {
            if lid != got_on && lane.outstanding.remove(b).is_some() {
                push(
                    lane,
                    &Message::Cancel {
                        index: b.piece,
                        begin: b.begin,
                        length: b.len,
                    },
                );
                cancelled += 1;
            }
        }
        for _ in 0..cancelled {
            self.picker.request_dropped(b);
        }
    }

    fn drop_outstanding(&mut self, id: LaneId) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        for (b, _) in lane.outstanding.drain() {
            self.picker.request_dropped(&b);
        }
    }

    fn update_interest(&mut self, pid: PeerId) {
        let Some(p) = self.peers.get(&pid) else {
            return;
        };
        let want = self.picker.wants_from(&p.has);
        self.set_interest(pid, want);
    }

    /// Tells the peer's lanes whether we are interested (only those where it changes).
    fn set_interest(&mut self, pid: PeerId, want: bool) {
        let Some(p) = self.peers.get(&pid) else {
            return;
        };
        for lid in p.lanes.clone() {
            if let Some(l) = self.lanes.get_mut(&lid) {
                if l.am_interested != want {
                    l.am_interested = want;
                    push(
                        l,
                        &if want {
                            Message::Interested
                        } else {
                            Message::NotInterested
                        },
                    );
                }
            }
        }
    }

    /// The transport closed a lane (or we asked it to). Its requests go back to the picker at
    /// once so other lanes take them over.
    pub fn on_lane_closed(&mut self, id: LaneId, reason: CloseReason, now: Instant) {
        self.drop_outstanding(id);
        let Some(mut lane) = self.lanes.remove(&id) else {
            return;
        };
        lane.stats.closed = Some((now, reason));
        if self.finished_lanes.len() == FINISHED_LANES_KEPT {
            self.finished_lanes.pop_front();
        }
        self.finished_lanes.push_back(lane.stats);
        if let Some(pid) = lane.peer {
            let gone = if let Some(p) = self.peers.get_mut(&pid) {
                p.lanes.retain(|l| *l != id);
                p.lanes.is_empty()
            } else {
                false
            };
            // Under a lane cap a lane held back may take the closed one's place: now, not at
            // the next round.
            if !gone && lane.admitted && self.cfg.max_served_lanes.is_some() {
                self.choker.wake(now);
            }
            if gone {
                if let Some(p) = self.peers.remove(&pid) {
                    self.picker.peer_removed(&p.has);
                }
                self.pex.forget(&pid);
            }
        }
    }

    fn close_lane(&mut self, id: LaneId, reason: CloseReason, now: Instant) {
        tracing::info!(lane = id, "closing lane: {reason}");
        self.on_lane_closed(id, reason.clone(), now);
        self.actions
            .push_back(Action::CloseLane { lane: id, reason });
    }

    /// Periodic work: verification results, choking, stall detection, request pipelines.
    pub fn tick(&mut self, now: Instant) {
        self.collect_verifications(now);
        if self.choker.is_due(now) {
            self.choke_round(now);
        }
        self.detect_stalls(now);
        self.fill_requests(now);
        self.exchange_peers(now);
    }

    /// Tells each peer that speaks ut_pex what changed in the swarm (at most once a minute).
    fn exchange_peers(&mut self, now: Instant) {
        // At most once a second: ticks come with every batch of packets.
        if self.meta.private || now < self.next_pex_check || self.peers.is_empty() {
            return;
        }
        self.next_pex_check = now + PEX_CHECK_EVERY;
        for (pid, p) in &self.peers {
            self.pex.set_seed(pid, p.has.is_full());
        }
        // Each peer gets PEX on one of its lanes that speaks it.
        let pex_lanes: HashMap<PeerId, (LaneId, u8)> = self
            .peers
            .iter()
            .filter_map(|(pid, p)| {
                p.lanes.iter().find_map(|l| {
                    let id = self.lanes.get(l)?.peer_ut_pex?;
                    Some((*pid, (*l, id)))
                })
            })
            .collect();
        let due = self.pex.poll_messages(now, pex_lanes.keys().copied());
        for (pid, payload) in due {
            let Some((lane_id, their_id)) = pex_lanes.get(&pid) else {
                continue;
            };
            if let Some(lane) = self.lanes.get_mut(lane_id) {
                push(
                    lane,
                    &Message::Extended {
                        id: *their_id,
                        payload: Bytes::from(payload),
                    },
                );
            }
        }
    }

    /// A peer's BEP 5 `port`: its DHT node is at its address with that port (kept for the
    /// client's DHT, bounded; a peer repeating it adds nothing).
    fn on_dht_port(&mut self, id: LaneId, port: u16) {
        let Some((addr, _)) = self.lanes.get(&id).and_then(|l| l.remote) else {
            return;
        };
        let node = match addr {
            PeerAddr::Ip(a) => PeerAddr::Ip(std::net::SocketAddr::new(a.ip(), port)),
            PeerAddr::Scion(a) => PeerAddr::Scion(crate::scion::ScionAddr::new(a.ia, a.host, port)),
        };
        if port != 0 && self.dht_nodes.len() < MAX_DHT_NODES && !self.dht_nodes.contains(&node) {
            self.dht_nodes.push(node);
        }
    }

    /// DHT nodes peers told us about (BEP 5 `port`) since the last call.
    pub fn take_dht_nodes(&mut self) -> Vec<PeerAddr> {
        std::mem::take(&mut self.dht_nodes)
    }

    /// Peers learnt through peer exchange since the last call (for the peer book).
    pub fn take_pex_peers(&mut self) -> Vec<PeerAddr> {
        self.pex.take_found()
    }

    /// The remote's address as the transport proves it (a QUIC connection's SCION address as
    /// its route proves it, a TCP connection's peer); `listening` when connections to that
    /// address reach it (we dialled it, or it is a QUIC endpoint's one socket). An inbound TCP
    /// connection's port is not: its extension handshake's `p` names the listen port.
    ///
    /// It also binds the lane to its origin: a SCION peer's full address, a TCP peer's IP
    /// (outgoing ports differ per connection). Lanes join one peer only if their origins and
    /// their handshakes' peer ids both agree, so nobody can join or get banned another host's
    /// lanes by claiming its peer id. Call before the lane's first bytes.
    pub fn set_lane_remote(&mut self, id: LaneId, addr: PeerAddr, listening: bool) {
        if let Some(l) = self.lanes.get_mut(&id) {
            let origin = match addr {
                PeerAddr::Scion(a) => a.to_string(),
                PeerAddr::Ip(a) => a.ip().to_string(),
            };
            l.origin = Some(crate::storage::hash::sha1(origin.as_bytes()));
            l.stats.peer = Some(addr);
            l.remote = Some((addr, listening));
        }
    }

    fn collect_verifications(&mut self, now: Instant) {
        while let Some((piece, ok, spent)) = self.verifier.poll() {
            metrics::record(&mut self.verify_time, spent);
            self.picker.piece_verified(piece, ok);
            let liars = self.smart_ban.piece_checked(piece, ok, &*self.storage);
            if ok {
                self.pieces_verified += 1;
                for lane in self.lanes.values_mut() {
                    if lane.handshake_seen {
                        push(lane, &Message::Have { index: piece });
                    }
                }
            } else {
                self.pieces_failed += 1;
                tracing::warn!(piece, "piece failed verification");
            }
            for liar in liars {
                tracing::warn!(piece, peer = %hex(&liar), "sent a corrupt block: banned");
                self.close_peer(liar, now);
            }
        }
        let pids: Vec<PeerId> = self.peers.keys().copied().collect();
        for pid in pids {
            self.update_interest(pid);
        }
        if self.picker.is_complete() && !self.completed_sent {
            self.completed_sent = true;
            if let Err(e) = self.storage.flush() {
                // The data may not reach the disk: not complete, end with a storage error
                // (the drivers turn a "storage error" close into exit code 5).
                tracing::error!("flush failed: {e}");
                for lane in self.lane_ids() {
                    self.close_lane(lane, CloseReason::Storage(e.to_string()), now);
                }
                return;
            }
            self.actions.push_back(Action::Complete);
        }
    }

    /// Closes every lane of a peer the smart ban convicted.
    fn close_peer(&mut self, pid: PeerId, now: Instant) {
        let lanes = self
            .peers
            .get(&pid)
            .map(|p| p.lanes.clone())
            .unwrap_or_default();
        for lid in lanes {
            self.close_lane(lid, CloseReason::SentCorruptData, now);
        }
    }

    /// A choke round (see `choker`): the choker picks the peers and their lanes, the lanes
    /// tell the peers.
    fn choke_round(&mut self, now: Instant) {
        let seeding = self.picker.is_complete();
        let interested: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(_, p)| p.interested)
            .map(|(id, p)| Candidate {
                peer: *id,
                rate: if seeding {
                    p.uploaded.rate()
                } else {
                    p.downloaded.rate()
                },
                optimistic: p.optimistic,
            })
            .collect();
        let mut unchoked = self.choker.round(interested, self.cfg.upload_slots, now);
        if !self.cfg.upload {
            unchoked.peers.clear();
        }
        for (pid, p) in self.peers.iter_mut() {
            p.am_choking = !unchoked.peers.contains(pid);
            p.optimistic = Some(*pid) == unchoked.optimistic;
        }
        self.admit_lanes();
        self.apply_lane_chokes();
    }

    /// The path a lane uses, as link identities. On the seeding side they let the choker keep
    /// different leechers' lanes on different links. Identities are prefixes of the hop list
    /// as seen from this host, so two lanes share a link when their paths agree up to it.
    pub fn set_lane_links(&mut self, id: LaneId, links: Vec<u64>) {
        if let Some(l) = self.lanes.get_mut(&id) {
            l.links = links;
        }
    }

    /// Which lanes of the unchoked peers are served (see [`choker::lanes_not_admitted`]).
    fn admit_lanes(&mut self) {
        let mut unchoked: Vec<(PeerId, Vec<LaneId>)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.am_choking)
            .map(|(id, p)| {
                let mut lanes = p.lanes.clone();
                lanes.sort_unstable();
                (*id, lanes)
            })
            .collect();
        unchoked.sort_by_key(|a| a.0);
        let links: FxHashMap<LaneId, Vec<u64>> = unchoked
            .iter()
            .flat_map(|(_, lanes)| lanes)
            .filter_map(|id| Some((*id, self.lanes.get(id)?.links.clone())))
            .collect();
        let cap = self.cfg.max_served_lanes.unwrap_or(usize::MAX);
        let refused = choker::lanes_not_admitted(&unchoked, &links, cap);
        for (id, l) in self.lanes.iter_mut() {
            l.admitted = !refused.contains(id);
        }
    }

    fn apply_lane_chokes(&mut self) {
        let upload = self.cfg.upload;
        for lane in self.lanes.values_mut() {
            let Some(pid) = lane.peer else { continue };
            let peer_choked = self.peers.get(&pid).is_none_or(|p| p.am_choking);
            let should_choke = !upload || peer_choked || !lane.admitted;
            if lane.am_choking == should_choke {
                continue;
            }
            lane.am_choking = should_choke;
            if !should_choke {
                lane.ever_unchoked = true;
                lane.requests_while_choked = 0;
            }
            push(
                lane,
                if should_choke {
                    &Message::Choke
                } else {
                    &Message::Unchoke
                },
            );
            if should_choke {
                let rejected: Vec<BlockRef> = lane.requests_in.drain(..).collect();
                for b in rejected {
                    reject(lane, &b);
                }
            }
        }
    }

    /// A lane that stopped delivering hands its requests to the others (failover), and gets
    /// new ones only after it delivers again.
    fn detect_stalls(&mut self, now: Instant) {
        let timeout = self.cfg.stall_timeout;
        let mut stalled = Vec::new();
        for (&id, lane) in &self.lanes {
            if !lane.stalled
                && !lane.outstanding.is_empty()
                && now.saturating_duration_since(lane.last_block)
                    > timeout.max(lane.rtt.unwrap_or_default() * 4)
            {
                stalled.push(id);
            }
        }
        for id in stalled {
            tracing::info!(
                lane = id,
                "lane stalled; moving its requests to other lanes"
            );
            self.drop_outstanding(id);
            if let Some(l) = self.lanes.get_mut(&id) {
                l.stalled = true;
                // Probe with one request so a recovered path can prove itself.
                l.last_block = now;
            }
        }
    }

    /// How many requests a lane should keep in flight: its bandwidth-delay product (measured
    /// rate × RTT, with headroom), bounded by what the peer says it queues. Without a transport
    /// RTT (TCP) it keeps `REQUEST_QUEUE_TIME` worth of blocks queued, as libtorrent does: peers
    /// such as Transmission serve requests in 500 ms rounds, and a pipeline sized for a
    /// guessed RTT would lock the lane at that slow rate.
    fn pipeline_depth(lane: &Lane) -> usize {
        if lane.stalled {
            return 1;
        }
        let horizon = match lane.rtt {
            Some(rtt) => (rtt.as_secs_f64().max(0.001) + 0.02) * 2.0,
            None => REQUEST_QUEUE_TIME.as_secs_f64(),
        };
        let bdp_blocks = lane.rate.rate() * horizon / f64::from(BLOCK_LEN);
        let max = lane
            .peer_reqq
            .unwrap_or(MAX_PIPELINE)
            .clamp(1, MAX_PIPELINE);
        (bdp_blocks as usize).clamp(MIN_PIPELINE.min(max), max)
    }

    fn fill_requests(&mut self, now: Instant) {
        if self.picker.is_complete() {
            return;
        }
        let budget = self.down_limit.budget(now);
        if budget == 0 {
            return;
        }
        let budget_blocks =
            usize::try_from(budget.div_ceil(u64::from(BLOCK_LEN))).unwrap_or(usize::MAX);
        // Fastest lanes first, so the slow ones get what is left (and endgame duplicates).
        // The buffers are kept across calls: this runs on every tick of a busy torrent.
        let FillScratch {
            mut order,
            mut rooms,
            mut shares,
        } = std::mem::take(&mut self.fill_scratch);
        order.clear();
        order.extend(
            self.lanes
                .iter()
                .filter(|(_, l)| l.handshake_seen && !l.peer_choking && l.am_interested)
                .map(|(id, l)| (*id, l.rate.rate())),
        );
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rooms.clear();
        rooms.extend(order.iter().map(|(id, _)| {
            let lane = &self.lanes[id];
            LaneRoom {
                free: Self::pipeline_depth(lane).saturating_sub(lane.outstanding.len()),
                in_flight: lane.outstanding.len(),
                last_asked: lane.last_asked,
            }
        }));
        fair_shares(&rooms, budget_blocks, &mut shares);
        self.fill_round += 1;
        for (&(id, _), &want) in order.iter().zip(&shares) {
            if want == 0 {
                continue;
            }
            let Some(lane) = self.lanes.get(&id) else {
                continue;
            };
            let Some(pid) = lane.peer else { continue };
            let Some(peer) = self.peers.get(&pid) else {
                continue;
            };
            self.scratch.clear();
            let outstanding = &lane.outstanding;
            self.picker.pick(
                &peer.has,
                want,
                |b| outstanding.contains_key(b),
                &mut self.scratch,
            );
            let lane = self.lanes.get_mut(&id).expect("lane exists");
            if lane.outstanding.is_empty() && !self.scratch.is_empty() {
                // The stall clock starts when the lane has something to deliver, not at the
                // last block before an idle spell (e.g. the wait for an unchoke).
                lane.last_block = now;
            }
            if !self.scratch.is_empty() {
                lane.last_asked = self.fill_round;
            }
            let asked: u64 = self.scratch.iter().map(|b| u64::from(b.len)).sum();
            self.down_limit.take(asked);
            for b in self.scratch.drain(..) {
                lane.outstanding.insert(b, now);
                push(
                    lane,
                    &Message::Request {
                        index: b.piece,
                        begin: b.begin,
                        length: b.len,
                    },
                );
            }
        }
        self.fill_scratch = FillScratch {
            order,
            rooms,
            shares,
        };
    }

    /// Next chunks to write on a lane. Piece data is read from storage only here, when the
    /// transport has room, and handed over without a copy (slices of the file maps).
    pub fn poll_output(&mut self, id: LaneId, now: Instant) -> Option<Bytes> {
        let lane = self.lanes.get_mut(&id)?;
        while lane.outbox_bytes < OUTBOX_TARGET {
            if lane.requests_in.is_empty() || !self.up_limit.allows(now) {
                break;
            }
            let Some(b) = lane.requests_in.pop_front() else {
                break;
            };
            self.up_limit.take(u64::from(b.len));
            match self.storage.read_block(b.piece, b.begin, b.len) {
                Ok(data) => {
                    let mut head = BytesMut::with_capacity(13);
                    encode_piece_header(b.piece, b.begin, b.len, &mut head);
                    lane.outbox_bytes += head.len() + data.len();
                    lane.outbox.push_back(head.freeze());
                    lane.outbox.push_back(data);
                    lane.stats.bytes_up += u64::from(b.len);
                    self.bytes_up += u64::from(b.len);
                    if let Some(p) = lane.peer.and_then(|pid| self.peers.get_mut(&pid)) {
                        p.uploaded.add(u64::from(b.len), now);
                    }
                }
                Err(e) => {
                    tracing::error!("cannot read piece {}: {e}", b.piece);
                    reject(lane, &b);
                }
            }
        }
        let chunk = lane.outbox.pop_front()?;
        lane.outbox_bytes -= chunk.len();
        Some(chunk)
    }

    /// Puts back the unwritten tail of a chunk (the transport took only part of it).
    pub fn unpoll_output(&mut self, id: LaneId, rest: Bytes) {
        if let Some(lane) = self.lanes.get_mut(&id) {
            lane.outbox_bytes += rest.len();
            lane.outbox.push_front(rest);
        }
    }

    /// Whether [`Session::poll_output`] has something for the lane now (requests waiting for
    /// the upload limit do not count: [`Session::poll_timeout`] says when they can go).
    pub fn has_output(&self, id: LaneId) -> bool {
        self.lanes.get(&id).is_some_and(|l| {
            !l.outbox.is_empty() || (!l.requests_in.is_empty() && !self.up_limit.in_debt())
        })
    }

    pub fn lane_ids(&self) -> Vec<LaneId> {
        self.lanes.keys().copied().collect()
    }

    /// Stats of every open lane, then of the newest closed ones (oldest first).
    pub fn lane_stats(&self) -> Vec<(LaneId, LaneStats)> {
        let mut v: Vec<(LaneId, LaneStats)> = self
            .lanes
            .iter()
            .map(|(id, l)| (*id, l.stats.clone()))
            .collect();
        v.sort_by_key(|x| x.0);
        v.extend(self.finished_lanes.iter().map(|s| (u64::MAX, s.clone())));
        v
    }

    pub fn peer_clients(&self) -> Vec<String> {
        self.peers
            .values()
            .filter_map(|p| p.client.clone())
            .collect()
    }
}

fn push(lane: &mut Lane, msg: &Message) {
    push_bytes(lane, encode_bytes(msg));
}

fn push_bytes(lane: &mut Lane, b: Bytes) {
    lane.outbox_bytes += b.len();
    lane.outbox.push_back(b);
}

/// Tells a fast-extension peer that a request will not be served (others just never get it).
fn reject(lane: &mut Lane, b: &BlockRef) {
    if lane.fast {
        push(
            lane,
            &Message::RejectRequest {
                index: b.piece,
                begin: b.begin,
                length: b.len,
            },
        );
    }
}

fn push_handshake(lane: &mut Lane, info_hash: [u8; 20], peer_id: PeerId, dht: Option<u16>) {
    let hs = Handshake::ours(info_hash, peer_id, dht.is_some());
    push_bytes(lane, Bytes::copy_from_slice(&hs.to_bytes()));
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Session {
    /// Lanes we currently let download from us (for tests and the live display).
    pub fn unchoked_lanes(&self) -> std::collections::BTreeSet<LaneId> {
        self.lanes
            .iter()
            .filter(|(_, l)| !l.am_choking)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// The key of a peer: its claimed id bound to the transport's proof of where it is.
fn origin_key(origin: &[u8; 20], peer_id: &PeerId) -> PeerId {
    let mut buf = [0u8; 40];
    buf[..20].copy_from_slice(origin);
    buf[20..].copy_from_slice(peer_id);
    crate::storage::hash::sha1(&buf)
}

impl Session {
    /// When the session next needs [`Session::tick`] without any new event: a choke round
    /// while it has peers, a lane's stall check, verifications still being hashed. None when
    /// nothing is due (no lanes, nothing pending): an idle torrent costs nothing.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if !self.peers.is_empty() {
            at(self.choker.next_round());
        }
        for l in self.lanes.values() {
            if !l.stalled && !l.outstanding.is_empty() {
                at(l.last_block + self.cfg.stall_timeout.max(l.rtt.unwrap_or_default() * 4));
            }
        }
        // A direction held back by its rate limit moves again when the bucket refills.
        if !self.picker.is_complete() && !self.lanes.is_empty() {
            if let Some(t) = self.down_limit.ready_at(now) {
                at(t);
            }
        }
        if self.lanes.values().any(|l| !l.requests_in.is_empty()) {
            if let Some(t) = self.up_limit.ready_at(now) {
                at(t);
            }
        }
        if !self.meta.private && !self.peers.is_empty() {
            if let Some(t) = self.pex.poll_timeout(now) {
                at(t.max(self.next_pex_check));
            }
        }
        if self.verifier.pending() > 0 {
            // Results come from worker threads that cannot wake the loop: look again soon.
            at(now + VERIFY_POLL);
        }
        next
    }
}

/// How often pending piece verifications are looked for.
const VERIFY_POLL: Duration = Duration::from_millis(2);

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
