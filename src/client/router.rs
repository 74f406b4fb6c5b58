//! The lane router: which torrent every lane belongs to, in one table. Outgoing lanes belong
//! to the torrent that dialled them; an incoming lane belongs to nobody until its first bytes,
//! buffered here, name an info hash in the BitTorrent handshake (its first 48 bytes), which
//! picks the torrent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use quinn_proto::{ConnectionHandle, StreamId};
use rustc_hash::FxHashMap;

use super::control::InfoHash;
use crate::engine::tcp::Conn;
use crate::torrent::session::LaneId;

/// An incoming TCP lane waiting for its handshake.
pub struct PendingTcp {
    pub conn: Rc<Conn>,
    pub peer: SocketAddr,
    pub lane: PendingLane,
}

/// Who owns each lane (see the module comment).
#[derive(Default)]
pub struct LaneRouter {
    /// QUIC connection → torrent (outgoing ones on first sight, incoming ones when handed over).
    quic: FxHashMap<ConnectionHandle, InfoHash>,
    /// Incoming QUIC lanes waiting for their handshake on their first stream.
    pending_quic: HashMap<ConnectionHandle, (StreamId, PendingLane)>,
    /// TCP lane → torrent.
    tcp: HashMap<LaneId, InfoHash>,
    /// Incoming TCP lanes waiting for their handshake.
    pending_tcp: HashMap<LaneId, PendingTcp>,
    /// A torrent's TCP dialler (its `TcpLanes` owner tag) → torrent.
    tcp_dialers: HashMap<u32, InfoHash>,
}

impl LaneRouter {
    pub fn quic_owner(&self, h: ConnectionHandle) -> Option<InfoHash> {
        self.quic.get(&h).copied()
    }

    pub fn set_quic_owner(&mut self, h: ConnectionHandle, ih: InfoHash) {
        self.quic.insert(h, ih);
    }

    /// A QUIC connection is gone: it belongs to nobody and waits for nothing any more.
    pub fn quic_gone(&mut self, h: ConnectionHandle) {
        self.quic.remove(&h);
        self.pending_quic.remove(&h);
    }

    /// Buffers what an incoming QUIC lane's stream `id` said; None when `id` is not the lane's
    /// first stream (only that one carries the lane).
    pub fn push_quic(&mut self, h: ConnectionHandle, id: StreamId, data: &[u8]) -> Option<Sniff> {
        let (first, pending) = self
            .pending_quic
            .entry(h)
            .or_insert_with(|| (id, PendingLane::default()));
        (*first == id).then(|| pending.push(data))
    }

    /// Takes an incoming QUIC lane out of waiting (its stream and buffered bytes).
    pub fn take_pending_quic(&mut self, h: ConnectionHandle) -> Option<(StreamId, PendingLane)> {
        self.pending_quic.remove(&h)
    }

    pub fn tcp_owner(&self, lane: LaneId) -> Option<InfoHash> {
        self.tcp.get(&lane).copied()
    }

    pub fn set_tcp_owner(&mut self, lane: LaneId, ih: InfoHash) {
        self.tcp.insert(lane, ih);
    }

    pub fn tcp_gone(&mut self, lane: LaneId) {
        self.tcp.remove(&lane);
        self.pending_tcp.remove(&lane);
    }

    /// An incoming TCP connection: it waits for its handshake.
    pub fn tcp_incoming(&mut self, lane: LaneId, conn: Rc<Conn>, peer: SocketAddr) {
        let lane_state = PendingLane::default();
        self.pending_tcp.insert(
            lane,
            PendingTcp {
                conn,
                peer,
                lane: lane_state,
            },
        );
    }

    /// Buffers what an incoming TCP lane said; None if it is not waiting.
    pub fn push_tcp(&mut self, lane: LaneId, data: &[u8]) -> Option<Sniff> {
        self.pending_tcp.get_mut(&lane).map(|p| p.lane.push(data))
    }

    pub fn take_pending_tcp(&mut self, lane: LaneId) -> Option<PendingTcp> {
        self.pending_tcp.remove(&lane)
    }

    /// The torrent whose TCP dialler has this owner tag.
    pub fn dialer_owner(&self, tag: u32) -> Option<InfoHash> {
        self.tcp_dialers.get(&tag).copied()
    }

    pub fn add_dialer(&mut self, tag: u32, ih: InfoHash) {
        self.tcp_dialers.insert(tag, ih);
    }

