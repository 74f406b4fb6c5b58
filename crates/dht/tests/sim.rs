//! Sans-IO simulations: many engines wired through an in-memory network with virtual time,
//! over UDP/IP addresses and over SCION addresses spread across several ISD-ASes; plus hostile
//! input (malformed KRPC, lying `nodes`, floods).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bt_dht::krpc::{self, Body, Message, Method, NodeInfo, Query, Response};
use bt_dht::{Config, Dht, DhtAddr, DhtEvent, Id, LookupKind};
use scion_addr::{Ia, ScionAddr};

/// A node that answers every query, handing out made-up nodes very close to the target at
/// addresses where nobody listens.
struct Liar {
    id: Id,
    seq: u32,
}

/// The in-memory network: datagrams arrive after a fixed latency; datagrams to unknown
/// addresses vanish.
struct Net<A: DhtAddr> {
    now: Instant,
    nodes: Vec<Dht<A>>,
    addrs: Vec<A>,
    index: HashMap<A, usize>,
    liars: HashMap<A, Liar>,
    in_flight: BTreeMap<(Instant, u64), (A, A, Vec<u8>)>,
    seq: u64,
    events: Vec<Vec<DhtEvent<A>>>,
    make_fake: fn(u32) -> A,
}

const LATENCY: Duration = Duration::from_millis(20);

impl<A: DhtAddr> Net<A> {
    fn new(make_fake: fn(u32) -> A) -> Self {
        Net {
            now: Instant::now(),
            nodes: Vec::new(),
            addrs: Vec::new(),
            index: HashMap::new(),
            liars: HashMap::new(),
            in_flight: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
            make_fake,
        }
    }

    fn add(&mut self, addr: A, bootstrap: Vec<A>, seed: u64) -> usize {
        let config = Config {
            bootstrap,
            seed: Some(seed),
            families: bt_dht::Want { n4: true, n6: true },
            ..Config::default()
        };
        self.add_engine(addr, Dht::new(config, self.now))
    }

    fn add_engine(&mut self, addr: A, dht: Dht<A>) -> usize {
        let i = self.nodes.len();
        self.nodes.push(dht);
        self.addrs.push(addr);
        self.index.insert(addr, i);
        self.events.push(Vec::new());
        i
    }

    fn send(&mut self, from: A, to: A, bytes: Vec<u8>) {
        self.seq += 1;
        self.in_flight
            .insert((self.now + LATENCY, self.seq), (from, to, bytes));
    }

    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some((to, bytes)) = self.nodes[i].poll_transmit() {
                let from = self.addrs[i];
                self.send(from, to, bytes);
            }
            while let Some(e) = self.nodes[i].poll_event() {
                self.events[i].push(e);
            }
        }
    }

    fn deliver(&mut self, from: A, to: A, bytes: Vec<u8>) {
        if let Some(&i) = self.index.get(&to) {
            self.nodes[i].handle_datagram(from, &bytes, self.now);
        } else if self.liars.contains_key(&to) {
            if let Some(reply) = self.lie(to, &bytes) {
                self.send(to, from, reply);
            }
        }
    }

    fn lie(&mut self, me: A, bytes: &[u8]) -> Option<Vec<u8>> {
        let make_fake = self.make_fake;
        let liar = self.liars.get_mut(&me)?;
        let m = krpc::decode::<A>(bytes).ok()?;
        let Body::Query(q) = m.body else { return None };
        let target = match q.method {
            Method::FindNode { target } => Some(target),
            Method::GetPeers { info_hash } => Some(info_hash),
            _ => None,
        };
        let mut nodes = Vec::new();
        if let Some(t) = target {
            for _ in 0..8 {
                liar.seq += 1;
                let mut id = t;
                id.0[16..].copy_from_slice(&liar.seq.to_be_bytes());
                nodes.push(NodeInfo {
                    id,
                    addr: make_fake(liar.seq),
                });
            }
        }
        let reply = Message {
            t: m.t,
            v: None,
            ro: false,
            ip: None,
            body: Body::Response(Response {
                id: liar.id,
                nodes,
                values: Vec::new(),
                token: target.map(|_| b"tok".to_vec()),
            }),
        };
        Some(reply.encode())
    }

    /// Runs until `until` (virtual), delivering datagrams and firing timers.
    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            self.collect();
            let next_packet = self.in_flight.keys().next().map(|k| k.0);
            let next_timer = self.nodes.iter().filter_map(Dht::poll_timeout).min();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(until),
            };
            if next > until {
                self.now = until;
                return;
            }
            self.now = self.now.max(next);
            while let Some(entry) = self.in_flight.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let (from, to, bytes) = entry.remove();
                self.deliver(from, to, bytes);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                    self.nodes[i].handle_timeout(self.now);
                }
            }
        }
    }

    /// Runs until node `i` reports an event matching `f` (or `limit` passes).
    fn run_until_event(
        &mut self,
        i: usize,
        limit: Duration,
        f: impl Fn(&DhtEvent<A>) -> bool,
    ) -> Option<DhtEvent<A>> {
        let deadline = self.now + limit;
        while self.now < deadline {
            self.run_for(Duration::from_millis(100));
            if let Some(pos) = self.events[i].iter().position(&f) {
                return Some(self.events[i].remove(pos));
            }
        }
        None
    }
}

