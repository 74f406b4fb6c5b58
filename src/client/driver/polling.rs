//! One turn of the loop for the torrents: checks pumped, peers dialled from the books, sessions
//! and metadata fetches moved forward.

use super::*;

impl Client {
    /// Starts dialling the peers the book releases (into the torrent's lanes, or into its
    /// metadata fetch's while it has no metadata).
    pub(super) fn dial_from_book(&mut self, now: Instant) {
        let scion_on = self.local_scion.is_some() && self.paths.has_daemon();
        for t in self.torrents.values_mut() {
            let due = t.dirty || t.poll_due.is_some_and(|d| d <= now);
            if !due || !t.accepts_lanes() {
                continue;
            }
            let room = MAX_ACTIVE_PEERS.saturating_sub(t.book.count(PeerState::Active));
            if room == 0 {
                continue;
            }
            let rules = LaneRules {
                max_lanes: self.opts.max_lanes,
                policy: t.rules.policy.clone(),
                preference: t.preference(&self.opts.preference),
            };
            for addr in t.book.take_dialable(now, room) {
                let dialed = match &mut t.phase {
                    Phase::Live(l) => dial(
                        &mut l.app,
                        &mut l.tcp,
                        addr,
                        scion_on,
                        &rules,
                        &mut self.paths,
                        now,
                    ),
                    Phase::Magnet(MagnetPhase { fetch: Some(f), .. }) => dial(
                        &mut f.app,
                        &mut f.tcp,
                        addr,
                        scion_on,
                        &rules,
                        &mut self.paths,
                        now,
                    ),
                    _ => true,
                };
                if !dialed {
                    t.book.failed(&addr, now);
                }
            }
        }
    }

    pub(super) fn pump_checkers(&mut self, now: Instant) {
        let mut ready = Vec::new();
        for (ih, t) in self.torrents.iter_mut() {
            let Some(c) = t.phase.checker_mut() else {
                continue;
            };
            if c.checker.pump(&self.pool, &*c.data.storage, &c.data.meta) {
                ready.push(*ih);
            }
        }
        // A torrent that finished its check is news: publish it now, not at the next tick.
        self.publish_due |= !ready.is_empty();
        for ih in ready {
            let Some(mut t) = self.torrents.remove(&ih) else {
                continue;
            };
            // Checking → Live: the checked data moves into the live phase.
            t.phase = match t.phase {
                Phase::Checking(c) => {
                    let buckets = (t.down_bucket.clone(), t.up_bucket.clone());
                    let have = c.checker.into_have();
                    let paused = t.settings.paused;
                    Phase::Live(Box::new(self.new_live(
                        c.data,
                        have,
                        &buckets,
                        paused,
                        StopWhen::Never,
                        now,
                    )))
                }
                other => other,
            };
            self.register_live(ih, &mut t);
            self.torrents.insert(ih, t);
        }
    }

    /// Moves each live torrent's session (and each magnet torrent's fetch) forward.
    pub(super) fn poll_torrents(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut goal_reached = false;
        let mut publish_due = false;
        let mut fetched = Vec::new();
        for (ih, t) in self.torrents.iter_mut() {
            // Idle torrents (no lanes, no dials) are left alone until an event or their
            // deadline: a thousand of them cost nothing per loop turn.
            if !t.dirty && !t.is_busy() && t.poll_due.is_none_or(|d| d > now) {
                next = [next, t.poll_due].into_iter().flatten().min();
                continue;
            }
            t.dirty = false;
            let before = t.state();
            let (due, goal) = match &mut t.phase {
                Phase::Magnet(m) => {
                    let Some(f) = &mut m.fetch else { continue };
                    let poll = poll_fetch(f, net, &self.opts, now);
                    if let Some(info) = poll.info {
                        fetched.push((*ih, info));
                    }
                    if let Some(failure) = poll.failure {
                        m.failure = Some(failure);
                        self.done = true;
                    }
                    (poll.due, SeedGoal::Never)
                }
                Phase::Live(l) => {
                    let other_runtimes = self.extra.as_ref().map_or(0, |e| e.uploaded(ih));
                    let poll = poll_live(l, net, &mut t.book, &self.opts, other_runtimes, now);
                    let seeding = !t.settings.paused && !t.queued;
                    let goal = match l.app.session.is_complete() && seeding {
                        true if l.storage_failure().is_none() => {
                            let since = *t.seeding_since.get_or_insert(now);
                            seed_goal(&self.seed_policy, poll.ratio, since, now)
                        }
                        _ => {
                            t.seeding_since = None;
                            SeedGoal::Never
                        }
                    };
                    (poll.due, goal)
                }
                Phase::Fetched(_) | Phase::Checking(_) => continue,
            };
            let goal_due = match goal {
                SeedGoal::At(at) => Some(at),
                _ => None,
            };
            t.poll_due = [due, t.book.next_deadline(), goal_due]
                .into_iter()
                .flatten()
                .min();
            if let SeedGoal::Reached(why) = goal {
                tracing::info!(torrent = %t.name(), "seeding goal reached ({why}): pausing");
                t.settings.paused = true;
                Self::stop_lanes(t, net, CloseReason::SeedingGoalReached, now);
                t.pause_note = Some(format!("paused: seeding goal reached ({why})"));
                t.poll_due = None;
                goal_reached = true;
            }
            // Downloading → seeding (or failed) is news worth publishing at once.
            publish_due |= t.state() != before;
            next = [next, t.poll_due].into_iter().flatten().min();
        }
        for (ih, info) in fetched {
            self.finish_fetch(net, &ih, &info, now);
        }
        if goal_reached {
            self.save_torrent_list();
        }
        self.publish_due |= publish_due || goal_reached;
        // Pieces verified in this turn: the readers waiting for them go on at once.
        self.wake_streams();
        next
    }
}

