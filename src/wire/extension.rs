//! BEP 10 extension protocol: the extension handshake dictionary.
//!
//! Decoded with `bendy` (depth-limited, strict canonical bencode: a payload
//! with unsorted or duplicate keys is rejected as [`WireError::Extension`],
//! which is non-fatal — the peer just gets no extensions).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bendy::decoding::{Decoder, Object};
use bendy::encoding::{Encoder, ToBencode};
use bytes::Bytes;

use super::message::Message;
use super::WireError;

/// Extended message id of the extension handshake.
pub const EXTENSION_HANDSHAKE_ID: u8 = 0;
/// The id we want ut_metadata (BEP 9) messages on (the one libtorrent uses too).
pub const UT_METADATA_ID: u8 = 2;
/// The id we want ut_pex (BEP 11) messages on (libtorrent's too).
pub const UT_PEX_ID: u8 = 1;
/// Nesting limit for extension payloads.
const MAX_DEPTH: usize = 16;

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
    /// `ipv4`: sender's IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: sender's IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `metadata_size` (BEP 9): size of the info dictionary.
    pub metadata_size: Option<u64>,
    /// Any other key → its raw bencoded value. Values must be valid bencode.
    pub extra: BTreeMap<Vec<u8>, Vec<u8>>,
}

fn ext_err(e: impl std::fmt::Display) -> WireError {
    WireError::Extension(e.to_string())
}

fn int_of(o: &Object<'_, '_>) -> Option<i64> {
    match o {
        Object::Integer(s) => s.parse().ok(),
        _ => None,
    }
}

fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn raw_value(o: Object<'_, '_>) -> Result<Vec<u8>, WireError> {
    Ok(match o {
        Object::Bytes(b) => {
            let mut v = format!("{}:", b.len()).into_bytes();
            v.extend_from_slice(b);
            v
        }
        Object::Integer(s) => format!("i{s}e").into_bytes(),
        Object::List(l) => l.into_raw().map_err(ext_err)?.to_vec(),
        Object::Dict(d) => d.into_raw().map_err(ext_err)?.to_vec(),
    })
}

fn encode_value<T: ToBencode>(v: T) -> Result<Vec<u8>, WireError> {
    let mut e = Encoder::new().with_max_depth(MAX_DEPTH);
    e.emit(v).map_err(ext_err)?;
    e.get_output().map_err(ext_err)
}

impl ExtensionHandshake {
    /// Parses an extension handshake payload (the bytes after the extended id).
    /// Fields of unexpected type or range are ignored; a payload that is not a
    /// bencoded dictionary is an error.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut dec = Decoder::new(payload).with_max_depth(MAX_DEPTH);
        let mut d = match dec.next_object().map_err(ext_err)? {
            Some(Object::Dict(d)) => d,
            _ => return Err(ext_err("handshake is not a dictionary")),
        };
        let mut h = ExtensionHandshake::default();
        while let Some((k, v)) = d.next_pair().map_err(ext_err)? {
            match k {
                b"m" => {
                    if let Object::Dict(mut md) = v {
                        while let Some((name, id)) = md.next_pair().map_err(ext_err)? {
                            let id = int_of(&id).and_then(|i| u8::try_from(i).ok());
                            if let (Ok(name), Some(id)) = (std::str::from_utf8(name), id) {
                                h.m.insert(name.to_owned(), id);
                            }
                        }
                    }
                }
                b"v" => {
                    if let Object::Bytes(b) = v {
                        h.v = Some(String::from_utf8_lossy(b).into_owned());
                    }
                }
                b"p" => {
                    h.p = int_of(&v)
                        .and_then(|i| u16::try_from(i).ok())
                        .filter(|&p| p != 0)
                }
                b"reqq" => h.reqq = int_of(&v).and_then(|i| u32::try_from(i).ok()),
                b"metadata_size" => {
                    h.metadata_size = int_of(&v).and_then(|i| u64::try_from(i).ok())
                }
                b"yourip" => {
                    if let Object::Bytes(b) = v {
                        h.yourip = ip_of(b);
                    }
                }
                b"ipv4" => {
                    if let Object::Bytes(b) = v {
                        if let Some(IpAddr::V4(a)) = ip_of(b).filter(|_| b.len() == 4) {
                            h.ipv4 = Some(a);
                        }
                    }
                }
                b"ipv6" => {
                    if let Object::Bytes(b) = v {
                        if let Some(IpAddr::V6(a)) = ip_of(b).filter(|_| b.len() == 16) {
                            h.ipv6 = Some(a);
                        }
                    }
                }
                _ => {
                    h.extra.insert(k.to_vec(), raw_value(v)?);
                }
            }
        }
        drop(d);
        // Trailing garbage after the dictionary is tolerated (ignored), but
        // the dictionary itself had to be complete and valid.
        Ok(h)
    }

    /// Canonical bencoding of this handshake (sorted keys).
    pub fn encode(&self) -> Result<Bytes, WireError> {
        let mut pairs: BTreeMap<Vec<u8>, Vec<u8>> = self.extra.clone();
        let ip_bytes = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        pairs.insert(b"m".to_vec(), encode_value(&self.m)?);
        if let Some(v) = &self.v {
            pairs.insert(b"v".to_vec(), encode_value(v.as_str())?);
        }
        if let Some(p) = self.p {
            pairs.insert(b"p".to_vec(), encode_value(p)?);
        }
        if let Some(r) = self.reqq {
            pairs.insert(b"reqq".to_vec(), encode_value(r)?);
        }
        if let Some(s) = self.metadata_size {
            pairs.insert(b"metadata_size".to_vec(), encode_value(s)?);
        }
        let mut bytes_pair = |k: &[u8], v: Vec<u8>| {
            let mut out = format!("{}:", v.len()).into_bytes();
            out.extend_from_slice(&v);
            pairs.insert(k.to_vec(), out);
        };
        if let Some(ip) = self.yourip {
            bytes_pair(b"yourip", ip_bytes(ip));
        }
        if let Some(a) = self.ipv4 {
            bytes_pair(b"ipv4", a.octets().to_vec());
        }
        if let Some(a) = self.ipv6 {
            bytes_pair(b"ipv6", a.octets().to_vec());
        }
        let mut out = vec![b'd'];
        for (k, v) in pairs {
            out.extend_from_slice(format!("{}:", k.len()).as_bytes());
            out.extend_from_slice(&k);
            out.extend_from_slice(&v);
        }
        out.push(b'e');
        Ok(Bytes::from(out))
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
        for bad in [
            &b""[..],
            b"i1e",
            b"le",
            b"d1:m",
            b"d1:zi1e1:ai1ee", // unsorted
            b"d1:mi1e1:mi1ee", // duplicate
        ] {
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
