//! BEP 10 extension protocol: the extension handshake dictionary — the one codec for it.
//!
//! Read with bt-bencode's lenient rules ([`DECODER`]): keys in any order, as peers send them
//! (the first of duplicate keys wins), depth-limited. A payload that is not a bencoded
//! dictionary is [`WireError::Extension`], which is non-fatal — the peer just gets no
//! extensions. Written with the one writer (keys sorted).
//!
//! One key beyond BEP 10: `yourip.scion`, the address a SCION peer sees us at, in the compact
//! SCION form (ISD-AS 8 bytes + IPv4/IPv6 + port: 14 or 26 bytes). Other clients ignore it;
//! BEP 10's `yourip` (4 or 16 bytes, no port) stays for IP peers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bt_bencode::{Decoder, DictWriter, Value};
use bytes::Bytes;
use scion_addr::{compact, ScionAddr};

use super::message::Message;
use super::WireError;

/// Extended message id of the extension handshake.
pub const EXTENSION_HANDSHAKE_ID: u8 = 0;
/// The id we want ut_metadata (BEP 9) messages on (the one libtorrent uses too).
pub const UT_METADATA_ID: u8 = 2;
/// The id we want ut_pex (BEP 11) messages on (libtorrent's too).
pub const UT_PEX_ID: u8 = 1;
/// Key of the SCION form of `yourip`.
pub const YOURIP_SCION_KEY: &str = "yourip.scion";
/// How extension payloads are read: leniently (peers send unsorted keys), at most 16 levels
/// deep; integers too large for their field are ignored like any mistyped field.
pub const DECODER: Decoder = Decoder::LENIENT
    .with_max_depth(16)
    .with_max_items(64 * 1024)
    .with_big_integers(true);

/// Why an extension payload is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error(transparent)]
    Bencode(#[from] bt_bencode::Error),
    #[error("handshake is not a dictionary")]
    NotADict,
}

/// The BEP 10 handshake dictionary. Unknown keys are preserved in `extra`
/// (as raw bencoded values) and re-emitted by [`ExtensionHandshake::encode`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// `m`: extension name → the id the *sender* wants to receive it on
    /// (0 = disabled). Entries with non-UTF-8 names or ids > 255 are dropped.
    pub m: BTreeMap<String, u8>,
    /// `v`: client name and version.
    pub v: Option<String>,
    /// `p`: sender's listen port.
    pub p: Option<u16>,
    /// `reqq`: how many outstanding requests the sender accepts.
    pub reqq: Option<u32>,
    /// `yourip`: our address as the sender sees it (4 or 16 bytes on the wire).
    pub yourip: Option<IpAddr>,
    /// `yourip.scion`: our SCION address (with port) as a SCION sender sees it.
    pub yourip_scion: Option<ScionAddr>,
    /// `ipv4`: sender's IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: sender's IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `metadata_size` (BEP 9): size of the info dictionary.
    pub metadata_size: Option<u64>,
    /// Any other key → its raw bencoded value. Values must be valid bencode.
    pub extra: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::V4(Ipv4Addr::from(a)));
    }
    <[u8; 16]>::try_from(b)
        .ok()
        .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

/// A value's bytes: lists and dictionaries exactly as received, scalars re-encoded.
fn raw_value(v: &Value<'_>) -> Vec<u8> {
    match v {
        Value::List(l) => l.raw().to_vec(),
        Value::Dict(d) => d.raw().to_vec(),
        scalar => scalar.to_bytes(),
    }
}

