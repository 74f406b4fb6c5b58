//! QUIC bandwidth test over SCION: goodput and latency-under-load per path.
//!
//! The client opens one QUIC connection per path. On each it opens a bulk stream (the server
//! sends for the requested duration) and a ping stream (16-byte probes echoed by the server
//! every 10 ms), so the RTT histogram shows latency while the path is loaded.
//!
//! [`bwtester`] is scion-apps' bwtester protocol (their `scion-bwtestclient` and
//! `scion-bwtestserver`), without the sockets; [`bwtester_client`] and [`bwtester_server`] run
//! it over SCION/UDP ([`scion_udp`], one blocking socket per connection, [`bwtester_dc`] the
//! data connection's sending and receiving threads).

pub mod bwtester;
pub mod bwtester_client;
pub mod bwtester_dc;
pub mod bwtester_server;
pub mod scion_udp;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use quinn_proto::{ConnectionHandle, StreamId, VarInt};
use serde::Serialize;

use crate::metrics::{self, Percentiles};
use crate::net::uring::App;
use crate::net::LaneCloseCode;
use crate::net::{NetEvent, ScionNet};
use crate::quic::QuicEvent;
use crate::scion::{ScionAddr, ScionPath};

const KIND_BULK: u8 = 1;
const KIND_PING: u8 = 2;
const PING_EVERY: Duration = Duration::from_millis(10);
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Result for one path.
#[derive(Debug, Clone, Serialize)]
pub struct PathResult {
    pub path: String,
    pub bytes: u64,
    pub seconds: f64,
    pub goodput_mbit: f64,
    pub rtt: Percentiles,
    pub error: Option<String>,
}

enum ServerStream {
    /// Waiting for the 5-byte request header.
    Header(Vec<u8>),
    Bulk {
        until: Instant,
        finished: bool,
    },
    Echo,
}

/// Server side: answers any number of clients until stopped.
#[derive(Default)]
pub struct BwServer {
    streams: HashMap<(ConnectionHandle, StreamId), ServerStream>,
}

impl App for BwServer {
    fn on_event(&mut self, net: &mut ScionNet, event: NetEvent, now: Instant) {
        let (h, id) = match event {
            NetEvent::Quic(QuicEvent::StreamOpened(h, id))
            | NetEvent::Quic(QuicEvent::Readable(h, id)) => (h, id),
            NetEvent::Quic(QuicEvent::Lost(h, _)) | NetEvent::Quic(QuicEvent::Drained(h)) => {
                self.streams.retain(|(c, _), _| *c != h);
                return;
            }
            _ => return,
        };
        let Some(conn) = net.lane(h) else {
            return;
        };
        let state = self
            .streams
            .entry((h, id))
            .or_insert_with(|| ServerStream::Header(Vec::new()));
        let mut data = Vec::new();
        let mut rs = conn.recv_stream(id);
        if let Ok(mut chunks) = rs.read(true) {
            while let Ok(Some(c)) = chunks.next(usize::MAX) {
                data.extend_from_slice(&c.bytes);
            }
            let _ = chunks.finalize();
        }
        if let ServerStream::Header(buf) = state {
            buf.extend_from_slice(&data);
            if buf.len() < 5 {
                return;
            }
            let ms = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]).min(600_000);
            let rest = buf.split_off(5);
            *state = match buf[0] {
                KIND_BULK => ServerStream::Bulk {
                    until: now + Duration::from_millis(u64::from(ms)),
                    finished: false,
                },
                _ => ServerStream::Echo,
            };
            data = rest;
        }
        if let ServerStream::Echo = state {
            if !data.is_empty() {
                let _ = conn.send_stream(id).write(&data);
            }
        }
    }

    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        for (&(h, id), state) in self.streams.iter_mut() {
            let ServerStream::Bulk { until, finished } = state else {
                continue;
            };
            if *finished {
                continue;
            }
            let Some(conn) = net.lane(h) else {
                continue;
            };
            let mut send = conn.send_stream(id);
            if now >= *until {
                let _ = send.finish();
                *finished = true;
                continue;
            }
            // Static zeros: handed to QUIC without copying.
            loop {
                let mut chunk = [Bytes::from_static(&ZEROS)];
                match send.write_chunks(&mut chunk) {
                    Ok(w) if w.chunks == 1 => {}
                    _ => break,
                }
            }
        }
        Some(now + Duration::from_millis(5))
    }

    fn is_done(&self) -> bool {
        false
    }
}

struct ClientConn {
    label: String,
    bulk: Option<StreamId>,
    ping: Option<StreamId>,
    started: Option<Instant>,
    ended: Option<Instant>,
    bytes: u64,
    next_ping: Instant,
    seq: u64,
    sent: HashMap<u64, Instant>,
    echo_buf: Vec<u8>,
    rtt: Histogram<u64>,
    error: Option<String>,
}

/// Client side: measures every path it was given, then stops.
pub struct BwClient {
    duration: Duration,
    conns: HashMap<ConnectionHandle, ClientConn>,
    deadline: Instant,
}

