//! Sessions wired to each other through in-memory byte pipes: the whole BitTorrent exchange
//! (handshake, bitfield, choking, requests over several lanes, verification) without sockets.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Action, LaneId, Session, SessionConfig, Verifier, FINISHED_LANES_KEPT};
use crate::storage::{hash::sha1, MemStorage, Storage};
use crate::torrent::close::CloseReason;
use crate::torrent::meta::Metainfo;
use crate::wire::Bitfield;

/// Hashes inline (deterministic); `corrupt` flips the verdict of every piece to simulate a liar.
struct InlineVerifier {
    storage: Arc<MemStorage>,
    meta: Arc<Metainfo>,
    done: VecDeque<(u32, bool, Duration)>,
}

impl Verifier for InlineVerifier {
    fn submit(&mut self, index: u32) {
        let data = self.storage.piece_data(index).unwrap().to_vec();
        let ok = Some(&sha1(&data)) == self.meta.piece_hash(index);
        self.done.push_back((index, ok, Duration::from_micros(1)));
    }
    fn poll(&mut self) -> Option<(u32, bool, Duration)> {
        self.done.pop_front()
    }
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn torrent(data: &[u8], piece_len: usize) -> Arc<Metainfo> {
    let mut pieces = Vec::new();
    for c in data.chunks(piece_len) {
        pieces.extend_from_slice(&sha1(c));
    }
    let mut info = format!(
        "d6:lengthi{}e4:name4:test12:piece lengthi{}e6:pieces{}:",
        data.len(),
        piece_len,
        pieces.len()
    )
    .into_bytes();
    info.extend_from_slice(&pieces);
    info.push(b'e');
    Arc::new(Metainfo::from_info_bytes(&info).unwrap())
}

fn session(
    meta: &Arc<Metainfo>,
    data: Option<Vec<u8>>,
    id: u8,
    now: Instant,
) -> (Session, Arc<MemStorage>) {
    session_with(meta, data, SessionConfig::new([id; 20]), now)
}

/// Like [`session`] with a configuration of the test's own.
fn session_with(
    meta: &Arc<Metainfo>,
    data: Option<Vec<u8>>,
    cfg: SessionConfig,
    now: Instant,
) -> (Session, Arc<MemStorage>) {
    let full = data.is_some();
    let storage = Arc::new(match data {
        Some(d) => MemStorage::with_data(meta, d),
        None => MemStorage::new(meta),
    });
    let have = if full {
        Bitfield::full(meta.num_pieces())
    } else {
        Bitfield::new(meta.num_pieces())
    };
    let verifier = InlineVerifier {
        storage: storage.clone(),
        meta: meta.clone(),
        done: VecDeque::new(),
    };
    let s = Session::new(
        meta.clone(),
        Box::new(storage.clone()),
        Box::new(verifier),
        have,
        cfg,
        now,
    );
    (s, storage)
}

#[test]
fn leecher_downloads_everything_over_three_lanes_of_one_peer() {
    let mut now = Instant::now();
    let data = content(1_000_000, 7);
    let meta = torrent(&data, 32 * 1024);
    let (mut seed, _) = session(&meta, Some(data.clone()), 1, now);
    let (mut leech, store) = session(&meta, None, 2, now);
    let lanes = [1, 2, 3];
    for &l in &lanes {
        leech.add_lane(l, true, format!("path {l}"), now);
        seed.add_lane(l, false, format!("path {l}"), now);
    }
    for _ in 0..10_000 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut seed, &lanes, now);
        if leech.is_complete() {
            break;
        }
    }
    assert!(leech.is_complete());
    assert_eq!(store.contents(), data);
    assert_eq!(leech.peer_count(), 1, "three lanes, one peer");
    let per_lane: Vec<u64> = leech
        .lane_stats()
        .iter()
        .map(|(_, s)| s.bytes_down)
        .collect();
    assert!(
        per_lane.iter().all(|&b| b > 0),
        "every lane carried data: {per_lane:?}"
    );
    assert!(std::iter::from_fn(|| leech.poll_action()).any(|a| a == Action::Complete));
}

#[test]
fn failover_when_a_lane_dies_midway() {
    let mut now = Instant::now();
    let data = content(600_000, 3);
    let meta = torrent(&data, 16 * 1024);
    let (mut seed, _) = session(&meta, Some(data.clone()), 1, now);
    let (mut leech, store) = session(&meta, None, 2, now);
    for l in [1, 2] {
        leech.add_lane(l, true, String::new(), now);
        seed.add_lane(l, false, String::new(), now);
    }
    now += Duration::from_millis(5);
    pump(&mut leech, &mut seed, &[1, 2], now);
    pump(&mut leech, &mut seed, &[1, 2], now);
    leech.on_lane_closed(2, CloseReason::PathDown("test".into()), now);
    seed.on_lane_closed(2, CloseReason::PathDown("test".into()), now);
    for _ in 0..10_000 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut seed, &[1], now);
        if leech.is_complete() {
            break;
        }
    }
    assert!(leech.is_complete(), "lane 1 took over lane 2's requests");
    assert_eq!(store.contents(), data);
}

