//! The lanes of a magnet link before its metadata is known (BEP 9): handshake, extension
//! handshake, then ut_metadata pieces from every peer that offers them, assembled and checked
//! against the info hash by [`bt_ext::MetadataAssembler`]. Nothing else of the peer protocol
//! runs here: we have no pieces to offer and do not know the peers' ones, so their bitfields
//! and haves are read and ignored. Once the info dictionary is complete the client closes
//! these lanes and starts the torrent's real [`Session`], dialling the same peers again.
//!
//! [`Session`]: crate::torrent::session::Session

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bt_ext::{decode_metadata_message, MetadataAssembler, MetadataEvent, MetadataMessage};
use bytes::Bytes;

use crate::torrent::close::CloseReason;
use crate::torrent::lane_protocol::LaneProtocol;
use crate::torrent::session::{Action, LaneId, PeerId};
use crate::wire::{
    encode_bytes, DecoderLimits, ExtensionHandshake, Handshake, Message, MessageDecoder,
    EXTENSION_HANDSHAKE_ID, UT_METADATA_ID,
};

struct MetaLane {
    decoder: MessageDecoder,
    outbound: bool,
    handshake_seen: bool,
    /// The id the peer wants its ut_metadata messages on (from its extension handshake).
    peer_ut_metadata: Option<u8>,
    outbox: VecDeque<Bytes>,
}

pub struct MetadataSession {
    info_hash: [u8; 20],
    peer_id: PeerId,
    client_name: String,
    lanes: HashMap<LaneId, MetaLane>,
    assembler: MetadataAssembler<LaneId>,
    actions: VecDeque<Action>,
    /// The verified info dictionary, once complete.
    info: Option<Vec<u8>>,
    /// The last reason a peer could not give us metadata (for the torrent's status).
    pub last_problem: Option<String>,
}

impl MetadataSession {
    pub fn new(info_hash: [u8; 20], peer_id: PeerId, client_name: String) -> Self {
        Self {
            info_hash,
            peer_id,
            client_name,
            lanes: HashMap::new(),
            assembler: MetadataAssembler::new(info_hash),
            actions: VecDeque::new(),
            info: None,
            last_problem: None,
        }
    }

    /// The verified info dictionary, once every piece arrived and hashed to the info hash.
    pub fn take_info(&mut self) -> Option<Vec<u8>> {
        self.info.take()
    }

    /// Open lanes (handshaken or not).
    pub fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    fn close(&mut self, id: LaneId, reason: CloseReason) {
        if self.lanes.remove(&id).is_some() {
            self.assembler.remove_peer(&id);
            self.last_problem = Some(reason.to_string());
            self.actions
                .push_back(Action::CloseLane { lane: id, reason });
        }
    }

    fn process(&mut self, id: LaneId) -> Result<(), CloseReason> {
        loop {
            let Some(lane) = self.lanes.get_mut(&id) else {
                return Ok(());
            };
            if !lane.handshake_seen {
                let Some(hs) = lane
                    .decoder
                    .next_handshake()
                    .map_err(|e| CloseReason::BadHandshake(e.to_string()))?
                else {
                    return Ok(());
                };
                self.on_handshake(id, hs)?;
                continue;
            }
            match lane.decoder.next_message() {
                Ok(Some(msg)) => self.on_message(id, msg)?,
                Ok(None) => return Ok(()),
                Err(e) if e.is_fatal() => return Err(CloseReason::Protocol(e.to_string())),
                Err(e) => tracing::debug!(lane = id, "ignoring message: {e}"),
            }
        }
    }

    fn on_handshake(&mut self, id: LaneId, hs: Handshake) -> Result<(), CloseReason> {
        if hs.info_hash != self.info_hash {
            return Err(CloseReason::OtherTorrent(crate::torrent::session::hex(
                &hs.info_hash,
            )));
        }
        if hs.peer_id == self.peer_id {
            return Err(CloseReason::OwnConnection);
        }
        if !hs.supports_extensions() {
            return Err(CloseReason::NoExtensions);
        }
        let (ih, pid) = (self.info_hash, self.peer_id);
        let ext = ExtensionHandshake {
            m: [("ut_metadata".to_string(), UT_METADATA_ID)].into(),
            v: Some(self.client_name.clone()),
            ..Default::default()
        };
        let Some(lane) = self.lanes.get_mut(&id) else {
            return Ok(());
        };
        lane.handshake_seen = true;
        if !lane.outbound {
            push_handshake(lane, ih, pid);
        }
        if let Ok(msg) = ext.to_message() {
            push(lane, &msg);
        }
        Ok(())
    }