fn ip_addr(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 6881)
}

fn fake_ip(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i)), 9)
}

const ASES: [&str; 5] = [
    "1-ff00:0:110",
    "1-ff00:0:111",
    "1-ff00:0:112",
    "2-ff00:0:210",
    "2-ff00:0:211",
];

/// Nodes spread over five ASes; the same host IPs recur in every AS, so only the ISD-AS tells
/// them apart.
fn scion_addr(i: u32) -> ScionAddr {
    let ia = ASES[i as usize % ASES.len()].parse().unwrap();
    let host = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + (i / ASES.len() as u32) as u8));
    ScionAddr::new(ia, host, 7000)
}

fn fake_scion(i: u32) -> ScionAddr {
    ScionAddr::new(
        Ia::from_u64(0x0003_ff00_0000_0999),
        IpAddr::V4(Ipv4Addr::from(i)),
        9,
    )
}

fn hash(b: u8) -> Id {
    Id([b; 20])
}

/// Builds a swarm of `n` engines that bootstrap from node 0, one after another.
fn swarm<A: DhtAddr>(n: u32, addr: fn(u32) -> A, fake: fn(u32) -> A) -> Net<A> {
    let mut net = Net::new(fake);
    net.add(addr(0), Vec::new(), 0);
    for i in 1..n {
        let idx = net.add(addr(i), vec![addr(0)], u64::from(i));
        net.nodes[idx].bootstrap(net.now).unwrap();
        net.run_for(Duration::from_millis(300));
    }
    net.run_for(Duration::from_secs(10));
    net
}

fn bootstrapped<A: DhtAddr>(net: &mut Net<A>, i: usize) -> usize {
    match net.run_until_event(i, Duration::from_secs(30), |e| {
        matches!(e, DhtEvent::Bootstrapped { .. })
    }) {
        Some(DhtEvent::Bootstrapped { nodes }) => nodes,
        other => panic!("node {i} did not bootstrap: {other:?}"),
    }
}

