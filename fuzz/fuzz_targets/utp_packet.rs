//! uTP (`bt-utp`) fed hostile datagrams. The whole input is decoded as one packet (what
//! decodes re-encodes and decodes to the same packet); then it is read as records
//! `[op][len][len bytes]` driving our endpoint, which holds one honest, established
//! connection to a peer endpoint: a datagram from the peer's address with its connection id
//! set to that connection's (so forged seq/ack numbers, SACKs and types reach the state
//! machine), a raw datagram from one of 8 other addresses (SYNs, strays), a clock step with
//! the timers, or the application writing and reading.
#![no_main]
use std::time::{Duration, Instant};

use bt_utp::{encode, Endpoint, EndpointConfig, Packet};
use libfuzzer_sys::fuzz_target;

/// The peer's address as we see it, and ours as it sees us.
const PEER: u8 = 0;
const US: u8 = 1;

/// Moves datagrams between the two endpoints until both are quiet (bounded). Everything we
/// send decodes and fits a 1400-byte MTU.
fn exchange(ours: &mut Endpoint<u8>, peer: &mut Endpoint<u8>, now: Instant) {
    let mut buf = Vec::new();
    for _ in 0..64 {
        let mut moved = false;
        for _ in 0..4096 {
            let Some(to) = ours.poll_transmit(now, &mut buf) else {
                break;
            };
            moved = true;
            assert!(buf.len() <= 1400, "datagram of {} bytes", buf.len());
            assert!(Packet::decode(&buf).is_ok(), "we sent what we cannot read");
            if to == PEER {
                peer.handle_datagram(US, &buf, now);
            }
        }
        for _ in 0..4096 {
            if peer.poll_transmit(now, &mut buf).is_none() {
                break;
            }
            moved = true;
            ours.handle_datagram(PEER, &buf, now);
        }
        if !moved {
            return;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::decode(data) {
        let mut out = Vec::new();
        encode(&p.header, p.sack, p.payload, &mut out);
        assert_eq!(Packet::decode(&out), Ok(p));
    }

    let t0 = Instant::now();
    let mut now = t0;
    let cfg = EndpointConfig {
        max_connections: 16,
        max_half_open: 4,
        max_pending_resets: 8,
        ..EndpointConfig::default()
    };
    let limit = cfg.conn.send_buffer + cfg.conn.recv_buffer;
    let mut ours = Endpoint::new(cfg.clone(), t0, 1);
    let mut peer = Endpoint::new(cfg.clone(), t0, 2);
    let Ok(ph) = peer.connect(US, t0) else {
        return;
    };
    exchange(&mut ours, &mut peer, now);
    let Some(h) = ours.accept() else {
        panic!("the honest handshake failed");
    };
    let Some(recv_id) = ours.connection(h).map(|c| c.recv_id()) else {
        return;
    };

    let mut rest = data;
    let mut scratch = [0u8; 4096];
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (arg, tail) = tail.split_at(n);
        rest = tail;
        match op % 4 {
            0 => {
                let mut d = arg.to_vec();
                if d.len() >= 4 {
                    d[2..4].copy_from_slice(&recv_id.to_be_bytes());
                }
                ours.handle_datagram(PEER, &d, now);
            }
            1 => {
                ours.handle_datagram(2 + (op >> 2) % 8, arg, now);
            }
            2 => {
                now += Duration::from_millis(u64::from(*len) * 20);
                ours.handle_timeout(now);
                peer.handle_timeout(now);
            }
            _ => {
                if let Some(c) = ours.connection_mut(h) {
                    c.write(arg);
                    c.read(&mut scratch);
                }
                if let Some(c) = peer.connection_mut(ph) {
                    c.write(arg);
                    c.read(&mut scratch);
                }
            }
        }
        exchange(&mut ours, &mut peer, now);
        assert!(ours.len() <= cfg.max_connections);
        assert!(ours.half_open() <= cfg.max_half_open);
        if let Some(c) = ours.connection(h) {
            assert!(c.buffered() <= limit, "{} bytes held", c.buffered());
        }
    }
});