#[test]
fn wrong_info_hash_and_liars_are_rejected() {
    let now = Instant::now();
    let data = content(100_000, 1);
    let meta = torrent(&data, 16 * 1024);
    let other = torrent(&content(100_000, 2), 16 * 1024);
    let (mut seed, _) = session(&other, Some(content(100_000, 2)), 1, now);
    let (mut leech, _) = session(&meta, None, 2, now);
    leech.add_lane(1, true, String::new(), now);
    seed.add_lane(1, false, String::new(), now);
    pump(&mut leech, &mut seed, &[1], now);
    let closed: Vec<Action> = std::iter::from_fn(|| seed.poll_action()).collect();
    assert!(
        closed.iter().any(|a| matches!(
            a,
            Action::CloseLane {
                reason: CloseReason::OtherTorrent(_),
                ..
            }
        )),
        "{closed:?}"
    );

    // A seeder whose data does not match the hashes gets banned.
    let mut now = Instant::now();
    let (mut liar, _) = session(&meta, Some(content(100_000, 9)), 3, now);
    let (mut leech, _) = session(&meta, None, 4, now);
    leech.add_lane(1, true, String::new(), now);
    liar.add_lane(1, false, String::new(), now);
    let mut banned = false;
    for _ in 0..1000 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut liar, &[1], now);
        if std::iter::from_fn(|| leech.poll_action())
            .any(|a| matches!(a, Action::CloseLane { ref reason, .. } if reason.is_ban()))
        {
            banned = true;
            break;
        }
    }
    assert!(banned);
    assert!(leech.pieces_failed > 0);
}

#[test]
fn garbage_on_a_lane_closes_it_without_panicking() {
    let now = Instant::now();
    let data = content(50_000, 1);
    let meta = torrent(&data, 16 * 1024);
    let (mut seed, _) = session(&meta, Some(data), 1, now);
    let mut x: u32 = 12345;
    for lane in 0..200u64 {
        seed.add_lane(lane, false, String::new(), now);
        let junk: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        seed.on_lane_data(lane, &junk, now);
    }
    let closed = std::iter::from_fn(|| seed.poll_action()).count();
    assert_eq!(closed, 200, "every garbage lane is closed");

    // Past the handshake: a valid handshake, then framed messages with random ids, lengths
    // (often the right one for the id) and bodies, so the garbage reaches the message
    // handlers: out-of-range pieces, bad bitfields, requests past a piece end, unknown ids.
    let mut reasons = std::collections::BTreeSet::new();
    for lane in 1000..1300u64 {
        seed.add_lane(lane, false, String::new(), now);
        let mut stream = bytes::BytesMut::new();
        let mut peer_id = [7u8; 20];
        peer_id[..8].copy_from_slice(&lane.to_be_bytes());
        crate::wire::Handshake::new(meta.info_hash, peer_id).encode(&mut stream);
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..30 {
            let id = (rnd() % 22) as u8;
            let body_len = match (id, rnd() % 3) {
                (4 | 13 | 17, 0 | 1) => 4,
                (6 | 8 | 16, 0 | 1) => 12,
                (9, 0 | 1) => 2,
                (0..=3 | 14 | 15, 0 | 1) => 0,
                _ => (rnd() % 40) as usize,
            };
            stream.extend_from_slice(&(body_len as u32 + 1).to_be_bytes());
            stream.extend_from_slice(&[id]);
            for _ in 0..body_len {
                // Small numbers often, so indexes and offsets are sometimes in range.
                let r = rnd();
                stream.extend_from_slice(&[if r & 0x100 == 0 {
                    (r % 4) as u8
                } else {
                    r as u8
                }]);
            }
        }
        seed.on_lane_data(lane, &stream, now);
        seed.tick(now);
        for a in std::iter::from_fn(|| seed.poll_action()) {
            if let Action::CloseLane { reason, .. } = a {
                assert!(!matches!(reason, CloseReason::BadHandshake(_)), "{reason}");
                reasons.insert(reason.to_string().replace(|c: char| c.is_ascii_digit(), ""));
            }
        }
    }
    assert!(reasons.len() >= 3, "garbage reached only {reasons:?}");
}

#[test]
fn seeder_spreads_competing_leechers_over_disjoint_links() {
    let mut now = Instant::now();
    let data = content(4_000_000, 5);
    let meta = torrent(&data, 16 * 1024);
    let (mut seed, _) = session(&meta, Some(data), 1, now);
    let (mut a, _) = session(&meta, None, 2, now);
    let (mut b, _) = session(&meta, None, 3, now);
    // Lanes 1-3 belong to leecher a, 11-13 to b; lane k and k+10 use the same path.
    for l in [1u64, 2, 3] {
        a.add_lane(l, true, String::new(), now);
        b.add_lane(l + 10, true, String::new(), now);
        seed.add_lane(l, false, String::new(), now);
        seed.add_lane(l + 10, false, String::new(), now);
        seed.set_lane_links(l, vec![l * 100]);
        seed.set_lane_links(l + 10, vec![l * 100]);
    }
    // Once both leechers are unchoked (before either finishes), look at the admitted lanes.
    let mut unchoked = std::collections::BTreeSet::new();
    for _ in 0..50 {
        now += Duration::from_millis(5);
        pump(&mut a, &mut seed, &[1, 2, 3], now);
        pump(&mut b, &mut seed, &[11, 12, 13], now);
        unchoked = seed.unchoked_lanes();
        if unchoked.iter().any(|l| *l < 10) && unchoked.iter().any(|l| *l > 10) {
            break;
        }
    }
    // Three links, two leechers: each link carries exactly one admitted lane.
    let mut links: Vec<u64> = unchoked.iter().map(|l| l % 10).collect();
    links.sort();
    assert_eq!(links, vec![1, 2, 3], "admitted lanes {unchoked:?}");
    assert!(unchoked.iter().any(|l| *l < 10) && unchoked.iter().any(|l| *l > 10));
}