/// One node announces; a newcomer knowing only one (other) node finds it with get_peers.
fn announce_then_find<A: DhtAddr>(addr: fn(u32) -> A, fake: fn(u32) -> A) {
    let n = 60;
    let mut net = swarm(n, addr, fake);
    for i in 1..n as usize {
        let s = net.nodes[i].stats();
        assert!(s.nodes_v4 >= 8, "node {i} knows only {} nodes", s.nodes_v4);
    }
    let seeder = 17;
    net.nodes[seeder]
        .announce(hash(0xab), Some(5000), net.now)
        .unwrap();
    let done = net
        .run_until_event(seeder, Duration::from_secs(30), |e| {
            matches!(e, DhtEvent::LookupDone { .. })
        })
        .expect("announce finished");
    let DhtEvent::LookupDone {
        kind, announced_to, ..
    } = done
    else {
        unreachable!()
    };
    assert!(matches!(kind, LookupKind::Announce { port: 5000, .. }));
    assert!(announced_to.len() >= 6, "acked by {announced_to:?}");

    let leecher = net.add(addr(n + 1), vec![addr(33)], 999);
    net.nodes[leecher].bootstrap(net.now).unwrap();
    assert!(bootstrapped(&mut net, leecher) >= 8);
    net.nodes[leecher].get_peers(hash(0xab), net.now).unwrap();
    let found = net.run_until_event(leecher, Duration::from_secs(30), |e| {
        matches!(e, DhtEvent::PeersFound { .. })
    });
    let want = addr(seeder as u32).with_port(5000);
    match found {
        Some(DhtEvent::PeersFound {
            info_hash, peers, ..
        }) => {
            assert_eq!(info_hash, hash(0xab));
            assert_eq!(peers, vec![want]);
        }
        other => panic!("no peers: {other:?}"),
    }
    // A hash nobody announced: the lookup ends without peers.
    net.nodes[leecher].get_peers(hash(0x01), net.now).unwrap();
    match net.run_until_event(leecher, Duration::from_secs(30), |e| match e {
        DhtEvent::LookupDone { target, .. } => *target == hash(0x01),
        DhtEvent::PeersFound { info_hash, .. } => *info_hash == hash(0x01),
        _ => false,
    }) {
        Some(DhtEvent::LookupDone {
            peers_found,
            responded,
            ..
        }) => {
            assert_eq!(peers_found, 0);
            assert!(responded >= 8);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ip_swarm_announce_and_get_peers() {
    announce_then_find(ip_addr, fake_ip);
}

#[test]
fn scion_swarm_across_ases_announce_and_get_peers() {
    announce_then_find(scion_addr, fake_scion);
}

#[test]
fn restart_from_saved_table_needs_no_bootstrap_node() {
    let mut net = swarm(30, scion_addr, fake_scion);
    net.nodes[5].announce(hash(7), None, net.now).unwrap();
    net.run_for(Duration::from_secs(10));
    let saved = net.nodes[12].save();
    let old_id = net.nodes[12].id();
    // Node 12 restarts: the saved table, and a bootstrap list pointing nowhere.
    let config = Config {
        bootstrap: vec![fake_scion(1)],
        seed: Some(4242),
        ..Config::default()
    };
    let restored = Dht::restore(config, &saved, net.now).unwrap();
    assert_eq!(restored.id(), old_id);
    net.nodes[12] = restored;
    net.events[12].clear();
    net.nodes[12].bootstrap(net.now).unwrap();
    assert!(bootstrapped(&mut net, 12) >= 8);
    net.nodes[12].get_peers(hash(7), net.now).unwrap();
    let found = net.run_until_event(12, Duration::from_secs(30), |e| {
        matches!(e, DhtEvent::PeersFound { .. })
    });
    // implied_port: the announcer's DHT port.
    assert!(
        matches!(&found, Some(DhtEvent::PeersFound { peers, .. }) if peers == &vec![scion_addr(5)]),
        "{found:?}"
    );
    // A state of the other address kind is refused, not misread.
    assert!(Dht::<SocketAddr>::restore(Config::default(), &saved, net.now).is_err());
    assert!(Dht::<ScionAddr>::restore(Config::default(), b"garbage", net.now).is_err());
}

#[test]
fn lying_nodes_do_not_stop_lookups() {
    let mut net = swarm(40, ip_addr, fake_ip);
    // Ten liars join: they answer pings correctly, so they enter routing tables.
    for l in 0..10u32 {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(172, 16, 0, l as u8 + 1)), 6881);
        net.liars.insert(
            addr,
            Liar {
                id: Id([l as u8 + 100; 20]),
                seq: l * 1_000_000,
            },
        );
        for i in 0..net.nodes.len() {
            let now = net.now;
            net.nodes[i].add_node(addr, now);
        }
    }
    net.run_for(Duration::from_secs(5));
    net.nodes[3]
        .announce(hash(0x42), Some(6000), net.now)
        .unwrap();
    assert!(net
        .run_until_event(3, Duration::from_secs(70), |e| matches!(
            e,
            DhtEvent::LookupDone { .. }
        ))
        .is_some());
    let seeker = 25;
    net.nodes[seeker].get_peers(hash(0x42), net.now).unwrap();
    let found = net.run_until_event(seeker, Duration::from_secs(70), |e| {
        matches!(e, DhtEvent::PeersFound { .. })
    });
    assert!(
        matches!(&found, Some(DhtEvent::PeersFound { peers, .. }) if peers.contains(&ip_addr(3).with_port(6000))),
        "{found:?}"
    );
    // Every lookup ends (bounded by MAX_LOOKUP_TIME), and made-up nodes never enter a table.
    net.run_for(bt_dht::MAX_LOOKUP_TIME + Duration::from_secs(5));
    for (i, d) in net.nodes.iter().enumerate() {
        let s = d.stats();
        assert_eq!(s.lookups, 0, "node {i}");
        for n in d.closest_nodes(&Id::ZERO, 10_000, net.now) {
            assert!(
                !n.addr.ip().to_string().starts_with("192.168."),
                "node {i} has fake {n:?}"
            );
        }
    }
}

#[test]
fn malformed_datagrams_are_dropped_without_harm() {
    let mut net = swarm(10, ip_addr, fake_ip);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = Message::<SocketAddr> {
        t: b"aa".to_vec(),
        v: None,
        ro: false,
        ip: None,
        body: Body::Query(Query {
            id: Id([1; 20]),
            method: Method::GetPeers { info_hash: hash(3) },
            want: None,
        }),
    }
    .encode();
    let target = 4;
    let before = net.nodes[target].stats();
    for k in 0..20_000u32 {
        let mut b = if k % 2 == 0 {
            valid.clone()
        } else {
            (0..next() % 200).map(|_| next() as u8).collect()
        };
        if !b.is_empty() {
            for _ in 0..1 + next() % 4 {
                let n = b.len();
                b[(next() as usize) % n] = next() as u8;
            }
        }
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(next() as u32 | 1)), 1 + k as u16);
        let now = net.now;
        net.nodes[target].handle_datagram(from, &b, now);
        while net.nodes[target].poll_transmit().is_some() {}
    }
    for junk in [
        &b""[..],
        b"d",
        b"de",
        b"d1:y1:re",
        b"d1:t2:aa1:y1:re",
        &[0xff; 9000],
    ] {
        let now = net.now;
        net.nodes[target].handle_datagram(ip_addr(1), junk, now);
    }
    let after = net.nodes[target].stats();
    assert!(after.malformed > before.malformed + 10_000, "{after:?}");
    // Still a working node.
    let seeker = 7;
    net.nodes[seeker].find_node(Id::ZERO, net.now).unwrap();
    let done = net.run_until_event(seeker, Duration::from_secs(30), |e| {
        matches!(e, DhtEvent::LookupDone { .. })
    });
    assert!(matches!(done, Some(DhtEvent::LookupDone { responded, .. }) if responded >= 8));
}

