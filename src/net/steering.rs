//! Several io_uring runtimes on one SCION/UDP port: which runtime owns which QUIC connection.
//!
//! Every runtime binds its own socket to the same address (`SO_REUSEPORT`). The kernel would
//! spread datagrams over them by the underlay 4-tuple, but across ASes every packet arrives
//! from the border router's address, so the 4-tuple says nothing about the connection. Instead
//! each runtime hands out QUIC connection ids whose first byte is its index modulo the number
//! of runtimes ([`RuntimeCids`]), and a classic BPF program on the socket group
//! ([`attach_reuseport_program`]) reads that byte in the SCION/UDP/QUIC headers and picks the
//! socket. A client's first packets carry a connection id the client chose; their first byte
//! picks a runtime just the same, and that runtime's ids keep the connection there.
//!
//! The kernel can still hand a runtime a packet of another's (UDP GRO joins datagrams of one
//! underlay flow before the program sees them): [`Steering::owner`] finds those, and the driver
//! passes them on instead of letting QUIC answer an unknown connection id with a reset.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use quinn_proto::{ConnectionId, ConnectionIdGenerator};

use crate::scion::packet::{PROTO_SCMP, PROTO_UDP as SCION_UDP};

/// Length of our QUIC connection ids (quinn's default).
const CID_LEN: usize = 8;
/// SCION common header: next header at byte 4, header length (in 4-byte units) at byte 5.
const NEXT_HDR: usize = 4;
const HDR_LEN: usize = 5;
const UDP_HDR: usize = 8;

/// Most runtimes on one port (`--runtimes`).
pub const MAX_RUNTIMES: u8 = 64;

/// This runtime's place among `count` runtimes sharing a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steering {
    pub index: u8,
    pub count: u8,
}

impl Steering {
    /// `count` runtimes (up to [`MAX_RUNTIMES`]); `None` for one runtime, which needs no
    /// steering.
    pub fn new(index: u8, count: u8) -> Option<Self> {
        (count > 1 && index < count && count <= MAX_RUNTIMES).then_some(Self { index, count })
    }

    /// Which runtime a SCION packet's QUIC connection belongs to, by the same rule as the BPF
    /// program; `None` when the packet is not QUIC over SCION/UDP with a connection id.
    pub fn owner(&self, scion_packet: &[u8]) -> Option<u8> {
        dcid_first_byte(scion_packet).map(|b| b % self.count)
    }

    /// Connection ids for this runtime's endpoint.
    pub fn cids(&self) -> RuntimeCids {
        RuntimeCids { steering: *self }
    }
}

/// Whether a SCION packet is an SCMP message (every runtime must see those: their
/// connections may use the path it reports on).
pub fn is_scmp(scion_packet: &[u8]) -> bool {
    scion_packet.get(NEXT_HDR) == Some(&PROTO_SCMP)
}

/// The first byte of the destination connection id of a QUIC packet inside a SCION/UDP packet.
fn dcid_first_byte(p: &[u8]) -> Option<u8> {
    if *p.get(NEXT_HDR)? != SCION_UDP {
        return None;
    }
    let quic = usize::from(*p.get(HDR_LEN)?) * 4 + UDP_HDR;
    let first = *p.get(quic)?;
    if first & 0x80 == 0 {
        // Short header: flags, then the connection id.
        p.get(quic + 1).copied()
    } else {
        // Long header: flags, version (4), id length, id.
        let len = *p.get(quic + 5)?;
        if len == 0 {
            return None;
        }
        p.get(quic + 6).copied()
    }
}

/// Random 8-byte connection ids whose first byte is the runtime's index modulo the count.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeCids {
    steering: Steering,
}

impl ConnectionIdGenerator for RuntimeCids {
    fn generate_cid(&mut self) -> ConnectionId {
        let mut id: [u8; CID_LEN] = rand::random();
        let Steering { index, count } = self.steering;
        // Any byte that is `index` modulo `count`: 256 / count choices, all below 256.
        let spread = u16::from(id[0]) % (256 / u16::from(count));
        id[0] = (spread * u16::from(count) + u16::from(index)) as u8;
        ConnectionId::new(&id)
    }

