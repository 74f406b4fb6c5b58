//! SCION/UDP encode and decode, path reversal and SCMP: pure functions over bytes.
//!
//! Decoding validates the header layout with [`sciparse`] and reads the packet zero-copy;
//! anything malformed is an error, never a panic. Encoding writes the SCION common and address
//! headers, the raw dataplane path and the UDP header directly and computes the UDP checksum
//! over the SCION pseudo-header (the send path: no allocation besides growing `out`).
//! [`UdpEncoder`] keeps a per-(source, destination, path) header template with a precomputed
//! partial checksum, so that per packet only the lengths and the checksum are filled in.
//!
//! Header layout (all big-endian):
//! ```text
//! common (12): version/TC/flow id (4) | next hdr | hdr len/4 | payload len (2)
//!              | path type | DT/DL/ST/SL | reserved (2)
//! address:     dst ISD-AS (8) | src ISD-AS (8) | dst host (4|16) | src host (4|16)
//! path:        SCION path: meta (4) | info fields (8 each) | hop fields (12 each)
//! UDP (8):     src port | dst port | length | checksum
//! ```

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
pub use sciparse::payload::scmp::types::{
    ScmpDestinationUnreachableCode, ScmpParameterProblemCode,
};
use sciparse::{
    core::view::View,
    dataplane_path::standard::view::StandardPathView,
    header::view::ScionHeaderView,
    packet::view::ScionRawPacketView,
    payload::scmp::view::{ScmpMessageView, ScmpPayloadView},
};

use super::{
    addr::{Ia, ScionAddr},
    path::ScionPath,
};

/// Length of the SCION common header.
pub const COMMON_HEADER_LEN: usize = 12;
/// Length of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Largest SCION header (common + address + path): the header length field counts 4-byte units
/// in one byte.
pub const MAX_HEADER_LEN: usize = 255 * 4;
/// Largest number of hop fields in a SCION path.
pub const MAX_HOPS: usize = 64;

/// SCION next-header numbers.
pub const PROTO_UDP: u8 = 17;
pub const PROTO_SCMP: u8 = 202;
const PATH_TYPE_EMPTY: u8 = 0;
const PATH_TYPE_SCION: u8 = 1;
/// Flow id written into every packet (as scionproto's snet does).
const FLOW_ID: u32 = 1;
const PATH_META_LEN: usize = 4;
const INFO_FIELD_LEN: usize = 8;
const HOP_FIELD_LEN: usize = 12;

/// Why a packet could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The buffer ends before the structure it must hold.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// Which part.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A field has an impossible value.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The dataplane path is inconsistent.
    #[error("invalid SCION path: {0}")]
    InvalidPath(&'static str),
    /// Not SCION version 0.
    #[error("unsupported SCION version {0}")]
    UnsupportedVersion(u8),
    /// A path type other than empty and SCION (one-hop, EPIC, COLIBRI...).
    #[error("unsupported path type {0}")]
    UnsupportedPathType(u8),
    /// A host address that is not IPv4 or IPv6 (e.g. a service address).
    #[error("unsupported host address type/length {0:#06b}")]
    UnsupportedHostAddress(u8),
    /// A next header other than UDP and SCMP (e.g. an extension header).
    #[error("unsupported next header (protocol {0})")]
    UnsupportedProtocol(u8),
    /// The UDP checksum does not match.
    #[error("bad UDP checksum")]
    BadChecksum,
    /// Header or payload larger than the format allows.
    #[error("packet too large: {0}")]
    TooLarge(&'static str),
}

/// A SCION host (ISD-AS and IP) without a port, as in SCMP packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScionHost {
    /// The AS.
    pub ia: Ia,
    /// The host inside it.
    pub host: IpAddr,
}

impl std::fmt::Display for ScionHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.ia, self.host)
    }
}

