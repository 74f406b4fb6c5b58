//! The uTP packet: a 20-byte header (version 1), a chain of extensions, the payload.

use crate::error::PacketError;

/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 20;
/// Extension type of the selective ACK (BEP 29).
pub const EXT_SACK: u8 = 1;
/// Longest selective-ACK bitmask we send: 256 packets past `ack_nr + 1`, libtorrent's limit.
pub const MAX_SACK_BYTES: usize = 32;

/// The five packet types of BEP 29, with their wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Data = 0,
    Fin = 1,
    State = 2,
    Reset = 3,
    Syn = 4,
}

impl PacketType {
    fn from_wire(n: u8) -> Result<Self, PacketError> {
        Ok(match n {
            0 => Self::Data,
            1 => Self::Fin,
            2 => Self::State,
            3 => Self::Reset,
            4 => Self::Syn,
            n => return Err(PacketError::Type(n)),
        })
    }
}

/// The fixed header's fields (the extension field is derived from what follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ty: PacketType,
    pub conn_id: u16,
    pub timestamp_us: u32,
    pub timestamp_diff_us: u32,
    pub wnd_size: u32,
    pub seq_nr: u16,
    pub ack_nr: u16,
}

/// A decoded packet borrowing the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub header: Header,
    /// The selective-ACK bitmask: bit `i` (least significant bit of byte 0 first) stands for
    /// `ack_nr + 2 + i`.
    pub sack: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses a datagram. Unknown extensions are skipped (libtorrent sends its own); a later
    /// selective ACK replaces an earlier one.
    pub fn decode(buf: &'a [u8]) -> Result<Self, PacketError> {
        if buf.len() < HEADER_LEN {
            return Err(PacketError::Short(buf.len()));
        }
        let version = buf[0] & 0x0f;
        if version != 1 {
            return Err(PacketError::Version(version));
        }
        let ty = PacketType::from_wire(buf[0] >> 4)?;
        let u16_at = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let header = Header {
            ty,
            conn_id: u16_at(2),
            timestamp_us: u32_at(4),
            timestamp_diff_us: u32_at(8),
            wnd_size: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
        };
        let mut next = buf[1];
        let mut rest = &buf[HEADER_LEN..];
        let mut sack = None;
        // Every extension takes at least two bytes, so the chain ends with the datagram.
        while next != 0 {
            let [ext_next, len, tail @ ..] = rest else {
                return Err(PacketError::TruncatedExtension);
            };
            let len = usize::from(*len);
            if tail.len() < len {
                return Err(PacketError::TruncatedExtension);
            }
            let (data, tail) = tail.split_at(len);
            if next == EXT_SACK {
                if data.is_empty() {
                    return Err(PacketError::EmptySack);
                }
                sack = Some(data);
            }
            next = *ext_next;
            rest = tail;
        }
        Ok(Packet {
            header,
            sack,
            payload: rest,
        })
    }
}

/// Appends a packet to `out`. `sack`, when given, is sent as it is (its length a multiple of
/// four, at most [`MAX_SACK_BYTES`], as BEP 29 asks).
pub fn encode(header: &Header, sack: Option<&[u8]>, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + sack.map_or(0, |s| 2 + s.len()) + payload.len());
    out.push(((header.ty as u8) << 4) | 1);
    out.push(if sack.is_some() { EXT_SACK } else { 0 });
    out.extend_from_slice(&header.conn_id.to_be_bytes());
    out.extend_from_slice(&header.timestamp_us.to_be_bytes());
    out.extend_from_slice(&header.timestamp_diff_us.to_be_bytes());
    out.extend_from_slice(&header.wnd_size.to_be_bytes());
    out.extend_from_slice(&header.seq_nr.to_be_bytes());
    out.extend_from_slice(&header.ack_nr.to_be_bytes());
    if let Some(sack) = sack {
        out.push(0);
        // The bitmask is built by us, never longer than MAX_SACK_BYTES.
        out.push(u8::try_from(sack.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&sack[..sack.len().min(usize::from(u8::MAX))]);
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(ty: PacketType) -> Header {
        Header {
            ty,
            conn_id: 0xbeef,
            timestamp_us: 0x0102_0304,
            timestamp_diff_us: 0xa0b0_c0d0,
            wnd_size: 1 << 20,
            seq_nr: 0xfffe,
            ack_nr: 7,
        }
    }

    #[test]
    fn round_trip_with_and_without_sack() {
        let mut out = Vec::new();
        encode(&header(PacketType::Data), None, b"hello", &mut out);
        assert_eq!(out.len(), HEADER_LEN + 5);
        assert_eq!(out[0], 0x01);
        let p = Packet::decode(&out).unwrap();
        assert_eq!(p.header, header(PacketType::Data));
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.sack, None);

        out.clear();
        encode(
            &header(PacketType::State),
            Some(&[1, 2, 3, 4]),
            b"",
            &mut out,
        );
        assert_eq!(out[0], 0x21);
        assert_eq!(out[1], EXT_SACK);
        let p = Packet::decode(&out).unwrap();
        assert_eq!(p.header.ty, PacketType::State);
        assert_eq!(p.sack, Some(&[1u8, 2, 3, 4][..]));
        assert!(p.payload.is_empty());
    }

    #[test]
    fn known_bytes_of_a_syn() {
        // A SYN as libtorrent sends it: type 4, version 1, no extension.
        let bytes = [
            0x41, 0, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0,
        ];
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.header.ty, PacketType::Syn);
        assert_eq!(p.header.conn_id, 0x1234);
        assert_eq!(p.header.timestamp_us, 1);
        assert_eq!(p.header.wnd_size, 0x0010_0000);
        assert_eq!(p.header.seq_nr, 1);
        assert_eq!(p.header.ack_nr, 0);
    }

    #[test]
    fn unknown_extensions_are_skipped() {
        let mut bytes = Vec::new();
        encode(&header(PacketType::Data), None, b"", &mut bytes);
        bytes[1] = 2; // libtorrent's extension bits first
        bytes.extend_from_slice(&[EXT_SACK, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0, 4, 0xff, 0, 0, 0]);
        bytes.extend_from_slice(b"payload");
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!(p.sack, Some(&[0xffu8, 0, 0, 0][..]));
        assert_eq!(p.payload, b"payload");
    }

    #[test]
    fn hostile_headers_are_refused() {
        assert_eq!(Packet::decode(&[0x41; 19]), Err(PacketError::Short(19)));
        let mut bytes = Vec::new();
        encode(&header(PacketType::Data), None, b"", &mut bytes);
        bytes[0] = 0x02;
        assert_eq!(Packet::decode(&bytes), Err(PacketError::Version(2)));
        bytes[0] = 0x51;
        assert_eq!(Packet::decode(&bytes), Err(PacketError::Type(5)));
        bytes[0] = 0x01;
        bytes[1] = EXT_SACK;
        assert_eq!(Packet::decode(&bytes), Err(PacketError::TruncatedExtension));
        bytes.extend_from_slice(&[0, 9, 1, 2]);
        assert_eq!(Packet::decode(&bytes), Err(PacketError::TruncatedExtension));
        bytes.truncate(HEADER_LEN);
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(Packet::decode(&bytes), Err(PacketError::EmptySack));
    }
}