/// `-numPaths 1` on the seeding side: a leecher's three lanes stay open, one carries the
/// data; when it dies another takes over at once (one at a time again).
#[test]
fn a_seeder_serves_a_leecher_on_at_most_its_lane_cap() {
    let mut now = Instant::now();
    let data = content(1_000_000, 9);
    let meta = torrent(&data, 16 * 1024);
    let mut cfg = SessionConfig::new([1; 20]);
    cfg.max_served_lanes = Some(1);
    let (mut seed, _) = session_with(&meta, Some(data.clone()), cfg, now);
    let (mut leech, store) = session(&meta, None, 2, now);
    for l in [1, 2, 3] {
        leech.add_lane(l, true, String::new(), now);
        seed.add_lane(l, false, String::new(), now);
    }
    for _ in 0..40 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut seed, &[1, 2, 3], now);
        if !seed.unchoked_lanes().is_empty() {
            break;
        }
    }
    let unchoked = seed.unchoked_lanes();
    assert_eq!(unchoked.len(), 1, "{unchoked:?}");
    let first = *unchoked.iter().next().unwrap();
    now += Duration::from_millis(5);
    pump(&mut leech, &mut seed, &[1, 2, 3], now);
    assert!(!leech.is_complete(), "the lane dies mid-download");
    leech.on_lane_closed(first, CloseReason::PathDown("test".into()), now);
    seed.on_lane_closed(first, CloseReason::PathDown("test".into()), now);
    let rest: Vec<LaneId> = [1, 2, 3].into_iter().filter(|l| *l != first).collect();
    for _ in 0..10_000 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut seed, &rest, now);
        assert!(seed.unchoked_lanes().len() <= 1);
        if leech.is_complete() {
            break;
        }
    }
    assert!(leech.is_complete(), "another lane took over");
    assert_eq!(store.contents(), data);
    let carried = leech
        .lane_stats()
        .iter()
        .filter(|(_, s)| s.bytes_down > 0)
        .count();
    assert!(carried <= 2, "one lane at a time: {carried}");
}

/// The remote end of one lane played by the test: it speaks the wire protocol directly, so a
/// test can hold back unchokes and blocks the way a real peer might.
struct ScriptedPeer {
    decoder: crate::wire::MessageDecoder,
    handshake_seen: bool,
}

impl ScriptedPeer {
    /// Handshake (fast + extensions), an extension handshake with `reqq`, and "have all".
    fn greet(meta: &Metainfo, reqq: Option<u32>) -> (Self, Vec<u8>) {
        use crate::wire::{encode, ExtensionHandshake, Handshake, Message};
        let mut hs = Handshake::new(meta.info_hash, [9; 20]);
        hs.set_fast(true);
        hs.set_extensions(true);
        let mut out = bytes::BytesMut::new();
        hs.encode(&mut out);
        let ext = ExtensionHandshake {
            reqq,
            ..Default::default()
        };
        encode(&ext.to_message().unwrap(), &mut out);
        encode(&Message::HaveAll, &mut out);
        let peer = ScriptedPeer {
            decoder: crate::wire::MessageDecoder::new(Default::default()),
            handshake_seen: false,
        };
        (peer, out.to_vec())
    }

    /// Reads what the session sent; returns the requests in it as (piece, offset, length).
    fn requests(
        &mut self,
        session: &mut Session,
        lane: LaneId,
        now: Instant,
    ) -> Vec<(u32, u32, u32)> {
        while let Some(chunk) = session.poll_output(lane, now) {
            self.decoder.push(&chunk);
        }
        if !self.handshake_seen {
            if self.decoder.next_handshake().unwrap().is_none() {
                return Vec::new();
            }
            self.handshake_seen = true;
        }
        let mut reqs = Vec::new();
        while let Some(m) = self.decoder.next_message().unwrap() {
            if let crate::wire::Message::Request {
                index,
                begin,
                length,
            } = m
            {
                reqs.push((index, begin, length));
            }
        }
        reqs
    }
}

fn encoded(msg: &crate::wire::Message) -> Vec<u8> {
    let mut b = bytes::BytesMut::new();
    crate::wire::encode(msg, &mut b);
    b.to_vec()
}

