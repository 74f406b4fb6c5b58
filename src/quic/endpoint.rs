//! A sans-IO QUIC endpoint: `quinn_proto::Endpoint` plus its connections.
//!
//! Nothing here touches a socket or a clock: datagrams and the current time come in as
//! arguments, datagrams to send and application events come out. The SCION driver, the
//! in-memory test pipe and the benchmarks all drive the same code.
//!
//! Remotes are `SocketAddr` keys because that is what quinn-proto understands. Over SCION the
//! key is synthetic (see [`crate::quic::remotes`]): one key per (remote address, path), which
//! pins every connection to one SCION path.

use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use quinn_proto::{
    ClientConfig, Connection, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint,
    Event, ServerConfig, StreamEvent, StreamId, Transmit,
};

use super::config::{self, QuicTuning};

/// What the endpoint tells its owner.
#[derive(Debug)]
pub enum QuicEvent {
    /// Handshake finished (either side).
    Connected(ConnectionHandle),
    /// The remote opened a bidirectional stream.
    StreamOpened(ConnectionHandle, StreamId),
    /// Data (or a FIN / reset) is ready on a stream.
    Readable(ConnectionHandle, StreamId),
    /// A stream blocked by flow control can take data again.
    Writable(ConnectionHandle, StreamId),
    /// The connection ended; its handle stays valid until `Drained`.
    Lost(ConnectionHandle, ConnectionError),
    /// The connection is gone and its handle freed.
    Drained(ConnectionHandle),
}

/// Where a datagram produced by [`QuicEndpoint::poll_transmit`] goes.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing {
    pub destination: SocketAddr,
    pub size: usize,
    /// `Some(n)`: the buffer holds several datagrams of `n` bytes (the last may be shorter).
    pub segment_size: Option<usize>,
}

pub struct QuicEndpoint {
    endpoint: Endpoint,
    conns: FxHashMap<ConnectionHandle, Connection>,
    /// Round-robin order for transmits, so one busy connection cannot starve the others.
    order: Vec<ConnectionHandle>,
    next_rr: usize,
    client: ClientConfig,
    server: Option<Arc<ServerConfig>>,
    events: VecDeque<QuicEvent>,
    /// Stateless responses (version negotiation, resets) waiting to be sent.
    responses: VecDeque<(Vec<u8>, Outgoing)>,
    local_ip: IpAddr,
    max_datagrams: usize,
    tuning: QuicTuning,
    /// Client and server configurations for connections whose UDP payloads have a bound below
    /// the tuning's, by that bound (a handful of distinct path MTUs at most).
    within: FxHashMap<u16, (ClientConfig, Option<Arc<ServerConfig>>)>,
}

impl QuicEndpoint {
    /// `accept`: whether remotes may open connections to this endpoint (seeder side).
    pub fn new(tuning: &QuicTuning, accept: bool) -> anyhow::Result<Self> {
        let server = if accept {
            Some(Arc::new(config::server_config(tuning)?))
        } else {
            None
        };
        let endpoint = Endpoint::new(
            Arc::new(config::endpoint_config(tuning)),
            server.clone(),
            true,
            None,
        );
        Ok(Self {
            endpoint,
            conns: FxHashMap::default(),
            order: Vec::new(),
            next_rr: 0,
            client: config::client_config(tuning)?,
            server,
            events: VecDeque::new(),
            responses: VecDeque::new(),
            local_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            max_datagrams: 1,
            tuning: tuning.clone(),
            within: FxHashMap::default(),
        })
    }

    /// The client and server configurations for connections whose UDP payloads must stay
    /// within `max_payload` bytes (`None`: the tuning's own bound).
    fn configs_within(
        &mut self,
        max_payload: Option<u16>,
    ) -> (ClientConfig, Option<Arc<ServerConfig>>) {
        let Some(max) = max_payload.filter(|&m| m < self.tuning.max_udp_payload) else {
            return (self.client.clone(), self.server.clone());
        };
        let (tuning, client, server) = (&self.tuning, &self.client, &self.server);
        self.within
            .entry(max)
            .or_insert_with(|| {
                let transport = config::transport_within(tuning, max);
                let mut c = client.clone();
                c.transport_config(transport.clone());
                let s = server.as_ref().map(|s| {
                    let mut s = (**s).clone();
                    s.transport_config(transport);
                    Arc::new(s)
                });
                (c, s)
            })
            .clone()
    }

