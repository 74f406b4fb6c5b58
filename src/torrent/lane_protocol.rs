//! What the transports (QUIC lanes, TCP lanes) drive: a sans-IO protocol over numbered byte
//! streams. The torrent [`Session`] is one; the [`MetadataSession`] of a magnet link that
//! has no metadata yet is the other. Transports feed bytes in, take bytes and actions out,
//! and wake the protocol at its [`LaneProtocol::poll_timeout`].
//!
//! [`MetadataSession`]: crate::torrent::metadata_session::MetadataSession

use crate::torrent::close::CloseReason;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::scion::PeerAddr;
use crate::torrent::session::{Action, LaneId, Session};

pub trait LaneProtocol {
    /// A new byte stream (outbound: we dialled it, our handshake goes first).
    fn add_lane(&mut self, id: LaneId, outbound: bool, label: String, now: Instant);
    /// The remote's address as the transport proves it; `listening`: connections to it reach
    /// the remote (see [`Session::set_lane_remote`]). Call before the lane's first bytes.
    fn set_lane_remote(&mut self, _id: LaneId, _addr: PeerAddr, _listening: bool) {}
    /// Link identities of the lane's path (lanes sharing links compete).
    fn set_lane_links(&mut self, _id: LaneId, _links: Vec<u64>) {}
    /// The transport's RTT estimate.
    fn set_lane_rtt(&mut self, _id: LaneId, _rtt: Duration) {}
    fn on_lane_data(&mut self, id: LaneId, data: &[u8], now: Instant);
    fn on_lane_closed(&mut self, id: LaneId, reason: CloseReason, now: Instant);
    /// The next chunk to write on a lane.
    fn poll_output(&mut self, id: LaneId, now: Instant) -> Option<Bytes>;
    /// Puts back what the transport could not take.
    fn unpoll_output(&mut self, id: LaneId, rest: Bytes);
    fn has_output(&self, id: LaneId) -> bool;
    fn poll_action(&mut self) -> Option<Action>;
    fn tick(&mut self, now: Instant);
    fn poll_timeout(&self, now: Instant) -> Option<Instant>;
    /// Remotes with a completed handshake.
    fn peer_count(&self) -> usize;
    fn lane_ids(&self) -> Vec<LaneId>;
}

impl LaneProtocol for Session {
    fn add_lane(&mut self, id: LaneId, outbound: bool, label: String, now: Instant) {
        Session::add_lane(self, id, outbound, label, now)
    }
    fn set_lane_remote(&mut self, id: LaneId, addr: PeerAddr, listening: bool) {
        Session::set_lane_remote(self, id, addr, listening)
    }
    fn set_lane_links(&mut self, id: LaneId, links: Vec<u64>) {
        Session::set_lane_links(self, id, links)
    }
    fn set_lane_rtt(&mut self, id: LaneId, rtt: Duration) {
        Session::set_lane_rtt(self, id, rtt)
    }
    fn on_lane_data(&mut self, id: LaneId, data: &[u8], now: Instant) {
        Session::on_lane_data(self, id, data, now)
    }
    fn on_lane_closed(&mut self, id: LaneId, reason: CloseReason, now: Instant) {
        Session::on_lane_closed(self, id, reason, now)
    }
    fn poll_output(&mut self, id: LaneId, now: Instant) -> Option<Bytes> {
        Session::poll_output(self, id, now)
    }
    fn unpoll_output(&mut self, id: LaneId, rest: Bytes) {
        Session::unpoll_output(self, id, rest)
    }
    fn has_output(&self, id: LaneId) -> bool {
        Session::has_output(self, id)
    }
    fn poll_action(&mut self) -> Option<Action> {
        Session::poll_action(self)
    }
    fn tick(&mut self, now: Instant) {
        Session::tick(self, now)
    }
    fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        Session::poll_timeout(self, now)
    }
    fn peer_count(&self) -> usize {
        Session::peer_count(self)
    }
    fn lane_ids(&self) -> Vec<LaneId> {
        Session::lane_ids(self)
    }
}