/// A peer that unchokes only after a long wait (Transmission rechokes every 10 s) must not
/// find the lane "stalled" the moment the first requests go out: no request is sent twice.
#[test]
fn late_unchoke_does_not_count_as_a_stall() {
    let mut now = Instant::now();
    let data = content(2_000_000, 3);
    let meta = torrent(&data, 64 * 1024);
    let (mut leech, _) = session(&meta, None, 2, now);
    leech.add_lane(1, true, "tcp".into(), now);
    let (mut peer, hello) = ScriptedPeer::greet(&meta, None);
    leech.on_lane_data(1, &hello, now);
    leech.tick(now);
    assert!(
        peer.requests(&mut leech, 1, now).is_empty(),
        "choked: no requests"
    );
    now += Duration::from_secs(9);
    leech.tick(now);
    leech.on_lane_data(1, &encoded(&crate::wire::Message::Unchoke), now);
    let mut seen = std::collections::HashSet::new();
    // The peer takes 1.5 s to answer (one 500 ms pulse after reading the requests, and more).
    for _ in 0..30 {
        leech.tick(now);
        for r in peer.requests(&mut leech, 1, now) {
            assert!(seen.insert(r), "block {r:?} requested twice");
        }
        now += Duration::from_millis(50);
    }
    assert!(!seen.is_empty(), "requests went out after the unchoke");
}

/// A lane without a transport RTT (TCP) grows its pipeline with its rate, but never beyond
/// the `reqq` the peer advertised.
#[test]
fn tcp_lane_pipeline_is_capped_by_the_peers_reqq() {
    use crate::wire::Message;
    let mut now = Instant::now();
    let data = content(8_000_000, 4);
    let meta = torrent(&data, 64 * 1024);
    let (mut leech, _) = session(&meta, None, 2, now);
    leech.add_lane(1, true, "tcp".into(), now);
    let (mut peer, hello) = ScriptedPeer::greet(&meta, Some(40));
    leech.on_lane_data(1, &hello, now);
    leech.on_lane_data(1, &encoded(&Message::Unchoke), now);
    let mut outstanding: VecDeque<(u32, u32, u32)> = VecDeque::new();
    let mut most = 0;
    for _ in 0..100 {
        leech.tick(now);
        outstanding.extend(peer.requests(&mut leech, 1, now));
        most = most.max(outstanding.len());
        // Serve one 500 ms round's worth of the queue (a fast peer with round-based uploads).
        for (index, begin, len) in outstanding.drain(..) {
            let off = index as usize * 64 * 1024 + begin as usize;
            let block = bytes::Bytes::copy_from_slice(&data[off..off + len as usize]);
            let m = Message::Piece {
                index,
                begin,
                data: block,
            };
            leech.on_lane_data(1, &encoded(&m), now);
        }
        now += Duration::from_millis(500);
    }
    assert_eq!(
        most, 40,
        "the pipeline fills up to the peer's reqq and no further"
    );
}

/// Everything the session sent on `lane`, decoded (after the handshake).
fn sent_messages(session: &mut Session, lane: LaneId, now: Instant) -> Vec<crate::wire::Message> {
    let mut dec = crate::wire::MessageDecoder::new(Default::default());
    while let Some(chunk) = session.poll_output(lane, now) {
        dec.push(&chunk);
    }
    assert!(dec.next_handshake().unwrap().is_some(), "no handshake sent");
    std::iter::from_fn(|| dec.next_message().unwrap()).collect()
}

/// A Have costs O(1): it can only make us interested, and only in a piece we still need. A
/// leecher that has piece 0 stays uninterested on "have 0" and becomes interested on
/// "have 1"; a seeder stays uninterested through a Have flood and keeps the lane open.
#[test]
fn have_makes_us_interested_only_in_pieces_we_need() {
    use crate::wire::{encode, Handshake, Message};
    let now = Instant::now();
    let data = content(16 * 1024 * 8, 6);
    let meta = torrent(&data, 16 * 1024);
    let mut have = Bitfield::new(meta.num_pieces());
    have.set(0);
    let storage = Arc::new(MemStorage::with_data(&meta, data.clone()));
    let verifier = InlineVerifier {
        storage: storage.clone(),
        meta: meta.clone(),
        done: VecDeque::new(),
    };
    let mut leech = Session::new(
        meta.clone(),
        Box::new(storage),
        Box::new(verifier),
        have,
        SessionConfig::new([2; 20]),
        now,
    );
    let (mut seed, _) = session(&meta, Some(data), 1, now);
    let mut hello = bytes::BytesMut::new();
    let mut hs = Handshake::new(meta.info_hash, [9; 20]);
    hs.set_fast(true);
    hs.encode(&mut hello);
    encode(&Message::HaveNone, &mut hello);
    for s in [&mut leech, &mut seed] {
        s.add_lane(1, false, String::new(), now);
        s.on_lane_data(1, &hello, now);
        s.tick(now);
    }
    let interested = |msgs: &[Message]| msgs.contains(&Message::Interested);
    assert!(!interested(&sent_messages(&mut leech, 1, now)));

    leech.on_lane_data(1, &encoded(&Message::Have { index: 0 }), now);
    assert!(!interested(&sent_messages_after(&mut leech, 1, now)));
    leech.on_lane_data(1, &encoded(&Message::Have { index: 1 }), now);
    assert!(interested(&sent_messages_after(&mut leech, 1, now)));

    let mut flood = Vec::new();
    for i in 0..100_000u32 {
        flood.extend(encoded(&Message::Have { index: i % 8 }));
    }
    seed.on_lane_data(1, &flood, now);
    seed.tick(now);
    let msgs = sent_messages(&mut seed, 1, now);
    assert!(!interested(&msgs), "{msgs:?}");
    assert!(
        !std::iter::from_fn(|| seed.poll_action()).any(|a| matches!(a, Action::CloseLane { .. })),
        "a Have flood is legal, if useless"
    );
}