    /// Lets `poll_transmit` return up to `n` equal-sized datagrams at once (GSO-style batches).
    pub fn set_max_datagrams(&mut self, n: usize) {
        self.max_datagrams = n.max(1);
    }

    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
    ) -> anyhow::Result<ConnectionHandle> {
        self.connect_within(now, remote, None)
    }

    /// [`Self::connect`] for a connection whose UDP payloads must stay within `max_payload`
    /// bytes (a path MTU less the headers below QUIC).
    pub fn connect_within(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        max_payload: Option<u16>,
    ) -> anyhow::Result<ConnectionHandle> {
        let (client, _) = self.configs_within(max_payload);
        let (handle, conn) = self
            .endpoint
            .connect(now, client, remote, config::SERVER_NAME)?;
        self.insert(handle, conn);
        Ok(handle)
    }

    fn insert(&mut self, handle: ConnectionHandle, conn: Connection) {
        self.conns.insert(handle, conn);
        self.order.push(handle);
    }

    pub fn connection(&mut self, handle: ConnectionHandle) -> Option<&mut Connection> {
        self.conns.get_mut(&handle)
    }

    pub fn connections(&self) -> impl Iterator<Item = (&ConnectionHandle, &Connection)> {
        self.conns.iter()
    }

    pub fn open_bi(&mut self, handle: ConnectionHandle) -> Option<StreamId> {
        self.conns.get_mut(&handle)?.streams().open(Dir::Bi)
    }

    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, data: BytesMut) {
        self.handle_datagram_within(now, remote, data, None)
    }

    /// [`Self::handle_datagram`]; a connection it opens keeps its UDP payloads within
    /// `max_payload` bytes.
    pub fn handle_datagram_within(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        data: BytesMut,
        max_payload: Option<u16>,
    ) {
        let mut buf = Vec::new();
        match self
            .endpoint
            .handle(now, remote, Some(self.local_ip), None, data, &mut buf)
        {
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                if let Some(conn) = self.conns.get_mut(&handle) {
                    conn.handle_event(event);
                }
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                let Some(server) = self.configs_within(max_payload).1 else {
                    self.endpoint.ignore(incoming);
                    return;
                };
                match self.endpoint.accept(incoming, now, &mut buf, Some(server)) {
                    Ok((handle, conn)) => self.insert(handle, conn),
                    Err(err) => {
                        if let Some(t) = err.response {
                            self.queue_response(buf, t);
                        }
                    }
                }
            }
            Some(DatagramEvent::Response(t)) => self.queue_response(buf, t),
            None => {}
        }
    }

    fn queue_response(&mut self, buf: Vec<u8>, t: Transmit) {
        let out = Outgoing {
            destination: t.destination,
            size: t.size,
            segment_size: t.segment_size,
        };
        self.responses.push_back((buf, out));
    }

    /// Runs expired timers and moves internal events along. Call after feeding datagrams and
    /// after writing to streams, before polling transmits and events.
    pub fn drive(&mut self, now: Instant) {
        let mut drained = Vec::new();
        for (&handle, conn) in self.conns.iter_mut() {
            if conn.poll_timeout().is_some_and(|t| t <= now) {
                conn.handle_timeout(now);
            }
            while let Some(ev) = conn.poll_endpoint_events() {
                if let Some(back) = self.endpoint.handle_event(handle, ev) {
                    conn.handle_event(back);
                }
            }
            while let Some(ev) = conn.poll() {
                match ev {
                    Event::Connected => self.events.push_back(QuicEvent::Connected(handle)),
                    Event::ConnectionLost { reason } => {
                        self.events.push_back(QuicEvent::Lost(handle, reason))
                    }
                    Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
                        while let Some(id) = conn.streams().accept(Dir::Bi) {
                            self.events.push_back(QuicEvent::StreamOpened(handle, id));
                        }
                    }
                    Event::Stream(StreamEvent::Readable { id }) => {
                        self.events.push_back(QuicEvent::Readable(handle, id))
                    }
                    Event::Stream(StreamEvent::Writable { id }) => {
                        self.events.push_back(QuicEvent::Writable(handle, id))
                    }
                    _ => {}
                }
            }
            if conn.is_drained() {
                drained.push(handle);
            }
        }
        for handle in drained {
            self.conns.remove(&handle);
            self.order.retain(|h| *h != handle);
            self.events.push_back(QuicEvent::Drained(handle));
        }
    }

    pub fn poll_event(&mut self) -> Option<QuicEvent> {
        self.events.pop_front()
    }

    /// Writes the next datagram(s) to send into `buf` (cleared first).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Outgoing> {
        buf.clear();
        if let Some((data, out)) = self.responses.pop_front() {
            buf.extend_from_slice(&data);
            return Some(out);
        }
        let n = self.order.len();
        for i in 0..n {
            let idx = (self.next_rr + i) % n;
            let handle = self.order[idx];
            let Some(conn) = self.conns.get_mut(&handle) else {
                continue;
            };
            if let Some(t) = conn.poll_transmit(now, self.max_datagrams, buf) {
                self.next_rr = (idx + 1) % n;
                return Some(Outgoing {
                    destination: t.destination,
                    size: t.size,
                    segment_size: t.segment_size,
                });
            }
        }
        None
    }

    /// The earliest timer of any connection.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.conns
            .values_mut()
            .filter_map(|c| c.poll_timeout())
            .min()
    }

    pub fn is_idle(&self) -> bool {
        self.conns.is_empty()
    }
}