/// What one poll of a magnet torrent's fetch gave.
pub(super) struct FetchPoll {
    /// When it next needs a poll.
    due: Option<Instant>,
    /// The info dictionary, once a peer gave it whole.
    info: Option<Vec<u8>>,
    /// A metadata-only run found no peer within its connect timeout.
    failure: Option<crate::client::magnet::FetchFailure>,
}

pub(super) fn poll_fetch(
    f: &mut crate::client::magnet::Fetch,
    net: &mut ScionNet,
    opts: &EngineOptions,
    now: Instant,
) -> FetchPoll {
    let d = f.app.poll(net, now);
    f.tcp.pump_out(&mut f.app.session, now);
    let info = f.app.session.take_info();
    let give_up = opts.connect_timeout.filter(|_| opts.metadata_only);
    let failure = give_up
        .filter(|limit| f.peerless_for(now) > *limit)
        .map(|_| crate::client::magnet::FetchFailure::NoPeer(f.problem()));
    let due = [d, f.tcp.next_dial(), f.tcp.next_liveness_deadline()]
        .into_iter()
        .flatten()
        .min();
    FetchPoll { due, info, failure }
}

/// What one poll of a live torrent gave.
pub(super) struct LivePoll {
    /// When it next needs a poll (its peer book's deadline aside).
    due: Option<Instant>,
    /// Uploaded over its size, on every runtime (the seeding policy's ratio).
    ratio: f64,
}

/// Moves a live torrent's lanes forward; what its session learnt goes to the peer book and
/// the DHT.
pub(super) fn poll_live(
    l: &mut LivePhase,
    net: &mut ScionNet,
    book: &mut crate::client::peer_book::PeerBook,
    opts: &EngineOptions,
    other_runtimes: u64,
    now: Instant,
) -> LivePoll {
    let (app, tcp) = (&mut l.app, &mut l.tcp);
    let d = app.poll(net, now);
    tcp.pump_out(&mut app.session, now);
    // Web seeds run where TCP peers are dialled (not while paused or queued, nor on the
    // daemon's other runtimes).
    l.web.pump(&mut app.session, tcp.dial_enabled, now);
    for node in app.session.take_dht_nodes() {
        // A full queue drops the node: the DHT has enough to do.
        match (node, &opts.dht_ip_nodes, &opts.dht_scion_nodes) {
            (PeerAddr::Ip(a), Some(tx), _) => drop(tx.try_send(a)),
            (PeerAddr::Scion(a), _, Some(tx)) => drop(tx.try_send(a)),
            _ => {}
        }
    }
    let learnt = app.session.take_pex_peers();
    let pex_new = if book.len() < MAX_BOOK_FROM_PEX {
        learnt
            .iter()
            .filter(|p| book.add(**p, PeerSource::Pex))
            .count()
    } else {
        0
    };
    for a in app.banned.drain(..) {
        book.ban(&PeerAddr::Scion(a));
    }
    if let Some(Failure::Unreachable(m)) = &mut app.failure {
        if !tcp.peers().is_empty() && !m.contains("TCP peers") {
            let peers: Vec<String> = tcp.peers().iter().map(|p| p.to_string()).collect();
            let why = tcp
                .last_error()
                .map(|e| format!(" (last TCP error: {e})"))
                .unwrap_or_default();
            *m = format!("{m}; TCP peers {}{why}", peers.join(", "));
        }
    }
    if app.is_done() {
        tcp.close_all();
        l.web.close_all();
    }
    let size = l.data.meta.total_length;
    let ratio = (app.session.bytes_up + other_runtimes) as f64 / size.max(1) as f64;
    let due = [
        d,
        // New peers from PEX are dialled on the next turn.
        (pex_new > 0).then_some(now),
        tcp.next_dial(),
        tcp.next_liveness_deadline(),
        l.web.poll_timeout(),
    ]
    .into_iter()
    .flatten()
    .min();
    LivePoll { due, ratio }
}

/// Starts dialling one peer: SCION lanes through the path service, or TCP. False when it
/// cannot be dialled at all (SCION is not up).
pub(super) fn dial<S: LaneProtocol>(
    app: &mut QuicBtApp<S>,
    tcp: &mut TcpLanes,
    addr: PeerAddr,
    scion_on: bool,
    rules: &LaneRules,
    paths: &mut PathService,
    now: Instant,
) -> bool {
    match addr {
        PeerAddr::Scion(a) if scion_on => {
            if !app.dialing(&a) {
                let shared = paths.paths_to(a.ia);
                let max = rules.max_lanes.unwrap_or(DEFAULT_MAX_LANES);
                let mut d = PeerDialer::new(a, max, shared, now);
                d.only_disjoint = rules.max_lanes.is_none();
                d.policy = rules.policy.clone();
                d.preference = rules.preference.clone();
                app.dialers.push(d);
            }
            true
        }
        PeerAddr::Scion(a) => {
            tracing::warn!(peer = %a, "SCION is not available; cannot dial");
            false
        }
        PeerAddr::Ip(a) => {
            tcp.add_peer(a, now);
            true
        }
    }
}

/// Peers dialled at once per torrent.
pub(super) const MAX_ACTIVE_PEERS: usize = 50;

/// Peer exchange fills a torrent's peer book up to this size (the book has its own cap).
pub(super) const MAX_BOOK_FROM_PEX: usize = 500;
