//! One uTP connection, sans-IO: packets in through [`Connection::handle_packet`], datagrams
//! out through [`Connection::poll_transmit`], time through [`Connection::poll_timeout`] and
//! [`Connection::handle_timeout`]. The caller owns the socket and the clock; every `now` it
//! passes is an [`Instant`] it read, so tests drive the connection on a simulated clock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::error::UtpError;
use crate::ledbat::Ledbat;
use crate::packet::{encode, Header, Packet, PacketType, HEADER_LEN, MAX_SACK_BYTES};
use crate::seq::{before, before_or_eq};

/// Limits and timers of a connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest payload of a DATA packet. 1344 keeps a packet with the longest selective ACK
    /// under 1400 bytes, below the MTU of any path worth using.
    pub max_payload: usize,
    /// Bytes received and not yet read, in order or held for reordering: the window we
    /// advertise.
    pub recv_buffer: usize,
    /// Bytes written and not yet acknowledged.
    pub send_buffer: usize,
    /// How far past the next expected packet one is held for reordering (in packets); farther
    /// ones are dropped and sent again by the peer.
    pub max_reorder: u16,
    /// Packets in flight at most (sequence numbers not yet acknowledged).
    pub max_unacked: usize,
    /// Retransmissions of a SYN, and of anything else, before the connection is given up.
    pub syn_retries: u32,
    pub data_retries: u32,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// Silence after which a connection is dead.
    pub idle_timeout: Duration,
    /// Silence after which a half-open accepted connection (a SYN and nothing else) is dead.
    pub handshake_timeout: Duration,
    /// We send an ACK when we have sent nothing for this long, so NATs keep the mapping.
    pub keepalive: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_payload: 1344,
            recv_buffer: 1 << 20,
            send_buffer: 1 << 20,
            max_reorder: 1024,
            max_unacked: 1024,
            syn_retries: 3,
            data_retries: 6,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(500),
            max_rto: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            handshake_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(29),
        }
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// We sent a SYN and wait for its acknowledgement.
    SynSent,
    /// We answered a SYN and have heard nothing else yet (half-open).
    SynRecv,
    Connected,
    Closed,
}

/// Counters of what the peer did wrong or the network lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets acknowledging sequence numbers we never sent (dropped).
    pub bad_acks: u64,
    /// Packets too far ahead of the next expected one (dropped).
    pub out_of_window: u64,
    /// Packets received again.
    pub duplicates: u64,
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub timeouts: u64,
}

/// A packet we sent (or are about to) that is not yet acknowledged.
#[derive(Debug)]
struct Sent {
    seq: u16,
    ty: PacketType,
    payload: Vec<u8>,
    sent_at: Option<Instant>,
    transmissions: u32,
    /// Acknowledged by a selective ACK: not in flight, not to be sent again.
    sacked: bool,
    /// Waiting to be sent (first time or again): not in flight.
    resend: bool,
    /// Already resent once on duplicate or selective ACKs; further losses wait for the timer.
    fast_resent: bool,
}

impl Sent {
    /// What the packet counts against the congestion window.
    fn cost(&self) -> usize {
        self.payload.len() + HEADER_LEN
    }
}

/// A packet received ahead of a gap.
#[derive(Debug)]
enum Held {
    Data(Vec<u8>),
    Fin,
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::Data(d) => d.len(),
            Held::Fin => 0,
        }
    }
}

/// One uTP connection.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    /// Our microsecond clock counts from here.
    epoch: Instant,
    state: State,
    error: Option<UtpError>,
    initiator: bool,
    recv_id: u16,
    send_id: u16,
    /// The next sequence number we send.
    seq_nr: u16,
    /// The last sequence number received in order.
    ack_nr: u16,
    /// The SYN that opened an accepted connection (to answer its retransmissions).
    syn_seq: u16,
    unacked: VecDeque<Sent>,
    unacked_bytes: usize,
    to_resend: usize,
    pending: VecDeque<u8>,
    /// Cost of the packets in flight (sent, not acknowledged, not lost).
    flight: usize,
    close_requested: bool,
    fin_queued: bool,
    fin_acked: bool,
    reset_pending: bool,
    probe: bool,
    peer_wnd: usize,
    dup_acks: u32,
    /// Losses of packets before this sequence number belong to a loss event already answered.
    recovery_seq: u16,
    ledbat: Ledbat,
    srtt: Option<(Duration, Duration)>,
    rto: Duration,
    rto_deadline: Option<Instant>,
    retries: u32,
    readable: VecDeque<u8>,
    reorder: HashMap<u16, Held>,
    reorder_bytes: usize,
    peer_fin: Option<u16>,
    eof: bool,
    /// Our clock minus the peer's timestamp on its last packet: the delay sample we return.
    reply_micro: u32,
    ack_needed: bool,
    last_recv: Instant,
    last_sent: Instant,
    advertised: usize,
    stats: Stats,
}