/// A decoded packet, borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A SCION/UDP datagram.
    Udp {
        /// Sender.
        src: ScionAddr,
        /// Receiver (us).
        dst: ScionAddr,
        /// The raw dataplane path as received (empty for the same-AS case); reverse it with
        /// [`reverse_path`] to reply.
        path: &'a [u8],
        /// The UDP payload.
        payload: &'a [u8],
    },
    /// An SCMP message (usually an error from a router about a packet we sent).
    Scmp {
        /// Who sent it (e.g. a border router).
        src: ScionHost,
        /// Receiver (us).
        dst: ScionHost,
        /// The raw path as received.
        path: &'a [u8],
        /// The message.
        message: ScmpMessage<'a>,
    },
}

/// The SCMP messages callers must react to, and the rest summarised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScmpMessage<'a> {
    /// The destination cannot be reached (type 1).
    DestinationUnreachable {
        /// Why.
        code: ScmpDestinationUnreachableCode,
        /// The start of the offending packet.
        quote: &'a [u8],
    },
    /// The packet was larger than a link's MTU (type 2).
    PacketTooBig {
        /// The MTU to use.
        mtu: u16,
        /// The start of the offending packet.
        quote: &'a [u8],
    },
    /// A header field was wrong, e.g. an expired path or a bad MAC (type 4).
    ParameterProblem {
        /// What.
        code: ScmpParameterProblemCode,
        /// Byte offset of the problem in the offending packet.
        pointer: u16,
        /// The start of the offending packet.
        quote: &'a [u8],
    },
    /// An inter-AS link is down (type 5): paths through `ia#interface` are broken.
    ExternalInterfaceDown {
        /// The AS reporting.
        ia: Ia,
        /// Its interface that is down.
        interface: u64,
        /// The start of the offending packet.
        quote: &'a [u8],
    },
    /// Connectivity inside an AS between two of its interfaces is down (type 6).
    InternalConnectivityDown {
        /// The AS reporting.
        ia: Ia,
        /// Ingress interface.
        ingress: u64,
        /// Egress interface.
        egress: u64,
        /// The start of the offending packet.
        quote: &'a [u8],
    },
    /// Echo or traceroute request/reply (types 128-131): nothing to react to.
    Informational {
        /// SCMP type.
        msg_type: u8,
        /// SCMP code.
        code: u8,
    },
    /// An SCMP type this code does not know.
    Unknown {
        /// SCMP type.
        msg_type: u8,
        /// SCMP code.
        code: u8,
    },
}

impl<'a> ScmpMessage<'a> {
    /// Whether this is an error message (as opposed to informational).
    pub fn is_error(&self) -> bool {
        match self {
            ScmpMessage::Informational { .. } => false,
            ScmpMessage::Unknown { msg_type, .. } => *msg_type < 128,
            _ => true,
        }
    }

    /// The quoted start of the offending packet, for error messages.
    pub fn quote(&self) -> Option<&'a [u8]> {
        match *self {
            ScmpMessage::DestinationUnreachable { quote, .. }
            | ScmpMessage::PacketTooBig { quote, .. }
            | ScmpMessage::ParameterProblem { quote, .. }
            | ScmpMessage::ExternalInterfaceDown { quote, .. }
            | ScmpMessage::InternalConnectivityDown { quote, .. } => Some(quote),
            ScmpMessage::Informational { .. } | ScmpMessage::Unknown { .. } => None,
        }
    }

    /// The offending packet's addresses, ports and path, if its header was quoted whole.
    pub fn quoted(&self) -> Option<Quoted<'a>> {
        decode_quote(self.quote()?)
    }

    /// Whether this message reports an interface (or AS-internal link) on `path` as down.
    pub fn affects_path(&self, path: &ScionPath) -> bool {
        let on_path = |ia: Ia, id: u64| {
            path.interfaces
                .iter()
                .any(|i| i.ia == ia && u64::from(i.id) == id)
        };
        match *self {
            ScmpMessage::ExternalInterfaceDown { ia, interface, .. } => on_path(ia, interface),
            ScmpMessage::InternalConnectivityDown {
                ia,
                ingress,
                egress,
                ..
            } => on_path(ia, ingress) && on_path(ia, egress),
            _ => false,
        }
    }
}

