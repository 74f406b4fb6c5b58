//! UDP generic segmentation and receive offload (Linux `UDP_SEGMENT`, `UDP_GRO`): one
//! `sendmsg` carries a batch of equal-sized datagrams (the last may be shorter) and the kernel
//! cuts it into packets, so the socket and IP layers are walked once per batch instead of once
//! per packet; on receive, a GRO socket may get such a batch whole. Each segment is a complete
//! SCION packet (see `ScionNet::poll_datagram` and `ScionNet::on_datagram`).

use std::os::fd::AsRawFd;

/// `UDP_SEGMENT` and `UDP_GRO` from `linux/udp.h` (not exported by the libc crate for glibc).
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
/// Segments per batch. quinn uses 10; 32 measured faster here (fewer sends and fewer batches
/// through the driver, perf/RESULTS.md) and stays below both the kernel's segment limit (64)
/// and the 64 KiB a UDP datagram may carry (32 SCION packets of ~1,500 bytes).
pub const MAX_SEGMENTS: usize = 32;
/// Largest GSO batch one `sendmsg` may carry (the UDP length field); longer batches (only
/// with very long SCION paths) go packet by packet.
pub const MAX_BATCH_BYTES: usize = 65_507;

/// Whether the kernel accepts `UDP_SEGMENT` on this socket.
pub fn supported(socket: &impl AsRawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`, which lives on the stack.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0
}

/// Asks the kernel to hand over runs of same-flow datagrams as one buffer (UDP GRO). The
/// buffer is cut back into SCION packets by their own length fields, so no control message
/// is needed on receive. Returns whether it is on.
pub fn enable_gro(socket: &impl AsRawFd) -> bool {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `on`.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            UDP_GRO,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// The control message that asks for `segment`-byte segments.
pub fn control_message(segment: u16) -> Vec<u8> {
    let data_len = std::mem::size_of::<u16>() as u32;
    // SAFETY: pure arithmetic macros.
    let (space, len, data_at) = unsafe {
        (
            libc::CMSG_SPACE(data_len) as usize,
            libc::CMSG_LEN(data_len) as usize,
            libc::CMSG_LEN(0) as usize,
        )
    };
    let mut buf = vec![0u8; space];
    // SAFETY: a zeroed cmsghdr is valid; `buf` holds CMSG_SPACE(2) bytes, room for the header
    // at 0 and the u16 at CMSG_LEN(0); unaligned writes because a Vec<u8> need not be aligned.
    unsafe {
        let mut hdr: libc::cmsghdr = std::mem::zeroed();
        hdr.cmsg_len = len as _;
        hdr.cmsg_level = libc::SOL_UDP;
        hdr.cmsg_type = UDP_SEGMENT;
        std::ptr::write_unaligned(buf.as_mut_ptr().cast::<libc::cmsghdr>(), hdr);
        std::ptr::write_unaligned(buf.as_mut_ptr().add(data_at).cast::<u16>(), segment);
    }
    buf
}

/// Whether a send error means "this kernel or device cannot do GSO" (then send packets one
/// by one from now on) rather than a transient failure.
pub fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(libc::ENOPROTOOPT)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_message_layout() {
        let m = control_message(1252);
        // SAFETY: the buffer is at least one cmsghdr long; read unaligned.
        let hdr: libc::cmsghdr = unsafe { std::ptr::read_unaligned(m.as_ptr().cast()) };
        assert_eq!(hdr.cmsg_level, libc::SOL_UDP);
        assert_eq!(hdr.cmsg_type, UDP_SEGMENT);
        assert_eq!(hdr.cmsg_len as usize, unsafe { libc::CMSG_LEN(2) } as usize);
        let at = unsafe { libc::CMSG_LEN(0) } as usize;
        assert_eq!(u16::from_ne_bytes([m[at], m[at + 1]]), 1252);
    }

    /// A real GSO send on loopback arrives as separate datagrams of the segment size, or
    /// whole at a GRO socket; no byte is lost either way.
    #[test]
    fn kernel_splits_a_batch_into_datagrams() {
        assert_eq!(send_batch_and_receive(false), vec![1000, 1000, 1000, 500]);
        let gro = send_batch_and_receive(true);
        assert_eq!(gro.iter().sum::<usize>(), 3500, "GRO socket got {gro:?}");
    }

    /// Sends 3500 bytes as a GSO batch of 1000-byte segments; the sizes received.
    fn send_batch_and_receive(gro: bool) -> Vec<usize> {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if gro {
            assert!(enable_gro(&rx), "Linux >= 5.0 supports UDP_GRO");
        }
        assert!(supported(&tx), "Linux >= 4.18 supports UDP_SEGMENT");
        let payload: Vec<u8> = (0..1000u32 * 3 + 500).map(|i| i as u8).collect();
        let cmsg = control_message(1000);
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        };
        let dst: socket2::SockAddr = rx.local_addr().unwrap().into();
        // SAFETY: every pointer in msghdr points at live buffers of the stated lengths.
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_name = dst.as_ptr() as *mut _;
            msg.msg_namelen = dst.len();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_ptr() as *mut _;
            msg.msg_controllen = cmsg.len() as _;
            libc::sendmsg(tx.as_raw_fd(), &msg, 0)
        };
        assert_eq!(sent, payload.len() as isize);
        let mut sizes = Vec::new();
        let mut buf = [0u8; 65536];
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        while sizes.iter().sum::<usize>() < payload.len() {
            sizes.push(rx.recv(&mut buf).unwrap());
        }
        sizes
    }
}