    pub fn remove_dialer(&mut self, tag: u32) {
        self.tcp_dialers.remove(&tag);
    }

    /// A torrent's lanes changed hands (its metadata fetch ended): they belong to nobody now.
    pub fn forget_lanes_of(&mut self, ih: &InfoHash) {
        self.quic.retain(|_, owner| owner != ih);
        self.tcp.retain(|_, owner| owner != ih);
    }

    /// A torrent is gone: nothing belongs to it any more.
    pub fn forget_torrent(&mut self, ih: &InfoHash) {
        self.forget_lanes_of(ih);
        self.tcp_dialers.retain(|_, owner| owner != ih);
    }
}

/// Bytes of a handshake up to and including the info hash.
pub const HANDSHAKE_PREFIX: usize = 48;
/// `\x13BitTorrent protocol`
const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// What the buffered bytes say so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    NeedMore,
    Torrent(InfoHash),
    /// Not a BitTorrent handshake: close the lane.
    NotBitTorrent,
}

/// Looks at the first bytes of an incoming lane.
pub fn sniff(buf: &[u8]) -> Sniff {
    let seen = buf.len().min(PROTOCOL.len());
    if buf[..seen] != PROTOCOL[..seen] {
        return Sniff::NotBitTorrent;
    }
    let Some(ih) = buf.get(28..HANDSHAKE_PREFIX) else {
        return Sniff::NeedMore;
    };
    let mut out = [0u8; 20];
    out.copy_from_slice(ih);
    Sniff::Torrent(out)
}

/// An incoming lane held until its handshake names a torrent.
#[derive(Debug, Default)]
pub struct PendingLane {
    pub buffered: Vec<u8>,
}

impl PendingLane {
    /// Appends received bytes; more than a handshake is never needed, so a remote cannot make
    /// us buffer much (the rest stays with the transport until the lane is handed over).
    pub fn push(&mut self, data: &[u8]) -> Sniff {
        self.buffered.extend_from_slice(data);
        sniff(&self.buffered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Handshake;

    fn handshake(ih: InfoHash) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        Handshake::new(ih, [7; 20]).encode(&mut b);
        b.to_vec()
    }

    #[test]
    fn names_the_torrent_after_48_bytes_however_they_arrive() {
        let hs = handshake([9; 20]);
        let mut p = PendingLane::default();
        for chunk in hs[..47].chunks(5) {
            assert_eq!(p.push(chunk), Sniff::NeedMore);
        }
        assert_eq!(p.push(&hs[47..]), Sniff::Torrent([9; 20]));
        // Everything read stays buffered for the torrent's session.
        assert_eq!(p.buffered, hs);
    }

    #[test]
    fn only_the_first_stream_of_a_quic_lane_is_sniffed_and_a_removed_torrent_owns_nothing() {
        let mut r = LaneRouter::default();
        let h = ConnectionHandle(1);
        use quinn_proto::{Dir, Side};
        let first = StreamId::new(Side::Client, Dir::Bi, 0);
        let second = StreamId::new(Side::Client, Dir::Bi, 1);
        let hs = handshake([5; 20]);
        assert_eq!(r.push_quic(h, first, &hs[..10]), Some(Sniff::NeedMore));
        assert_eq!(r.push_quic(h, second, &hs), None);
        assert_eq!(
            r.push_quic(h, first, &hs[10..]),
            Some(Sniff::Torrent([5; 20]))
        );
        let (stream, pending) = r.take_pending_quic(h).unwrap();
        assert_eq!((stream, pending.buffered), (first, hs));
        r.set_quic_owner(h, [5; 20]);
        r.set_tcp_owner(7, [5; 20]);
        r.add_dialer(3, [5; 20]);
        r.add_dialer(4, [6; 20]);
        r.forget_torrent(&[5; 20]);
        assert_eq!(r.quic_owner(h), None);
        assert_eq!(r.tcp_owner(7), None);
        assert_eq!(
            (r.dialer_owner(3), r.dialer_owner(4)),
            (None, Some([6; 20]))
        );
    }

    #[test]
    fn refuses_other_protocols_early() {
        assert_eq!(sniff(b"GET / HTTP/1.1"), Sniff::NotBitTorrent);
        assert_eq!(sniff(b"\x13BitTorrent"), Sniff::NeedMore);
        assert_eq!(sniff(b""), Sniff::NeedMore);
    }
}
