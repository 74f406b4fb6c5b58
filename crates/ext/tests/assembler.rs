//! The metadata assembler against honest and adversarial peers, driven by a small
//! simulation loop (no sockets, time passed in).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bt_ext::metadata::{AddPeerError, Request, MAX_METADATA_SIZE, METADATA_PIECE_LEN};
use bt_ext::{MetadataAssembler, MetadataEvent, MetadataMessage, MetadataServer};
use sha1::{Digest, Sha1};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A fake info dictionary of `len` bytes (content does not matter to the assembler).
fn info(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

fn hash(b: &[u8]) -> [u8; 20] {
    Sha1::digest(b).into()
}

type Behaviour = Box<dyn FnMut(u32) -> Option<MetadataMessage>>;

fn honest(info: Vec<u8>) -> Behaviour {
    let server = MetadataServer::new(Some(info));
    Box::new(move |piece| server.answer(&MetadataMessage::Request { piece }))
}

/// Runs requests/answers until completion or `max_rounds`; returns every event.
fn run(
    a: &mut MetadataAssembler<u32>,
    peers: &mut BTreeMap<u32, Behaviour>,
    now: &mut Instant,
    max_rounds: usize,
) -> Vec<(u32, MetadataEvent<u32>)> {
    let mut events = Vec::new();
    for _ in 0..max_rounds {
        let reqs = a.poll_requests(*now);
        let mut answered = false;
        for Request { peer, piece } in reqs {
            if let Some(msg) = peers.get_mut(&peer).and_then(|b| b(piece)) {
                answered = true;
                let ev = a.on_message(&peer, &msg);
                let done = matches!(ev, MetadataEvent::Complete(_));
                events.push((peer, ev));
                if done {
                    return events;
                }
            }
        }
        if !answered {
            match a.poll_timeout() {
                Some(t) => {
                    *now = t;
                    a.handle_timeout(*now);
                }
                None => return events,
            }
        }
    }
    events
}

fn completed(events: &[(u32, MetadataEvent<u32>)]) -> Option<&Vec<u8>> {
    events.iter().find_map(|(_, e)| match e {
        MetadataEvent::Complete(b) => Some(b),
        _ => None,
    })
}

fn assembler(meta: &[u8]) -> MetadataAssembler<u32> {
    MetadataAssembler::new(hash(meta)).with_request_timeout(TIMEOUT)
}

#[test]
fn honest_peers_complete_and_share_the_work() {
    let meta = info(3 * METADATA_PIECE_LEN + 100, 1);
    let mut a = assembler(&meta);
    let mut peers: BTreeMap<u32, Behaviour> = BTreeMap::new();
    for p in [1, 2] {
        a.add_peer(p, meta.len() as u64).unwrap();
        peers.insert(p, honest(meta.clone()));
    }
    assert_eq!(a.progress(), (0, 4));
    let mut now = Instant::now();
    let events = run(&mut a, &mut peers, &mut now, 10);
    assert_eq!(completed(&events), Some(&meta));
    let from: std::collections::BTreeSet<u32> = events.iter().map(|(p, _)| *p).collect();
    assert_eq!(from.len(), 2, "both peers were asked");
    assert!(a.is_complete());
    assert_eq!(a.add_peer(3, 5), Err(AddPeerError::Complete));
    let late = MetadataMessage::Data {
        piece: 0,
        total_size: meta.len() as u64,
        data: meta[..METADATA_PIECE_LEN].to_vec(),
    };
    assert_eq!(a.on_message(&1, &late), MetadataEvent::Ignored);
}

#[test]
fn sizes_outside_limits_are_refused() {
    let mut a: MetadataAssembler<u32> = MetadataAssembler::new([0; 20]);
    assert_eq!(a.add_peer(1, 0), Err(AddPeerError::ZeroSize));
    let big = MAX_METADATA_SIZE as u64 + 1;
    assert_eq!(a.add_peer(1, big), Err(AddPeerError::TooLarge(big)));
    assert_eq!(
        a.add_peer(1, u64::MAX),
        Err(AddPeerError::TooLarge(u64::MAX))
    );
    assert_eq!(a.size(), None);
    assert!(a.poll_requests(Instant::now()).is_empty());
    a.add_peer(1, MAX_METADATA_SIZE as u64).unwrap();
    assert_eq!(a.progress(), (0, 512));
}

#[test]
fn wrong_piece_length_or_total_size_bans_and_drops_contributions() {
    let meta = info(2 * METADATA_PIECE_LEN + 10, 2);
    let total = meta.len() as u64;
    let mut a = assembler(&meta);
    a.add_peer(1, total).unwrap();
    a.add_peer(2, total).unwrap();
    let now = Instant::now();
    let reqs = a.poll_requests(now);
    assert_eq!(reqs.len(), 3);
    // Peer 1 answers its first piece correctly, then sends a short piece.
    let mine: Vec<u32> = reqs
        .iter()
        .filter(|r| r.peer == 1)
        .map(|r| r.piece)
        .collect();
    let good = MetadataServer::new(Some(meta.clone()))
        .answer(&MetadataMessage::Request { piece: mine[0] })
        .unwrap();
    assert!(matches!(
        a.on_message(&1, &good),
        MetadataEvent::Progress { have: 1, .. }
    ));
    let short = MetadataMessage::Data {
        piece: mine[1],
        total_size: total,
        data: vec![0; 5],
    };
    assert!(matches!(
        a.on_message(&1, &short),
        MetadataEvent::Misbehaved { peer: 1, .. }
    ));
    assert!(a.is_banned(&1));
    assert_eq!(a.progress().0, 0, "the banned peer's piece was dropped");
    assert_eq!(a.add_peer(1, total), Err(AddPeerError::Banned));
    // Peer 2 claims another total size in a data message: banned too.
    let r2 = reqs.iter().find(|r| r.peer == 2).unwrap();
    let lie = MetadataMessage::Data {
        piece: r2.piece,
        total_size: total + 1,
        data: vec![0; 10],
    };
    assert!(matches!(
        a.on_message(&2, &lie),
        MetadataEvent::Misbehaved { peer: 2, .. }
    ));
    assert!(a.poll_requests(now).is_empty());
    assert!(a.is_stalled());
    // An honest newcomer gets everything.
    a.add_peer(3, total).unwrap();
    let mut peers: BTreeMap<u32, Behaviour> = BTreeMap::from([(3, honest(meta.clone()))]);
    let mut now = now;
    assert_eq!(
        completed(&run(&mut a, &mut peers, &mut now, 10)),
        Some(&meta)
    );
}

#[test]
fn bad_hash_from_one_peer_bans_it() {
    let meta = info(METADATA_PIECE_LEN + 5, 3);
    let forged = info(meta.len(), 4);
    let mut a = assembler(&meta);
    a.add_peer(7, meta.len() as u64).unwrap();
    let mut peers: BTreeMap<u32, Behaviour> = BTreeMap::from([(7, honest(forged))]);
    let mut now = Instant::now();
    let events = run(&mut a, &mut peers, &mut now, 10);
    assert!(events
        .iter()
        .any(|(_, e)| *e == MetadataEvent::HashMismatch { banned: vec![7] }));
    assert!(a.is_banned(&7));
    assert_eq!(
        a.size(),
        None,
        "discarded; the size is taken again from the next peer"
    );
    a.add_peer(8, meta.len() as u64).unwrap();
    peers.insert(8, honest(meta.clone()));
    assert_eq!(
        completed(&run(&mut a, &mut peers, &mut now, 10)),
        Some(&meta)
    );
    assert!(!a.is_banned(&8));
}

#[test]
fn bad_hash_from_several_peers_is_attributed_by_single_source_rounds() {
    let meta = info(4 * METADATA_PIECE_LEN, 5);
    let forged = info(meta.len(), 6);
    for liar in [1u32, 2] {
        let honest_peer = 3 - liar;
        let mut a = assembler(&meta);
        let mut peers: BTreeMap<u32, Behaviour> = BTreeMap::new();
        a.add_peer(1, meta.len() as u64).unwrap();
        a.add_peer(2, meta.len() as u64).unwrap();
        peers.insert(liar, honest(forged.clone()));
        peers.insert(honest_peer, honest(meta.clone()));
        let mut now = Instant::now();
        let mut events = Vec::new();
        for _ in 0..4 {
            events.extend(run(&mut a, &mut peers, &mut now, 20));
            if completed(&events).is_some() {
                break;
            }
        }
        assert_eq!(completed(&events), Some(&meta), "liar {liar}");
        let mismatches: Vec<&MetadataEvent<u32>> = events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| matches!(e, MetadataEvent::HashMismatch { .. }))
            .collect();
        assert_eq!(
            mismatches[0],
            &MetadataEvent::HashMismatch { banned: vec![] },
            "first mismatch is not attributable"
        );
        // Peer 1 (lowest id) is the first single source: if it is the liar, that round is
        // attributable and bans it; if it is honest, that round completes.
        assert_eq!(a.is_banned(&liar), liar == 1, "liar {liar}");
        assert!(!a.is_banned(&honest_peer));
    }
}

