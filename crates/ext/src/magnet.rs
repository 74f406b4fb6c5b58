//! Magnet URIs (BEP 9): `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=<peer>&xl=<len>`.
//!
//! * `xt`: `urn:btih:` + 40 hex digits or 32 base32 characters (either case). Several `xt` may
//!   appear (hybrid magnets also carry `urn:btmh:` for v2); the first `btih` counts, others
//!   with a different v1 hash are an error. A magnet with only a v2 hash is rejected.
//! * `dn`, `xl`: display name and exact length.
//! * `tr`, `tr.N`: trackers, in order, duplicates removed.
//! * `x.pe`: peers: `IP:port`, `[IPv6]:port` or a SCION address `ISD-AS,[IP]:port`
//!   (percent-encoded in the URI). Entries we cannot use (host names, which we do not resolve)
//!   are kept in [`Magnet::skipped_peers`] instead of failing the whole link.
//! * Unknown keys are ignored. Values are percent-decoded (`+` is a space).
//!
//! Limits against hostile input: [`MAX_URI_LEN`], at most [`MAX_LIST`] trackers and peers.

use std::fmt;

use data_encoding::{BASE32, HEXLOWER_PERMISSIVE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use scion_addr::PeerAddr;

/// Longest magnet URI accepted, in bytes.
pub const MAX_URI_LEN: usize = 64 * 1024;
/// Most trackers and most peers kept from one URI (the rest is ignored).
pub const MAX_LIST: usize = 200;

/// Why a string is not a usable magnet URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet URI (expected 'magnet:?xt=urn:btih:...')")]
    NotMagnet,
    #[error("magnet URI is {0} bytes long (limit {MAX_URI_LEN})")]
    TooLong(usize),
    #[error("magnet URI has no 'xt=urn:btih:' info hash")]
    MissingInfoHash,
    #[error("magnet URI has only a v2 ('urn:btmh:') hash; v2-only torrents are not supported")]
    V2Only,
    #[error("invalid info hash '{0}': expected 40 hex digits or 32 base32 characters")]
    BadInfoHash(String),
    #[error("magnet URI names two different info hashes")]
    ConflictingInfoHashes,
    #[error("invalid exact length 'xl={0}'")]
    BadLength(String),
}

/// A parsed magnet link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Magnet {
    /// The v1 info hash (SHA-1 of the info dictionary).
    pub info_hash: [u8; 20],
    /// `dn`: suggested name.
    pub display_name: Option<String>,
    /// `tr`: tracker URLs, in the order given.
    pub trackers: Vec<String>,
    /// `x.pe`: peers to contact directly.
    pub peers: Vec<PeerAddr>,
    /// `xl`: total size in bytes.
    pub exact_length: Option<u64>,
    /// `x.pe` values that are not addresses we can dial (e.g. host names). Not written back.
    pub skipped_peers: Vec<String>,
    /// `ws`: web seed URLs (BEP 19), in the order given; checked when the torrent is built.
    pub web_seeds: Vec<String>,
}

