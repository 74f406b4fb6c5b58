//! Two [`ScionNet`]s in one AS wired back to back in memory, with QUIC allowed to hand over
//! GSO batches: every batch must split into complete SCION packets the peer accepts.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{NetEvent, ScionNet};
use crate::quic::{QuicEvent, QuicTuning};
use crate::scion::{parse_ia, ScionAddr, ScionPath};

fn addr(port: u16) -> ScionAddr {
    ScionAddr::new(
        parse_ia("1-ff00:0:111").unwrap(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
    )
}

/// Moves every pending batch from `from` to `to`: cut at the segment size as the kernel would
/// for a plain socket, or whole as a UDP GRO socket may get it (`coalesced`). Returns
/// (batches, packets) moved.
fn deliver(
    from: &mut ScionNet,
    to: &mut ScionNet,
    now: Instant,
    coalesced: bool,
) -> (usize, usize) {
    let (mut batches, mut packets) = (0, 0);
    let mut buf = Vec::new();
    let underlay = from.local().socket_addr();
    from.drive(now);
    while let Some(out) = from.poll_datagram(now, &mut buf) {
        assert_eq!(
            out.next_hop,
            to.local().socket_addr(),
            "same AS: straight to the host"
        );
        batches += 1;
        let segment = out.segment_size.unwrap_or(buf.len());
        packets += buf.len().div_ceil(segment);
        if coalesced {
            to.on_datagram(now, underlay, &buf);
        } else {
            for pkt in buf.chunks(segment) {
                to.on_datagram(now, underlay, pkt);
            }
        }
    }
    (batches, packets)
}

#[test]
fn gso_batches_are_whole_scion_packets() {
    transfer(false);
}

#[test]
fn gro_buffers_are_split_back_into_packets() {
    transfer(true);
}

fn transfer(coalesced: bool) {
    let tuning = QuicTuning::default();
    let (mut a, mut b) = (
        ScionNet::new(addr(1001), &tuning, false).unwrap(),
        ScionNet::new(addr(1002), &tuning, true).unwrap(),
    );
    a.set_max_datagrams(10);
    b.set_max_datagrams(10);
    let mut now = Instant::now();
    let path = ScionPath::local(addr(1002).ia);
    let client = a.connect(now, addr(1002), &path).unwrap();
    let data: Vec<u8> = (0..2u32 << 20).map(|i| (i * 13 + i / 977) as u8).collect();
    let (mut sent, mut stream, mut received) = (0, None, Vec::new());
    let (mut batches, mut packets) = (0, 0);
    for _ in 0..100_000 {
        let (ba, pa) = deliver(&mut a, &mut b, now, coalesced);
        let (_, pb) = deliver(&mut b, &mut a, now, coalesced);
        batches += ba;
        packets += pa;
        if pa + pb == 0 {
            now += Duration::from_millis(1);
        }
        while let Some(ev) = a.poll_event() {
            if let NetEvent::Quic(QuicEvent::Connected(h)) = ev {
                stream = a.quic.open_bi(h);
            }
        }
        if let Some(id) = stream {
            let conn = a.quic.connection(client).unwrap();
            while sent < data.len() {
                let end = (sent + 64 * 1024).min(data.len());
                let chunk = Bytes::copy_from_slice(&data[sent..end]);
                match conn.send_stream(id).write_chunks(&mut [chunk]) {
                    Ok(w) if w.bytes > 0 => sent += w.bytes,
                    _ => break,
                }
            }
            if sent == data.len() {
                let _ = conn.send_stream(id).finish();
            }
        }
        while let Some(ev) = b.poll_event() {
            if let NetEvent::Quic(QuicEvent::StreamOpened(h, id) | QuicEvent::Readable(h, id)) = ev
            {
                crate::quic::read_stream(b.quic.connection(h).unwrap(), id, &mut received);
            }
        }
        if received.len() == data.len() {
            break;
        }
    }
    assert!(
        received == data,
        "bytes differ ({} of {})",
        received.len(),
        data.len()
    );
    assert_eq!(b.errors.undecodable + b.errors.not_for_us, 0);
    assert!(
        packets > 2 * batches,
        "QUIC handed over real batches ({packets} packets in {batches} batches)"
    );
}

/// Garbage, truncated and glued-together packets are counted, never a panic.
#[test]
fn garbage_datagrams_never_panic() {
    let mut net = ScionNet::new(addr(1002), &QuicTuning::default(), true).unwrap();
    let from = addr(1001).socket_addr();
    let now = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in 0..2000usize {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        net.on_datagram(now, from, &junk);
    }
    assert!(net.errors.undecodable > 0);

    // Random bytes almost never pass the version check; these packets have a valid common
    // and address header (IPv4 or IPv6 hosts), an empty or SCION path of random contents but
    // consistent length, and a UDP, SCMP or unknown next header with random bytes after it.
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..50_000 {
        let pkt = structured_garbage(&mut next);
        let kind = match crate::scion::packet::decode(&pkt) {
            Ok(d) => format!(
                "ok {}",
                if matches!(d, crate::scion::packet::Decoded::Udp { .. }) {
                    "udp"
                } else {
                    "scmp"
                }
            ),
            Err(e) => format!("{e:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("")
                .to_string(),
        };
        *outcomes.entry(kind).or_default() += 1;
        net.on_datagram(now, from, &pkt);
        // Several glued together, as a GRO buffer.
        let mut glued = pkt.clone();
        glued.extend(structured_garbage(&mut next));
        net.on_datagram(now, from, &glued);
        net.drive(now);
    }
    for kind in [
        "ok udp",
        "ok scmp",
        "InvalidPath",
        "Malformed",
        "UnsupportedProtocol",
    ] {
        assert!(
            outcomes.contains_key(kind),
            "{kind} never reached: {outcomes:?}"
        );
    }
    assert!(!outcomes.contains_key("UnsupportedVersion"), "{outcomes:?}");
    assert!(
        net.errors.scmp > 0 && net.errors.undecodable > 0,
        "{:?}",
        net.errors
    );
}

/// A SCION packet with valid common and address headers and random contents beyond.
fn structured_garbage(next: &mut impl FnMut() -> u64) -> Vec<u8> {
    fn bytes(n: usize, next: &mut dyn FnMut() -> u64) -> Vec<u8> {
        (0..n).map(|_| next() as u8).collect()
    }
    let r = next();
    let v6 = r & 1 == 1;
    let scion_path = r & 2 == 2;
    let next_header = match (r >> 2) % 8 {
        0..=4 => 17,
        5 | 6 => 202,
        _ => (r >> 8) as u8,
    };
    let host_len = if v6 { 16 } else { 4 };
    let path = if scion_path {
        let segs = [(r >> 16) % 4, (r >> 20) % 4, (r >> 24) % 3];
        let nseg = segs.iter().filter(|&&s| s > 0).count();
        let hops: u64 = segs.iter().sum();
        let mut p = bytes(4, &mut *next);
        // Keep the segment lengths the test chose: the rest of the meta header is random.
        let meta = (u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & !0x3ffff)
            | ((segs[0] as u32) << 12)
            | ((segs[1] as u32) << 6)
            | segs[2] as u32;
        p.copy_from_slice(&meta.to_be_bytes());
        p.extend(bytes(8 * nseg + 12 * hops as usize, &mut *next));
        p
    } else {
        Vec::new()
    };
    let payload_len = ((r >> 32) % 200) as usize;
    let mut payload = bytes(payload_len, &mut *next);
    if next_header == 17 && payload.len() >= 8 {
        payload[2..4].copy_from_slice(&1002u16.to_be_bytes());
        let udp_len = if (r >> 40) & 3 == 0 {
            (r >> 42) as u16
        } else {
            payload_len as u16
        };
        payload[4..6].copy_from_slice(&udp_len.to_be_bytes());
    }
    let header_len = 12 + 16 + 2 * host_len + path.len();
    let mut pkt = vec![0, 0, 0, 1, next_header, (header_len / 4) as u8];
    pkt.extend((payload.len() as u16).to_be_bytes());
    pkt.push(u8::from(scion_path));
    pkt.push(if v6 { 0x33 } else { 0 });
    pkt.extend([0, 0]);
    let ia = addr(1002).ia.0.to_be_bytes();
    pkt.extend(ia);
    pkt.extend(if (r >> 50) & 1 == 0 {
        ia
    } else {
        r.to_be_bytes()
    });
    pkt.extend(bytes(2 * host_len, &mut *next));
    pkt.extend(path);
    pkt.extend(payload);
    pkt
}

/// Two torrents dialing the same peer on the same path: both connections complete their
/// handshake (the second must not take the first one's remote away).
#[test]
fn two_connections_to_one_peer_on_one_path_both_connect() {
    let tuning = QuicTuning::default();
    let (mut a, mut b) = (
        ScionNet::new(addr(1001), &tuning, false).unwrap(),
        ScionNet::new(addr(1002), &tuning, true).unwrap(),
    );
    let mut now = Instant::now();
    let path = ScionPath::local(addr(1002).ia);
    let first = a.connect(now, addr(1002), &path).unwrap();
    let second = a.connect(now, addr(1002), &path).unwrap();
    assert_ne!(first, second);
    let mut connected = std::collections::HashSet::new();
    for _ in 0..2_000 {
        let (_, pa) = deliver(&mut a, &mut b, now, false);
        let (_, pb) = deliver(&mut b, &mut a, now, false);
        while let Some(ev) = a.poll_event() {
            if let NetEvent::Quic(QuicEvent::Connected(h)) = ev {
                connected.insert(h);
            }
        }
        while b.poll_event().is_some() {}
        if connected.len() == 2 {
            break;
        }
        if pa + pb == 0 {
            now += Duration::from_millis(5);
        }
    }
    assert!(
        connected.contains(&first) && connected.contains(&second),
        "connected: {connected:?} of {first:?}, {second:?}"
    );
}

/// Two runtimes share a port and the kernel hands every datagram to the first (as UDP GRO may
/// for one underlay flow): the first passes on what belongs to the second's connections, and
/// every connection comes up on the runtime its connection id names.
#[test]
fn runtimes_pass_on_packets_of_each_others_connections() {
    use crate::net::steering::Steering;
    let tuning = |i| QuicTuning {
        steering: Steering::new(i, 2),
        ..QuicTuning::default()
    };
    let mut a = ScionNet::new(addr(1001), &QuicTuning::default(), false).unwrap();
    a.set_max_datagrams(10);
    let mut group = [
        ScionNet::new(addr(1002), &tuning(0), true).unwrap(),
        ScionNet::new(addr(1002), &tuning(1), true).unwrap(),
    ];
    let mut now = Instant::now();
    let path = ScionPath::local(addr(1002).ia);
    let handles: Vec<_> = (0..16)
        .map(|_| a.connect(now, addr(1002), &path).unwrap())
        .collect();
    let (mut connected, mut accepted) = (std::collections::HashSet::new(), [0usize; 2]);
    let mut passed = 0;
    for _ in 0..5_000 {
        let underlay = a.local().socket_addr();
        let mut buf = Vec::new();
        let mut moved = 0;
        a.drive(now);
        while a.poll_datagram(now, &mut buf).is_some() {
            group[0].on_datagram(now, underlay, &buf);
            moved += 1;
        }
        for (to, from, pkt) in group[0].take_misdirected() {
            assert_eq!(to, 1);
            passed += 1;
            group[1].on_passed_packet(now, from, &pkt);
        }
        for (i, g) in group.iter_mut().enumerate() {
            let (_, p) = deliver(g, &mut a, now, false);
            moved += p;
            while let Some(ev) = g.poll_event() {
                if let NetEvent::Quic(QuicEvent::Connected(_)) = ev {
                    accepted[i] += 1;
                }
            }
        }
        while let Some(ev) = a.poll_event() {
            if let NetEvent::Quic(QuicEvent::Connected(h)) = ev {
                connected.insert(h);
            }
        }
        if connected.len() == handles.len() {
            break;
        }
        if moved == 0 {
            now += Duration::from_millis(5);
        }
    }
    assert_eq!(
        connected.len(),
        handles.len(),
        "accepted per runtime: {accepted:?}"
    );
    assert_eq!(accepted[0] + accepted[1], handles.len());
    // 16 random client-chosen ids all on one runtime: a chance of 2^-15.
    assert!(
        accepted[1] > 0 && passed > 0,
        "{accepted:?}, {passed} passed"
    );
    assert_eq!(group[0].errors.undecodable + group[1].errors.undecodable, 0);
}

/// Largest SCION packet each side sent while `a` dialled `b` on `path` and both sent 1 MiB
/// on one stream, after QUIC's MTU discovery had time to climb: (a to b, b to a).
fn largest_packets(a: &mut ScionNet, b: &mut ScionNet, path: &ScionPath) -> (usize, usize) {
    fn send(conn: &mut quinn_proto::Connection, id: quinn_proto::StreamId, sent: &mut usize) {
        while *sent < 1 << 20 {
            let chunk = Bytes::from(vec![7u8; (1 << 20) - *sent]);
            match conn.send_stream(id).write_chunks(&mut [chunk]) {
                Ok(w) if w.bytes > 0 => *sent += w.bytes,
                _ => break,
            }
        }
    }
    fn hop(from: &mut ScionNet, to: &mut ScionNet, now: Instant, largest: &mut usize) -> usize {
        let mut buf = Vec::new();
        let mut packets = 0;
        let underlay = from.local().socket_addr();
        from.drive(now);
        while let Some(out) = from.poll_datagram(now, &mut buf) {
            for pkt in buf.chunks(out.segment_size.unwrap_or(buf.len())) {
                *largest = (*largest).max(pkt.len());
                to.on_datagram(now, underlay, pkt);
                packets += 1;
            }
        }
        packets
    }
    let start = Instant::now();
    let mut now = start;
    a.connect(now, b.local(), path).unwrap();
    let (mut largest_ab, mut largest_ba) = (0, 0);
    let (mut stream_a, mut stream_b) = (None, None);
    let (mut sent_a, mut sent_b, mut got_a, mut got_b) = (0, 0, Vec::new(), Vec::new());
    for _ in 0..100_000 {
        let moved = hop(a, b, now, &mut largest_ab) + hop(b, a, now, &mut largest_ba);
        while let Some(ev) = a.poll_event() {
            match ev {
                NetEvent::Quic(QuicEvent::Connected(h)) => {
                    stream_a = a.quic.open_bi(h).map(|id| (h, id))
                }
                NetEvent::Quic(QuicEvent::Readable(h, id)) => {
                    crate::quic::read_stream(a.quic.connection(h).unwrap(), id, &mut got_a)
                }
                _ => {}
            }
        }
        while let Some(ev) = b.poll_event() {
            if let NetEvent::Quic(QuicEvent::StreamOpened(h, id) | QuicEvent::Readable(h, id)) = ev
            {
                stream_b = Some((h, id));
                crate::quic::read_stream(b.quic.connection(h).unwrap(), id, &mut got_b);
            }
        }
        if let Some((h, id)) = stream_a {
            send(a.quic.connection(h).unwrap(), id, &mut sent_a);
        }
        if let Some((h, id)) = stream_b {
            send(b.quic.connection(h).unwrap(), id, &mut sent_b);
        }
        let done = got_a.len() == 1 << 20 && got_b.len() == 1 << 20;
        if done && now - start > Duration::from_secs(3) {
            break;
        }
        if moved == 0 || done {
            now += Duration::from_millis(1);
        }
    }
    assert_eq!(
        (got_a.len(), got_b.len()),
        (1 << 20, 1 << 20),
        "both sides got 1 MiB"
    );
    (largest_ab, largest_ba)
}

/// No SCION packet exceeds the MTU: the path's (as the daemon gave it) on the dialling side,
/// the local AS's on the answering side (the only MTU it knows of a path it was dialled on);
/// where the MTU allows, QUIC's MTU discovery still climbs above its 1200-byte start.
#[test]
fn packets_never_exceed_the_path_or_as_mtu() {
    let tuning = QuicTuning::default();
    for mtu in [1300u16, 1472] {
        let mut a = ScionNet::new(addr(1001), &tuning, false).unwrap();
        let mut b = ScionNet::new(addr(1002), &tuning, true).unwrap();
        b.set_as_mtu(Some(mtu));
        let mut path = ScionPath::local(addr(1002).ia);
        path.mtu = mtu;
        let (ab, ba) = largest_packets(&mut a, &mut b, &path);
        assert!(
            ab <= usize::from(mtu) && ba <= usize::from(mtu),
            "MTU {mtu}: packets of {ab} (dialling side) and {ba} (answering side) bytes"
        );
        assert!(
            ab > 1300 || mtu == 1300,
            "MTU {mtu}: discovery reached only {ab}"
        );
        assert!(
            ba > 1300 || mtu == 1300,
            "MTU {mtu}: discovery reached only {ba}"
        );
    }
}

/// Up-segment + down-segment from 1-ff00:0:111 to 1-ff00:0:112 whose hop fields were issued
/// `age` ago (they expire 6 h after that, as scionproto's do).
fn path_issued(age: Duration, router: std::net::SocketAddr) -> ScionPath {
    let mut raw = crate::scion::packet::tests::two_segment_path();
    let issued = std::time::SystemTime::now() - age;
    let ts = issued
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    // Info fields follow the 4-byte meta header, 8 bytes each, timestamp in their last 4.
    raw[8..12].copy_from_slice(&ts.to_be_bytes());
    raw[16..20].copy_from_slice(&ts.to_be_bytes());
    ScionPath::from_raw(
        parse_ia("1-ff00:0:111").unwrap(),
        parse_ia("1-ff00:0:112").unwrap(),
        Bytes::from(raw),
        Some(router),
    )
}

/// Moves what `from` sends (to its router) into `to` (from its router); returns the raw SCION
/// path of every UDP packet moved.
fn via_routers(
    from: &mut ScionNet,
    to: &mut ScionNet,
    to_router: std::net::SocketAddr,
    now: Instant,
) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut paths = Vec::new();
    from.drive(now);
    while let Some(out) = from.poll_datagram(now, &mut buf) {
        for pkt in buf.chunks(out.segment_size.unwrap_or(buf.len())) {
            if let Ok(crate::scion::packet::Decoded::Udp { path, .. }) =
                crate::scion::packet::decode(pkt)
            {
                paths.push(path.to_vec());
            }
            to.on_datagram(now, to_router, pkt);
        }
    }
    paths
}

/// Hop fields expire (scionproto: 6 h after their beacon), the route does not: a lane whose
/// hop fields expire within half an hour moves onto the same route's fresher ones when the
/// daemon has them (dialling side), and the answering side follows the fresher path its
/// remote switched to. Older or equal hop fields never replace newer ones.
#[test]
fn a_lane_moves_onto_fresher_hop_fields_of_its_route_on_both_sides() {
    let tuning = QuicTuning::default();
    let (router_a, router_b) = (
        "127.0.0.1:30001".parse().unwrap(),
        "127.0.0.1:30002".parse().unwrap(),
    );
    let b_addr = ScionAddr::new(
        parse_ia("1-ff00:0:112").unwrap(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        1002,
    );
    let mut a = ScionNet::new(addr(1001), &tuning, false).unwrap();
    let mut b = ScionNet::new(b_addr, &tuning, true).unwrap();
    let early = path_issued(Duration::from_secs(5 * 3600), router_a);
    let old = path_issued(Duration::from_secs(5 * 3600 + 45 * 60), router_a);
    let fresh = path_issued(Duration::from_secs(60), router_a);
    let mut now = Instant::now();
    // An hour left on its hop fields: a lane stays on them.
    let mut c = ScionNet::new(addr(1003), &tuning, false).unwrap();
    let hc = c.connect(now, b_addr, &early).unwrap();
    assert!(!c.refresh_path(hc, &fresh));

    let h = a.connect(now, b_addr, &old).unwrap();
    let mut connected = false;
    for _ in 0..200 {
        via_routers(&mut a, &mut b, router_b, now);
        via_routers(&mut b, &mut a, router_a, now);
        while let Some(ev) = a.poll_event() {
            connected |= matches!(ev, NetEvent::Quic(QuicEvent::Connected(_)));
        }
        while b.poll_event().is_some() {}
        if connected {
            break;
        }
        now += Duration::from_millis(5);
    }
    assert!(connected, "the lane came up on hop fields with 15 min left");

    // 15 min left: older or equal hop fields change nothing ...
    assert!(!a.refresh_path(h, &old));
    assert!(!a.refresh_path(
        h,
        &path_issued(Duration::from_secs(5 * 3600 + 50 * 60), router_a)
    ));
    // ... fresher ones carry the lane from now on ...
    assert!(a.refresh_path(h, &fresh));
    assert_eq!(a.route(h).unwrap().path.raw, fresh.raw);
    a.quic.connection(h).unwrap().ping();
    let sent = via_routers(&mut a, &mut b, router_b, now);
    assert!(!sent.is_empty() && sent.iter().all(|p| p[..] == fresh.raw[..]));
    // ... and the answering side answers on them reversed.
    let conn_b = *b.quic.connections().next().unwrap().0;
    b.quic.connection(conn_b).unwrap().ping();
    let answered = via_routers(&mut b, &mut a, router_a, now);
    let reversed = crate::scion::packet::reverse_path(&fresh.raw).unwrap();
    assert!(
        !answered.is_empty() && answered.iter().all(|p| p[..] == reversed[..]),
        "the answering side still uses the old hop fields"
    );
    // The old hop fields again (a daemon's stale answer) do not move it back.
    assert!(!a.refresh_path(h, &old));
}
