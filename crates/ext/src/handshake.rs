//! The BEP 10 extension handshake dictionary (extended message id 0).
//!
//! Same keys and leniency as the main crate's `wire::extension` (which this can replace):
//! fields of unexpected type or range are ignored, unknown keys are kept raw in `extra` and
//! written back. One addition: `yourip.scion`, the address a SCION peer sees us at, in the
//! compact SCION form (ISD-AS 8 bytes + IPv4/IPv6 + port: 14 or 26 bytes). Other clients
//! ignore the key; BEP 10's `yourip` (4 or 16 bytes, no port) stays for IP peers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bendy::decoding::Object;
use scion_addr::{compact, PeerAddr, ScionAddr};

use crate::bencode::{for_each_pair, int_of, split_dict, write_bytes, write_int, DictWriter};

/// Key of the SCION form of `yourip`.
pub const YOURIP_SCION_KEY: &str = "yourip.scion";

/// A handshake that is not a bencoded dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid extension handshake: {0}")]
pub struct HandshakeError(pub String);

/// The BEP 10 handshake dictionary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    /// `m`: extension name → id the *sender* receives it on (0 = disabled).
    pub m: BTreeMap<String, u8>,
    /// `v`: client name and version.
    pub v: Option<String>,
    /// `p`: the sender's listen port.
    pub p: Option<u16>,
    /// `reqq`: requests the sender queues.
    pub reqq: Option<u32>,
    /// `yourip` (IP peers) or `yourip.scion` (SCION peers): the receiver as the sender sees it.
    /// For an IP address the port is not on the wire and decodes as 0.
    pub yourip: Option<PeerAddr>,
    /// `ipv4`, `ipv6`: the sender's own addresses.
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// `metadata_size` (BEP 9).
    pub metadata_size: Option<u64>,
    /// Other keys → raw bencoded values.
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

fn raw_value(o: Object<'_, '_>) -> Result<Vec<u8>, String> {
    Ok(match o {
        Object::Bytes(b) => {
            let mut v = Vec::with_capacity(b.len() + 8);
            write_bytes(&mut v, b);
            v
        }
        Object::Integer(s) => format!("i{s}e").into_bytes(),
        Object::List(l) => l.into_raw().map_err(|e| e.to_string())?.to_vec(),
        Object::Dict(d) => d.into_raw().map_err(|e| e.to_string())?.to_vec(),
    })
}