/// What the session sent on `lane` since the last read (no handshake expected).
fn sent_messages_after(
    session: &mut Session,
    lane: LaneId,
    now: Instant,
) -> Vec<crate::wire::Message> {
    let mut dec = crate::wire::MessageDecoder::new(Default::default());
    while let Some(chunk) = session.poll_output(lane, now) {
        dec.push(&chunk);
    }
    std::iter::from_fn(|| dec.next_message().unwrap()).collect()
}

/// One piece, two peers: the liar sends one corrupt block and rejects the other, an honest
/// peer sends the rest, so the piece fails with two contributors. After the honest peer
/// serves the whole piece again and it verifies, the liar, and only the liar, is banned.
#[test]
fn the_liar_among_several_contributors_is_banned_alone() {
    use crate::wire::Message;
    let mut now = Instant::now();
    let data = content(32 * 1024, 8);
    let meta = torrent(&data, 32 * 1024);
    let (mut leech, store) = session(&meta, None, 2, now);
    let (mut honest, hello_h) = ScriptedPeer::greet(&meta, None);
    let (mut liar, mut hello_l) = ScriptedPeer::greet(&meta, None);
    hello_l[48] ^= 1; // another peer id
    leech.add_lane(1, true, "honest".into(), now);
    leech.add_lane(2, true, "liar".into(), now);
    leech.on_lane_data(1, &hello_h, now);
    leech.on_lane_data(2, &hello_l, now);
    leech.on_lane_data(2, &encoded(&Message::Unchoke), now);
    let block = |index: u32, begin: u32, len: u32, corrupt: bool| {
        let mut d = data[begin as usize..(begin + len) as usize].to_vec();
        if corrupt {
            d[0] ^= 0xff;
        }
        encoded(&Message::Piece {
            index,
            begin,
            data: bytes::Bytes::from(d),
        })
    };
    leech.tick(now);
    let reqs = liar.requests(&mut leech, 2, now);
    assert_eq!(reqs.len(), 2, "both blocks asked of the only unchoked peer");
    let (i, b, l) = reqs[0];
    leech.on_lane_data(2, &block(i, b, l, true), now);
    let (i, b, l) = reqs[1];
    let reject = Message::RejectRequest {
        index: i,
        begin: b,
        length: l,
    };
    leech.on_lane_data(2, &encoded(&reject), now);
    leech.on_lane_data(2, &encoded(&Message::Choke), now);
    leech.on_lane_data(1, &encoded(&Message::Unchoke), now);
    let mut closed = Vec::new();
    for _ in 0..50 {
        now += Duration::from_millis(50);
        leech.tick(now);
        for (i, b, l) in honest.requests(&mut leech, 1, now) {
            leech.on_lane_data(1, &block(i, b, l, false), now);
        }
        closed.extend(
            std::iter::from_fn(|| leech.poll_action()).filter_map(|a| match a {
                Action::CloseLane { lane, reason } => Some((lane, reason)),
                _ => None,
            }),
        );
        if leech.is_complete() {
            break;
        }
    }
    assert!(leech.is_complete(), "closed: {closed:?}");
    assert_eq!(leech.pieces_failed, 1);
    assert_eq!(store.contents(), data);
    assert!(
        closed.iter().any(|(l, r)| *l == 2 && r.is_ban()),
        "the liar is banned: {closed:?}"
    );
    assert!(
        closed.iter().all(|(l, _)| *l != 1),
        "the honest peer is not: {closed:?}"
    );
}

/// A fast-extension peer that floods requests while choked gets a reject for each, and is
/// closed once it has sent more than a well-behaved peer ever would (we never unchoked it and
/// gave it no allowed-fast pieces); a few requests while choked are only rejected.
#[test]
fn request_flood_while_choked_closes_the_lane() {
    use crate::wire::{encode, Handshake, Message};
    let now = Instant::now();
    let data = content(16 * 1024 * 8, 6);
    let meta = torrent(&data, 16 * 1024);
    let (mut seed, _) = session(&meta, Some(data), 1, now);
    let req = encoded(&Message::Request {
        index: 0,
        begin: 0,
        length: 16 * 1024,
    });
    let join = |seed: &mut Session, lane: LaneId, id: u8| {
        seed.add_lane(lane, false, String::new(), now);
        let mut buf = bytes::BytesMut::new();
        let mut hs = Handshake::new(meta.info_hash, [id; 20]);
        hs.set_fast(true);
        hs.encode(&mut buf);
        encode(&Message::Interested, &mut buf);
        seed.on_lane_data(lane, &buf, now);
    };
    join(&mut seed, 1, 9);
    let mut closed = None;
    let mut sent = 0;
    for _ in 0..200_000 {
        seed.on_lane_data(1, &req, now);
        sent += 1;
        if let Some(Action::CloseLane { reason, .. }) = seed.poll_action() {
            closed = Some(reason);
            break;
        }
    }
    let reason = closed.expect("the flooding lane is closed");
    assert!(
        matches!(reason, CloseReason::RequestsWhileChoked(_)),
        "{reason}"
    );
    assert_eq!(sent, 513, "closed after 512 requests while choked");
    // A peer that sends a few requests while choked only gets rejects, and stays.
    join(&mut seed, 2, 8);
    for _ in 0..100 {
        seed.on_lane_data(2, &req, now);
    }
    let mut rejects = 0;
    while let Some(chunk) = seed.poll_output(2, now) {
        rejects += chunk.windows(2).filter(|w| w == &[13, 16]).count();
    }
    assert!(rejects >= 100, "each request is rejected ({rejects})");
    assert!(
        seed.poll_action().is_none(),
        "a peer with a few requests stays"
    );
}

