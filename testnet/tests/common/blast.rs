//! Blasts of SCION/UDP packets at a given rate, and what arrives of them: link caps measured
//! from the outside (pocketscion's shaper, scionproto's tc).

use std::{
    net::SocketAddr,
    thread,
    time::{Duration, Instant},
};

use sciparse::{
    core::encode::WireEncode, dataplane_path::view::ScionDpPathViewExt,
    packet::model::ScionUdpPacket, path::ScionPath,
};

use super::Host;

/// Payload of blast packets; the SCION packet is about 1.3 kB, like a full QUIC packet.
pub const PAYLOAD: usize = 1200;

/// What a receiver saw of a blast.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub packets: usize,
    /// Mbit/s of SCION packets between the first and the last arrival.
    pub mbit: f64,
}

/// Receives a blast of `len`-byte packets on `to` until it has been quiet for a while.
pub fn receive(to: &Host, len: usize) -> thread::JoinHandle<Rate> {
    let socket = to.socket.try_clone().unwrap();
    thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        let (mut packets, mut first, mut last) = (0usize, None, Instant::now());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match socket.recv_from(&mut buf) {
                Ok((n, _)) if n == len => {
                    packets += 1;
                    first.get_or_insert_with(Instant::now);
                    last = Instant::now();
                }
                Ok(_) => {}
                Err(_) if packets > 0 => break,
                Err(_) => {}
            }
        }
        let span = first.map_or(0.0, |f| (last - f).as_secs_f64());
        let bits = packets.saturating_sub(1) as f64 * len as f64 * 8.0;
        Rate {
            packets,
            mbit: if span > 0.0 { bits / span / 1e6 } else { 0.0 },
        }
    })
}

/// A blast from one host to another over `path`.
pub struct Blast {
    pub bytes: Vec<u8>,
    pub next_hop: SocketAddr,
}

impl Blast {
    pub fn new(from: &Host, to: &Host, path: &ScionPath) -> Blast {
        let packet = ScionUdpPacket::new(
            from.scion_addr(),
            to.scion_addr(),
            path.dp_path().to_model(),
            vec![0u8; PAYLOAD],
        );
        Blast {
            bytes: packet.try_encode_to_vec().unwrap(),
            next_hop: path.next_hop().unwrap(),
        }
    }

    /// Sends at `mbit` Mbit/s (paced in small bursts) for `time`; returns the packets sent.
    pub fn send(&self, from: &Host, mbit: f64, time: Duration) -> usize {
        let gap = Duration::from_secs_f64(self.bytes.len() as f64 * 8.0 / (mbit * 1e6));
        let late = Duration::from_millis(5);
        let start = Instant::now();
        let (mut slot, mut sent) = (0u32, 0usize);
        while start.elapsed() < time {
            let now = Instant::now();
            // After a stall (busy machine), skip what is very late instead of sending it all
            // in one burst that only the sockets' buffers would see.
            while start + gap * slot + late < now {
                slot += 1;
            }
            while start + gap * slot <= now {
                // A full socket buffer is the network's problem, not the sender's.
                let _ = from.socket.send_to(&self.bytes, self.next_hop);
                slot += 1;
                sent += 1;
            }
            thread::sleep(Duration::from_micros(200));
        }
        sent
    }
}

/// Blasts `from` → `to` over `path` at `mbit` for `time` and measures what arrives.
pub fn measure(
    from: &Host,
    to: &Host,
    path: &ScionPath,
    mbit: f64,
    time: Duration,
) -> (usize, Rate) {
    let blast = Blast::new(from, to, path);
    let rx = receive(to, blast.bytes.len());
    let sent = blast.send(from, mbit, time);
    (sent, rx.join().unwrap())
}

pub fn within(rate: f64, cap: f64, tolerance: f64) -> bool {
    (cap * (1.0 - tolerance)..=cap * (1.0 + tolerance)).contains(&rate)
}