#[test]
fn a_peer_that_rejects_everything_is_routed_around() {
    let meta = info(3 * METADATA_PIECE_LEN, 7);
    let mut a = assembler(&meta);
    a.add_peer(1, meta.len() as u64).unwrap();
    let mut peers: BTreeMap<u32, Behaviour> = BTreeMap::from([(
        1,
        Box::new(|piece| Some(MetadataMessage::Reject { piece })) as Behaviour,
    )]);
    let mut now = Instant::now();
    let events = run(&mut a, &mut peers, &mut now, 10);
    assert!(events.iter().all(|(_, e)| *e == MetadataEvent::Requeued));
    assert_eq!(events.len(), 3, "each piece asked once");
    assert!(a.is_stalled());
    a.add_peer(2, meta.len() as u64).unwrap();
    peers.insert(2, honest(meta.clone()));
    assert!(!a.is_stalled());
    let events = run(&mut a, &mut peers, &mut now, 10);
    assert_eq!(completed(&events), Some(&meta));
    assert!(events.iter().all(|(p, _)| *p == 2));
}

#[test]
fn silent_peer_times_out_and_late_answers_still_count() {
    let meta = info(2 * METADATA_PIECE_LEN, 8);
    let mut a = assembler(&meta);
    let t0 = Instant::now();
    a.add_peer(1, meta.len() as u64).unwrap();
    let reqs = a.poll_requests(t0);
    assert_eq!(reqs.len(), 2);
    assert_eq!(a.poll_timeout(), Some(t0 + TIMEOUT));
    a.handle_timeout(t0 + TIMEOUT - Duration::from_millis(1));
    assert!(a.poll_requests(t0).is_empty(), "still in flight");
    a.handle_timeout(t0 + TIMEOUT);
    assert_eq!(a.poll_timeout(), None);
    assert!(a.is_stalled(), "the only peer timed out on every piece");
    // Its late answer for piece 0 is still welcome.
    let server = MetadataServer::new(Some(meta.clone()));
    let late = server
        .answer(&MetadataMessage::Request { piece: 0 })
        .unwrap();
    assert_eq!(
        a.on_message(&1, &late),
        MetadataEvent::Progress { have: 1, total: 2 }
    );
    // Unsolicited data from a peer never asked is ignored.
    a.add_peer(2, meta.len() as u64).unwrap();
    let unsolicited = server
        .answer(&MetadataMessage::Request { piece: 1 })
        .unwrap();
    assert_eq!(a.on_message(&2, &unsolicited), MetadataEvent::Ignored);
    let reqs = a.poll_requests(t0 + TIMEOUT);
    assert_eq!(reqs, vec![Request { peer: 2, piece: 1 }]);
    assert!(matches!(
        a.on_message(&2, &unsolicited),
        MetadataEvent::Complete(ref b) if *b == meta
    ));
}