/// The header of a packet quoted in an SCMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// Its source (us, normally).
    pub src: ScionHost,
    /// Its destination.
    pub dst: ScionHost,
    /// UDP source port, if the packet was UDP and the ports were quoted.
    pub src_port: Option<u16>,
    /// UDP destination port, likewise.
    pub dst_port: Option<u16>,
    /// Its raw path (as it was when the error was raised).
    pub path: &'a [u8],
}

/// Decodes the header of a (possibly truncated) packet quoted in an SCMP error.
pub fn decode_quote(quote: &[u8]) -> Option<Quoted<'_>> {
    let (view, _) = ScionRawPacketView::try_from_slice(quote).ok()?;
    let h = view.header();
    let src = host_of(h.src_addr_type_info(), h.src_host_addr_bytes(), h.src_ia()).ok()?;
    let dst = host_of(h.dst_addr_type_info(), h.dst_host_addr_bytes(), h.dst_ia()).ok()?;
    let path = quote.get(h.path_offset()..h.header_len() as usize)?;
    let rest = quote.get(h.header_len() as usize..).unwrap_or_default();
    let (src_port, dst_port) = if u8::from(h.next_header()) == PROTO_UDP && rest.len() >= 4 {
        (
            Some(u16::from_be_bytes([rest[0], rest[1]])),
            Some(u16::from_be_bytes([rest[2], rest[3]])),
        )
    } else {
        (None, None)
    };
    Some(Quoted {
        src,
        dst,
        src_port,
        dst_port,
        path,
    })
}

// Small accessors over sciparse's header view, reading the raw address bytes and type nibbles.
trait HeaderExt {
    fn src_addr_type_info(&self) -> u8;
    fn dst_addr_type_info(&self) -> u8;
    fn src_host_addr_bytes(&self) -> &[u8];
    fn dst_host_addr_bytes(&self) -> &[u8];
}

impl HeaderExt for ScionHeaderView {
    fn src_addr_type_info(&self) -> u8 {
        self.as_slice()[9] & 0x0f
    }
    fn dst_addr_type_info(&self) -> u8 {
        self.as_slice()[9] >> 4
    }
    fn dst_host_addr_bytes(&self) -> &[u8] {
        let start = COMMON_HEADER_LEN + 16;
        let len = host_len(self.dst_addr_type_info());
        self.as_slice().get(start..start + len).unwrap_or_default()
    }
    fn src_host_addr_bytes(&self) -> &[u8] {
        let start = COMMON_HEADER_LEN + 16 + host_len(self.dst_addr_type_info());
        let len = host_len(self.src_addr_type_info());
        self.as_slice().get(start..start + len).unwrap_or_default()
    }
}

/// Host address length from the 4-bit type/length nibble (length = 4 * (DL + 1)).
fn host_len(info: u8) -> usize {
    4 * (usize::from(info & 0b11) + 1)
}

fn host_of(info: u8, bytes: &[u8], ia: Ia) -> Result<ScionHost, PacketError> {
    let host = match (info, bytes.len()) {
        (0b0000, 4) => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        (0b0011, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(PacketError::UnsupportedHostAddress(info)),
    };
    Ok(ScionHost { ia, host })
}

/// Decodes a received SCION packet (UDP or SCMP) without verifying the UDP checksum (QUIC
/// authenticates its packets anyway; see [`decode_checked`]).
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, PacketError> {
    decode_inner(buf, false)
}

/// Length of the SCION packet at the start of `buf` (header length + payload length from the
/// common header), if `buf` holds at least that much. Splits a UDP GRO buffer, in which the
/// kernel has glued several datagrams of one flow together, back into packets.
pub fn first_packet_len(buf: &[u8]) -> Option<usize> {
    let common = buf.get(..COMMON_HEADER_LEN)?;
    let total =
        usize::from(common[5]) * 4 + usize::from(u16::from_be_bytes([common[6], common[7]]));
    (total >= COMMON_HEADER_LEN && total <= buf.len()).then_some(total)
}

/// Like [`decode`], and rejects UDP datagrams whose checksum is wrong.
pub fn decode_checked(buf: &[u8]) -> Result<Decoded<'_>, PacketError> {
    decode_inner(buf, true)
}