/// Parses a magnet URI. Pure; the fuzz target calls it.
pub fn parse_magnet(uri: &str) -> Result<Magnet, MagnetError> {
    if uri.len() > MAX_URI_LEN {
        return Err(MagnetError::TooLong(uri.len()));
    }
    let uri = uri.trim();
    let query = uri
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:"))
        .and_then(|_| uri[7..].strip_prefix('?'))
        .ok_or(MagnetError::NotMagnet)?;
    let mut m = Magnet::default();
    let mut hash: Option<[u8; 20]> = None;
    let mut saw_v2 = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let key = base_key(&key);
        match key {
            "xt" => {
                if let Some(h) = strip_prefix_ci(&value, "urn:btih:") {
                    let h = decode_info_hash(h)?;
                    match hash {
                        Some(prev) if prev != h => return Err(MagnetError::ConflictingInfoHashes),
                        _ => hash = Some(h),
                    }
                } else if strip_prefix_ci(&value, "urn:btmh:").is_some() {
                    saw_v2 = true;
                }
            }
            "dn" if m.display_name.is_none() => m.display_name = Some(value.into_owned()),
            "xl" => {
                let v = value.trim();
                m.exact_length = Some(
                    v.parse()
                        .map_err(|_| MagnetError::BadLength(v.chars().take(40).collect()))?,
                );
            }
            "tr" => {
                let t = value.trim();
                if !t.is_empty()
                    && m.trackers.len() < MAX_LIST
                    && !m.trackers.iter().any(|x| x == t)
                {
                    m.trackers.push(t.to_owned());
                }
            }
            "ws" => {
                let w = value.trim();
                if !w.is_empty()
                    && m.web_seeds.len() < MAX_LIST
                    && !m.web_seeds.iter().any(|x| x == w)
                {
                    m.web_seeds.push(w.to_owned());
                }
            }
            "x.pe" => {
                if m.peers.len() + m.skipped_peers.len() >= MAX_LIST {
                    continue;
                }
                match value.parse::<PeerAddr>() {
                    Ok(p) if !m.peers.contains(&p) => m.peers.push(p),
                    Ok(_) => {}
                    Err(_) => m.skipped_peers.push(value.chars().take(200).collect()),
                }
            }
            _ => {}
        }
    }
    m.info_hash = match hash {
        Some(h) => h,
        None if saw_v2 => return Err(MagnetError::V2Only),
        None => return Err(MagnetError::MissingInfoHash),
    };
    Ok(m)
}

/// `tr.1` → `tr`: some clients number repeated keys.
fn base_key(key: &str) -> &str {
    match key.split_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Decodes a v1 info hash: 40 hex digits or 32 base32 characters, either case.
pub fn decode_info_hash(s: &str) -> Result<[u8; 20], MagnetError> {
    let bad = || MagnetError::BadInfoHash(s.chars().take(64).collect());
    let bytes = match s.len() {
        40 => HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| bad())?,
        32 => BASE32
            .decode(s.to_ascii_uppercase().as_bytes())
            .map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    bytes.try_into().map_err(|_| bad())
}

/// Percent-encode everything but RFC 3986's unreserved characters.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Magnet {
    /// A magnet for an info hash, to be completed with the builder methods.
    pub fn new(info_hash: [u8; 20]) -> Self {
        Self {
            info_hash,
            ..Self::default()
        }
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    pub fn with_tracker(mut self, url: impl Into<String>) -> Self {
        self.trackers.push(url.into());
        self
    }

    pub fn with_peer(mut self, peer: PeerAddr) -> Self {
        self.peers.push(peer);
        self
    }

    pub fn with_length(mut self, len: u64) -> Self {
        self.exact_length = Some(len);
        self
    }

    /// The info hash as 40 lower-case hex digits.
    pub fn info_hash_hex(&self) -> String {
        HEXLOWER_PERMISSIVE.encode(&self.info_hash)
    }
}

impl std::str::FromStr for Magnet {
    type Err = MagnetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_magnet(s)
    }
}