/// Decodes an extension handshake payload. Pure; the fuzz target calls it.
pub fn decode_handshake(payload: &[u8]) -> Result<ExtHandshake, HandshakeError> {
    let (dict, _trailing) = split_dict(payload).map_err(HandshakeError)?;
    let mut h = ExtHandshake::default();
    for_each_pair(dict, |k, v| {
        match k {
            b"m" => {
                if let Object::Dict(mut md) = v {
                    while let Some((name, id)) = md.next_pair().map_err(|e| e.to_string())? {
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
            b"metadata_size" => h.metadata_size = int_of(&v).and_then(|i| u64::try_from(i).ok()),
            b"yourip" => {
                if let (Object::Bytes(b), None) = (v, h.yourip) {
                    h.yourip = ip_of(b).map(|ip| PeerAddr::Ip((ip, 0).into()));
                }
            }
            b"yourip.scion" => {
                // Sorted after `yourip`: the SCION form wins if a peer sends both.
                if let Object::Bytes(b) = v {
                    if let Some(a) = compact::read_scion(b) {
                        h.yourip = Some(PeerAddr::Scion(a));
                    }
                }
            }
            b"ipv4" => {
                if let Object::Bytes(b) = v {
                    h.ipv4 = <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
                }
            }
            b"ipv6" => {
                if let Object::Bytes(b) = v {
                    h.ipv6 = <[u8; 16]>::try_from(b).ok().map(Ipv6Addr::from);
                }
            }
            _ => {
                h.extra.insert(k.to_vec(), raw_value(v)?);
            }
        }
        Ok(())
    })
    .map_err(HandshakeError)?;
    Ok(h)
}

impl ExtHandshake {
    /// Canonical bencoding (sorted keys). Keys in `extra` that this type models are ignored.
    pub fn encode(&self) -> Vec<u8> {
        let mut pairs: BTreeMap<&[u8], Vec<u8>> = BTreeMap::new();
        for (k, v) in &self.extra {
            pairs.insert(k.as_slice(), v.clone());
        }
        let bytes = |b: &[u8]| {
            let mut v = Vec::new();
            write_bytes(&mut v, b);
            v
        };
        let int = |i: i64| {
            let mut v = Vec::new();
            write_int(&mut v, i);
            v
        };
        let mut m = DictWriter::new();
        for (name, id) in &self.m {
            m.int(name.as_bytes(), i64::from(*id));
        }
        pairs.insert(b"m", m.finish());
        if let Some(v) = &self.v {
            pairs.insert(b"v", bytes(v.as_bytes()));
        }
        if let Some(p) = self.p {
            pairs.insert(b"p", int(i64::from(p)));
        }
        if let Some(r) = self.reqq {
            pairs.insert(b"reqq", int(i64::from(r)));
        }
        if let Some(s) = self.metadata_size {
            pairs.insert(b"metadata_size", int(i64::try_from(s).unwrap_or(i64::MAX)));
        }
        match self.yourip {
            Some(PeerAddr::Ip(a)) => {
                let ip = match a.ip() {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                pairs.insert(b"yourip", bytes(&ip));
            }
            Some(PeerAddr::Scion(a)) => {
                pairs.insert(YOURIP_SCION_KEY.as_bytes(), bytes(&scion_bytes(&a)));
            }
            None => {}
        }
        if let Some(a) = self.ipv4 {
            pairs.insert(b"ipv4", bytes(&a.octets()));
        }
        if let Some(a) = self.ipv6 {
            pairs.insert(b"ipv6", bytes(&a.octets()));
        }
        let mut w = DictWriter::new();
        for (k, v) in pairs {
            w.raw(k, &v);
        }
        w.finish()
    }

    /// Id the sender wants extension `name` sent with, if enabled (non-zero).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }
}

fn scion_bytes(a: &ScionAddr) -> Vec<u8> {
    let mut v = Vec::with_capacity(compact::SCION_V6_LEN);
    compact::write_scion(a, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_matches_main_crate_bytes() {
        // The same handshake as the main crate's wire::extension test, byte for byte.
        let mut h = ExtHandshake {
            v: Some("btscion 0.1".into()),
            p: Some(6881),
            reqq: Some(500),
            yourip: Some(PeerAddr::Ip("10.1.2.3:0".parse().unwrap())),
            ipv6: Some("::1".parse().unwrap()),
            metadata_size: Some(31337),
            ..Default::default()
        };
        h.m.insert("ut_metadata".into(), 3);
        h.m.insert("ut_pex".into(), 1);
        h.extra.insert(b"upload_only".to_vec(), b"i1e".to_vec());
        let enc = h.encode();
        assert_eq!(
            &enc[..],
            &b"d4:ipv616:\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x011:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei31337e1:pi6881e4:reqqi500e11:upload_onlyi1e1:v11:btscion 0.16:yourip4:\x0a\x01\x02\x03e"[..]
        );
        assert_eq!(decode_handshake(&enc).unwrap(), h);
        assert_eq!(h.id_of("ut_metadata"), Some(3));
    }

    #[test]
    fn yourip_scion() {
        let a: ScionAddr = "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap();
        let h = ExtHandshake {
            yourip: Some(PeerAddr::Scion(a)),
            ..Default::default()
        };
        let enc = h.encode();
        assert!(enc.windows(17).any(|w| w == b"12:yourip.scion14"));
        assert_eq!(decode_handshake(&enc).unwrap(), h);
    }

    #[test]
    fn lenient_and_errors() {
        let h = decode_handshake(b"d1:md1:xi300e1:yi0e2:zzi7ee1:pi70000e6:yourip3:abce").unwrap();
        assert_eq!((h.id_of("y"), h.id_of("zz"), h.m.len()), (None, Some(7), 2));
        assert_eq!((h.p, h.yourip), (None, None));
        for bad in [
            &b""[..],
            b"i1e",
            b"d1:m",
            b"d1:zi1e1:ai1ee",
            b"d1:mi1e1:mi1ee",
        ] {
            assert!(decode_handshake(bad).is_err(), "{bad:?}");
        }
    }
}