    fn cid_len(&self) -> usize {
        CID_LEN
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

// Classic BPF opcodes (linux/filter.h).
const LD_B_ABS: u16 = 0x10 | 0x20; // BPF_LD (0) | BPF_B | BPF_ABS
const LD_B_IND: u16 = 0x10 | 0x40; // BPF_LD (0) | BPF_B | BPF_IND
const ALU_LSH_K: u16 = 0x04 | 0x60;
const ALU_MOD_K: u16 = 0x04 | 0x90;
const MISC_TAX: u16 = 0x07;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x05 | 0x10;
const JMP_JSET_K: u16 = 0x05 | 0x40;
const RET_A: u16 = 0x06 | 0x10;
const RET_K: u16 = 0x06;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The reuseport program: the socket index is the first connection-id byte modulo `count`,
/// read as [`dcid_first_byte`] does. Packets it cannot read return an index out of range,
/// and the kernel falls back to its 4-tuple hash. For reuseport programs the packet starts at
/// the UDP payload (the kernel pulls the UDP header first), i.e. at the SCION header.
pub fn reuseport_program(count: u8) -> Vec<libc::sock_filter> {
    let quic = UDP_HDR as u32;
    vec![
        /* 0 */ op(LD_B_ABS, 0, 0, NEXT_HDR as u32),
        /* 1 */ op(JMP_JEQ_K, 0, 12, u32::from(SCION_UDP)), // not UDP -> 14
        /* 2 */ op(LD_B_ABS, 0, 0, HDR_LEN as u32),
        /* 3 */ op(ALU_LSH_K, 0, 0, 2),
        /* 4 */ op(MISC_TAX, 0, 0, 0), // X = SCION header length
        /* 5 */ op(LD_B_IND, 0, 0, quic), // QUIC flags
        /* 6 */ op(JMP_JSET_K, 2, 0, 0x80), // long header -> 9
        /* 7 */ op(LD_B_IND, 0, 0, quic + 1),
        /* 8 */ op(JMP_JA, 0, 0, 3), // -> 12
        /* 9 */ op(LD_B_IND, 0, 0, quic + 5), // id length
        /* 10 */ op(JMP_JEQ_K, 3, 0, 0), // empty id -> 14
        /* 11 */ op(LD_B_IND, 0, 0, quic + 6),
        /* 12 */ op(ALU_MOD_K, 0, 0, u32::from(count)),
        /* 13 */ op(RET_A, 0, 0, 0),
        /* 14 */ op(RET_K, 0, 0, u32::MAX),
    ]
}

/// Attaches [`reuseport_program`] to the reuseport group of `socket` (any member).
pub fn attach_reuseport_program(socket: &impl AsRawFd, count: u8) -> io::Result<()> {
    let mut prog = reuseport_program(count);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Packets one runtime received for another: one inbox per runtime sharing the port.
pub struct Mailboxes {
    inboxes: Vec<Inbox>,
    /// Why a runtime stopped, if one failed: its socket has left the group, so the kernel's
    /// steering of the others is off and every runtime must stop.
    failure: Mutex<Option<String>>,
    /// Set with `failure`: read on every loop turn without taking the lock.
    failed: AtomicBool,
}

#[derive(Default)]
struct Inbox {
    queue: Mutex<VecDeque<(SocketAddr, Vec<u8>)>>,
    notify: Notify,
}

impl Mailboxes {
    pub fn new(count: u8) -> Arc<Self> {
        Arc::new(Self {
            inboxes: (0..count).map(|_| Inbox::default()).collect(),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
        })
    }

    /// A runtime failed: records why (the first reason wins) and wakes every runtime.
    pub fn fail(&self, why: String) {
        lock(&self.failure).get_or_insert(why);
        self.failed.store(true, Ordering::Release);
        for inbox in &self.inboxes {
            inbox.notify.notify_one();
        }
    }

    /// Why a runtime of the group failed, if one did.
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.failure).clone()
    }

    /// Queues a SCION packet for runtime `to` and wakes it.
    pub fn post(&self, to: u8, from: SocketAddr, packet: Vec<u8>) {
        if let Some(inbox) = self.inboxes.get(usize::from(to)) {
            lock(&inbox.queue).push_back((from, packet));
            inbox.notify.notify_one();
        }
    }

    /// Everything waiting for runtime `me`.
    pub fn take(&self, me: u8) -> VecDeque<(SocketAddr, Vec<u8>)> {
        self.inboxes
            .get(usize::from(me))
            .map(|i| std::mem::take(&mut *lock(&i.queue)))
            .unwrap_or_default()
    }

    /// Resolves when something was posted for runtime `me` (at once if it was posted since the
    /// last wait).
    pub async fn posted(&self, me: u8) {
        match self.inboxes.get(usize::from(me)) {
            Some(i) => i.notify.notified().await,
            None => std::future::pending().await,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    /// A SCION/UDP packet with an empty path (`hdr_words` × 4 header bytes) carrying `quic`.
    fn scion_udp(hdr_words: u8, quic: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; usize::from(hdr_words) * 4];
        p[NEXT_HDR] = SCION_UDP;
        p[HDR_LEN] = hdr_words;
        p.extend_from_slice(&[0u8; UDP_HDR]);
        p.extend_from_slice(quic);
        p
    }

    fn short_header(dcid0: u8) -> Vec<u8> {
        vec![0x40, dcid0, 1, 2, 3, 4, 5, 6, 7, 0xaa, 0xbb]
    }

    fn long_header(dcid0: u8) -> Vec<u8> {
        vec![0xc0, 0, 0, 0, 1, 8, dcid0, 1, 2, 3, 4, 5, 6, 7, 0]
    }

    #[test]
    fn a_failed_runtime_is_seen_by_every_runtime_with_the_first_reason() {
        let mail = Mailboxes::new(3);
        assert_eq!(mail.failure(), None);
        mail.fail("runtime 2 stopped: no SCION daemon".into());
        mail.fail("runtime 1 stopped: later".into());
        assert_eq!(
            mail.failure().as_deref(),
            Some("runtime 2 stopped: no SCION daemon")
        );
        // Every runtime is woken to see it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for me in 0..3 {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(1), mail.posted(me))
                    .await
                    .expect("woken")
            });
        }
    }

    #[test]
    fn generated_ids_belong_to_their_runtime() {
        for count in [2u8, 3, 7, 64] {
            for index in 0..count {
                let s = Steering::new(index, count).unwrap();
                let mut g = s.cids();
                for _ in 0..200 {
                    let id = g.generate_cid();
                    assert_eq!(id.len(), CID_LEN);
                    assert_eq!(id[0] % count, index);
                    let p = scion_udp(9, &short_header(id[0]));
                    assert_eq!(s.owner(&p), Some(index));
                }
            }
        }
    }

    #[test]
    fn owner_reads_long_and_short_headers_and_refuses_the_rest() {
        let s = Steering::new(1, 4).unwrap();
        assert_eq!(s.owner(&scion_udp(9, &short_header(6))), Some(2));
        assert_eq!(s.owner(&scion_udp(20, &long_header(7))), Some(3));
        let mut empty_id = long_header(7);
        empty_id[5] = 0;
        assert_eq!(s.owner(&scion_udp(9, &empty_id)), None);
        let mut scmp = scion_udp(9, &short_header(6));
        scmp[NEXT_HDR] = 202;
        assert_eq!(s.owner(&scmp), None);
        assert_eq!(s.owner(&scion_udp(9, &[])), None);
        assert_eq!(s.owner(&[]), None);
        assert_eq!(Steering::new(0, 1), None);
        assert_eq!(Steering::new(2, 2), None);
    }

    /// The real kernel runs the program: datagrams sent to a group of `count` sockets land on
    /// the socket the connection-id byte names.
    #[test]
    fn the_kernel_steers_datagrams_by_connection_id() {
        let count = 3u8;
        let first = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .and_then(|s| {
                s.set_reuse_port(true)?;
                s.bind(
                    &"127.0.0.1:0"
                        .parse::<std::net::SocketAddr>()
                        .unwrap()
                        .into(),
                )?;
                Ok(s)
            })
            .unwrap();
        let addr = first.local_addr().unwrap().as_socket().unwrap();
        let mut group: Vec<UdpSocket> = vec![first.into()];
        for _ in 1..count {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
            s.set_reuse_port(true).unwrap();
            s.bind(&addr.into()).unwrap();
            group.push(s.into());
        }
        attach_reuseport_program(&group[0], count).expect("attach the program");
        for s in &group {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        }
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for dcid0 in 0u8..12 {
            for (i, pkt) in [
                scion_udp(9, &short_header(dcid0)),
                scion_udp(17, &long_header(dcid0)),
            ]
            .iter()
            .enumerate()
            {
                sender.send_to(pkt, addr).unwrap();
                let want = usize::from(dcid0 % count);
                let mut buf = [0u8; 256];
                let n = group[want].recv(&mut buf).unwrap_or_else(|e| {
                    panic!("id byte {dcid0} (packet {i}) not on socket {want}: {e}")
                });
                assert_eq!(&buf[..n], &pkt[..]);
            }
        }
        // Nothing went astray.
        for s in &group {
            s.set_nonblocking(true).unwrap();
            assert!(s.recv(&mut [0u8; 256]).is_err());
        }
    }
}