#[test]
fn peers_claiming_another_size_are_not_asked_unless_the_size_fails() {
    let meta = info(METADATA_PIECE_LEN + 1, 9);
    let mut a = assembler(&meta);
    a.add_peer(1, 999_999).unwrap(); // a liar about the size, first to offer
    a.add_peer(2, meta.len() as u64).unwrap();
    assert_eq!(a.size(), Some(999_999));
    let reqs = a.poll_requests(Instant::now());
    assert!(reqs.iter().all(|r| r.peer == 1));
    // The liar sends a forged dictionary of its size; after the mismatch the honest size wins.
    let mut peers: BTreeMap<u32, Behaviour> =
        BTreeMap::from([(1, honest(info(999_999, 1))), (2, honest(meta.clone()))]);
    let mut now = Instant::now();
    // Drop the requests already handed out: re-run from scratch.
    a.remove_peer(&1);
    a.add_peer(1, 999_999).unwrap();
    let events = run(&mut a, &mut peers, &mut now, 200);
    assert!(events
        .iter()
        .any(|(_, e)| *e == MetadataEvent::HashMismatch { banned: vec![1] }));
    assert_eq!(
        completed(&events),
        Some(&meta),
        "then the honest size and peer"
    );
}

#[test]
fn memory_is_bounded_by_the_peer_cap() {
    let mut a: MetadataAssembler<u32> = MetadataAssembler::new([0; 20]);
    for p in 0..bt_ext::metadata::MAX_PEERS as u32 {
        a.add_peer(p, 100).unwrap();
    }
    assert_eq!(a.add_peer(100_000, 100), Err(AddPeerError::TooManyPeers));
    a.remove_peer(&0);
    assert_eq!(a.add_peer(100_000, 100), Ok(()));
}

