//! BEP 11 peer exchange (ut_pex), plus SCION peers.
//!
//! Message keys (all compact lists, big-endian):
//!
//! | key | entries |
//! |---|---|
//! | `added`, `dropped` | IPv4 peers, 6 bytes (BEP 11) |
//! | `added6`, `dropped6` | IPv6 peers, 18 bytes (BEP 11) |
//! | `added.scion`, `dropped.scion` | SCION peers with an IPv4 host: ISD-AS (8) + IPv4 (4) + port (2) = 14 bytes |
//! | `added6.scion`, `dropped6.scion` | SCION peers with an IPv6 host: ISD-AS (8) + IPv6 (16) + port (2) = 26 bytes |
//! | `added.f`, `added6.f`, `added.scion.f`, `added6.scion.f` | one flag byte per added entry |
//!
//! The SCION entries are the compact form of the SCION DHT (netsys-lab/dht). IPv4 and IPv6
//! hosts get separate keys, as in BEP 11: a list of mixed 14- and 26-byte entries could not
//! be split unambiguously. Clients that do not know the SCION keys ignore them.
//!
//! Decoding is lenient per key: a list whose length is not a multiple of its entry size is
//! skipped, a flag list of the wrong length means "no flags", entries with port 0 are
//! dropped. [`PexState`] adds the rate limits and caps.

mod state;

use bt_bencode::{DictWriter, Value};
use scion_addr::{compact, PeerAddr};

use crate::bencode::{split_dict, NotADict};

pub use state::{PexState, Received, MAX_PEERS_PER_MESSAGE, MAX_RECEIVED_PER_MESSAGE};

/// BEP 11 `added.f` flags of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexFlags(pub u8);

impl PexFlags {
    pub const PREFERS_ENCRYPTION: u8 = 0x01;
    /// The peer is a seed (upload only).
    pub const SEED: u8 = 0x02;
    pub const SUPPORTS_UTP: u8 = 0x04;
    pub const SUPPORTS_HOLEPUNCH: u8 = 0x08;
    /// The sender connected to the peer itself: it accepts incoming connections.
    pub const REACHABLE: u8 = 0x10;

    pub fn is_seed(self) -> bool {
        self.0 & Self::SEED != 0
    }
}

/// A ut_pex message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    pub added: Vec<(PeerAddr, PexFlags)>,
    pub dropped: Vec<PeerAddr>,
}

/// The four address families, in the order decoding returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    V4,
    V6,
    ScionV4,
    ScionV6,
}

impl Family {
    const ALL: [Family; 4] = [Family::V4, Family::V6, Family::ScionV4, Family::ScionV6];

    fn of(a: &PeerAddr) -> Family {
        match a {
            PeerAddr::Ip(s) if s.is_ipv4() => Family::V4,
            PeerAddr::Ip(_) => Family::V6,
            PeerAddr::Scion(s) if s.host.is_ipv4() => Family::ScionV4,
            PeerAddr::Scion(_) => Family::ScionV6,
        }
    }

    fn keys(self) -> (&'static [u8], &'static [u8], &'static [u8]) {
        match self {
            Family::V4 => (b"added", b"added.f", b"dropped"),
            Family::V6 => (b"added6", b"added6.f", b"dropped6"),
            Family::ScionV4 => (b"added.scion", b"added.scion.f", b"dropped.scion"),
            Family::ScionV6 => (b"added6.scion", b"added6.scion.f", b"dropped6.scion"),
        }
    }

    fn entry_len(self) -> usize {
        match self {
            Family::V4 => compact::IP_V4_LEN,
            Family::V6 => compact::IP_V6_LEN,
            Family::ScionV4 => compact::SCION_V4_LEN,
            Family::ScionV6 => compact::SCION_V6_LEN,
        }
    }

    fn read(self, b: &[u8]) -> Option<PeerAddr> {
        let a = match self {
            Family::V4 | Family::V6 => compact::read_ip(b).map(PeerAddr::Ip),
            Family::ScionV4 | Family::ScionV6 => compact::read_scion(b).map(PeerAddr::Scion),
        }?;
        (a.port() != 0).then_some(a)
    }
}

fn write_addr(a: &PeerAddr, out: &mut Vec<u8>) {
    match a {
        PeerAddr::Ip(s) => compact::write_ip(*s, out),
        PeerAddr::Scion(s) => compact::write_scion(s, out),
    }
}

/// One family's `added`, `added.f` and `dropped` values.
type KeyValues<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);

