//! The handshake router's sans-IO part: an incoming lane's first bytes are buffered until the
//! BitTorrent handshake names an info hash (its first 48 bytes), which picks the torrent.

use super::control::InfoHash;

/// Bytes of a handshake up to and including the info hash.
pub const HANDSHAKE_PREFIX: usize = 48;
/// `\x13BitTorrent protocol`
const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// What the buffered bytes say so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    NeedMore,
    Torrent(InfoHash),
    /// Not a BitTorrent handshake: close the lane.
    NotBitTorrent,
}

/// Looks at the first bytes of an incoming lane.
pub fn sniff(buf: &[u8]) -> Sniff {
    let seen = buf.len().min(PROTOCOL.len());
    if buf[..seen] != PROTOCOL[..seen] {
        return Sniff::NotBitTorrent;
    }
    let Some(ih) = buf.get(28..HANDSHAKE_PREFIX) else {
        return Sniff::NeedMore;
    };
    let mut out = [0u8; 20];
    out.copy_from_slice(ih);
    Sniff::Torrent(out)
}

/// An incoming lane held until its handshake names a torrent.
#[derive(Debug, Default)]
pub struct PendingLane {
    pub buffered: Vec<u8>,
}

impl PendingLane {
    /// Appends received bytes; more than a handshake is never needed, so a remote cannot make
    /// us buffer much (the rest stays with the transport until the lane is handed over).
    pub fn push(&mut self, data: &[u8]) -> Sniff {
        self.buffered.extend_from_slice(data);
        sniff(&self.buffered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Handshake;

    fn handshake(ih: InfoHash) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        Handshake::new(ih, [7; 20]).encode(&mut b);
        b.to_vec()
    }

    #[test]
    fn names_the_torrent_after_48_bytes_however_they_arrive() {
        let hs = handshake([9; 20]);
        let mut p = PendingLane::default();
        for chunk in hs[..47].chunks(5) {
            assert_eq!(p.push(chunk), Sniff::NeedMore);
        }
        assert_eq!(p.push(&hs[47..]), Sniff::Torrent([9; 20]));
        // Everything read stays buffered for the torrent's session.
        assert_eq!(p.buffered, hs);
    }

    #[test]
    fn refuses_other_protocols_early() {
        assert_eq!(sniff(b"GET / HTTP/1.1"), Sniff::NotBitTorrent);
        assert_eq!(sniff(b"\x13BitTorrent"), Sniff::NeedMore);
        assert_eq!(sniff(b""), Sniff::NeedMore);
    }
}