impl ExtensionHandshake {
    /// Parses an extension handshake payload (the bytes after the extended id).
    /// Fields of unexpected type or range are ignored; a payload that is not a
    /// bencoded dictionary is an error. Bytes after the dictionary are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let (root, _used) = DECODER
            .decode_prefix(payload)
            .map_err(|e| WireError::Extension(e.into()))?;
        let Value::Dict(d) = root else {
            return Err(WireError::Extension(ExtensionError::NotADict));
        };
        let mut h = ExtensionHandshake::default();
        for (k, v) in d.iter() {
            let bytes = v.as_bytes();
            match k {
                b"m" => {
                    for (name, id) in v.as_dict().into_iter().flat_map(|m| m.iter()) {
                        let id = id.as_int().and_then(|i| u8::try_from(i).ok());
                        if let (Ok(name), Some(id)) = (std::str::from_utf8(name), id) {
                            h.m.insert(name.to_owned(), id);
                        }
                    }
                }
                b"v" => h.v = bytes.map(|b| String::from_utf8_lossy(b).into_owned()),
                b"p" => {
                    h.p = v
                        .as_int()
                        .and_then(|i| u16::try_from(i).ok())
                        .filter(|&p| p != 0)
                }
                b"reqq" => h.reqq = v.as_int().and_then(|i| u32::try_from(i).ok()),
                b"metadata_size" => {
                    h.metadata_size = v.as_int().and_then(|i| u64::try_from(i).ok())
                }
                b"yourip" => h.yourip = bytes.and_then(ip_of),
                b"yourip.scion" => h.yourip_scion = bytes.and_then(compact::read_scion),
                b"ipv4" => {
                    h.ipv4 = bytes
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(Into::into)
                }
                b"ipv6" => {
                    h.ipv6 = bytes
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Into::into)
                }
                _ => {
                    h.extra.insert(k.to_vec(), raw_value(v));
                }
            }
        }
        Ok(h)
    }

    /// Canonical bencoding of this handshake (sorted keys). Modelled keys win over the same
    /// key in `extra`.
    pub fn encode(&self) -> Result<Bytes, WireError> {
        let mut d = DictWriter::new();
        for (k, v) in &self.extra {
            d.raw(k, v.as_slice());
        }
        let mut m = DictWriter::new();
        for (name, id) in &self.m {
            m.int(name, i64::from(*id));
        }
        d.dict("m", m);
        if let Some(v) = &self.v {
            d.bytes("v", v);
        }
        if let Some(p) = self.p {
            d.int("p", i64::from(p));
        }
        if let Some(r) = self.reqq {
            d.int("reqq", i64::from(r));
        }
        if let Some(s) = self.metadata_size {
            d.int("metadata_size", i64::try_from(s).unwrap_or(i64::MAX));
        }
        match self.yourip {
            Some(IpAddr::V4(a)) => d.bytes("yourip", a.octets()),
            Some(IpAddr::V6(a)) => d.bytes("yourip", a.octets()),
            None => &mut d,
        };
        if let Some(a) = &self.yourip_scion {
            let mut c = Vec::with_capacity(compact::SCION_V6_LEN);
            compact::write_scion(a, &mut c);
            d.bytes(YOURIP_SCION_KEY, c);
        }
        if let Some(a) = self.ipv4 {
            d.bytes("ipv4", a.octets());
        }
        if let Some(a) = self.ipv6 {
            d.bytes("ipv6", a.octets());
        }
        Ok(Bytes::from(d.finish()))
    }

    /// The `Extended { id: 0, .. }` message carrying this handshake.
    pub fn to_message(&self) -> Result<Message, WireError> {
        Ok(Message::Extended {
            id: EXTENSION_HANDSHAKE_ID,
            payload: self.encode()?,
        })
    }

    /// Id the peer wants extension `name` sent with, if enabled (non-zero).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut h = ExtensionHandshake {
            v: Some("btscion 0.1".into()),
            p: Some(6881),
            reqq: Some(500),
            yourip: Some("10.1.2.3".parse().unwrap()),
            ipv6: Some("::1".parse().unwrap()),
            metadata_size: Some(31337),
            ..Default::default()
        };
        h.m.insert("ut_metadata".into(), 3);
        h.m.insert("ut_pex".into(), 1);
        h.extra.insert(b"upload_only".to_vec(), b"i1e".to_vec());
        let enc = h.encode().unwrap();
        assert_eq!(
            &enc[..],
            &b"d4:ipv616:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x011:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei31337e1:pi6881e4:reqqi500e11:upload_onlyi1e1:v11:btscion 0.16:yourip4:\x0a\x01\x02\x03e"[..]
        );
        let back = ExtensionHandshake::decode(&enc).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.id_of("ut_metadata"), Some(3));
        assert_eq!(back.id_of("nope"), None);
        match h.to_message().unwrap() {
            Message::Extended { id: 0, payload } => assert_eq!(payload, enc),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn lenient_fields_and_extras() {
        let h = ExtensionHandshake::decode(
            b"d1:ai1e1:md1:xi300e1:yi0e1:zi-1e2:zzi7ee1:pi70000e4:reqq1:x1:vi5e6:yourip3:abce",
        )
        .unwrap();
        assert_eq!(h.m.len(), 2);
        assert_eq!(h.m["y"], 0);
        assert_eq!(h.id_of("y"), None);
        assert_eq!(h.id_of("zz"), Some(7));
        assert_eq!(
            (h.p, h.reqq, h.v.clone(), h.yourip),
            (None, None, None, None)
        );
        assert_eq!(h.extra[&b"a"[..]], b"i1e");
        // Extras with nested structure survive a round trip byte for byte.
        let raw = b"d1:ad1:bl1:ci2eee1:mdee";
        let h = ExtensionHandshake::decode(raw).unwrap();
        assert_eq!(&h.encode().unwrap()[..], &raw[..]);
    }

    #[test]
    fn errors() {
        for bad in [&b""[..], b"i1e", b"le", b"d1:m"] {
            assert!(
                matches!(
                    ExtensionHandshake::decode(bad),
                    Err(WireError::Extension(_))
                ),
                "{bad:?}"
            );
        }
        let mut deep = b"d1:x".to_vec();
        deep.extend(std::iter::repeat_n(b'l', 10_000));
        deep.extend(std::iter::repeat_n(b'e', 10_000));
        deep.push(b'e');
        assert!(ExtensionHandshake::decode(&deep).is_err());
    }

    /// Peers send keys in any order (issue 23): such a handshake is read, not refused, and
    /// of a key sent twice the first counts.
    #[test]
    fn unsorted_and_duplicate_keys_are_accepted() {
        let h =
            ExtensionHandshake::decode(b"d1:v3:abc1:md6:ut_pexi1e11:ut_metadatai3ee1:pi7e1:pi8ee")
                .unwrap();
        assert_eq!(
            (h.id_of("ut_metadata"), h.id_of("ut_pex")),
            (Some(3), Some(1))
        );
        assert_eq!((h.v.as_deref(), h.p), (Some("abc"), Some(7)));
        assert_eq!(
            &h.encode().unwrap()[..],
            &b"d1:md11:ut_metadatai3e6:ut_pexi1ee1:pi7e1:v3:abce"[..]
        );
    }

    /// The SCION form of `yourip` (moved here from bt-ext's duplicate codec).
    #[test]
    fn yourip_scion() {
        let a: ScionAddr = "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap();
        let h = ExtensionHandshake {
            yourip_scion: Some(a),
            ..Default::default()
        };
        let enc = h.encode().unwrap();
        assert!(enc.windows(17).any(|w| w == b"12:yourip.scion14"));
        assert_eq!(ExtensionHandshake::decode(&enc).unwrap(), h);
    }

    #[test]
    fn random_never_panics() {
        let mut x: u64 = 42;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = b"d1:md11:ut_metadatai3ee1:pi6881e1:v3:abc6:yourip4:abcde".to_vec();
        for _ in 0..20_000 {
            let mut v = base.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % v.len();
                v[i] = b"0123456789ilde:x"[(next() % 16) as usize];
            }
            if let Ok(h) = ExtensionHandshake::decode(&v) {
                let again = ExtensionHandshake::decode(&h.encode().unwrap()).unwrap();
                assert_eq!(again, h);
            }
        }
    }
}
