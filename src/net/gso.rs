//! UDP generic segmentation offload (Linux `UDP_SEGMENT`): one `sendmsg` carries a batch of
//! equal-sized datagrams (the last may be shorter) and the kernel cuts it into packets, so the
//! socket and IP layers are walked once per batch instead of once per packet. Each segment is a
//! complete SCION packet (see `ScionNet::poll_datagram`).

use std::os::fd::AsRawFd;

/// `UDP_SEGMENT` from `linux/udp.h` (not exported by the libc crate for glibc targets).
const UDP_SEGMENT: libc::c_int = 103;
/// Segments per batch: what quinn uses, well under the kernel's limit of 64.
pub const MAX_SEGMENTS: usize = 10;

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
    // Filled byte by byte: a Vec<u8> need not be aligned for `cmsghdr`.
    let mut buf = vec![0u8; space];
    let len_field = std::mem::size_of_val(&unsafe { std::mem::zeroed::<libc::cmsghdr>() }.cmsg_len);
    buf[..len_field].copy_from_slice(&len.to_ne_bytes()[..len_field]);
    let level_at = std::mem::offset_of!(libc::cmsghdr, cmsg_level);
    let type_at = std::mem::offset_of!(libc::cmsghdr, cmsg_type);
    buf[level_at..level_at + 4].copy_from_slice(&libc::SOL_UDP.to_ne_bytes());
    buf[type_at..type_at + 4].copy_from_slice(&UDP_SEGMENT.to_ne_bytes());
    buf[data_at..data_at + 2].copy_from_slice(&segment.to_ne_bytes());
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

    /// A real GSO send on loopback arrives as separate datagrams of the segment size.
    #[test]
    fn kernel_splits_a_batch_into_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
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
        let mut buf = [0u8; 4096];
        for _ in 0..4 {
            let n = rx.recv(&mut buf).unwrap();
            sizes.push(n);
        }
        assert_eq!(sizes, vec![1000, 1000, 1000, 500]);
    }
}