#[test]
fn under_a_download_limit_lanes_that_join_late_still_get_their_share() {
    use crate::torrent::rate::{Limiter, SharedBucket};
    let mut now = Instant::now();
    let data = content(4_000_000, 3);
    let meta = torrent(&data, 64 * 1024);
    let (mut seed, _) = session(&meta, Some(data.clone()), 1, now);
    let (mut leech, store) = session(&meta, None, 2, now);
    let limit = Limiter::new(vec![SharedBucket::new(Some(1_000_000), now)]);
    leech.set_rate_limits(limit, Limiter::unlimited());
    // One lane runs alone first and becomes "the fast one".
    leech.add_lane(1, true, "path 1".into(), now);
    seed.add_lane(1, false, "path 1".into(), now);
    for _ in 0..200 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut seed, &[1], now);
    }
    let lanes = [1, 2, 3];
    for &l in &lanes[1..] {
        leech.add_lane(l, true, format!("path {l}"), now);
        seed.add_lane(l, false, format!("path {l}"), now);
    }
    let before: Vec<u64> = leech
        .lane_stats()
        .iter()
        .map(|(_, s)| s.bytes_down)
        .collect();
    for _ in 0..400 {
        now += Duration::from_millis(5);
        pump(&mut leech, &mut seed, &lanes, now);
    }
    let mut stats = leech.lane_stats();
    stats.sort_by_key(|(id, _)| *id);
    let gained: Vec<u64> = stats
        .iter()
        .map(|(id, s)| s.bytes_down - if *id == 1 { before[0] } else { 0 })
        .collect();
    let total: u64 = gained.iter().sum();
    assert!(
        total > 1_000_000,
        "the limit lets ~2 MB through in 2 s: {gained:?}"
    );
    for (lane, g) in gained.iter().enumerate() {
        assert!(
            *g * 5 > total,
            "lane {} got {g} of {total} bytes: {gained:?}",
            lane + 1
        );
    }
    assert!(!leech.is_complete() || store.contents() == data);
}

/// Moves bytes both ways on every lane pair (lane `i` of `a` to lane `i` of `b`): one tick
/// each, then everything either side has to write.
fn pump(
    a: &mut impl crate::torrent::lane_protocol::LaneProtocol,
    b: &mut impl crate::torrent::lane_protocol::LaneProtocol,
    lanes: &[LaneId],
    now: Instant,
) -> usize {
    let mut moved = 0;
    a.tick(now);
    b.tick(now);
    for &l in lanes {
        while let Some(chunk) = a.poll_output(l, now) {
            moved += chunk.len();
            b.on_lane_data(l, &chunk, now);
        }
        while let Some(chunk) = b.poll_output(l, now) {
            moved += chunk.len();
            a.on_lane_data(l, &chunk, now);
        }
    }
    moved
}

#[test]
fn a_magnet_fetches_the_info_dictionary_from_a_seeding_session() {
    use crate::torrent::lane_protocol::LaneProtocol;
    use crate::torrent::metadata_session::MetadataSession;
    let now = Instant::now();
    let data = content(3_000_000, 9);
    // Small pieces: an info dictionary of several 16 KiB metadata pieces.
    let meta = torrent(&data, 1024);
    assert!(meta.info_bytes.len() > 2 * 16 * 1024);
    let (mut seed, _) = session(&meta, Some(data), 1, now);
    let mut fetch = MetadataSession::new(meta.info_hash, [2; 20], "test".into());
    for l in [1, 2] {
        LaneProtocol::add_lane(&mut fetch, l, true, String::new(), now);
        seed.add_lane(l, false, format!("path {l}"), now);
    }
    for _ in 0..50 {
        if pump(&mut fetch, &mut seed, &[1, 2], now) == 0 {
            break;
        }
    }
    let info = fetch.take_info().expect("metadata complete");
    assert_eq!(info, meta.info_bytes.to_vec());
    assert_eq!(crate::storage::hash::sha1(&info), meta.info_hash);
}

