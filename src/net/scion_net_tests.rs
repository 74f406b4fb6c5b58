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
}
