//! Lane routing in the client's loop: which torrent a QUIC or TCP event belongs to, and the
//! incoming lanes handed to a torrent once their handshake names it (tables: `client::router`).

use super::*;

impl Client {
    pub(super) fn owner_of(&mut self, h: ConnectionHandle) -> Option<InfoHash> {
        if let Some(ih) = self.router.quic_owner(h) {
            return Some(ih);
        }
        let ih = self
            .torrents
            .iter()
            .find(|(_, t)| {
                t.phase.live().is_some_and(|l| l.app.owns(h))
                    || t.phase.fetch().is_some_and(|f| f.app.owns(h))
            })
            .map(|(ih, _)| *ih)?;
        self.router.set_quic_owner(h, ih);
        Some(ih)
    }

    /// Reads what an incoming lane's first stream holds; hands the lane over once the
    /// handshake names a live torrent, refuses it if it names another.
    pub(super) fn route_quic(
        &mut self,
        net: &mut ScionNet,
        h: ConnectionHandle,
        id: StreamId,
        now: Instant,
    ) {
        let mut data = Vec::new();
        let mut finished = false;
        if let Some(conn) = net.lane(h) {
            let mut stream = conn.recv_stream(id);
            if let Ok(mut chunks) = stream.read(true) {
                loop {
                    match chunks.next(usize::MAX) {
                        Ok(Some(c)) => data.extend_from_slice(&c.bytes),
                        Ok(None) => {
                            finished = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let _ = chunks.finalize();
            };
        }
        let Some(verdict) = self.router.push_quic(h, id, &data) else {
            return; // only the first stream carries the lane
        };
        let refuse = |net: &mut ScionNet, why: &str| {
            net.close_lane(
                h,
                LaneCloseCode::UnknownTorrent,
                why.as_bytes().to_vec(),
                now,
            );
        };
        match verdict {
            Sniff::NeedMore if finished => {
                self.router.take_pending_quic(h);
                refuse(net, "closed before the handshake");
            }
            Sniff::NeedMore => {}
            Sniff::NotBitTorrent => {
                self.router.take_pending_quic(h);
                tracing::debug!("incoming lane: not a BitTorrent handshake; closed");
                refuse(net, "not a BitTorrent handshake");
            }
            Sniff::Torrent(ih) => {
                let Some((stream, pending)) = self.router.take_pending_quic(h) else {
                    return;
                };
                let remote = net.remote_addr(h);
                let banned =
                    |t: &Torrent| remote.is_some_and(|r| t.book.is_banned(&PeerAddr::Scion(r)));
                match self
                    .torrents
                    .get_mut(&ih)
                    .filter(|t| t.accepts_lanes() && !banned(t))
                {
                    Some(t) if !t.permits(net.route(h).map(|r| &r.path)) => {
                        tracing::debug!(
                            info_hash = %info_hash_hex(&ih),
                            "incoming lane on a path the torrent's rules do not allow; closed"
                        );
                        refuse(net, "path not allowed by the torrent's path rules");
                    }
                    Some(t) => {
                        if let Some(r) = remote {
                            t.book.incoming(PeerAddr::Scion(r));
                        }
                        if let Some(l) = t.phase.live_mut() {
                            l.app.adopt(net, h, stream, &pending.buffered, now);
                        } else if let Some(f) = t.phase.fetch_mut() {
                            f.app.adopt(net, h, stream, &pending.buffered, now);
                        }
                        self.router.set_quic_owner(h, ih);
                    }
                    None => {
                        tracing::debug!(
                            info_hash = %info_hash_hex(&ih),
                            "incoming lane for a torrent we do not run; closed"
                        );
                        refuse(net, "unknown info hash");
                    }
                }
            }
        }
    }

    pub(super) fn handle_tcp_event(&mut self, ev: TcpEvent, now: Instant) {
        let lane = match &ev {
            TcpEvent::Opened {
                lane,
                dial: None,
                conn,
                peer,
                ..
            } => {
                self.router.tcp_incoming(*lane, conn.clone(), *peer);
                return;
            }
            TcpEvent::Opened {
                lane,
                dial: Some((owner, _)),
                ..
            } => {
                if let Some(ih) = self.router.dialer_owner(*owner) {
                    self.router.set_tcp_owner(*lane, ih);
                }
                *lane
            }
            TcpEvent::DialFailed(owner, ..) => {
                if let Some(ih) = self.router.dialer_owner(*owner) {
                    self.deliver_tcp(&ih, ev, now);
                }
                return;
            }
            TcpEvent::Data(lane, _) | TcpEvent::Closed(lane, _) => *lane,
        };
        if let Some(ih) = self.router.tcp_owner(lane) {
            if matches!(ev, TcpEvent::Closed(..)) {
                self.router.tcp_gone(lane);
            }
            self.deliver_tcp(&ih, ev, now);
            return;
        }
        match ev {
            TcpEvent::Data(lane, data) => self.route_tcp(lane, &data, now),
            TcpEvent::Closed(lane, _) => self.router.tcp_gone(lane),
            // A dial of a torrent removed meanwhile.
            TcpEvent::Opened { conn, .. } => conn.close(),
            TcpEvent::DialFailed(..) => {}
        }
    }

    pub(super) fn deliver_tcp(&mut self, ih: &InfoHash, ev: TcpEvent, now: Instant) {
        let Some(t) = self.torrents.get_mut(ih) else {
            if let TcpEvent::Opened { conn, .. } = ev {
                conn.close();
            }
            return;
        };
        t.dirty = true;
        match &mut t.phase {
            Phase::Live(l) => l.tcp.on_event(ev, &mut l.app.session, now),
            Phase::Magnet(MagnetPhase { fetch: Some(f), .. }) => {
                f.tcp.on_event(ev, &mut f.app.session, now)
            }
            _ => {
                if let TcpEvent::Opened { conn, .. } = ev {
                    conn.close();
                }
            }
        }
    }

    pub(super) fn route_tcp(&mut self, lane: LaneId, data: &[u8], now: Instant) {
        let Some(verdict) = self.router.push_tcp(lane, data) else {
            return;
        };
        match verdict {
            Sniff::NeedMore => {}
            Sniff::NotBitTorrent => {
                if let Some(p) = self.router.take_pending_tcp(lane) {
                    tracing::debug!(peer = %p.peer, "TCP peer: not a BitTorrent handshake; closed");
                    p.conn.close();
                }
            }
            Sniff::Torrent(ih) => {
                let Some(PendingTcp {
                    conn,
                    peer,
                    lane: pending,
                }) = self.router.take_pending_tcp(lane)
                else {
                    return;
                };
                let Some(t) = self.torrents.get_mut(&ih).filter(|t| t.accepts_lanes()) else {
                    tracing::debug!(
                        %peer,
                        info_hash = %info_hash_hex(&ih),
                        "TCP peer asked for a torrent we do not run; closed"
                    );
                    conn.close();
                    return;
                };
                t.book.incoming(PeerAddr::Ip(peer));
                self.router.set_tcp_owner(lane, ih);
                let opened = TcpEvent::Opened {
                    lane,
                    outbound: false,
                    peer,
                    conn,
                    dial: None,
                };
                self.deliver_tcp(&ih, opened, now);
                self.deliver_tcp(&ih, TcpEvent::Data(lane, pending.buffered), now);
            }
        }
    }

    /// A lane died of its path: the path service remembers a failure on that path.
    pub(super) fn note_path_failure(
        &mut self,
        net: &mut ScionNet,
        h: ConnectionHandle,
        why: &str,
        now: Instant,
    ) {
        if let Some(r) = net.route(h) {
            let path = r.path.clone();
            self.paths.record_failure(&path, why, now);
        }
    }
}