fn decode_inner(buf: &[u8], verify: bool) -> Result<Decoded<'_>, PacketError> {
    if buf.len() < COMMON_HEADER_LEN {
        return Err(PacketError::Truncated {
            what: "common header",
            need: COMMON_HEADER_LEN,
            have: buf.len(),
        });
    }
    let version = buf[0] >> 4;
    if version != 0 {
        return Err(PacketError::UnsupportedVersion(version));
    }
    let path_type = buf[8];
    if path_type != PATH_TYPE_EMPTY && path_type != PATH_TYPE_SCION {
        return Err(PacketError::UnsupportedPathType(path_type));
    }
    let (view, _) = ScionRawPacketView::try_from_slice(buf).map_err(|e| layout_error(e, buf))?;
    let h = view.header();
    let header_len = h.header_len() as usize;
    let payload_len = h.payload_len() as usize;
    let Some(payload) = buf.get(header_len..header_len + payload_len) else {
        return Err(PacketError::Truncated {
            what: "payload",
            need: header_len + payload_len,
            have: buf.len(),
        });
    };
    let path = buf
        .get(h.path_offset()..header_len)
        .ok_or(PacketError::Malformed("path outside header"))?;
    if path_type == PATH_TYPE_SCION {
        check_path(path)?;
    }
    let src = host_of(h.src_addr_type_info(), h.src_host_addr_bytes(), h.src_ia())?;
    let dst = host_of(h.dst_addr_type_info(), h.dst_host_addr_bytes(), h.dst_ia())?;

    match u8::from(h.next_header()) {
        PROTO_UDP => {
            if payload.len() < UDP_HEADER_LEN {
                return Err(PacketError::Truncated {
                    what: "UDP header",
                    need: UDP_HEADER_LEN,
                    have: payload.len(),
                });
            }
            let udp_len = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
            if udp_len < UDP_HEADER_LEN || udp_len > payload.len() {
                return Err(PacketError::Malformed(
                    "UDP length disagrees with SCION payload length",
                ));
            }
            let segment = &payload[..udp_len];
            if verify {
                let sum = pseudo_sum(&buf[COMMON_HEADER_LEN..], h, udp_len, PROTO_UDP)
                    + sum_be_words(segment);
                if fold(sum) != 0xffff {
                    return Err(PacketError::BadChecksum);
                }
            }
            Ok(Decoded::Udp {
                src: ScionAddr::new(
                    src.ia,
                    src.host,
                    u16::from_be_bytes([payload[0], payload[1]]),
                ),
                dst: ScionAddr::new(
                    dst.ia,
                    dst.host,
                    u16::from_be_bytes([payload[2], payload[3]]),
                ),
                path,
                payload: &segment[UDP_HEADER_LEN..],
            })
        }
        PROTO_SCMP => Ok(Decoded::Scmp {
            src,
            dst,
            path,
            message: decode_scmp(payload)?,
        }),
        other => Err(PacketError::UnsupportedProtocol(other)),
    }
}

/// The unfolded pseudo-header sum (addresses, length, protocol) of a received packet.
fn pseudo_sum(addr: &[u8], h: &ScionHeaderView, len: usize, proto: u8) -> u64 {
    let addr_len = 16 + h.dst_host_addr_bytes().len() + h.src_host_addr_bytes().len();
    sum_be_words(addr.get(..addr_len).unwrap_or_default()) + len as u64 + u64::from(proto)
}

