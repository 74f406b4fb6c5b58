//! The 68-byte BitTorrent handshake (BEP 3) and its reserved bits.

use bytes::{BufMut, BytesMut};

use super::WireError;

/// Protocol string, sent after its length byte (19).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Handshake length: 1 + 19 + 8 reserved + 20 info hash + 20 peer id.
pub const HANDSHAKE_LEN: usize = 68;

/// Reserved byte 5, bit 0x10: BEP 10 extension protocol.
pub const EXTENSION_BIT: (usize, u8) = (5, 0x10);
/// Reserved byte 7, bit 0x04: BEP 6 fast extension.
pub const FAST_BIT: (usize, u8) = (7, 0x04);
/// Reserved byte 7, bit 0x01: BEP 5 DHT.
pub const DHT_BIT: (usize, u8) = (7, 0x01);

/// A BitTorrent handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// The 8 reserved bytes (capability bits).
    pub reserved: [u8; 8],
    /// Torrent info hash.
    pub info_hash: [u8; 20],
    /// Sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// A handshake advertising the fast extension and the extension protocol.
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Self {
        let mut h = Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        };
        h.set_fast(true);
        h.set_extensions(true);
        h
    }

    fn bit(&self, (byte, mask): (usize, u8)) -> bool {
        self.reserved[byte] & mask != 0
    }

    fn set_bit(&mut self, (byte, mask): (usize, u8), on: bool) {
        if on {
            self.reserved[byte] |= mask;
        } else {
            self.reserved[byte] &= !mask;
        }
    }

    /// BEP 6 fast extension advertised.
    pub fn supports_fast(&self) -> bool {
        self.bit(FAST_BIT)
    }

    /// BEP 10 extension protocol advertised.
    pub fn supports_extensions(&self) -> bool {
        self.bit(EXTENSION_BIT)
    }

    /// BEP 5 DHT advertised.
    pub fn supports_dht(&self) -> bool {
        self.bit(DHT_BIT)
    }

    /// The handshake we send: fast extension (BEP 6) and extension protocol (BEP 10) on, the
    /// DHT bit (BEP 5) when we run a DHT node.
    pub fn ours(info_hash: [u8; 20], peer_id: [u8; 20], dht: bool) -> Self {
        let mut hs = Handshake::new(info_hash, peer_id);
        hs.set_fast(true);
        hs.set_extensions(true);
        hs.set_dht(dht);
        hs
    }

    /// Sets or clears the fast-extension bit.
    pub fn set_fast(&mut self, on: bool) {
        self.set_bit(FAST_BIT, on)
    }

    /// Sets or clears the extension-protocol bit.
    pub fn set_extensions(&mut self, on: bool) {
        self.set_bit(EXTENSION_BIT, on)
    }

    /// Sets or clears the DHT bit (BEP 5: we run a DHT node and send `port`).
    pub fn set_dht(&mut self, on: bool) {
        self.set_bit(DHT_BIT, on)
    }

    /// The 68 wire bytes.
    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut b = [0u8; HANDSHAKE_LEN];
        b[0] = PROTOCOL.len() as u8;
        b[1..20].copy_from_slice(PROTOCOL);
        b[20..28].copy_from_slice(&self.reserved);
        b[28..48].copy_from_slice(&self.info_hash);
        b[48..68].copy_from_slice(&self.peer_id);
        b
    }

    /// Appends the 68 wire bytes to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_slice(&self.to_bytes());
    }

    /// Decodes a handshake from the start of `buf`.
    ///
    /// Returns `Ok(None)` while fewer than 68 bytes are available, but rejects
    /// a wrong protocol prefix as soon as the bytes that differ arrive. Does
    /// not consume anything; on success the handshake is `buf[..68]`.
    pub fn decode(buf: &[u8]) -> Result<Option<Handshake>, WireError> {
        let mut expected = [0u8; 20];
        expected[0] = PROTOCOL.len() as u8;
        expected[1..].copy_from_slice(PROTOCOL);
        let n = buf.len().min(20);
        if buf[..n] != expected[..n] {
            return Err(WireError::BadProtocol);
        }
        if buf.len() < HANDSHAKE_LEN {
            return Ok(None);
        }
        let mut h = Handshake {
            reserved: [0; 8],
            info_hash: [0; 20],
            peer_id: [0; 20],
        };
        h.reserved.copy_from_slice(&buf[20..28]);
        h.info_hash.copy_from_slice(&buf[28..48]);
        h.peer_id.copy_from_slice(&buf[48..68]);
        Ok(Some(h))
    }

    /// The info hash from a partial handshake (available after 48 bytes),
    /// for routing an incoming connection before the peer id arrives.
    pub fn peek_info_hash(buf: &[u8]) -> Result<Option<[u8; 20]>, WireError> {
        Self::decode(buf).or(Err(WireError::BadProtocol))?;
        if buf.len() < 48 {
            return Ok(None);
        }
        let mut ih = [0u8; 20];
        ih.copy_from_slice(&buf[28..48]);
        Ok(Some(ih))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_bits() {
        let mut h = Handshake::new([1; 20], [2; 20]);
        assert!(h.supports_fast() && h.supports_extensions() && !h.supports_dht());
        assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        let b = h.to_bytes();
        assert_eq!(&b[..20], b"\x13BitTorrent protocol");
        assert_eq!(Handshake::decode(&b).unwrap(), Some(h));
        h.set_fast(false);
        h.set_extensions(false);
        assert_eq!(h.reserved, [0; 8]);
        let mut buf = BytesMut::new();
        h.encode(&mut buf);
        assert_eq!(Handshake::decode(&buf).unwrap(), Some(h));
    }

    #[test]
    fn partial_and_bad() {
        let b = Handshake::new([1; 20], [2; 20]).to_bytes();
        for n in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::decode(&b[..n]).unwrap(), None);
        }
        assert_eq!(Handshake::peek_info_hash(&b[..47]).unwrap(), None);
        assert_eq!(Handshake::peek_info_hash(&b[..48]).unwrap(), Some([1; 20]));
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent protocoX"),
            Err(WireError::BadProtocol)
        );
        assert_eq!(Handshake::decode(b"\x12"), Err(WireError::BadProtocol));
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1"),
            Err(WireError::BadProtocol)
        );
        assert!(Handshake::peek_info_hash(b"x").is_err());
    }
}
