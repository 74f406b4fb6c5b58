//! Two endpoints wired back to back through an in-memory packet pipe: the QUIC layer tested
//! without sockets, deterministic time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{QuicEndpoint, QuicEvent, QuicTuning};

struct Pipe {
    a: QuicEndpoint,
    b: QuicEndpoint,
    now: Instant,
}

const A: &str = "[fd00::a]:1";
const B: &str = "[fd00::b]:1";

impl Pipe {
    /// Moves every pending datagram across; returns how many moved.
    fn exchange(&mut self) -> usize {
        let (a_addr, b_addr): (SocketAddr, SocketAddr) = (A.parse().unwrap(), B.parse().unwrap());
        let mut moved = 0;
        let mut buf = Vec::new();
        self.a.drive(self.now);
        while let Some(t) = self.a.poll_transmit(self.now, &mut buf) {
            self.b
                .handle_datagram(self.now, a_addr, BytesMut::from(&buf[..t.size]));
            moved += 1;
        }
        self.b.drive(self.now);
        while let Some(t) = self.b.poll_transmit(self.now, &mut buf) {
            self.a
                .handle_datagram(self.now, b_addr, BytesMut::from(&buf[..t.size]));
            moved += 1;
        }
        if moved == 0 {
            self.now += Duration::from_millis(1);
        }
        moved
    }
}

#[test]
fn stream_transfer_through_memory_pipe_is_byte_exact() {
    let tuning = QuicTuning::default();
    let mut p = Pipe {
        a: QuicEndpoint::new(&tuning, false).unwrap(),
        b: QuicEndpoint::new(&tuning, true).unwrap(),
        now: Instant::now(),
    };
    let client = p.a.connect(p.now, B.parse().unwrap()).unwrap();
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    let mut sent = 0;
    let mut stream = None;
    let mut received = Vec::new();
    let mut server_conn = None;
    for _ in 0..200_000 {
        p.exchange();
        while let Some(ev) = p.a.poll_event() {
            if let QuicEvent::Connected(h) = ev {
                stream = p.a.open_bi(h);
            }
        }
        if let Some(id) = stream {
            let conn = p.a.connection(client).unwrap();
            while sent < data.len() {
                let end = (sent + 64 * 1024).min(data.len());
                match conn
                    .send_stream(id)
                    .write_chunks(&mut [Bytes::copy_from_slice(&data[sent..end])])
                {
                    Ok(w) if w.bytes > 0 => sent += w.bytes,
                    _ => break,
                }
            }
            if sent == data.len() {
                let _ = conn.send_stream(id).finish();
            }
        }
        while let Some(ev) = p.b.poll_event() {
            match ev {
                QuicEvent::StreamOpened(h, id) | QuicEvent::Readable(h, id) => {
                    server_conn = Some(h);
                    super::read_stream(p.b.connection(h).unwrap(), id, &mut received);
                }
                _ => {}
            }
        }
        if received.len() == data.len() {
            break;
        }
    }
    assert!(server_conn.is_some(), "server never saw the stream");
    assert_eq!(received.len(), data.len());
    assert!(received == data, "bytes differ");
}