fn micros(epoch: Instant, now: Instant) -> u32 {
    // The wire carries the low 32 bits; both sides compare them with wrapping arithmetic.
    now.saturating_duration_since(epoch).as_micros() as u32
}

impl Connection {
    fn new(config: Config, epoch: Instant, now: Instant, initiator: bool) -> Self {
        let ledbat = Ledbat::new(
            config.max_payload + HEADER_LEN,
            config.send_buffer.max(1 << 16),
        );
        let rto = config.initial_rto;
        Self {
            config,
            epoch,
            state: State::SynSent,
            error: None,
            initiator,
            recv_id: 0,
            send_id: 0,
            seq_nr: 0,
            ack_nr: 0,
            syn_seq: 0,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            to_resend: 0,
            pending: VecDeque::new(),
            flight: 0,
            close_requested: false,
            fin_queued: false,
            fin_acked: false,
            reset_pending: false,
            probe: false,
            peer_wnd: 0,
            dup_acks: 0,
            recovery_seq: 0,
            ledbat,
            srtt: None,
            rto,
            rto_deadline: None,
            retries: 0,
            readable: VecDeque::new(),
            reorder: HashMap::new(),
            reorder_bytes: 0,
            peer_fin: None,
            eof: false,
            reply_micro: 0,
            ack_needed: false,
            last_recv: now,
            last_sent: now,
            advertised: 0,
            stats: Stats::default(),
        }
    }

    /// A connection we open: `recv_id` is the id the peer's packets will carry, chosen by the
    /// caller unique toward this peer; the SYN waits in [`Connection::poll_transmit`].
    pub fn connect(
        recv_id: u16,
        initial_seq: u16,
        now: Instant,
        epoch: Instant,
        config: Config,
    ) -> Self {
        let mut c = Self::new(config, epoch, now, true);
        c.recv_id = recv_id;
        c.send_id = recv_id.wrapping_add(1);
        c.seq_nr = initial_seq;
        c.recovery_seq = initial_seq;
        // Until the peer tells its window, assume one packet's worth.
        c.peer_wnd = c.config.max_payload + HEADER_LEN;
        c.push(PacketType::Syn, Vec::new());
        c
    }

    /// A connection a peer opened with `syn`; our STATE answering it waits in
    /// [`Connection::poll_transmit`].
    pub fn accept(
        syn: &Packet<'_>,
        initial_seq: u16,
        now: Instant,
        epoch: Instant,
        config: Config,
    ) -> Self {
        let mut c = Self::new(config, epoch, now, false);
        let h = syn.header;
        c.state = State::SynRecv;
        c.recv_id = h.conn_id.wrapping_add(1);
        c.send_id = h.conn_id;
        c.seq_nr = initial_seq;
        c.recovery_seq = initial_seq;
        c.ack_nr = h.seq_nr;
        c.syn_seq = h.seq_nr;
        c.peer_wnd = h.wnd_size as usize;
        c.reply_micro = micros(epoch, now).wrapping_sub(h.timestamp_us);
        c.ack_needed = true;
        c
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Why the connection closed, if it did not close cleanly.
    pub fn error(&self) -> Option<&UtpError> {
        self.error.as_ref()
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    pub fn is_established(&self) -> bool {
        self.state == State::Connected
    }

    /// We opened it (true) or accepted it.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The connection id on the packets the peer sends us.
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// The connection id on the packets we send (except the SYN).
    pub fn send_id(&self) -> u16 {
        self.send_id
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The congestion window in bytes.
    pub fn congestion_window(&self) -> usize {
        self.ledbat.window()
    }

    /// The smoothed round-trip time, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.srtt.map(|(s, _)| s)
    }

    /// Bytes held by the connection: unread, reordered, unsent and unacknowledged. Bounded
    /// by the receive and send buffers.
    pub fn buffered(&self) -> usize {
        self.readable.len() + self.reorder_bytes + self.pending.len() + self.unacked_bytes
    }

    /// How many bytes [`Connection::write`] would take now.
    pub fn send_capacity(&self) -> usize {
        if self.state == State::Closed || self.close_requested {
            return 0;
        }
        self.config
            .send_buffer
            .saturating_sub(self.pending.len() + self.unacked_bytes)
    }

    /// Queues bytes to send; returns how many were taken (the rest does not fit the send
    /// buffer now).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.send_capacity());
        self.pending.extend(&data[..n]);
        n
    }

    /// Bytes received in order and not yet read.
    pub fn readable(&self) -> usize {
        self.readable.len()
    }

    /// Moves received bytes into `buf`; returns how many.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.readable.len());
        for (dst, src) in buf.iter_mut().zip(self.readable.drain(..n)) {
            *dst = src;
        }
        // A window we had closed (below half the buffer) is announced open again at once,
        // or a peer that stopped on it waits for its probe timer.
        if n > 0 && self.advertised < self.config.recv_buffer / 2 {
            self.ack_needed |= self.window() >= self.config.recv_buffer / 2;
        }
        n
    }