fn layout_error(e: sciparse::core::view::ViewConversionError, buf: &[u8]) -> PacketError {
    use sciparse::core::view::ViewConversionError as E;
    match e {
        E::BufferTooSmall { at, required, .. } => PacketError::Truncated {
            what: at,
            need: required,
            have: buf.len(),
        },
        E::Other("InvalidHeaderLength") => {
            PacketError::Malformed("header length field disagrees with the header contents")
        }
        E::Other("UnsupportedVersion") => PacketError::UnsupportedVersion(buf[0] >> 4),
        E::Other(_) => PacketError::Malformed("invalid header"),
    }
}

fn decode_scmp(payload: &[u8]) -> Result<ScmpMessage<'_>, PacketError> {
    if payload.len() < 4 {
        return Err(PacketError::Truncated {
            what: "SCMP header",
            need: 4,
            have: payload.len(),
        });
    }
    let (msg_type, code) = (payload[0], payload[1]);
    let (view, _) = ScmpPayloadView::try_from_slice(payload).map_err(|e| match e {
        sciparse::core::view::ViewConversionError::BufferTooSmall { required, .. } => {
            PacketError::Truncated {
                what: "SCMP message",
                need: required,
                have: payload.len(),
            }
        }
        sciparse::core::view::ViewConversionError::Other(_) => {
            PacketError::Malformed("invalid SCMP message")
        }
    })?;
    Ok(match view.message() {
        ScmpMessageView::DestinationUnreachable(m) => ScmpMessage::DestinationUnreachable {
            code: m.code(),
            quote: m.offending_packet(),
        },
        ScmpMessageView::PacketTooBig(m) => ScmpMessage::PacketTooBig {
            mtu: m.mtu(),
            quote: m.offending_packet(),
        },
        ScmpMessageView::ParameterProblem(m) => ScmpMessage::ParameterProblem {
            code: m.code(),
            pointer: m.pointer(),
            quote: m.offending_packet(),
        },
        ScmpMessageView::ExternalInterfaceDown(m) => ScmpMessage::ExternalInterfaceDown {
            ia: m.isd_asn(),
            interface: m.interface_id(),
            quote: m.offending_packet(),
        },
        ScmpMessageView::InternalConnectivityDown(m) => ScmpMessage::InternalConnectivityDown {
            ia: m.isd_asn(),
            ingress: m.ingress_interface_id(),
            egress: m.egress_interface_id(),
            quote: m.offending_packet(),
        },
        ScmpMessageView::EchoRequest(_)
        | ScmpMessageView::EchoReply(_)
        | ScmpMessageView::TracerouteRequest(_)
        | ScmpMessageView::TracerouteReply(_) => ScmpMessage::Informational { msg_type, code },
        ScmpMessageView::Unknown(_) => ScmpMessage::Unknown { msg_type, code },
    })
}

// ---------------------------------------------------------------------------------------------
// Paths

/// Segment lengths, number of info fields and of hop fields of a valid SCION path.
struct PathShape {
    infos: usize,
    hops: usize,
}

/// Checks that `raw` is a well-formed SCION (standard) dataplane path: segments without gaps,
/// at most 64 hops, length matching the segment lengths exactly, current indices in range.
fn check_path(raw: &[u8]) -> Result<PathShape, PacketError> {
    let Some(meta) = raw.first_chunk::<4>() else {
        return Err(PacketError::Truncated {
            what: "path meta header",
            need: PATH_META_LEN,
            have: raw.len(),
        });
    };
    let meta = u32::from_be_bytes(*meta);
    let curr_inf = (meta >> 30) as usize;
    let curr_hf = ((meta >> 24) & 0x3f) as usize;
    let segs = [
        ((meta >> 12) & 0x3f) as usize,
        ((meta >> 6) & 0x3f) as usize,
        (meta & 0x3f) as usize,
    ];
    if segs[0] == 0 {
        return Err(PacketError::InvalidPath("no segments"));
    }
    if segs[1] == 0 && segs[2] != 0 {
        return Err(PacketError::InvalidPath("empty middle segment"));
    }
    let infos = segs.iter().filter(|s| **s > 0).count();
    let hops: usize = segs.iter().sum();
    if hops > MAX_HOPS {
        return Err(PacketError::InvalidPath("more than 64 hop fields"));
    }
    let len = PATH_META_LEN + infos * INFO_FIELD_LEN + hops * HOP_FIELD_LEN;
    if raw.len() < len {
        return Err(PacketError::Truncated {
            what: "path",
            need: len,
            have: raw.len(),
        });
    }
    if raw.len() != len {
        return Err(PacketError::InvalidPath(
            "length does not match the segment lengths",
        ));
    }
    if curr_inf >= infos || curr_hf >= hops {
        return Err(PacketError::InvalidPath(
            "current info or hop field out of range",
        ));
    }
    Ok(PathShape { infos, hops })
}