/// Writes the canonical form: `magnet:?xt=urn:btih:<hex>[&dn=][&xl=][&tr=]*[&ws=]*[&x.pe=]*`, values
/// percent-encoded except IP peers (libtorrent does not decode `x.pe`).
impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash_hex())?;
        if let Some(dn) = &self.display_name {
            write!(f, "&dn={}", utf8_percent_encode(dn, VALUE))?;
        }
        if let Some(xl) = self.exact_length {
            write!(f, "&xl={xl}")?;
        }
        for tr in &self.trackers {
            write!(f, "&tr={}", utf8_percent_encode(tr, VALUE))?;
        }
        for ws in &self.web_seeds {
            write!(f, "&ws={}", utf8_percent_encode(ws, VALUE))?;
        }
        for pe in &self.peers {
            match pe {
                // libtorrent (2.0) does not percent-decode `x.pe`: write IP peers as they are
                // (`:`, `[` and `]` only; all are fine in a query).
                PeerAddr::Ip(a) => write!(f, "&x.pe={a}")?,
                PeerAddr::Scion(a) => {
                    write!(f, "&x.pe={}", utf8_percent_encode(&a.to_string(), VALUE))?
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_HEX: &str = "c9e15763f722f23e98a29decdfae341b98d53056";

    fn hash() -> [u8; 20] {
        decode_info_hash(HASH_HEX).unwrap()
    }

    #[test]
    fn hex_and_base32_hashes_agree() {
        let b32 = BASE32.encode(&hash());
        assert_eq!(b32.len(), 32);
        for h in [
            HASH_HEX.to_string(),
            HASH_HEX.to_ascii_uppercase(),
            b32.clone(),
            b32.to_ascii_lowercase(),
        ] {
            let m = parse_magnet(&format!("magnet:?xt=urn:btih:{h}")).unwrap();
            assert_eq!(m.info_hash, hash(), "{h}");
        }
        assert_eq!(
            parse_magnet(&format!("MAGNET:?XT=URN:BTIH:{HASH_HEX}")).map(|m| m.info_hash),
            Err(MagnetError::MissingInfoHash),
            "keys are case-sensitive, as in libtorrent"
        );
        assert!(parse_magnet(&format!("MAGNET:?xt=URN:BTIH:{HASH_HEX}")).is_ok());
    }

    #[test]
    fn all_fields_and_unknown_keys() {
        let uri = format!(
            "magnet:?xt=urn:btih:{HASH_HEX}&dn=Big+Buck%20Bunny&tr=udp%3A%2F%2Ft1%3A80\
             &tr.1=http://t2/announce&tr=udp%3A%2F%2Ft1%3A80&x.pe=10.0.0.1:6881\
             &x.pe=%5B%3A%3A1%5D%3A51413&x.pe=1-ff00%3A0%3A112%2C%5B127.0.0.1%5D%3A43000\
             &x.pe=tracker.example:1&xl=12345&so=0-3&ws=http://w&kt=a+b"
        );
        let m = parse_magnet(&uri).unwrap();
        assert_eq!(m.info_hash, hash());
        assert_eq!(m.display_name.as_deref(), Some("Big Buck Bunny"));
        assert_eq!(m.trackers, ["udp://t1:80", "http://t2/announce"]);
        let peers: Vec<String> = m.peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            peers,
            [
                "10.0.0.1:6881",
                "[::1]:51413",
                "1-ff00:0:112,[127.0.0.1]:43000"
            ]
        );
        assert!(matches!(m.peers[2], PeerAddr::Scion(_)));
        assert_eq!(m.skipped_peers, ["tracker.example:1"]);
        assert_eq!(m.exact_length, Some(12345));
        assert_eq!(m.web_seeds, ["http://w"]);
        assert!(m.to_string().contains("&ws=http%3A%2F%2Fw"), "{m}");
    }

    #[test]
    fn display_round_trips() {
        let m = Magnet::new(hash())
            .with_name("a name & more/ü")
            .with_length(7)
            .with_tracker("http://t/announce?x=1&y=2")
            .with_peer("[::1]:6881".parse().unwrap())
            .with_peer("1-ff00:0:112,[::1]:43000".parse().unwrap());
        let s = m.to_string();
        assert!(s.starts_with(&format!("magnet:?xt=urn:btih:{HASH_HEX}&dn=a%20name")));
        assert!(
            s.contains("&x.pe=[::1]:6881&x.pe=1-ff00%3A0%3A112%2C%5B%3A%3A1%5D%3A43000"),
            "{s}"
        );
        assert_eq!(parse_magnet(&s).unwrap(), m);
    }

    #[test]
    fn errors() {
        let long = format!(
            "magnet:?xt=urn:btih:{HASH_HEX}&dn={}",
            "a".repeat(MAX_URI_LEN)
        );
        for (bad, want) in [
            ("", MagnetError::NotMagnet),
            ("http://x/?xt=urn:btih:00", MagnetError::NotMagnet),
            ("magnet:", MagnetError::NotMagnet),
            ("magnet:xt=urn:btih:", MagnetError::NotMagnet),
            ("magnet:?dn=x", MagnetError::MissingInfoHash),
            ("magnet:?xt=urn:sha1:abc", MagnetError::MissingInfoHash),
            (
                "magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e",
                MagnetError::V2Only,
            ),
            ("magnet:?xt=urn:btih:abc", MagnetError::BadInfoHash("abc".into())),
            (
                "magnet:?xt=urn:btih:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                MagnetError::BadInfoHash("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".into()),
            ),
            (
                "magnet:?xt=urn:btih:11111111111111111111111111111111",
                MagnetError::BadInfoHash("11111111111111111111111111111111".into()),
            ),
            ("ma", MagnetError::NotMagnet),
            ("magnët:?", MagnetError::NotMagnet),
        ] {
            assert_eq!(parse_magnet(bad), Err(want), "{bad}");
        }
        assert_eq!(parse_magnet(&long), Err(MagnetError::TooLong(long.len())));
        let two = format!(
            "magnet:?xt=urn:btih:{HASH_HEX}&xt=urn:btih:{}",
            "0".repeat(40)
        );
        assert_eq!(parse_magnet(&two), Err(MagnetError::ConflictingInfoHashes));
        let same = format!(
            "magnet:?xt=urn:btih:{HASH_HEX}&xt=urn:btih:{}",
            BASE32.encode(&hash())
        );
        assert!(parse_magnet(&same).is_ok());
        let xl = format!("magnet:?xt=urn:btih:{HASH_HEX}&xl=-1");
        assert_eq!(parse_magnet(&xl), Err(MagnetError::BadLength("-1".into())));
    }

    /// Written by libtorrent 2.0.8's `make_magnet_uri` (lower-case escapes; the hybrid one
    /// also carries the v2 hash).
    #[test]
    fn libtorrent_magnets() {
        let hybrid = "magnet:?xt=urn:btih:f6b1f534862b6454f0246f67e7c347b7d48b8fef\
            &xt=urn:btmh:1220c23de3783c01e982d3a1cf0829d9022e7e54483aadd5a7ea3b7ba4bb627e3541\
            &dn=file.bin&tr=udp%3a%2f%2ftracker.example.org%3a6969%2fannounce\
            &tr=http%3a%2f%2ft2.example%2fannounce%3fx%3d1%26y%3d2";
        let m = parse_magnet(hybrid).unwrap();
        assert_eq!(
            m.info_hash_hex(),
            "f6b1f534862b6454f0246f67e7c347b7d48b8fef"
        );
        assert_eq!(m.display_name.as_deref(), Some("file.bin"));
        assert_eq!(
            m.trackers,
            [
                "udp://tracker.example.org:6969/announce",
                "http://t2.example/announce?x=1&y=2"
            ]
        );
        let v1 = "magnet:?xt=urn:btih:3d32bfbe7cc11a9eaf5b9d2861eed5c409177840&dn=file.bin\
            &tr=udp%3a%2f%2ftracker.example.org%3a6969%2fannounce";
        let m = parse_magnet(v1).unwrap();
        assert_eq!(
            m.info_hash_hex(),
            "3d32bfbe7cc11a9eaf5b9d2861eed5c409177840"
        );
        // Ours, written back, is what libtorrent wrote modulo escape case.
        assert_eq!(
            Magnet::new(m.info_hash)
                .with_name("file.bin")
                .with_tracker("udp://tracker.example.org:6969/announce")
                .to_string()
                .to_ascii_lowercase(),
            v1.to_ascii_lowercase()
        );
    }

    #[test]
    fn garbage() {
        for g in [
            "magnet:?&&&=&=x&xt",
            "magnet:?xt=urn:btih:%zz%",
            "magnet:?xt=urn:btih:\u{0}\u{0}",
            "magnet:?xt=urn%3Abtih%3A",
            "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d5305\u{e9}",
        ] {
            assert!(parse_magnet(g).is_err(), "{g}");
        }
        let ok = parse_magnet(&format!(
            "magnet:?xt=urn:btih:{HASH_HEX}&x.pe=&x.pe=%ff%fe&dn=%ff"
        ))
        .unwrap();
        assert_eq!(ok.peers, []);
        assert_eq!(ok.skipped_peers.len(), 2);
        assert_eq!(ok.display_name.as_deref(), Some("\u{fffd}"));
    }

    #[test]
    fn lists_are_bounded() {
        let mut uri = format!("magnet:?xt=urn:btih:{HASH_HEX}");
        for i in 0..1000 {
            uri.push_str(&format!(
                "&tr=http://t{i}/&x.pe=10.0.{}.{}:1",
                i / 256,
                i % 256
            ));
        }
        let m = parse_magnet(&uri).unwrap();
        assert_eq!(m.trackers.len(), MAX_LIST);
        assert_eq!(m.peers.len(), MAX_LIST);
    }
}