#[test]
fn a_magnet_fetch_drops_a_peer_without_metadata_and_refuses_another_torrent() {
    use crate::torrent::lane_protocol::LaneProtocol;
    use crate::torrent::metadata_session::MetadataSession;
    let now = Instant::now();
    let data = content(100_000, 4);
    let meta = torrent(&data, 16 * 1024);
    let other = torrent(&content(100_000, 5), 16 * 1024);
    let (mut wrong, _) = session(&other, Some(content(100_000, 5)), 1, now);
    let mut fetch = MetadataSession::new(meta.info_hash, [2; 20], "test".into());
    LaneProtocol::add_lane(&mut fetch, 1, true, String::new(), now);
    wrong.add_lane(1, false, "x".into(), now);
    pump(&mut fetch, &mut wrong, &[1], now);
    let closes: Vec<_> = std::iter::from_fn(|| LaneProtocol::poll_action(&mut wrong)).collect();
    assert!(
        closes.iter().any(|a| matches!(
            a,
            Action::CloseLane {
                lane: 1,
                reason: CloseReason::OtherTorrent(_)
            }
        )),
        "the seeder of another torrent refuses: {closes:?}"
    );
    // A peer that answers the handshake but offers no metadata is dropped with a reason.
    let mut fetch = MetadataSession::new(meta.info_hash, [2; 20], "test".into());
    LaneProtocol::add_lane(&mut fetch, 1, true, String::new(), now);
    let mut hs = crate::wire::Handshake::new(meta.info_hash, [7; 20]);
    hs.set_extensions(true);
    let mut buf = bytes::BytesMut::new();
    hs.encode(&mut buf);
    let ext = crate::wire::ExtensionHandshake::default()
        .to_message()
        .unwrap();
    buf.extend_from_slice(&encoded(&ext));
    fetch.on_lane_data(1, &buf, now);
    let a = LaneProtocol::poll_action(&mut fetch);
    assert!(
        matches!(
            &a,
            Some(Action::CloseLane {
                lane: 1,
                reason: CloseReason::NoMetadata
            })
        ),
        "{a:?}"
    );
    assert!(fetch.take_info().is_none());
}

/// With a DHT node running, the handshake says so and a peer that runs one too gets our
/// port (BEP 5); a peer without the DHT bit gets no `port` message.
#[test]
fn the_dht_port_goes_to_peers_that_run_a_dht() {
    use crate::wire::{Handshake, Message};
    let now = Instant::now();
    let data = content(100_000, 8);
    let meta = torrent(&data, 16 * 1024);
    let mut cfg = SessionConfig::new([1; 20]);
    cfg.dht_port = Some(7000);
    let (mut s, _) = session_with(&meta, Some(data), cfg, now);
    for (lane, dht) in [(1, true), (2, false)] {
        s.add_lane(lane, false, "x".into(), now);
        let mut hs = Handshake::new(meta.info_hash, [lane as u8 + 10; 20]);
        hs.set_dht(dht);
        s.on_lane_data(lane, &hs.to_bytes(), now);
        let mut dec = crate::wire::MessageDecoder::new(Default::default());
        while let Some(chunk) = s.poll_output(lane, now) {
            dec.push(&chunk);
        }
        let ours = dec.next_handshake().unwrap().expect("our handshake");
        assert!(ours.supports_dht());
        let msgs: Vec<Message> = std::iter::from_fn(|| dec.next_message().unwrap()).collect();
        assert_eq!(
            msgs.contains(&Message::Port(7000)),
            dht,
            "lane {lane}: {msgs:?}"
        );
    }
}

/// A handshake and an extension handshake as a peer with `m: {ut_pex: 1}` (and `p`) sends it.
fn pex_peer_greeting(meta: &Metainfo, id: u8, port: Option<u16>) -> Vec<u8> {
    use crate::wire::{ExtensionHandshake, Handshake};
    let mut hs = Handshake::new(meta.info_hash, [id; 20]);
    hs.set_extensions(true);
    let mut out = hs.to_bytes().to_vec();
    let ext = ExtensionHandshake {
        m: [("ut_pex".to_string(), 1)].into(),
        p: port,
        ..Default::default()
    };
    out.extend_from_slice(&encoded(&ext.to_message().unwrap()));
    out
}