/// Validates a raw path as it will go into a packet: empty, or a well-formed SCION path.
pub fn validate_path(raw: &[u8]) -> Result<(), PacketError> {
    if raw.is_empty() {
        Ok(())
    } else {
        check_path(raw).map(|_| ())
    }
}

/// The path for replying to a packet received over `raw`: info and hop fields in reverse order,
/// construction-direction flags flipped, current indices mirrored. The empty path reverses to
/// itself; reversing twice gives back the original.
pub fn reverse_path(raw: &[u8]) -> Result<Bytes, PacketError> {
    if raw.is_empty() {
        return Ok(Bytes::new());
    }
    check_path(raw)?;
    let mut out = raw.to_vec();
    let (view, _) = StandardPathView::try_from_mut_slice(&mut out)
        .map_err(|_| PacketError::InvalidPath("cannot view path"))?;
    view.try_reverse()
        .map_err(|_| PacketError::InvalidPath("cannot reverse path"))?;
    Ok(Bytes::from(out))
}

/// The interfaces each hop field of `raw` names, as (ingress, egress) in the direction of
/// travel (0 = none: the first and last hops, and the crossing of segments). Lets tests check
/// which interfaces a received packet traversed.
pub fn path_interfaces(raw: &[u8]) -> Result<Vec<(u16, u16)>, PacketError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let shape = check_path(raw)?;
    let (view, _) = StandardPathView::try_from_slice(raw)
        .map_err(|_| PacketError::InvalidPath("cannot view path"))?;
    let mut out = Vec::with_capacity(shape.hops);
    for (info, hops) in view.segments() {
        for hop in hops {
            out.push((hop.ingress_interface(info), hop.egress_interface(info)));
        }
    }
    Ok(out)
}

/// Number of ASes a raw path visits (1 for the empty path), `None` if malformed.
pub fn path_as_count(raw: &[u8]) -> Option<usize> {
    if raw.is_empty() {
        return Some(1);
    }
    let shape = check_path(raw).ok()?;
    // An AS where two segments meet has a hop field in each.
    Some(shape.hops - (shape.infos - 1))
}

/// When the hop fields of a raw path expire, `None` for the empty or a malformed path.
pub fn path_expiry(raw: &[u8]) -> Option<SystemTime> {
    if raw.is_empty() {
        return None;
    }
    check_path(raw).ok()?;
    let (view, _) = StandardPathView::try_from_slice(raw).ok()?;
    match view.expiration() {
        0 => None,
        secs => Some(UNIX_EPOCH + Duration::from_secs(u64::from(secs))),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn host_info(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 0b0000,
        IpAddr::V6(_) => 0b0011,
    }
}

fn push_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

fn ip_sum(ip: &IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(*a) >> 16) + u64::from(u32::from(*a) & 0xffff),
        IpAddr::V6(a) => {
            let v = u128::from(*a);
            (0..8).map(|i| ((v >> (16 * i)) & 0xffff) as u64).sum()
        }
    }
}

fn words_u64(v: u64) -> u64 {
    (v & 0xffff) + ((v >> 16) & 0xffff) + ((v >> 32) & 0xffff) + (v >> 48)
}