impl BwClient {
    pub fn start(
        net: &mut ScionNet,
        peer: ScionAddr,
        paths: &[ScionPath],
        duration: Duration,
        now: Instant,
    ) -> anyhow::Result<Self> {
        let mut conns = HashMap::new();
        for p in paths {
            let h = net.connect(now, peer, p)?;
            let label = if p.is_local() {
                "local (same AS)".to_string()
            } else {
                p.to_string()
            };
            conns.insert(
                h,
                ClientConn {
                    label,
                    bulk: None,
                    ping: None,
                    started: None,
                    ended: None,
                    bytes: 0,
                    next_ping: now,
                    seq: 0,
                    sent: HashMap::new(),
                    echo_buf: Vec::new(),
                    rtt: metrics::latency_histogram(),
                    error: None,
                },
            );
        }
        Ok(Self {
            duration,
            conns,
            deadline: now + duration + Duration::from_secs(10),
        })
    }

    pub fn results(&self) -> Vec<PathResult> {
        let mut v: Vec<PathResult> = self
            .conns
            .values()
            .map(|c| {
                let secs = match (c.started, c.ended) {
                    (Some(s), Some(e)) => e.saturating_duration_since(s),
                    _ => Duration::ZERO,
                };
                PathResult {
                    path: c.label.clone(),
                    bytes: c.bytes,
                    seconds: secs.as_secs_f64(),
                    goodput_mbit: metrics::mbit(c.bytes, secs),
                    rtt: Percentiles::of(&c.rtt),
                    error: c.error.clone(),
                }
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }
}

fn header(kind: u8, ms: u32) -> [u8; 5] {
    let m = ms.to_be_bytes();
    [kind, m[0], m[1], m[2], m[3]]
}

impl App for BwClient {
    fn on_event(&mut self, net: &mut ScionNet, event: NetEvent, now: Instant) {
        match event {
            NetEvent::Quic(QuicEvent::Connected(h)) => {
                let ms = self.duration.as_millis().min(u128::from(u32::MAX)) as u32;
                let Some(c) = self.conns.get_mut(&h) else {
                    return;
                };
                let (Some(bulk), Some(ping)) = (net.open_stream(h), net.open_stream(h)) else {
                    return;
                };
                let Some(conn) = net.lane(h) else {
                    return;
                };
                let _ = conn.send_stream(bulk).write(&header(KIND_BULK, ms));
                let _ = conn.send_stream(ping).write(&header(KIND_PING, 0));
                c.bulk = Some(bulk);
                c.ping = Some(ping);
                c.started = Some(now);
            }
            NetEvent::Quic(QuicEvent::Readable(h, id)) => {
                let Some(c) = self.conns.get_mut(&h) else {
                    return;
                };
                let Some(conn) = net.lane(h) else {
                    return;
                };
                let mut rs = conn.recv_stream(id);
                let Ok(mut chunks) = rs.read(true) else {
                    return;
                };
                let mut fin = false;
                loop {
                    match chunks.next(usize::MAX) {
                        Ok(Some(chunk)) => {
                            if Some(id) == c.bulk {
                                c.bytes += chunk.bytes.len() as u64;
                            } else {
                                c.echo_buf.extend_from_slice(&chunk.bytes);
                            }
                        }
                        Ok(None) => {
                            fin = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let _ = chunks.finalize();
                while c.echo_buf.len() >= 16 {
                    let seq = u64::from_be_bytes(c.echo_buf[..8].try_into().expect("8 bytes"));
                    c.echo_buf.drain(..16);
                    if let Some(t) = c.sent.remove(&seq) {
                        metrics::record(&mut c.rtt, now.saturating_duration_since(t));
                    }
                }
                if fin && Some(id) == c.bulk {
                    c.ended = Some(now);
                    conn.close(now, VarInt::from_u32(0), Bytes::from_static(b"done"));
                }
            }
            NetEvent::Quic(QuicEvent::Lost(h, reason)) => {
                if let Some(c) = self.conns.get_mut(&h) {
                    if c.ended.is_none() {
                        c.error = Some(reason.to_string());
                        c.ended = Some(now);
                    }
                }
            }
            NetEvent::PathDown { handle, reason } => {
                if let Some(c) = self.conns.get_mut(&handle) {
                    c.error = Some(reason);
                    c.ended.get_or_insert(now);
                }
            }
            _ => {}
        }
    }

    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        for (&h, c) in self.conns.iter_mut() {
            // Goodput is measured by the receiver over exactly the requested window.
            if let (Some(s), None) = (c.started, c.ended) {
                if now.saturating_duration_since(s) >= self.duration {
                    c.ended = Some(now);
                    net.close_lane(h, LaneCloseCode::Done, Bytes::from_static(b"done"), now);
                    continue;
                }
            }
            let (Some(ping), None) = (c.ping, c.ended) else {
                continue;
            };
            if now < c.next_ping {
                continue;
            }
            c.next_ping = now + PING_EVERY;
            let Some(conn) = net.lane(h) else {
                continue;
            };
            let mut probe = [0u8; 16];
            probe[..8].copy_from_slice(&c.seq.to_be_bytes());
            if conn.send_stream(ping).write(&probe) == Ok(16) {
                c.sent.insert(c.seq, now);
                c.seq += 1;
            }
        }
        if now > self.deadline {
            for c in self.conns.values_mut() {
                if c.ended.is_none() {
                    c.error = Some("timed out".into());
                    c.ended = Some(now);
                }
            }
        }
        Some(now + Duration::from_millis(5))
    }

    fn is_done(&self) -> bool {
        self.conns.values().all(|c| c.ended.is_some())
    }
}
