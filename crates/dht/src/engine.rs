//! The sans-IO DHT node: feed it datagrams and time, drain datagrams, events and the next
//! deadline. One engine serves one socket and one address kind `A` (UDP/IP or SCION/UDP).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::addr::{DhtAddr, Family};
use crate::id::{Id, InfoHash};
use crate::krpc::{self, error_code, Body, Message, Method, NodeInfo, Query, Response, Want};
use crate::lookup::{Lookup, LookupId, LookupKind, Phase};
use crate::peer_store::PeerStore;
use crate::rate_limit::RateLimiter;
use crate::table::{Inserted, Table, K};
use crate::tokens::Tokens;

/// Queries in flight per lookup.
pub const ALPHA: usize = 3;
/// Peers returned per get_peers answer (keeps the answer in one unfragmented datagram).
pub const MAX_VALUES_PER_ANSWER: usize = 50;
/// A lookup that has not finished after this long is ended.
pub const MAX_LOOKUP_TIME: Duration = Duration::from_secs(60);
/// Housekeeping period (token rotation, expiry, refresh, pings).
pub const TICK: Duration = Duration::from_secs(5);
/// Questionable nodes pinged per family per tick.
const PINGS_PER_TICK: usize = 4;
/// Nodes kept by `save`/`restore` per family.
const MAX_SAVED_NODES: usize = 1024;

/// Hard caps on everything that grows with input.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Our queries awaiting an answer.
    pub max_pending: usize,
    /// Concurrent lookups (bucket refreshes included).
    pub max_lookups: usize,
    /// Info hashes in the peer store.
    pub max_hashes: usize,
    /// Peers per info hash in the peer store.
    pub max_peers_per_hash: usize,
    /// Answers per source host: burst size.
    pub rate_burst: u32,
    /// Answers per source host: sustained per second.
    pub rate_per_second: u32,
    /// Source hosts tracked by the rate limiter.
    pub max_rate_keys: usize,
    /// Datagrams waiting in `poll_transmit`, and events waiting in `poll_event`.
    pub max_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending: 1024,
            max_lookups: 64,
            max_hashes: 4096,
            max_peers_per_hash: 256,
            rate_burst: 25,
            rate_per_second: 10,
            max_rate_keys: 8192,
            max_queue: 4096,
        }
    }
}

/// Engine configuration.
#[derive(Debug, Clone)]
pub struct Config<A> {
    /// Our node id (random if `None`; taken from the saved state by [`Dht::restore`]).
    pub id: Option<Id>,
    /// Nodes to contact when the routing table is empty.
    pub bootstrap: Vec<A>,
    /// Address families we can send to (BEP 32; both set ⇒ queries carry `want n4 n6`).
    pub families: Want,
    /// BEP 43: send `ro=1` and answer no queries.
    pub read_only: bool,
    /// Seed for ids, tids and secrets (deterministic simulations); OS randomness if `None`.
    pub seed: Option<u64>,
    /// `v` in our messages.
    pub version: Vec<u8>,
    /// How long we wait for an answer.
    pub query_timeout: Duration,
    pub limits: Limits,
}

impl<A> Default for Config<A> {
    fn default() -> Self {
        Config {
            id: None,
            bootstrap: Vec::new(),
            families: Want {
                n4: true,
                n6: false,
            },
            read_only: false,
            seed: None,
            version: b"BS\x00\x01".to_vec(),
            query_timeout: Duration::from_secs(4),
            limits: Limits::default(),
        }
    }
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent<A> {
    /// Peers for `info_hash` (each reported once per lookup; the first batch may come from
    /// our own store).
    PeersFound {
        lookup: LookupId,
        info_hash: InfoHash,
        peers: Vec<A>,
    },
    /// A lookup ended. For an announce, `announced_to` lists the nodes that acknowledged it.
    LookupDone {
        lookup: LookupId,
        target: Id,
        kind: LookupKind,
        responded: usize,
        peers_found: usize,
        announced_to: Vec<A>,
    },
    /// A bootstrap lookup ended; `nodes` is the routing table size.
    Bootstrapped { nodes: usize },
    /// Someone announced `peer` for `info_hash` to us (with a valid token).
    PeerAnnounced { info_hash: InfoHash, peer: A },
}

/// Why a lookup could not start, or a saved state could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhtError {
    #[error("too many lookups running (limit {0})")]
    TooManyLookups(usize),
    #[error("saved DHT state is invalid: {0}")]
    BadState(String),
}