#[test]
fn floods_stay_bounded() {
    let limits = bt_dht::Limits {
        max_hashes: 100,
        max_peers_per_hash: 10,
        max_rate_keys: 500,
        max_queue: 200,
        ..bt_dht::Limits::default()
    };
    let now = Instant::now();
    let mut d: Dht<SocketAddr> = Dht::new(
        Config {
            seed: Some(1),
            limits: limits.clone(),
            ..Config::default()
        },
        now,
    );
    let query = |t: u32, method: Method| {
        Message::<SocketAddr> {
            t: t.to_be_bytes().to_vec(),
            v: None,
            ro: false,
            ip: None,
            body: Body::Query(Query {
                id: Id([(t % 251) as u8; 20]),
                method,
                want: None,
            }),
        }
        .encode()
    };
    // 20 000 sources: each gets a token, then announces a fresh hash with it.
    let mut replies = 0;
    for s in 0..20_000u32 {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + s)), 4000);
        let t = now + Duration::from_millis(10 * u64::from(s));
        d.handle_datagram(from, &query(s, Method::GetPeers { info_hash: hash(1) }), t);
        let mut token = None;
        while let Some((to, bytes)) = d.poll_transmit() {
            replies += 1;
            if let Ok(Message {
                body: Body::Response(r),
                ..
            }) = krpc::decode::<SocketAddr>(&bytes)
            {
                if to == from {
                    token = r.token.or(token);
                }
            }
        }
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&s.to_be_bytes());
        let announce = Method::AnnouncePeer {
            info_hash: Id(h),
            port: 1,
            implied_port: false,
            token: token.expect("token"),
        };
        d.handle_datagram(from, &query(s, announce), t);
        // Plus a few announces with forged tokens and queries for the same hash.
        d.handle_datagram(
            from,
            &query(
                s,
                Method::AnnouncePeer {
                    info_hash: hash(2),
                    port: 1,
                    implied_port: false,
                    token: b"forged".to_vec(),
                },
            ),
            t,
        );
        while d.poll_event().is_some() {}
        if s % 1000 == 0 {
            while d.poll_transmit().is_some() {}
        }
        let st = d.stats();
        assert!(st.stored_hashes <= limits.max_hashes, "{st:?}");
        assert!(st.rate_keys <= limits.max_rate_keys, "{st:?}");
        assert!(st.queued_transmits <= limits.max_queue, "{st:?}");
        assert!(st.pending <= limits.max_pending, "{st:?}");
    }
    assert!(replies > 0);
    let st = d.stats();
    assert_eq!(st.stored_hashes, limits.max_hashes);
    assert!(st.stored_peers <= limits.max_hashes * limits.max_peers_per_hash);

    // One source hammering: answered at the configured burst, then dropped.
    while d.poll_transmit().is_some() {}
    let hammer: SocketAddr = "10.9.9.9:1".parse().unwrap();
    let t = now + Duration::from_secs(400);
    for k in 0..1000 {
        d.handle_datagram(hammer, &query(k, Method::Ping), t);
    }
    let answered = std::iter::from_fn(|| d.poll_transmit())
        .filter(|(to, bytes)| {
            *to == hammer
                && matches!(
                    krpc::decode::<SocketAddr>(bytes),
                    Ok(Message {
                        body: Body::Response(_),
                        ..
                    })
                )
        })
        .count();
    assert_eq!(answered, limits.rate_burst as usize);
    assert!(d.stats().rate_limited >= 1000 - u64::from(limits.rate_burst));

    // Unsolicited responses are counted and ignored.
    let before = d.stats().unsolicited;
    for k in 0..1000u32 {
        let r = Message::<SocketAddr> {
            t: (k as u16).to_be_bytes().to_vec(),
            v: None,
            ro: false,
            ip: None,
            body: Body::Response(Response {
                id: hash(9),
                nodes: (0..8)
                    .map(|j| NodeInfo {
                        id: Id([j; 20]),
                        addr: fake_ip(j.into()),
                    })
                    .collect(),
                values: vec![fake_ip(1)],
                token: None,
            }),
        };
        d.handle_datagram(ip_addr(k), &r.encode(), t);
    }
    assert_eq!(d.stats().unsolicited, before + 1000);
    assert_eq!(
        d.stats().nodes_v4,
        0,
        "unsolicited nodes never enter the table"
    );
}

