//! What crosses loopback, seen by the kernel rather than reported by our own code: an
//! AF_PACKET socket on `lo` with a classic BPF filter that passes only the IPv4/UDP packets
//! we ask about, so the capture costs nothing per packet it does not keep. Needs root
//! (CAP_NET_RAW), as the scionproto backend's tc does.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// IPv4 (20 bytes without options) and UDP headers around a SCION packet on the underlay.
const UNDERLAY: u32 = 28;
/// The virtio-net header (`struct virtio_net_hdr`) in front of every frame read.
const VNET: usize = 10;

/// Counts SCION packets (the UDP payloads of the underlay) longer than a threshold that go
/// to or come from addresses of one /24: a scionproto testnet's routers (every router,
/// control service and link end of such a testnet lives in its own 127.X.Y.0/24). Each
/// packet a host sends is seen again, alone, where a router forwards it.
pub struct LongPackets {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, usize)>>,
}

impl LongPackets {
    /// Starts counting packets of more than `longer_than` SCION bytes to or from the /24 of
    /// `any_in_subnet` (an IPv4 address). Every packet is seen when it leaves and again when
    /// it arrives (loopback), so counts are twice the packets.
    pub fn start(any_in_subnet: IpAddr, longer_than: usize) -> LongPackets {
        let IpAddr::V4(v4) = any_in_subnet else {
            panic!("{any_in_subnet} is not IPv4");
        };
        let fd = open(v4, longer_than as u32 + UNDERLAY);
        let min_len = longer_than;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let (mut count, mut longest) = (0u64, 0usize);
            while !flag.load(Ordering::Relaxed) {
                // SAFETY: buf is valid for its length; fd is our socket.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < (VNET + 14 + 20) as isize {
                    continue; // timeout (SO_RCVTIMEO) or a runt
                }
                // A UDP GSO batch (our hosts send them) crosses loopback as one frame; its
                // virtio-net header names the size of the datagrams it stands for.
                let gso_type = buf[1];
                let gso_size = u16::from_le_bytes([buf[4], buf[5]]) as usize;
                let ip_len = u16::from_be_bytes([buf[VNET + 16], buf[VNET + 17]]) as usize;
                let len = if gso_type == 0 {
                    ip_len - UNDERLAY as usize
                } else {
                    gso_size
                };
                if len > min_len {
                    count += 1;
                    longest = longest.max(len);
                }
            }
            // SAFETY: closing our own socket once.
            unsafe { libc::close(fd) };
            (count, longest)
        });
        LongPackets {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops; returns (packets seen, the longest one's SCION bytes, 0 if none).
    pub fn stop(mut self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for LongPackets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A packet socket on `lo` passing IPv4/UDP packets of more than `min_ip_len` IP bytes whose
/// source or destination is in the /24 of `subnet`.
fn open(subnet: Ipv4Addr, min_ip_len: u32) -> libc::c_int {
    let net = u32::from(subnet) & 0xffff_ff00;
    // Classic BPF over the frame as lo delivers it: a 14-byte Ethernet header, then IPv4.
    // Jumps are relative to the next instruction; ACCEPT is at 12, DROP at 13.
    let f = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let (ld_h, ld_b, ld_w) = (0x28, 0x30, 0x20); // BPF_LD | BPF_H/B/W | BPF_ABS
    let (jeq, jgt, and, ret) = (0x15, 0x25, 0x54, 0x06); // BPF_JMP|BPF_JEQ|K, ..., BPF_RET|K
    let program = [
        f(ld_h, 0, 0, 12),        // 0: ethertype
        f(jeq, 0, 11, 0x0800),    // 1: IPv4, else DROP
        f(ld_b, 0, 0, 14 + 9),    // 2: IP protocol
        f(jeq, 0, 9, 17),         // 3: UDP, else DROP
        f(ld_h, 0, 0, 14 + 2),    // 4: IP total length
        f(jgt, 0, 7, min_ip_len), // 5: long enough, else DROP
        f(ld_w, 0, 0, 14 + 12),   // 6: source address
        f(and, 0, 0, 0xffff_ff00),
        f(jeq, 3, 0, net),      // 8: in the /24: ACCEPT
        f(ld_w, 0, 0, 14 + 16), // 9: destination address
        f(and, 0, 0, 0xffff_ff00),
        f(jeq, 0, 1, net), // 11: in the /24: ACCEPT, else DROP
        f(ret, 0, 0, 128), // 12: ACCEPT (the headers are enough)
        f(ret, 0, 0, 0),   // 13: DROP
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: plain socket calls on a socket we own, with pointers to live locals.
    unsafe {
        // Protocol 0 receives nothing until the bind below, so no packet slips in before
        // the filter is attached.
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket (needs root): {}",
            std::io::Error::last_os_error()
        );
        let ok = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        );
        assert_eq!(ok, 0, "BPF filter: {}", std::io::Error::last_os_error());
        let on: libc::c_int = 1;
        let ok = libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(
            ok,
            0,
            "PACKET_VNET_HDR: {}",
            std::io::Error::last_os_error()
        );
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: Duration::from_millis(100).as_micros() as libc::suseconds_t,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = libc::if_nametoindex(c"lo".as_ptr()) as libc::c_int;
        let ok = libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        );
        assert_eq!(ok, 0, "bind to lo: {}", std::io::Error::last_os_error());
        fd
    }
}