/// Counters and sizes, for tests, logs and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub nodes_v4: usize,
    pub nodes_v6: usize,
    pub pending: usize,
    pub lookups: usize,
    pub stored_hashes: usize,
    pub stored_peers: usize,
    pub rate_keys: usize,
    pub queued_transmits: usize,
    pub queued_events: usize,
    pub received: u64,
    pub malformed: u64,
    pub unsolicited: u64,
    pub rate_limited: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy)]
enum Purpose {
    Ping,
    Lookup(LookupId),
    Announce(LookupId),
}

#[derive(Debug, Clone)]
struct Pending<A> {
    addr: A,
    deadline: Instant,
    purpose: Purpose,
}

/// A mainline DHT node over address kind `A`.
pub struct Dht<A: DhtAddr> {
    config: Config<A>,
    id: Id,
    rng: StdRng,
    tables: [Table<A>; 2],
    pending: HashMap<[u8; 2], Pending<A>>,
    next_tid: u16,
    lookups: BTreeMap<LookupId, Lookup<A>>,
    next_lookup: u64,
    tokens: Tokens,
    peers: PeerStore<A>,
    limiter: RateLimiter<A>,
    transmits: VecDeque<(A, Vec<u8>)>,
    events: VecDeque<DhtEvent<A>>,
    /// Nodes from a saved state, asked first on bootstrap.
    seeds: Vec<NodeInfo<A>>,
    next_tick: Instant,
    last_auto_bootstrap: Option<Instant>,
    stats: Stats,
}

impl<A: DhtAddr> Dht<A> {
    /// A fresh node. Call [`Dht::bootstrap`] to join the network.
    pub fn new(config: Config<A>, now: Instant) -> Self {
        let mut rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        let id = config.id.unwrap_or_else(|| Id::random(&mut rng));
        let tokens = Tokens::new(&mut rng, now);
        let l = &config.limits;
        Dht {
            id,
            tables: [Table::new(id, now), Table::new(id, now)],
            pending: HashMap::new(),
            next_tid: rng.random(),
            lookups: BTreeMap::new(),
            next_lookup: 1,
            tokens,
            peers: PeerStore::new(l.max_hashes, l.max_peers_per_hash),
            limiter: RateLimiter::new(l.rate_burst, l.rate_per_second, l.max_rate_keys),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            seeds: Vec::new(),
            next_tick: now + TICK,
            last_auto_bootstrap: None,
            stats: Stats::default(),
            rng,
            config,
        }
    }

    /// A node restored from [`Dht::save`]'s output: same id, and the saved nodes are asked on
    /// bootstrap instead of the configured bootstrap nodes (which remain the fallback).
    pub fn restore(mut config: Config<A>, saved: &[u8], now: Instant) -> Result<Self, DhtError> {
        let state = crate::persist::decode::<A>(saved)?;
        config.id = Some(state.id);
        let mut dht = Dht::new(config, now);
        dht.seeds = state.nodes;
        Ok(dht)
    }