#[test]
fn unknown_methods_and_bad_tokens_get_errors() {
    let now = Instant::now();
    let mut d: Dht<ScionAddr> = Dht::new(Config::default(), now);
    let from = scion_addr(3);
    let q = |method| {
        Message::<ScionAddr> {
            t: b"xy".to_vec(),
            v: None,
            ro: true,
            ip: None,
            body: Body::Query(Query {
                id: Id([5; 20]),
                method,
                want: None,
            }),
        }
        .encode()
    };
    let answer = |d: &mut Dht<ScionAddr>, bytes: Vec<u8>| {
        d.handle_datagram(from, &bytes, now);
        let (to, reply) = d.poll_transmit().expect("a reply");
        assert_eq!(to, from);
        krpc::decode::<ScionAddr>(&reply).unwrap()
    };
    let m = answer(&mut d, q(Method::Other(b"vote".to_vec())));
    assert!(matches!(m.body, Body::Error { code: 204, .. }));
    let m = answer(
        &mut d,
        q(Method::AnnouncePeer {
            info_hash: hash(1),
            port: 9,
            implied_port: false,
            token: b"nope".to_vec(),
        }),
    );
    assert!(matches!(m.body, Body::Error { code: 203, .. }));
    // The reply tells the querier its address (BEP 42 `ip`), in SCION form.
    assert_eq!(m.ip, Some(from));
    // A read-only querier is not pinged for the table.
    assert!(d.poll_transmit().is_none());
}
