//! Peer exchange (BEP 11, plus SCION peers) for one torrent's session: which connected peers
//! we can name (their listen address, as the transport proves it or as their extension
//! handshake's `p` says), what each peer was told ([`bt_ext::PexState`]: at most one message a
//! minute, 50 added / 50 dropped), and the peers others told us, for the peer book.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bt_ext::{decode_pex_message, PexFlags, PexState};

use crate::scion::PeerAddr;
use crate::torrent::session::PeerId;

/// Peers taken from PEX and not yet collected by the client (a flood cannot grow it further).
const MAX_FOUND: usize = 1000;

#[derive(Default)]
struct PexPeer {
    state: PexState,
    /// Where it accepts connections, once known.
    addr: Option<PeerAddr>,
    flags: PexFlags,
}

#[derive(Default)]
pub struct Pex {
    peers: HashMap<PeerId, PexPeer>,
    found: Vec<PeerAddr>,
}

impl Pex {
    /// The peer's listen address and flags (seed, reachable), once known.
    pub fn set_addr(&mut self, pid: PeerId, addr: PeerAddr, flags: PexFlags) {
        let p = self.peers.entry(pid).or_default();
        p.addr = Some(addr);
        p.flags = flags;
    }

    /// Updates the seed flag of a peer we can name.
    pub fn set_seed(&mut self, pid: &PeerId, seed: bool) {
        if let Some(p) = self.peers.get_mut(pid) {
            let f = (p.flags.0 & !PexFlags::SEED) | if seed { PexFlags::SEED } else { 0 };
            p.flags = PexFlags(f);
        }
    }

    /// The peer is gone: it is dropped from what we tell the others.
    pub fn forget(&mut self, pid: &PeerId) {
        self.peers.remove(pid);
    }

    /// A ut_pex payload from `pid`. Malformed, too frequent or oversized messages are dropped
    /// or capped; the added peers are kept for [`Pex::take_found`].
    pub fn on_message(&mut self, pid: PeerId, payload: &[u8], now: Instant) {
        let Ok(msg) = decode_pex_message(payload) else {
            tracing::debug!("ignoring a malformed ut_pex message");
            return;
        };
        let received = self
            .peers
            .entry(pid)
            .or_default()
            .state
            .on_message(now, msg);
        let room = MAX_FOUND.saturating_sub(self.found.len());
        self.found
            .extend(received.added.into_iter().map(|(a, _)| a).take(room));
    }

    /// Peers learnt since the last call.
    pub fn take_found(&mut self) -> Vec<PeerAddr> {
        std::mem::take(&mut self.found)
    }

    /// The messages due now for `recipients` (the peers that speak ut_pex): (receiver,
    /// payload). A recipient need not be nameable itself (an incoming peer that did not say
    /// its listen port).
    pub fn poll_messages(
        &mut self,
        now: Instant,
        recipients: impl IntoIterator<Item = PeerId>,
    ) -> Vec<(PeerId, Vec<u8>)> {
        let connected: BTreeMap<PeerAddr, PexFlags> = self
            .peers
            .values()
            .filter_map(|p| p.addr.map(|a| (a, p.flags)))
            .collect();
        let mut out = Vec::new();
        for pid in recipients {
            let p = self.peers.entry(pid).or_default();
            if let Some(msg) = p.state.poll_message(now, &connected, p.addr.as_ref()) {
                out.push((pid, msg.encode()));
            }
        }
        out
    }

    /// When a message may next be due, if that is still ahead (a change in the swarm comes
    /// with an event anyway).
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| p.state.poll_timeout())
            .filter(|t| *t > now)
            .min()
    }
}