    /// The routing table (ids and addresses of nodes that answered us) and our id, bencoded.
    pub fn save(&self) -> Vec<u8> {
        let now_nodes: Vec<NodeInfo<A>> = self
            .tables
            .iter()
            .flat_map(|t| t.nodes().take(MAX_SAVED_NODES))
            .filter(|n| n.failures < crate::table::MAX_FAILURES)
            .map(|n| NodeInfo {
                id: n.id,
                addr: n.addr,
            })
            .collect();
        let nodes = if now_nodes.is_empty() {
            self.seeds.clone()
        } else {
            now_nodes
        };
        crate::persist::encode(&self.id, &nodes)
    }

    /// Our node id.
    pub fn id(&self) -> Id {
        self.id
    }

    /// Sizes and counters.
    pub fn stats(&self) -> Stats {
        let (stored_hashes, stored_peers) = self.peers.size();
        Stats {
            nodes_v4: self.tables[0].len(),
            nodes_v6: self.tables[1].len(),
            pending: self.pending.len(),
            lookups: self.lookups.len(),
            stored_hashes,
            stored_peers,
            rate_keys: self.limiter.len(),
            queued_transmits: self.transmits.len(),
            queued_events: self.events.len(),
            ..self.stats.clone()
        }
    }

    /// Up to `n` nodes of our table closest to `target` (both families).
    pub fn closest_nodes(&self, target: &Id, n: usize, now: Instant) -> Vec<NodeInfo<A>> {
        let mut all: Vec<NodeInfo<A>> = self
            .tables
            .iter()
            .flat_map(|t| t.closest(target, n, now))
            .map(|(id, addr)| NodeInfo { id, addr })
            .collect();
        all.sort_by_key(|n| n.id.distance(target));
        all.truncate(n);
        all
    }

    /// Joins the network: a find_node for our own id, seeded from the table, the saved nodes,
    /// or (when neither has any) the configured bootstrap nodes. Ends with
    /// [`DhtEvent::Bootstrapped`].
    pub fn bootstrap(&mut self, now: Instant) -> Result<LookupId, DhtError> {
        let force_config = self.tables.iter().all(Table::is_empty) && self.seeds.is_empty();
        self.start(
            self.id,
            LookupKind::FindNode,
            false,
            true,
            force_config,
            now,
        )
    }

    /// Pings `addr` and adds it to the table if it answers (e.g. from a BEP 5 `port` message).
    pub fn add_node(&mut self, addr: A, now: Instant) {
        if addr.is_usable() && self.family_ok(addr.family()) {
            self.send_query(addr, Method::Ping, Purpose::Ping, now);
        }
    }

    /// Looks for peers of `info_hash`: [`DhtEvent::PeersFound`] as they come, then
    /// [`DhtEvent::LookupDone`].
    pub fn get_peers(&mut self, info_hash: InfoHash, now: Instant) -> Result<LookupId, DhtError> {
        self.start(info_hash, LookupKind::GetPeers, false, false, false, now)
    }

    /// Like [`Dht::get_peers`], then announces us as a peer on `port` (or, with `None`, on the
    /// port our DHT datagrams come from: BEP 5 `implied_port`) to the closest nodes.
    pub fn announce(
        &mut self,
        info_hash: InfoHash,
        port: Option<u16>,
        now: Instant,
    ) -> Result<LookupId, DhtError> {
        let kind = LookupKind::Announce {
            port: port.unwrap_or(0),
            implied_port: port.is_none(),
        };
        self.start(info_hash, kind, false, false, false, now)
    }