mod adversarial {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Add(u32, u64),
        Remove(u32),
        Data(u32, u32, u64, usize),
        Reject(u32, u32),
        Honest(u32),
        Tick(u64),
    }

    fn op(size: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                0u32..6,
                prop_oneof![Just(size), 0u64..100_000, Just(u64::MAX)]
            )
                .prop_map(|(p, s)| Op::Add(p, s)),
            (0u32..6).prop_map(Op::Remove),
            (
                0u32..6,
                0u32..8,
                prop_oneof![Just(size), any::<u64>()],
                0usize..20_000
            )
                .prop_map(|(p, i, t, l)| Op::Data(p, i, t, l)),
            (0u32..6, 0u32..8).prop_map(|(p, i)| Op::Reject(p, i)),
            (0u32..6).prop_map(Op::Honest),
            (0u64..20).prop_map(Op::Tick),
        ]
    }

    proptest! {
        /// Random peers sending random pieces, sizes, rejects, and honest answers: no panic,
        /// progress stays within bounds, and anything completed hashes to the info hash.
        #[test]
        fn never_panics_and_never_completes_wrong(ops in proptest::collection::vec(op(40_000), 0..120)) {
            let meta = info(40_000, 3);
            let server = MetadataServer::new(Some(meta.clone()));
            let mut a = assembler(&meta);
            let mut now = Instant::now();
            let mut outstanding: Vec<Request<u32>> = Vec::new();
            for op in ops {
                let ev = match op {
                    Op::Add(p, s) => { let _ = a.add_peer(p, s); None }
                    Op::Remove(p) => { a.remove_peer(&p); None }
                    Op::Data(p, piece, total_size, len) => Some(a.on_message(&p, &MetadataMessage::Data {
                        piece, total_size, data: vec![0xAB; len],
                    })),
                    Op::Reject(p, piece) => Some(a.on_message(&p, &MetadataMessage::Reject { piece })),
                    Op::Honest(p) => outstanding
                        .iter()
                        .position(|r| r.peer == p)
                        .map(|i| outstanding.remove(i))
                        .and_then(|r| server.answer(&r.message()))
                        .map(|m| a.on_message(&p, &m)),
                    Op::Tick(s) => {
                        now += Duration::from_secs(s);
                        a.handle_timeout(now);
                        None
                    }
                };
                outstanding.extend(a.poll_requests(now));
                if let Some(MetadataEvent::Complete(b)) = ev {
                    prop_assert_eq!(hash(&b), hash(&meta));
                }
                let (have, total) = a.progress();
                prop_assert!(have <= total && total <= 512);
                prop_assert!(a.size().is_none_or(|s| s <= MAX_METADATA_SIZE));
            }
        }
    }
}