/// Checks the sizes and returns (SCION header length, path type).
fn header_len_for(
    src: &ScionAddr,
    dst: &ScionAddr,
    path: &[u8],
) -> Result<(usize, u8), PacketError> {
    validate_path(path)?;
    let addr_len = 16 + host_len(host_info(&src.host)) + host_len(host_info(&dst.host));
    let len = COMMON_HEADER_LEN + addr_len + path.len();
    if len > MAX_HEADER_LEN {
        return Err(PacketError::TooLarge("SCION header longer than 1020 bytes"));
    }
    let path_type = if path.is_empty() {
        PATH_TYPE_EMPTY
    } else {
        PATH_TYPE_SCION
    };
    Ok((len, path_type))
}

/// Appends the SCION header and the UDP header (length and checksum zero) to `out`, returns the
/// unfolded checksum sum of the pseudo-header addresses, the protocol and the ports.
fn push_headers(
    out: &mut Vec<u8>,
    src: &ScionAddr,
    dst: &ScionAddr,
    path: &[u8],
    header_len: usize,
    path_type: u8,
) -> u64 {
    out.extend_from_slice(&[
        0,
        ((FLOW_ID >> 16) & 0x0f) as u8,
        (FLOW_ID >> 8) as u8,
        FLOW_ID as u8,
        PROTO_UDP,
        (header_len / 4) as u8,
        0, // payload length, filled in per packet
        0,
        path_type,
        (host_info(&dst.host) << 4) | host_info(&src.host),
        0,
        0,
    ]);
    out.extend_from_slice(&dst.ia.to_u64().to_be_bytes());
    out.extend_from_slice(&src.ia.to_u64().to_be_bytes());
    push_ip(out, &dst.host);
    push_ip(out, &src.host);
    out.extend_from_slice(path);
    out.extend_from_slice(&src.port.to_be_bytes());
    out.extend_from_slice(&dst.port.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    words_u64(dst.ia.to_u64())
        + words_u64(src.ia.to_u64())
        + ip_sum(&dst.host)
        + ip_sum(&src.host)
        + u64::from(PROTO_UDP)
        + u64::from(src.port)
        + u64::from(dst.port)
}

/// Fills in the payload length, UDP length and checksum of a packet laid out as
/// `[SCION header (header_len)][UDP header][payload]` in `pkt`.
#[inline]
fn finish(pkt: &mut [u8], header_len: usize, partial: u64) {
    let udp_len = pkt.len() - header_len;
    let len_be = (udp_len as u16).to_be_bytes();
    pkt[6..8].copy_from_slice(&len_be);
    pkt[header_len + 4..header_len + 6].copy_from_slice(&len_be);
    // The length counts twice: in the pseudo-header and in the UDP header.
    let sum = partial + 2 * udp_len as u64 + sum_be_words(&pkt[header_len + UDP_HEADER_LEN..]);
    let checksum = !fold(sum);
    pkt[header_len + 6..header_len + 8].copy_from_slice(&checksum.to_be_bytes());
}

fn check_payload(payload_len: usize) -> Result<(), PacketError> {
    if payload_len + UDP_HEADER_LEN > usize::from(u16::MAX) {
        return Err(PacketError::TooLarge("UDP payload longer than 65527 bytes"));
    }
    Ok(())
}

/// Appends a SCION/UDP packet from `src` to `dst` over the raw dataplane `path` (empty: same AS)
/// carrying `payload` to `out`. On error nothing is appended.
pub fn encode_udp(
    src: &ScionAddr,
    dst: &ScionAddr,
    path: &[u8],
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), PacketError> {
    check_payload(payload.len())?;
    let (header_len, path_type) = header_len_for(src, dst, path)?;
    let start = out.len();
    out.reserve(header_len + UDP_HEADER_LEN + payload.len());
    let partial = push_headers(out, src, dst, path, header_len, path_type);
    out.extend_from_slice(payload);
    finish(&mut out[start..], header_len, partial);
    Ok(())
}

/// A reusable header template for one (source, destination, path): per packet only the
/// lengths and the checksum are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpEncoder {
    /// SCION header followed by the UDP header (lengths and checksum zero).
    template: Vec<u8>,
    header_len: usize,
    partial: u64,
}

