//! The SCION/QUIC transport on the real local SCION network: byte-exact transfers, one
//! connection pinned to each path (proved by the interfaces in the received packets),
//! concurrent paths, and a link that dies under one of them.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn_proto::{ConnectionHandle, StreamId, VarInt};

use btscion::net::uring::{self, App};
use btscion::net::{NetEvent, ScionNet};
use btscion::quic::{QuicEvent, QuicTuning};
use btscion::scion::daemon::BlockingDaemonClient;
use btscion::scion::{packet, parse_ia, ScionAddr, ScionPath};
use common::*;

fn pattern(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i) * 31 % 251) as u8)
        .collect()
}

/// Receives streams and checks every byte against the pattern.
struct Sink {
    expected_streams: usize,
    received: std::collections::HashMap<(ConnectionHandle, StreamId), (u64, bool, bool)>,
    interfaces: Vec<Vec<(u16, u16)>>,
    deadline: Instant,
}

impl App for Sink {
    fn on_event(&mut self, net: &mut ScionNet, ev: NetEvent, _now: Instant) {
        let (h, id) = match ev {
            NetEvent::Quic(QuicEvent::StreamOpened(h, id))
            | NetEvent::Quic(QuicEvent::Readable(h, id)) => (h, id),
            _ => return,
        };
        let Some(conn) = net.lane(h) else {
            return;
        };
        let entry = self.received.entry((h, id)).or_insert((0, true, false));
        let mut rs = conn.recv_stream(id);
        let Ok(mut chunks) = rs.read(true) else {
            return;
        };
        loop {
            match chunks.next(usize::MAX) {
                Ok(Some(c)) => {
                    if c.bytes[..] != pattern(c.offset, c.bytes.len())[..] {
                        entry.1 = false;
                    }
                    entry.0 += c.bytes.len() as u64;
                }
                Ok(None) => {
                    entry.2 = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let _ = chunks.finalize();
        if entry.2 {
            if let Some(r) = net.route(h) {
                self.interfaces
                    .push(r.received_interfaces.clone().unwrap_or_default());
            }
            if let Some(conn) = net.lane(h) {
                conn.close(
                    Instant::now(),
                    VarInt::from_u32(0),
                    Bytes::from_static(b"got it"),
                );
            }
        }
    }
    fn poll(&mut self, _net: &mut ScionNet, now: Instant) -> Option<Instant> {
        Some(now + Duration::from_millis(50))
    }
    fn is_done(&self) -> bool {
        self.received.values().filter(|v| v.2).count() >= self.expected_streams
            || Instant::now() > self.deadline
    }
}

/// Sends `bytes` of the pattern on one stream per path.
/// One connection of the source: handle, its stream, bytes written, outcome.
type SourceConn = (
    ConnectionHandle,
    Option<StreamId>,
    u64,
    Option<Result<(), String>>,
);

struct Source {
    bytes: u64,
    conns: Vec<SourceConn>,
}

impl App for Source {
    fn on_event(&mut self, net: &mut ScionNet, ev: NetEvent, _now: Instant) {
        match ev {
            NetEvent::Quic(QuicEvent::Connected(h)) => {
                if let Some(c) = self.conns.iter_mut().find(|c| c.0 == h) {
                    c.1 = net.open_stream(h);
                }
            }
            NetEvent::Quic(QuicEvent::Lost(h, reason)) => {
                if let Some(c) = self.conns.iter_mut().find(|c| c.0 == h) {
                    c.3.get_or_insert(if c.2 >= self.bytes {
                        Ok(())
                    } else {
                        Err(reason.to_string())
                    });
                }
            }
            NetEvent::PathDown { handle, reason } => {
                if let Some(c) = self.conns.iter_mut().find(|c| c.0 == handle) {
                    c.3.get_or_insert(Err(format!("path down: {reason}")));
                }
            }
            _ => {}
        }
    }
    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        for c in self.conns.iter_mut() {
            let (Some(id), None) = (c.1, &c.3) else {
                continue;
            };
            let Some(conn) = net.lane(c.0) else {
                continue;
            };
            let mut s = conn.send_stream(id);
            while c.2 < self.bytes {
                let n = (self.bytes - c.2).min(64 * 1024) as usize;
                match s.write_chunks(&mut [Bytes::from(pattern(c.2, n))]) {
                    Ok(w) if w.bytes > 0 => c.2 += w.bytes as u64,
                    _ => break,
                }
            }
            if c.2 >= self.bytes {
                // The sink closes the connection once it has read everything.
                let _ = s.finish();
            }
        }
        Some(now + Duration::from_millis(10))
    }
    fn is_done(&self) -> bool {
        self.conns.iter().all(|c| c.3.is_some())
    }
}

fn local(ia: &str) -> ScionAddr {
    ScionAddr::new(parse_ia(ia).unwrap(), IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

/// Starts a sink in `ia`; returns its address and the thread to join.
fn start_sink(expected: usize, ia: &str) -> (ScionAddr, thread::JoinHandle<Sink>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let ia = ia.to_string();
    let h = thread::spawn(move || {
        tokio_uring::start(async move {
            let socket = uring::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = local(&ia).with_port(socket.local_addr().unwrap().port());
            tx.send(addr).unwrap();
            let mut net = ScionNet::new(addr, &QuicTuning::default(), true).unwrap();
            let mut sink = Sink {
                expected_streams: expected,
                received: Default::default(),
                interfaces: Vec::new(),
                deadline: Instant::now() + Duration::from_secs(300),
            };
            uring::run(socket, &mut net, &mut sink).await.unwrap();
            // let the final ACKs/close go out
            sink
        })
    });
    (rx.recv().unwrap(), h)
}

type SendResult = Vec<(u64, Result<(), String>)>;

fn send(ia: &str, to: ScionAddr, paths: Vec<ScionPath>, bytes: u64) -> SendResult {
    spawn_send(ia, to, paths, bytes).join().unwrap()
}

fn spawn_send(
    ia: &str,
    to: ScionAddr,
    paths: Vec<ScionPath>,
    bytes: u64,
) -> thread::JoinHandle<SendResult> {
    let ia = ia.to_string();
    thread::spawn(move || {
        tokio_uring::start(async move {
            let socket = uring::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let addr = local(&ia).with_port(socket.local_addr().unwrap().port());
            let mut net = ScionNet::new(addr, &QuicTuning::default(), false).unwrap();
            let now = Instant::now();
            let conns = paths
                .iter()
                .map(|p| (net.connect(now, to, p).unwrap(), None, 0, None))
                .collect();
            let mut src = Source { bytes, conns };
            uring::run(socket, &mut net, &mut src).await.unwrap();
            src.conns.into_iter().map(|c| (c.2, c.3.unwrap())).collect()
        })
    })
}

fn paths(tn: &Testnet, from: &str, to: &str) -> Vec<ScionPath> {
    let d = BlockingDaemonClient::connect(&daemon(tn, from)).unwrap();
    d.paths(parse_ia(to).unwrap(), false).unwrap()
}

#[test]
fn quic_between_two_ases_moves_256_mib_byte_exact() {
    let tn = testnet("two-as");
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let (sink_addr, sink) = start_sink(1, &ases[1]);
    let p = paths(&tn, &ases[0], &ases[1]);
    assert_eq!(p.len(), 1);
    let r = send(&ases[0], sink_addr, p, 256 << 20);
    let sink = sink.join().unwrap();
    let (bytes, ok, fin) = *sink.received.values().next().expect("a stream arrived");
    assert!(fin && ok, "stream finished with intact bytes");
    assert_eq!(bytes, 256 << 20);
    assert_eq!(r[0].0, 256 << 20);
}

#[test]
fn each_connection_is_pinned_to_its_path() {
    let tn = testnet("three-paths");
    let all = paths(&tn, LEAF_A, LEAF_B);
    assert_eq!(all.len(), 3);
    for p in &all {
        let (sink_addr, sink) = start_sink(1, LEAF_B);
        send(LEAF_A, sink_addr, vec![p.clone()], 4 << 20);
        let sink = sink.join().unwrap();
        let seen = &sink.interfaces[0];
        let expected: Vec<u16> = packet::path_interfaces(&p.raw)
            .unwrap()
            .into_iter()
            .flat_map(|(a, b)| [a, b])
            .filter(|&i| i != 0)
            .collect();
        let mut got: Vec<u16> = seen
            .iter()
            .flat_map(|&(a, b)| [a, b])
            .filter(|&i| i != 0)
            .collect();
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "packets of the connection on {p} crossed other interfaces"
        );
    }
}

#[test]
fn three_paths_concurrently_and_a_dead_link_fails_only_its_connection() {
    let tn = testnet("three-paths");
    let all = paths(&tn, LEAF_A, LEAF_B);
    // all three at once
    let (sink_addr, sink) = start_sink(3, LEAF_B);
    let r = send(LEAF_A, sink_addr, all.clone(), 16 << 20);
    assert!(
        r.iter().all(|(n, res)| *n == 16 << 20 && res.is_ok()),
        "{r:?}"
    );
    let sink = sink.join().unwrap();
    assert_eq!(sink.received.values().filter(|v| v.2 && v.1).count(), 3);
    let distinct: std::collections::HashSet<_> = sink.interfaces.iter().collect();
    assert_eq!(distinct.len(), 3, "three different paths were used");

    // link under the first path goes down after a moment
    let victim = all[0].interfaces[0];
    let (sink_addr, _sink) = start_sink(3, LEAF_B);
    let sender = spawn_send(LEAF_A, sink_addr, all.clone(), 24 << 20);
    thread::sleep(Duration::from_millis(300));
    tn.set_link(&victim.ia.to_string(), victim.id, false)
        .unwrap();
    let r = sender.join().unwrap();
    let err = r[0]
        .1
        .as_ref()
        .expect_err("connection on the dead link fails");
    assert!(!err.is_empty());
    assert!(r[1].1.is_ok() && r[2].1.is_ok(), "others finish: {r:?}");
    assert_eq!(r[1].0, 24 << 20);
}