/// A ut_pex payload that is not a bencoded dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ut_pex message: {0}")]
pub struct PexError(#[from] NotADict);

/// Decodes a ut_pex payload. Pure; the fuzz target calls it. Output order: IPv4, IPv6,
/// SCION/IPv4, SCION/IPv6 (each in message order).
pub fn decode_pex_message(payload: &[u8]) -> Result<PexMessage, PexError> {
    let (dict, _trailing) = split_dict(payload)?;
    let bytes = |key: &[u8]| dict.get(key).and_then(Value::as_bytes);
    let lists: [KeyValues<'_>; 4] = Family::ALL.map(|f| {
        let (a, af, d) = f.keys();
        (bytes(a), bytes(af), bytes(d))
    });
    let mut msg = PexMessage::default();
    for (f, (added, flags, dropped)) in Family::ALL.into_iter().zip(lists) {
        let n = f.entry_len();
        if let Some(added) = added.filter(|a| a.len() % n == 0) {
            let flags = flags.filter(|fl| fl.len() * n == added.len());
            for (i, entry) in added.chunks_exact(n).enumerate() {
                if let Some(a) = f.read(entry) {
                    let fl = flags.map_or(0, |fl| fl[i]);
                    msg.added.push((a, PexFlags(fl)));
                }
            }
        }
        if let Some(dropped) = dropped.filter(|d| d.len() % n == 0) {
            msg.dropped
                .extend(dropped.chunks_exact(n).filter_map(|e| f.read(e)));
        }
    }
    Ok(msg)
}

impl PexMessage {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    /// The payload to send after the peer's ut_pex extended message id. BEP 11's keys are
    /// always present (libtorrent expects them); the SCION keys only when non-empty.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = DictWriter::new();
        for f in Family::ALL {
            let (ka, kf, _) = f.keys();
            let (mut list, mut flags) = (Vec::new(), Vec::new());
            for (a, fl) in self.added.iter().filter(|(a, _)| Family::of(a) == f) {
                write_addr(a, &mut list);
                flags.push(fl.0);
            }
            if matches!(f, Family::V4 | Family::V6) || !list.is_empty() {
                w.bytes(ka, &list).bytes(kf, &flags);
            }
        }
        for f in Family::ALL {
            let (_, _, kd) = f.keys();
            let mut list = Vec::new();
            for a in self.dropped.iter().filter(|a| Family::of(a) == f) {
                write_addr(a, &mut list);
            }
            if matches!(f, Family::V4 | Family::V6) || !list.is_empty() {
                w.bytes(kd, &list);
            }
        }
        w.finish()
    }

    /// This message with entries grouped the way decoding returns them.
    pub fn canonical(&self) -> PexMessage {
        let mut m = self.clone();
        m.added.sort_by_key(|(a, _)| Family::of(a));
        m.dropped.sort_by_key(Family::of);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PeerAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bep11_and_scion_keys() {
        let m = PexMessage {
            added: vec![
                (p("1.2.3.4:5"), PexFlags(PexFlags::SEED)),
                (p("1-ff00:0:112,[10.0.0.1]:258"), PexFlags(0x10)),
                (p("[::1]:6881"), PexFlags(0)),
                (p("2-64512,[fd00::2]:7"), PexFlags(1)),
            ],
            dropped: vec![p("9.9.9.9:9"), p("1-ff00:0:112,[10.0.0.2]:1")],
        };
        let enc = m.encode();
        let want_start = b"d5:added6:\x01\x02\x03\x04\x00\x057:added.f1:\x02\
            11:added.scion14:\x00\x01\xff\x00\x00\x00\x01\x12\x0a\x00\x00\x01\x01\x02\
            13:added.scion.f1:\x10";
        assert!(enc.starts_with(want_start), "{enc:?}");
        assert!(enc.windows(19).any(|w| w == b"13:dropped.scion14:"));
        assert!(!enc.windows(17).any(|w| w == b"14:dropped6.scion"));
        assert_eq!(decode_pex_message(&enc).unwrap(), m.canonical());
        assert_eq!(m.canonical().added[1].0, p("[::1]:6881"));
    }

    #[test]
    fn empty_message_has_bep11_keys() {
        assert_eq!(
            PexMessage::default().encode(),
            b"d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e"
        );
    }

    #[test]
    fn lenient_per_key() {
        // Bad `added` length is skipped; wrong flag count means no flags; port 0 dropped;
        // the v6 list still counts.
        let mut v = b"d5:added7:1234567".to_vec();
        v.extend_from_slice(b"6:added618:");
        v.extend_from_slice(&[0; 15]);
        v.extend_from_slice(&[1, 0, 80]);
        v.extend_from_slice(b"8:added6.f2:ab7:dropped6:\x01\x01\x01\x01\x00\x00e");
        let m = decode_pex_message(&v).unwrap();
        assert_eq!(m.added, vec![(p("[::1]:80"), PexFlags(0))]);
        assert!(m.dropped.is_empty());
        assert!(decode_pex_message(b"le").is_err());
        assert!(decode_pex_message(b"d5:addedi1ee").unwrap().is_empty());
    }
}
