//! The demultiplexer: connections by (address, connection id), strays answered with RESET,
//! half-open connections bounded under a SYN flood while an honest peer connects and
//! transfers.

use std::time::{Duration, Instant};

use bt_utp::{
    encode, DatagramEvent, Dropped, Endpoint, EndpointConfig, Handle, Header, Packet, PacketType,
    HEADER_LEN,
};

type Addr = u32;
const A: Addr = 1;
const B: Addr = 2;

/// Moves every datagram A and B have for each other (on one simulated instant), dropping
/// anything toward the flood's forged addresses. Returns the datagrams sent to others.
fn exchange(a: &mut Endpoint<Addr>, b: &mut Endpoint<Addr>, now: Instant) -> Vec<(Addr, Vec<u8>)> {
    let mut strays = Vec::new();
    let mut buf = Vec::new();
    loop {
        let mut moved = false;
        while let Some(to) = a.poll_transmit(now, &mut buf) {
            moved = true;
            if to == B {
                b.handle_datagram(A, &buf, now);
            } else {
                strays.push((to, buf.clone()));
            }
        }
        while let Some(to) = b.poll_transmit(now, &mut buf) {
            moved = true;
            if to == A {
                a.handle_datagram(B, &buf, now);
            } else {
                strays.push((to, buf.clone()));
            }
        }
        if !moved {
            return strays;
        }
    }
}

fn syn(conn_id: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let h = Header {
        ty: PacketType::Syn,
        conn_id,
        timestamp_us: 1,
        timestamp_diff_us: 0,
        wnd_size: 1 << 20,
        seq_nr: 1,
        ack_nr: 0,
    };
    encode(&h, None, &[], &mut out);
    out
}

fn send_all(ep: &mut Endpoint<Addr>, h: Handle, data: &[u8], sent: &mut usize) {
    if let Some(c) = ep.connection_mut(h) {
        *sent += c.write(&data[*sent..]);
    }
}