    /// The peer closed its side and everything before its FIN has been read.
    pub fn is_eof(&self) -> bool {
        self.eof && self.readable.is_empty()
    }

    /// Sends a FIN once everything written has been sent. The connection is closed when our
    /// FIN is acknowledged and the peer's has arrived.
    pub fn close(&mut self) {
        self.close_requested = true;
    }

    /// Closes at once: one RESET goes out through [`Connection::poll_transmit`].
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.reset_pending = true;
            self.shut(Some(UtpError::Aborted));
        }
    }

    fn shut(&mut self, error: Option<UtpError>) {
        self.state = State::Closed;
        self.error = error;
        self.unacked.clear();
        self.unacked_bytes = 0;
        self.pending.clear();
        self.reorder.clear();
        self.reorder_bytes = 0;
        self.flight = 0;
        self.to_resend = 0;
        self.rto_deadline = None;
    }

    fn window(&self) -> usize {
        self.config
            .recv_buffer
            .saturating_sub(self.readable.len() + self.reorder_bytes)
    }

    fn push(&mut self, ty: PacketType, payload: Vec<u8>) {
        self.unacked_bytes += payload.len();
        self.unacked.push_back(Sent {
            seq: self.seq_nr,
            ty,
            payload,
            sent_at: None,
            transmissions: 0,
            sacked: false,
            resend: true,
            fast_resent: false,
        });
        self.to_resend += 1;
        self.seq_nr = self.seq_nr.wrapping_add(1);
    }

    /// The selective ACK of what is held past a gap: bit `i` is `ack_nr + 2 + i`.
    fn sack(&self) -> Option<([u8; MAX_SACK_BYTES], usize)> {
        if self.reorder.is_empty() {
            return None;
        }
        let mut bits = [0u8; MAX_SACK_BYTES];
        let mut top = 0;
        let base = self.ack_nr.wrapping_add(2);
        for &seq in self.reorder.keys() {
            let i = usize::from(seq.wrapping_sub(base));
            if i < MAX_SACK_BYTES * 8 {
                bits[i / 8] |= 1 << (i % 8);
                top = top.max(i / 8 + 1);
            }
        }
        // A multiple of four bytes, as BEP 29 asks.
        let len = top.div_ceil(4).max(1) * 4;
        Some((bits, len))
    }

    fn header(&mut self, ty: PacketType, seq_nr: u16, now: Instant) -> Header {
        let wnd = self.window();
        self.advertised = wnd;
        Header {
            ty,
            conn_id: if ty == PacketType::Syn {
                self.recv_id
            } else {
                self.send_id
            },
            timestamp_us: micros(self.epoch, now),
            timestamp_diff_us: self.reply_micro,
            wnd_size: u32::try_from(wnd).unwrap_or(u32::MAX),
            seq_nr,
            ack_nr: self.ack_nr,
        }
    }

    fn emit_header(&mut self, header: &Header, payload: &[u8], out: &mut Vec<u8>, now: Instant) {
        let sack = self.sack();
        encode(header, sack.as_ref().map(|(b, n)| &b[..*n]), payload, out);
        self.ack_needed = false;
        self.last_sent = now;
    }

    /// Sends `unacked[i]`.
    fn emit(&mut self, i: usize, now: Instant, out: &mut Vec<u8>) {
        let (ty, seq) = (self.unacked[i].ty, self.unacked[i].seq);
        let header = self.header(ty, seq, now);
        let s = &mut self.unacked[i];
        if s.transmissions > 0 {
            self.stats.retransmits += 1;
        }
        s.transmissions += 1;
        s.sent_at = Some(now);
        s.resend = false;
        self.to_resend -= 1;
        self.flight += s.cost();
        let payload = std::mem::take(&mut s.payload);
        self.emit_header(&header, &payload, out, now);
        self.unacked[i].payload = payload;
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rto);
        }
    }

    /// May a packet of `cost` go out now? One packet may always be in flight (so a window
    /// smaller than a packet still moves), except into a closed window, which only the probe
    /// timer opens.
    fn may_send(&self, cost: usize) -> bool {
        if self.flight == 0 {
            return self.peer_wnd > 0 || self.probe;
        }
        self.flight + cost <= self.ledbat.window().min(self.peer_wnd)
    }

    /// Writes the next datagram to send into `out` (cleared first); false when there is
    /// nothing to send now. Call it until it returns false after every event.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        out.clear();
        if self.reset_pending {
            self.reset_pending = false;
            let header = self.header(PacketType::Reset, self.seq_nr, now);
            encode(&header, None, &[], out);
            return true;
        }
        if self.state == State::Closed {
            // A cleanly closed connection still answers a peer that missed our last ACK.
            return self.error.is_none() && self.send_ack(now, out);
        }
        // Retransmissions (and the SYN) first, oldest first.
        if self.to_resend > 0 {
            if let Some(i) = self.unacked.iter().position(|s| s.resend) {
                if self.may_send(self.unacked[i].cost()) {
                    self.probe = false;
                    self.emit(i, now, out);
                    return true;
                }
                return self.send_ack(now, out);
            }
        }
        if self.state != State::Connected {
            // No data before the handshake is complete: the STATE answering a SYN carries
            // the sequence number our first DATA will have, and a SYN it answers again
            // must get the same one.
            return self.send_ack(now, out);
        }
        // New data.
        if !self.pending.is_empty()
            && !self.fin_queued
            && self.unacked.len() < self.config.max_unacked
        {
            // Never more than the peer's window, so a nearly closed one is filled, not
            // overrun (a closed one gets a one-byte probe).
            let n = self
                .pending
                .len()
                .min(self.config.max_payload)
                .min(self.peer_wnd.max(1));
            if self.may_send(n + HEADER_LEN) {
                self.probe = false;
                let payload: Vec<u8> = self.pending.drain(..n).collect();
                self.push(PacketType::Data, payload);
                self.emit(self.unacked.len() - 1, now, out);
                return true;
            }
            if self.flight == 0 && self.rto_deadline.is_none() {
                // A closed window: probe it when the timer fires.
                self.rto_deadline = Some(now + self.rto);
            }
        }
        if self.close_requested
            && self.pending.is_empty()
            && !self.fin_queued
            && self.unacked.len() < self.config.max_unacked
        {
            self.fin_queued = true;
            self.push(PacketType::Fin, Vec::new());
            self.emit(self.unacked.len() - 1, now, out);
            return true;
        }
        self.send_ack(now, out)
    }

    fn send_ack(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        if !self.ack_needed {
            return false;
        }
        let header = self.header(PacketType::State, self.seq_nr, now);
        self.emit_header(&header, &[], out, now);
        true
    }

    /// The next time [`Connection::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let mut t = self.rto_deadline;
        if let Some(silence) = self.silence_limit() {
            let s = self.last_recv + silence;
            t = Some(t.map_or(s, |t| t.min(s)));
        }
        let mut t = t?;
        if self.state == State::Connected {
            t = t.min(self.last_sent + self.config.keepalive);
        }
        Some(t)
    }

    /// How long the peer may stay silent. A SYN we sent is bounded by its retransmissions
    /// instead.
    fn silence_limit(&self) -> Option<Duration> {
        match self.state {
            State::SynSent | State::Closed => None,
            State::SynRecv => Some(self.config.handshake_timeout),
            State::Connected => Some(self.config.idle_timeout),
        }
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if let Some(silence) = self.silence_limit() {
            if now >= self.last_recv + silence {
                self.shut(Some(UtpError::Idle(silence.as_secs())));
                return;
            }
        }
        if self.rto_deadline.is_some_and(|d| now >= d) {
            self.on_rto();
            if self.state == State::Closed {
                return;
            }
        }
        if self.state == State::Connected && now >= self.last_sent + self.config.keepalive {
            self.ack_needed = true;
        }
    }

    fn on_rto(&mut self) {
        self.rto_deadline = None;
        let in_flight = self
            .unacked
            .iter()
            .any(|s| s.transmissions > 0 && !s.sacked && !s.resend);
        if !in_flight {
            // Nothing lost: the timer guarded a closed window.
            self.probe = !self.pending.is_empty();
            return;
        }
        self.retries += 1;
        self.stats.timeouts += 1;
        let max = if self.state == State::SynSent {
            self.config.syn_retries
        } else {
            self.config.data_retries
        };
        if self.retries > max {
            self.shut(Some(UtpError::TimedOut(max)));
            return;
        }
        self.rto = (self.rto * 2).min(self.config.max_rto);
        self.ledbat.on_timeout();
        for s in &mut self.unacked {
            if s.transmissions > 0 && !s.sacked && !s.resend {
                s.resend = true;
                self.to_resend += 1;
                self.flight -= s.cost();
            }
        }
    }

    /// Marks `unacked[i]` lost on duplicate or selective ACKs.
    fn lose(&mut self, i: usize) {
        let s = &mut self.unacked[i];
        if s.sacked || s.resend || s.fast_resent || s.transmissions == 0 {
            return;
        }
        s.fast_resent = true;
        s.resend = true;
        self.to_resend += 1;
        self.flight -= s.cost();
        self.stats.fast_retransmits += 1;
        if before_or_eq(self.recovery_seq, s.seq) {
            self.ledbat.on_loss();
            self.recovery_seq = self.seq_nr;
        }
    }

    fn update_rtt(&mut self, r: Duration) {
        let (srtt, rttvar) = match self.srtt {
            None => (r, r / 2),
            Some((srtt, rttvar)) => {
                let diff = srtt.abs_diff(r);
                (srtt * 7 / 8 + r / 8, rttvar * 3 / 4 + diff / 4)
            }
        };
        self.srtt = Some((srtt, rttvar));
        self.rto = (srtt + 4 * rttvar).clamp(self.config.min_rto, self.config.max_rto);
    }

    /// Takes one packet the demultiplexer routed here.
    pub fn handle_packet(&mut self, p: &Packet<'_>, now: Instant) {
        if self.state == State::Closed {
            if self.error.is_none() && matches!(p.header.ty, PacketType::Data | PacketType::Fin) {
                self.ack_needed = true;
            }
            return;
        }
        let h = p.header;
        match h.ty {
            PacketType::Reset => {
                self.shut(Some(UtpError::Reset));
                return;
            }
            PacketType::Syn => {
                // The peer did not hear our answer: answer again.
                if !self.initiator && h.seq_nr == self.syn_seq {
                    self.last_recv = now;
                    self.ack_needed = true;
                }
                return;
            }
            _ => {}
        }
        let last_sent = self.seq_nr.wrapping_sub(1);
        if before(last_sent, h.ack_nr) {
            // Acknowledges what we never sent: forged or broken, and not worth a reply.
            self.stats.bad_acks += 1;
            return;
        }
        let oldest = self.unacked.front().map_or(self.seq_nr, |s| s.seq);
        let acks_new = !self.unacked.is_empty() && before_or_eq(oldest, h.ack_nr);
        match self.state {
            State::SynSent => {
                // Only the STATE answering our SYN tells where the peer's numbers start.
                if !acks_new || h.ty != PacketType::State {
                    return;
                }
                // The peer's next packet carries the seq_nr of its answer.
                self.ack_nr = h.seq_nr.wrapping_sub(1);
                self.state = State::Connected;
                // Our answer confirms the connection to the peer even if we have no data.
                self.ack_needed = true;
            }
            State::SynRecv => self.state = State::Connected,
            _ => {}
        }
        self.last_recv = now;
        self.peer_wnd = h.wnd_size as usize;
        self.reply_micro = micros(self.epoch, now).wrapping_sub(h.timestamp_us);
        let flight_before = self.flight;
        let mut acked = 0;
        if acks_new {
            let mut sample = None;
            while self
                .unacked
                .front()
                .is_some_and(|s| before_or_eq(s.seq, h.ack_nr))
            {
                let Some(s) = self.unacked.pop_front() else {
                    break;
                };
                if s.resend {
                    self.to_resend -= 1;
                } else if !s.sacked {
                    self.flight -= s.cost();
                }
                if !s.sacked {
                    acked += s.cost();
                }
                if s.transmissions == 1 {
                    sample = s.sent_at.map(|t| now.saturating_duration_since(t));
                }
                if s.ty == PacketType::Fin {
                    self.fin_acked = true;
                }
                self.unacked_bytes -= s.payload.len();
            }
            if let Some(r) = sample {
                self.update_rtt(r);
            }
            self.dup_acks = 0;
            self.retries = 0;
            self.rto_deadline = (self.flight > 0).then(|| now + self.rto);
        } else if self
            .unacked
            .front()
            .is_some_and(|s| s.payload.len() > self.peer_wnd)
        {
            // The peer is alive and its window is full: what it dropped is not a loss, and
            // the timer only probes.
            self.retries = 0;
        } else if h.ty == PacketType::State && h.ack_nr == oldest.wrapping_sub(1) && self.flight > 0
        {
            self.dup_acks += 1;
            if self.dup_acks == 3 {
                self.lose(0);
            }
        }
        if let Some(bits) = p.sack {
            acked += self.apply_sack(h.ack_nr, bits);
        }
        self.ledbat.delay_sample(h.timestamp_diff_us, now);
        self.ledbat.on_ack(acked, flight_before);
        match h.ty {
            PacketType::Data => self.receive(h.seq_nr, Held::Data(p.payload.to_vec())),
            PacketType::Fin => self.receive(h.seq_nr, Held::Fin),
            _ => {}
        }
        if self.fin_acked && self.eof {
            self.shut(None);
        }
    }

    /// Marks what a selective ACK acknowledges; a packet with three or more acknowledged
    /// after it is lost. Returns the cost acknowledged.
    fn apply_sack(&mut self, ack_nr: u16, bits: &[u8]) -> usize {
        let Some(oldest) = self.unacked.front().map(|s| s.seq) else {
            return 0;
        };
        let base = ack_nr.wrapping_add(2);
        let mut acked = 0;
        let mut sacked_total = 0;
        for (byte_i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) == 0 {
                    continue;
                }
                let seq = base.wrapping_add((byte_i * 8 + bit) as u16);
                let i = usize::from(seq.wrapping_sub(oldest));
                let Some(s) = self.unacked.get_mut(i) else {
                    continue;
                };
                if s.sacked || s.transmissions == 0 {
                    continue;
                }
                s.sacked = true;
                if s.resend {
                    s.resend = false;
                    self.to_resend -= 1;
                } else {
                    self.flight -= s.cost();
                }
                acked += s.cost();
                sacked_total += 1;
            }
        }
        if sacked_total == 0 {
            return acked;
        }
        let mut after = self.unacked.iter().filter(|s| s.sacked).count();
        let mut i = 0;
        while i < self.unacked.len() && after >= 3 {
            if self.unacked[i].sacked {
                after -= 1;
            } else {
                self.lose(i);
            }
            i += 1;
        }
        acked
    }

    fn receive(&mut self, seq: u16, held: Held) {
        let d = seq.wrapping_sub(self.ack_nr);
        if d == 0 || d >= 0x8000 {
            // Already have it: the peer missed our ACK.
            self.stats.duplicates += 1;
            self.ack_needed = true;
            return;
        }
        if self.peer_fin.is_some_and(|f| before(f, seq)) {
            return;
        }
        if d > self.config.max_reorder {
            self.stats.out_of_window += 1;
            return;
        }
        let room = self.window();
        if d == 1 {
            if held.len() > room {
                // The peer overran our window: drop it (it sends again) and tell the window.
                self.ack_needed = true;
                return;
            }
            self.deliver(seq, held);
            loop {
                let next = self.ack_nr.wrapping_add(1);
                let Some(h) = self.reorder.remove(&next) else {
                    break;
                };
                self.reorder_bytes -= h.len();
                self.deliver(next, h);
            }
        } else if self.reorder.contains_key(&seq) {
            self.stats.duplicates += 1;
        } else if held.len() <= room {
            if matches!(held, Held::Fin) {
                self.peer_fin = Some(seq);
            }
            self.reorder_bytes += held.len();
            self.reorder.insert(seq, held);
        }
        self.ack_needed = true;
    }

    fn deliver(&mut self, seq: u16, held: Held) {
        self.ack_nr = seq;
        match held {
            Held::Data(d) => self.readable.extend(d),
            Held::Fin => {
                self.peer_fin = Some(seq);
                self.eof = true;
                // Nothing comes after a FIN.
                self.reorder.clear();
                self.reorder_bytes = 0;
            }
        }
    }
}