impl UdpEncoder {
    /// Builds the template; fails if the path is malformed or the header too long.
    pub fn new(src: &ScionAddr, dst: &ScionAddr, path: &[u8]) -> Result<Self, PacketError> {
        let (header_len, path_type) = header_len_for(src, dst, path)?;
        let mut template = Vec::with_capacity(header_len + UDP_HEADER_LEN);
        let partial = push_headers(&mut template, src, dst, path, header_len, path_type);
        Ok(Self {
            template,
            header_len,
            partial,
        })
    }

    /// Bytes in front of the payload (SCION header and UDP header).
    pub fn overhead(&self) -> usize {
        self.template.len()
    }

    /// Appends a packet carrying `payload` to `out`.
    #[inline]
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), PacketError> {
        check_payload(payload.len())?;
        let start = out.len();
        out.reserve(self.template.len() + payload.len());
        out.extend_from_slice(&self.template);
        out.extend_from_slice(payload);
        finish(&mut out[start..], self.header_len, self.partial);
        Ok(())
    }

    /// Writes a packet carrying `payload` to the start of `out`, returns its length.
    #[inline]
    pub fn encode_into(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, PacketError> {
        check_payload(payload.len())?;
        let total = self.template.len() + payload.len();
        let Some(pkt) = out.get_mut(..total) else {
            return Err(PacketError::TooLarge("output buffer too small"));
        };
        pkt[..self.template.len()].copy_from_slice(&self.template);
        pkt[self.template.len()..].copy_from_slice(payload);
        finish(pkt, self.header_len, self.partial);
        Ok(total)
    }

    /// Turns `buf`, whose first [`overhead`](Self::overhead) bytes were left free and whose
    /// rest is the payload, into a packet in place (no copy of the payload).
    #[inline]
    pub fn encode_in_place(&self, buf: &mut [u8]) -> Result<(), PacketError> {
        let Some(payload_len) = buf.len().checked_sub(self.template.len()) else {
            return Err(PacketError::TooLarge("buffer shorter than the headers"));
        };
        check_payload(payload_len)?;
        buf[..self.template.len()].copy_from_slice(&self.template);
        finish(buf, self.header_len, self.partial);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Internet checksum

/// Unfolded ones'-complement sum of `data` read as big-endian 16-bit words (an odd last byte is
/// padded with zero). The result fits easily in a u64 for any packet size.
#[inline]
fn sum_be_words(data: &[u8]) -> u64 {
    // Sum the native-endian 32-bit halves of 64-bit words in four independent accumulators;
    // by RFC 1071's byte-order independence the folded result is the byte-swapped big-endian
    // sum on little-endian machines. (Each accumulator gains < 2^33 per 32 bytes: no overflow
    // for any packet.)
    #[inline(always)]
    fn halves(c: &[u8], i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&c[i..i + 8]);
        let v = u64::from_ne_bytes(w);
        (v & 0xffff_ffff) + (v >> 32)
    }
    let (mut s0, mut s1, mut s2, mut s3) = (0u64, 0u64, 0u64, 0u64);
    let mut chunks = data.chunks_exact(32);
    for c in &mut chunks {
        s0 += halves(c, 0);
        s1 += halves(c, 8);
        s2 += halves(c, 16);
        s3 += halves(c, 24);
    }
    let mut native = s0 + s1 + s2 + s3;
    let mut eights = chunks.remainder().chunks_exact(8);
    for c in &mut eights {
        native += halves(c, 0);
    }
    let mut be = u64::from(u16::from_be(fold(native)));
    let mut rest = eights.remainder().chunks_exact(2);
    for c in &mut rest {
        be += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = rest.remainder() {
        be += u64::from(*last) << 8;
    }
    be
}

/// Folds an unfolded sum to 16 bits (ones' complement, end-around carry).
#[inline]
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
pub(crate) mod tests;