fn read_all(ep: &mut Endpoint<Addr>, h: Handle, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    while let Some(n) = ep
        .connection_mut(h)
        .map(|c| c.read(&mut buf))
        .filter(|&n| n > 0)
    {
        into.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn connect_accept_and_transfer_through_endpoints() {
    let t0 = Instant::now();
    let mut a = Endpoint::new(EndpointConfig::default(), t0, 1);
    let mut b = Endpoint::new(EndpointConfig::default(), t0, 2);
    let ha = a.connect(B, t0).unwrap();
    // Two connections between the same pair of addresses are told apart by id.
    let ha2 = a.connect(B, t0).unwrap();
    exchange(&mut a, &mut b, t0);
    let hb = b.accept().expect("accepted");
    let hb2 = b.accept().expect("second accepted");
    assert_eq!(b.accept(), None);
    assert!(a.connection(ha).unwrap().is_established());

    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let (mut sent, mut sent2, mut got, mut got2) = (0, 0, Vec::new(), Vec::new());
    let mut now = t0;
    for _ in 0..10_000 {
        send_all(&mut a, ha, &data, &mut sent);
        send_all(&mut a, ha2, &data[..1000], &mut sent2);
        exchange(&mut a, &mut b, now);
        read_all(&mut b, hb, &mut got);
        read_all(&mut b, hb2, &mut got2);
        if got.len() == data.len() && got2.len() == 1000 {
            break;
        }
        now += Duration::from_millis(1);
    }
    // Which accepted handle is which is the endpoints' business: match by content.
    let (big, small) = if got.len() == data.len() {
        (got, got2)
    } else {
        (got2, got)
    };
    assert!(big == data);
    assert!(small == data[..1000]);
    assert_eq!(a.remote(ha), Some(B));
    assert!(b.remove(hb).is_some());
    assert_eq!(b.len(), 1);
}

#[test]
fn packets_for_unknown_connections_get_a_bounded_number_of_resets() {
    let t0 = Instant::now();
    let cfg = EndpointConfig::default();
    let mut b: Endpoint<Addr> = Endpoint::new(cfg.clone(), t0, 3);
    let mut data = syn(77);
    data[0] = 0x01; // DATA for a connection that does not exist
    for i in 0..1000 {
        assert_eq!(
            b.handle_datagram(100 + i, &data, t0),
            DatagramEvent::Dropped(Dropped::UnknownConnection)
        );
    }
    let mut buf = Vec::new();
    let mut resets = 0;
    while let Some(to) = b.poll_transmit(t0, &mut buf) {
        let p = Packet::decode(&buf).unwrap();
        assert_eq!(p.header.ty, PacketType::Reset);
        assert_eq!(p.header.conn_id, 77);
        assert!((100..1100).contains(&to));
        resets += 1;
    }
    assert_eq!(resets, cfg.max_pending_resets);
    // A RESET for nothing gets no answer, garbage is counted.
    let mut reset = syn(5);
    reset[0] = 0x31;
    b.handle_datagram(9, &reset, t0);
    assert!(matches!(
        b.handle_datagram(9, &[0u8; 7], t0),
        DatagramEvent::Dropped(Dropped::Malformed(_))
    ));
    assert_eq!(b.poll_transmit(t0, &mut buf), None);
    assert_eq!(b.stats().malformed, 1);
}

#[test]
fn syn_flood_is_bounded_and_honest_peers_still_connect() {
    let t0 = Instant::now();
    let cfg = EndpointConfig::default();
    let mut a = Endpoint::new(cfg.clone(), t0, 4);
    let mut b = Endpoint::new(cfg.clone(), t0, 5);
    let flood = |b: &mut Endpoint<Addr>, from: u32, n: u32, now: Instant| {
        for i in 0..n {
            let ev = b.handle_datagram(1000 + from + i, &syn(i as u16), now);
            assert_eq!(ev, DatagramEvent::HalfOpen);
            assert!(b.half_open() <= cfg.max_half_open);
        }
    };
    flood(&mut b, 0, 20_000, t0);
    assert_eq!(b.half_open(), cfg.max_half_open);
    assert_eq!(b.len(), cfg.max_half_open);
    assert!(b.stats().half_open_evicted >= 20_000 - cfg.max_half_open as u64);

    // The honest peer's SYN and first packet arrive within its round trip.
    let h = a.connect(B, t0).unwrap();
    let strays = exchange(&mut a, &mut b, t0);
    // Our answers to the forged SYNs go to their (forged) addresses, one each at most.
    assert!(strays.iter().all(|(to, _)| *to >= 1000));
    assert!(strays.len() <= cfg.max_half_open);
    let hb = b.accept().expect("the honest peer is accepted");
    assert_eq!(
        b.accept(),
        None,
        "no flooded connection reaches the application"
    );

    // More flood after it is established does not evict it.
    flood(&mut b, 50_000, 20_000, t0);
    let msg = b"still here after the flood";
    let mut sent = 0;
    let mut got = Vec::new();
    let mut now = t0;
    for _ in 0..100 {
        send_all(&mut a, h, msg, &mut sent);
        exchange(&mut a, &mut b, now);
        read_all(&mut b, hb, &mut got);
        if got.len() == msg.len() {
            break;
        }
        now += Duration::from_millis(10);
    }
    assert_eq!(got, msg);

    // Half-open ones expire; the established one stays.
    let late = t0 + cfg.conn.handshake_timeout + Duration::from_secs(1);
    b.handle_timeout(late);
    assert_eq!(b.half_open(), 0);
    assert_eq!(b.len(), 1);
    assert!(b.connection(hb).is_some());
    let _ = HEADER_LEN;
}

#[test]
fn connection_cap_refuses_with_reset() {
    let t0 = Instant::now();
    let cfg = EndpointConfig {
        max_connections: 4,
        max_half_open: 64,
        ..EndpointConfig::default()
    };
    let mut b: Endpoint<Addr> = Endpoint::new(cfg, t0, 6);
    for i in 0..4 {
        assert_eq!(
            b.handle_datagram(10 + i, &syn(1), t0),
            DatagramEvent::HalfOpen
        );
    }
    assert_eq!(
        b.handle_datagram(99, &syn(1), t0),
        DatagramEvent::Dropped(Dropped::Full(4))
    );
    // A repeated SYN reaches its own half-open connection, not a new one.
    assert_eq!(b.handle_datagram(10, &syn(1), t0), DatagramEvent::HalfOpen);
    assert_eq!(b.len(), 4);
}