    /// Looks for the nodes closest to `target`.
    pub fn find_node(&mut self, target: Id, now: Instant) -> Result<LookupId, DhtError> {
        self.start(target, LookupKind::FindNode, false, false, false, now)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(A, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DhtEvent<A>> {
        self.events.pop_front()
    }

    /// When [`Dht::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let next_deadline = self.pending.values().map(|p| p.deadline).min();
        Some(next_deadline.map_or(self.next_tick, |d| d.min(self.next_tick)))
    }

    /// Expires unanswered queries and runs housekeeping that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<[u8; 2]> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            if let Some(p) = self.pending.remove(&t) {
                self.tables[p.addr.family().index()].failed(&p.addr, now);
                match p.purpose {
                    Purpose::Ping => {}
                    Purpose::Lookup(lid) => {
                        if let Some(l) = self.lookups.get_mut(&lid) {
                            l.failed(&p.addr);
                        }
                        self.advance(lid, now);
                    }
                    Purpose::Announce(lid) => self.announce_answered(lid, None, now),
                }
            }
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.housekeeping(now);
        }
    }

    /// Handles one datagram received from `from`.
    pub fn handle_datagram(&mut self, from: A, bytes: &[u8], now: Instant) {
        self.stats.received += 1;
        let msg = match krpc::decode::<A>(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if !from.is_usable() || !self.family_ok(from.family()) {
            self.stats.dropped += 1;
            return;
        }
        match msg.body {
            Body::Query(q) => self.handle_query(from, msg.t, q, msg.ro, now),
            Body::Response(r) => self.handle_response(from, &msg.t, Some(r), msg.ro, now),
            Body::Error { .. } => self.handle_response(from, &msg.t, None, msg.ro, now),
        }
    }

    fn family_ok(&self, f: Family) -> bool {
        match f {
            Family::V4 => self.config.families.n4,
            Family::V6 => self.config.families.n6,
        }
    }

    fn want(&self) -> Option<Want> {
        let f = self.config.families;
        (f.n4 && f.n6).then_some(f)
    }

    fn push_transmit(&mut self, to: A, bytes: Vec<u8>) {
        if self.transmits.len() >= self.config.limits.max_queue {
            self.stats.dropped += 1;
            return;
        }
        self.transmits.push_back((to, bytes));
    }

    fn push_event(&mut self, e: DhtEvent<A>) {
        if self.events.len() >= self.config.limits.max_queue {
            self.stats.dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    fn free_slots(&self) -> usize {
        self.config
            .limits
            .max_pending
            .saturating_sub(self.pending.len())
    }

    fn send_query(&mut self, to: A, method: Method, purpose: Purpose, now: Instant) -> bool {
        if self.free_slots() == 0 {
            self.stats.dropped += 1;
            return false;
        }
        let mut tid = self.next_tid.to_be_bytes();
        while self.pending.contains_key(&tid) {
            self.next_tid = self.next_tid.wrapping_add(1);
            tid = self.next_tid.to_be_bytes();
        }
        self.next_tid = self.next_tid.wrapping_add(1);
        let msg = Message::<A> {
            t: tid.to_vec(),
            v: Some(self.config.version.clone()),
            ro: self.config.read_only,
            ip: None,
            body: Body::Query(Query {
                id: self.id,
                method,
                want: self.want(),
            }),
        };
        self.pending.insert(
            tid,
            Pending {
                addr: to,
                deadline: now + self.config.query_timeout,
                purpose,
            },
        );
        self.push_transmit(to, msg.encode());
        true
    }

    fn reply(&mut self, to: A, t: Vec<u8>, body: Body<A>) {
        let msg = Message {
            t,
            v: Some(self.config.version.clone()),
            ro: false,
            ip: Some(to),
            body,
        };
        self.push_transmit(to, msg.encode());
    }

    /// The nodes we tell a querier about: the families it wants (default: its own).
    fn nodes_for(
        &self,
        target: &Id,
        want: Option<Want>,
        from: &A,
        now: Instant,
    ) -> Vec<NodeInfo<A>> {
        let want = want.unwrap_or(Want {
            n4: from.family() == Family::V4,
            n6: from.family() == Family::V6,
        });
        let mut out = Vec::new();
        for (family, wanted) in [(Family::V4, want.n4), (Family::V6, want.n6)] {
            if wanted {
                out.extend(
                    self.tables[family.index()]
                        .closest(target, K, now)
                        .into_iter()
                        .map(|(id, addr)| NodeInfo { id, addr }),
                );
            }
        }
        out
    }

    fn handle_query(&mut self, from: A, t: Vec<u8>, q: Query, ro: bool, now: Instant) {
        if self.config.read_only {
            return;
        }
        if !self.limiter.allow(from.with_port(0), now) {
            self.stats.rate_limited += 1;
            return;
        }
        if !ro {
            let table = &mut self.tables[from.family().index()];
            table.heard_query(&q.id, &from, now);
            // A newcomer that would fit is verified with a ping before it enters the table.
            let worth_a_ping = table.has_room_for(&q.id, now)
                && self.free_slots() > self.config.limits.max_pending / 2
                && !self.pending.values().any(|p| p.addr == from);
            if worth_a_ping {
                self.send_query(from, Method::Ping, Purpose::Ping, now);
            }
        }
        let body = match q.method {
            Method::Ping => Body::Response(Response::id_only(self.id)),
            Method::FindNode { target } => Body::Response(Response {
                nodes: self.nodes_for(&target, q.want, &from, now),
                ..Response::id_only(self.id)
            }),
            Method::GetPeers { info_hash } => Body::Response(Response {
                id: self.id,
                nodes: self.nodes_for(&info_hash, q.want, &from, now),
                values: self
                    .peers
                    .get(&info_hash, from.family(), MAX_VALUES_PER_ANSWER, now),
                token: Some(self.tokens.issue(&from)),
            }),
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                let port = if implied_port { from.port() } else { port };
                if !self.tokens.check(&from, &token) {
                    Body::Error {
                        code: error_code::PROTOCOL,
                        message: "bad token".into(),
                    }
                } else if port == 0 {
                    Body::Error {
                        code: error_code::PROTOCOL,
                        message: "bad port".into(),
                    }
                } else {
                    let peer = from.with_port(port);
                    self.peers.add(info_hash, peer, now);
                    self.push_event(DhtEvent::PeerAnnounced { info_hash, peer });
                    Body::Response(Response::id_only(self.id))
                }
            }
            Method::Other(_) => Body::Error {
                code: error_code::METHOD_UNKNOWN,
                message: "Method Unknown".into(),
            },
        };
        self.reply(from, t, body);
    }

    fn handle_response(
        &mut self,
        from: A,
        t: &[u8],
        r: Option<Response<A>>,
        ro: bool,
        now: Instant,
    ) {
        let Ok(tid) = <[u8; 2]>::try_from(t) else {
            self.stats.unsolicited += 1;
            return;
        };
        // Only the address we asked may answer (a forged answer from elsewhere is dropped).
        match self.pending.get(&tid) {
            Some(p) if p.addr == from => {}
            _ => {
                self.stats.unsolicited += 1;
                return;
            }
        }
        let Some(p) = self.pending.remove(&tid) else {
            return;
        };
        if let (Some(r), false) = (&r, ro) {
            if let Inserted::Cached { ping } =
                self.tables[from.family().index()].heard_response(r.id, from, now)
            {
                for addr in ping.into_iter().take(2) {
                    self.send_query(addr, Method::Ping, Purpose::Ping, now);
                }
            }
        }
        match p.purpose {
            Purpose::Ping => {}
            Purpose::Lookup(lid) => {
                match r {
                    Some(r) => self.lookup_answer(lid, from, r),
                    None => {
                        if let Some(l) = self.lookups.get_mut(&lid) {
                            l.failed(&from);
                        }
                    }
                }
                self.advance(lid, now);
            }
            Purpose::Announce(lid) => {
                let acked = r.is_some().then_some(from);
                self.announce_answered(lid, acked, now);
            }
        }
    }

    fn lookup_answer(&mut self, lid: LookupId, from: A, r: Response<A>) {
        let own = self.id;
        let families = self.config.families;
        let Some(l) = self.lookups.get_mut(&lid) else {
            return;
        };
        l.responded(&from, r.id, r.token);
        for n in r.nodes {
            let family_ok = match n.addr.family() {
                Family::V4 => families.n4,
                Family::V6 => families.n6,
            };
            if family_ok && n.addr.is_usable() && n.id != own {
                l.add(Some(n.id), n.addr);
            }
        }
        if matches!(l.kind, LookupKind::GetPeers | LookupKind::Announce { .. }) && !l.internal {
            let peers = l.new_peers(r.values.into_iter().filter(DhtAddr::is_usable));
            if !peers.is_empty() {
                let info_hash = l.target;
                self.push_event(DhtEvent::PeersFound {
                    lookup: lid,
                    info_hash,
                    peers,
                });
            }
        }
    }

    fn announce_answered(&mut self, lid: LookupId, acked: Option<A>, now: Instant) {
        if let Some(l) = self.lookups.get_mut(&lid) {
            if let Phase::Announcing { in_flight } = &mut l.phase {
                *in_flight = in_flight.saturating_sub(1);
            }
            l.announced_to.extend(acked);
        }
        self.advance(lid, now);
    }

    fn start(
        &mut self,
        target: Id,
        kind: LookupKind,
        internal: bool,
        bootstrap: bool,
        from_config: bool,
        now: Instant,
    ) -> Result<LookupId, DhtError> {
        if self.lookups.len() >= self.config.limits.max_lookups {
            return Err(DhtError::TooManyLookups(self.config.limits.max_lookups));
        }
        let lid = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let mut l = Lookup::new(target, kind, now);
        l.internal = internal;
        l.bootstrap = bootstrap;
        if !from_config {
            for n in self.closest_nodes(&target, 2 * K, now) {
                l.add(Some(n.id), n.addr);
            }
            for n in &self.seeds {
                l.add(Some(n.id), n.addr);
            }
        }
        if l.candidate_count() == 0 {
            l.from_config = true;
            for a in &self.config.bootstrap {
                if a.is_usable() && self.family_ok(a.family()) {
                    l.add(None, *a);
                }
            }
        }
        if !internal && matches!(kind, LookupKind::GetPeers | LookupKind::Announce { .. }) {
            let mut local = Vec::new();
            for f in [Family::V4, Family::V6] {
                local.extend(self.peers.get(&target, f, MAX_VALUES_PER_ANSWER, now));
            }
            let local = l.new_peers(local);
            if !local.is_empty() {
                self.push_event(DhtEvent::PeersFound {
                    lookup: lid,
                    info_hash: target,
                    peers: local,
                });
            }
        }
        self.lookups.insert(lid, l);
        self.advance(lid, now);
        Ok(lid)
    }

    /// Sends what a lookup may send now, and ends it when it is done.
    fn advance(&mut self, lid: LookupId, now: Instant) {
        let budget = self.free_slots();
        let Some(l) = self.lookups.get_mut(&lid) else {
            return;
        };
        let mut finished = false;
        let mut queries = Vec::new();
        let mut announces = Vec::new();
        match l.phase {
            Phase::Searching => {
                queries = l.next_queries(ALPHA, K, budget);
                if queries.is_empty() && l.search_done(K) {
                    if let LookupKind::Announce { .. } = l.kind {
                        announces = l.announce_targets(K);
                        l.phase = Phase::Announcing {
                            in_flight: announces.len(),
                        };
                        finished = announces.is_empty();
                    } else {
                        finished = true;
                    }
                }
            }
            Phase::Announcing { in_flight } => finished = in_flight == 0,
        }
        let target = l.target;
        let kind = l.kind;
        for addr in queries {
            let method = match kind {
                LookupKind::FindNode => Method::FindNode { target },
                _ => Method::GetPeers { info_hash: target },
            };
            if !self.send_query(addr, method, Purpose::Lookup(lid), now) {
                if let Some(l) = self.lookups.get_mut(&lid) {
                    l.failed(&addr);
                }
            }
        }
        if let LookupKind::Announce { port, implied_port } = kind {
            for (addr, token) in announces {
                let method = Method::AnnouncePeer {
                    info_hash: target,
                    port,
                    implied_port,
                    token,
                };
                if !self.send_query(addr, method, Purpose::Announce(lid), now) {
                    if let Some(Phase::Announcing { in_flight }) =
                        self.lookups.get_mut(&lid).map(|l| &mut l.phase)
                    {
                        *in_flight = in_flight.saturating_sub(1);
                    }
                }
            }
            if let Some(Phase::Announcing { in_flight: 0 }) =
                self.lookups.get(&lid).map(|l| l.phase)
            {
                finished = true;
            }
        }
        // Nothing in flight and nothing more to ask (e.g. every query failed to send).
        if !finished {
            if let Some(l) = self.lookups.get_mut(&lid) {
                let waiting = self.pending.values().any(|p| match p.purpose {
                    Purpose::Lookup(x) | Purpose::Announce(x) => x == lid,
                    Purpose::Ping => false,
                });
                if !waiting && l.phase == Phase::Searching && l.search_done(K) {
                    finished = !matches!(l.kind, LookupKind::Announce { .. });
                }
                if !waiting && l.candidate_count() == 0 {
                    finished = true;
                }
            }
        }
        if finished {
            self.finish(lid, now);
        }
    }

    fn finish(&mut self, lid: LookupId, now: Instant) {
        let Some(l) = self.lookups.remove(&lid) else {
            return;
        };
        self.pending.retain(|_, p| match p.purpose {
            Purpose::Lookup(x) | Purpose::Announce(x) => x != lid,
            Purpose::Ping => true,
        });
        if l.bootstrap {
            if l.responded > 0 {
                self.seeds.clear();
            } else if !l.from_config && !self.config.bootstrap.is_empty() {
                // The saved nodes are gone: fall back to the configured bootstrap nodes.
                self.seeds.clear();
                let _ = self.start(self.id, LookupKind::FindNode, false, true, true, now);
                return;
            }
            let nodes = self.tables.iter().map(Table::len).sum();
            self.push_event(DhtEvent::Bootstrapped { nodes });
        } else if !l.internal {
            self.push_event(DhtEvent::LookupDone {
                lookup: lid,
                target: l.target,
                kind: l.kind,
                responded: l.responded,
                peers_found: l.peers_found,
                announced_to: l.announced_to,
            });
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        self.tokens.tick(&mut self.rng, now);
        self.peers.expire(now);
        let stale: Vec<LookupId> = self
            .lookups
            .iter()
            .filter(|(_, l)| now.saturating_duration_since(l.started) >= MAX_LOOKUP_TIME)
            .map(|(id, _)| *id)
            .collect();
        for lid in stale {
            self.finish(lid, now);
        }
        let empty = self.tables.iter().all(Table::is_empty);
        if empty {
            let due = self
                .last_auto_bootstrap
                .is_none_or(|t| now.saturating_duration_since(t) >= MAX_LOOKUP_TIME);
            let running = self.lookups.values().any(|l| l.bootstrap);
            if due && !running && !self.config.bootstrap.is_empty() {
                self.last_auto_bootstrap = Some(now);
                let _ = self.bootstrap(now);
            }
            return;
        }
        for i in 0..2 {
            let targets = self.tables[i].due_refreshes(now, &mut self.rng);
            for target in targets {
                // Refreshes use at most half the lookup slots.
                if self.lookups.len() >= self.config.limits.max_lookups / 2 {
                    break;
                }
                let _ = self.start(target, LookupKind::FindNode, true, false, false, now);
            }
            for addr in self.tables[i].questionable(now, PINGS_PER_TICK) {
                let already = self.pending.values().any(|p| p.addr == addr);
                if !already {
                    self.send_query(addr, Method::Ping, Purpose::Ping, now);
                }
            }
        }
    }
}