    fn on_message(&mut self, id: LaneId, msg: Message) -> Result<(), CloseReason> {
        let Message::Extended { id: ext, payload } = msg else {
            return Ok(()); // bitfields, haves, chokes: nothing to do without metadata
        };
        if ext == EXTENSION_HANDSHAKE_ID {
            let Ok(h) = ExtensionHandshake::decode(&payload) else {
                return Err(CloseReason::BadExtensionHandshake);
            };
            let their_id = h.id_of("ut_metadata");
            if let Some(l) = self.lanes.get_mut(&id) {
                l.peer_ut_metadata = their_id;
            }
            match (their_id, h.metadata_size) {
                (Some(_), Some(size)) => self
                    .assembler
                    .add_peer(id, size)
                    .map_err(|e| CloseReason::MetadataOfferRefused(e.to_string()))?,
                _ => return Err(CloseReason::NoMetadata),
            }
            return Ok(());
        }
        if ext != UT_METADATA_ID {
            return Ok(());
        }
        let msg = decode_metadata_message(&payload)
            .map_err(|e| CloseReason::BadMetadata(e.to_string()))?;
        if let MetadataMessage::Request { piece } = msg {
            // We have nothing to serve yet.
            self.send(id, &MetadataMessage::Reject { piece });
            return Ok(());
        }
        match self.assembler.on_message(&id, &msg) {
            MetadataEvent::Complete(info) => {
                tracing::info!(bytes = info.len(), "metadata complete and verified");
                self.info = Some(info);
            }
            MetadataEvent::Misbehaved { peer, reason } => {
                self.close(peer, CloseReason::BadMetadata(reason.to_string()));
            }
            MetadataEvent::HashMismatch { banned } => {
                tracing::warn!("fetched metadata does not match the info hash; fetching again");
                self.last_problem = Some("metadata did not match the info hash".into());
                for peer in banned {
                    self.close(peer, CloseReason::WrongMetadata);
                }
            }
            MetadataEvent::Ignored | MetadataEvent::Requeued | MetadataEvent::Progress { .. } => {}
        }
        Ok(())
    }

    fn send(&mut self, id: LaneId, msg: &MetadataMessage) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        let Some(their) = lane.peer_ut_metadata else {
            return;
        };
        push(
            lane,
            &Message::Extended {
                id: their,
                payload: Bytes::from(msg.encode()),
            },
        );
    }

    fn send_requests(&mut self, now: Instant) {
        for r in self.assembler.poll_requests(now) {
            self.send(r.peer, &r.message());
        }
    }
}

impl LaneProtocol for MetadataSession {
    fn add_lane(&mut self, id: LaneId, outbound: bool, _label: String, _now: Instant) {
        let mut lane = MetaLane {
            decoder: MessageDecoder::new(DecoderLimits::default()),
            outbound,
            handshake_seen: false,
            peer_ut_metadata: None,
            outbox: VecDeque::new(),
        };
        if outbound {
            push_handshake(&mut lane, self.info_hash, self.peer_id);
        }
        self.lanes.insert(id, lane);
    }

    fn on_lane_data(&mut self, id: LaneId, data: &[u8], now: Instant) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        lane.decoder.push(data);
        if let Err(reason) = self.process(id) {
            self.close(id, reason);
        }
        self.send_requests(now);
    }

    fn on_lane_closed(&mut self, id: LaneId, _reason: CloseReason, _now: Instant) {
        self.lanes.remove(&id);
        self.assembler.remove_peer(&id);
    }

    fn poll_output(&mut self, id: LaneId, _now: Instant) -> Option<Bytes> {
        self.lanes.get_mut(&id)?.outbox.pop_front()
    }

    fn unpoll_output(&mut self, id: LaneId, rest: Bytes) {
        if let Some(l) = self.lanes.get_mut(&id) {
            l.outbox.push_front(rest);
        }
    }

    fn has_output(&self, id: LaneId) -> bool {
        self.lanes.get(&id).is_some_and(|l| !l.outbox.is_empty())
    }

    fn poll_action(&mut self) -> Option<Action> {
        // Only lane closes: completion is read with `take_info`.
        self.actions.pop_front()
    }

    fn tick(&mut self, now: Instant) {
        self.assembler.handle_timeout(now);
        self.send_requests(now);
    }

    fn poll_timeout(&self, _now: Instant) -> Option<Instant> {
        self.assembler.poll_timeout()
    }

    fn peer_count(&self) -> usize {
        self.lanes.values().filter(|l| l.handshake_seen).count()
    }

    fn lane_ids(&self) -> Vec<LaneId> {
        self.lanes.keys().copied().collect()
    }
}

fn push(lane: &mut MetaLane, msg: &Message) {
    lane.outbox.push_back(encode_bytes(msg));
}

fn push_handshake(lane: &mut MetaLane, info_hash: [u8; 20], peer_id: PeerId) {
    let hs = Handshake::ours(info_hash, peer_id, false);
    lane.outbox
        .push_back(Bytes::copy_from_slice(&hs.to_bytes()));
}