/// ut_pex payloads a session sent on a lane.
fn pex_sent(s: &mut Session, lane: LaneId, now: Instant) -> Vec<bt_ext::PexMessage> {
    let mut dec = crate::wire::MessageDecoder::new(Default::default());
    while let Some(chunk) = s.poll_output(lane, now) {
        dec.push(&chunk);
    }
    dec.next_handshake().unwrap();
    std::iter::from_fn(|| dec.next_message().unwrap())
        .filter_map(|m| match m {
            crate::wire::Message::Extended { id: 1, payload } => {
                Some(bt_ext::decode_pex_message(&payload).unwrap())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn pex_names_each_peer_to_the_other_by_its_listen_address_and_takes_what_peers_tell() {
    use crate::scion::PeerAddr;
    let now = Instant::now();
    let data = content(100_000, 9);
    let meta = torrent(&data, 16 * 1024);
    let (mut s, _) = session(&meta, Some(data), 1, now);
    let a: PeerAddr = "10.0.0.1:6881".parse().unwrap();
    let b_conn: PeerAddr = "10.0.0.2:50000".parse().unwrap();
    let b_listen: PeerAddr = "10.0.0.2:7777".parse().unwrap();
    // A: we dialled it. B: it dialled us from an ephemeral port and names its port in `p`.
    s.add_lane(1, true, "a".into(), now);
    s.set_lane_remote(1, a, true);
    s.add_lane(2, false, "b".into(), now);
    s.set_lane_remote(2, b_conn, false);
    s.on_lane_data(1, &pex_peer_greeting(&meta, 10, None), now);
    s.on_lane_data(2, &pex_peer_greeting(&meta, 11, Some(7777)), now);
    s.tick(now);
    let to_a = pex_sent(&mut s, 1, now);
    let to_b = pex_sent(&mut s, 2, now);
    assert_eq!(to_a.len(), 1, "{to_a:?}");
    assert_eq!(
        to_a[0].added.iter().map(|x| x.0).collect::<Vec<_>>(),
        [b_listen]
    );
    assert_eq!(to_b[0].added.iter().map(|x| x.0).collect::<Vec<_>>(), [a]);
    // Nothing new: nothing more, even a minute later.
    s.tick(now + Duration::from_secs(61));
    assert!(pex_sent(&mut s, 1, now).is_empty());

    // What B tells us goes to the peer book; a flood right after is ignored.
    let told = |n: u8| {
        let msg = bt_ext::PexMessage {
            added: vec![(
                PeerAddr::Ip(([192, 168, 0, n], 6881).into()),
                bt_ext::PexFlags(0),
            )],
            dropped: vec![],
        };
        encoded(&crate::wire::Message::Extended {
            id: crate::wire::UT_PEX_ID,
            payload: msg.encode().into(),
        })
    };
    s.on_lane_data(2, &told(1), now);
    for n in 2..100 {
        s.on_lane_data(2, &told(n), now);
    }
    assert_eq!(
        s.take_pex_peers(),
        vec![PeerAddr::Ip(([192, 168, 0, 1], 6881).into())]
    );
}

/// A peer's `port` names its DHT node: its address with that port, once, for the client.
#[test]
fn a_peers_port_message_names_its_dht_node() {
    use crate::scion::PeerAddr;
    use crate::wire::{Handshake, Message};
    let now = Instant::now();
    let data = content(50_000, 3);
    let meta = torrent(&data, 16 * 1024);
    let (mut s, _) = session(&meta, Some(data), 1, now);
    s.add_lane(1, false, "x".into(), now);
    s.set_lane_remote(1, "10.1.2.3:50000".parse().unwrap(), false);
    let mut bytes = Handshake::new(meta.info_hash, [9; 20]).to_bytes().to_vec();
    for _ in 0..3 {
        bytes.extend_from_slice(&encoded(&Message::Port(6881)));
    }
    s.on_lane_data(1, &bytes, now);
    assert_eq!(
        s.take_dht_nodes(),
        vec![PeerAddr::Ip("10.1.2.3:6881".parse().unwrap())]
    );
    assert!(s.take_dht_nodes().is_empty());
}

/// Our extension handshake tells an IP peer where we see it coming from (`yourip`), and names
/// our TCP port (`p`) and the extensions we speak.
#[test]
fn our_extension_handshake_says_yourip_p_and_m() {
    use crate::wire::{ExtensionHandshake, Message, EXTENSION_HANDSHAKE_ID};
    let now = Instant::now();
    let data = content(50_000, 4);
    let meta = torrent(&data, 16 * 1024);
    let mut cfg = SessionConfig::new([1; 20]);
    cfg.tcp_port = Some(51413);
    let (mut s, _) = session_with(&meta, Some(data), cfg, now);
    s.add_lane(1, false, "x".into(), now);
    s.set_lane_remote(1, "192.0.2.7:40000".parse().unwrap(), false);
    s.on_lane_data(1, &pex_peer_greeting(&meta, 10, None), now);
    let ext = sent_messages(&mut s, 1, now)
        .into_iter()
        .find_map(|m| match m {
            Message::Extended {
                id: EXTENSION_HANDSHAKE_ID,
                payload,
            } => Some(ExtensionHandshake::decode(&payload).unwrap()),
            _ => None,
        })
        .expect("an extension handshake");
    assert_eq!(ext.yourip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(ext.p, Some(51413));
    assert_eq!(ext.id_of("ut_metadata"), Some(2));
    assert_eq!(ext.id_of("ut_pex"), Some(1));
    assert_eq!(ext.metadata_size, Some(meta.info_bytes.len() as u64));
}

/// A seeding daemon sees thousands of leechers come and go: a closed lane's stats (with its
/// latency histogram) are kept for the summary, but only the newest few, not one per
/// connection for the torrent's whole life (the soak's heap grew by ~130 KiB per leecher).
#[test]
fn closed_lanes_keep_only_the_newest_stats() {
    let now = Instant::now();
    let data = content(100_000, 3);
    let meta = torrent(&data, 16 * 1024);
    let (mut seed, _) = session(&meta, Some(data), 1, now);
    let total = 3 * FINISHED_LANES_KEPT as u64;
    for l in 1..=total {
        seed.add_lane(l, false, format!("lane {l}"), now);
        seed.on_lane_closed(l, CloseReason::PathDown("test".into()), now);
    }
    seed.add_lane(total + 1, false, "open".into(), now);
    let stats = seed.lane_stats();
    assert_eq!(stats.len(), FINISHED_LANES_KEPT + 1);
    assert_eq!(stats[0].1.label, "open");
    let oldest_kept = total - FINISHED_LANES_KEPT as u64 + 1;
    assert_eq!(stats[1].1.label, format!("lane {oldest_kept}"));
    assert_eq!(stats.last().unwrap().1.label, format!("lane {total}"));
}
