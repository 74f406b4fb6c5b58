//! The BEP 14 announce: an HTTP-like `BT-SEARCH` datagram naming a TCP port and one or more
//! info hashes, plus a cookie so a sender can recognise its own datagrams coming back.
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: 0123456789abcdef0123456789abcdef01234567\r\n
//! cookie: 5f3a9c1e\r\n
//! \r\n
//! \r\n
//! ```
//!
//! Parsing follows what libtorrent and Transmission send and accept: header names in any case,
//! CRLF or bare LF, unknown headers ignored, several `Infohash` lines, hex in either case.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// The IPv4 multicast group and port of BEP 14.
pub const GROUP_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), 6771);
/// The IPv6 one (site-local scope, as libtorrent and Transmission use it).
pub const GROUP_V6: SocketAddr = SocketAddr::V6(SocketAddrV6::new(
    Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f),
    6771,
    0,
    0,
));

/// Longest datagram we read; real announces are ~150 bytes.
pub const MAX_DATAGRAM: usize = 1400;

/// Info hashes we take from one datagram (more are ignored); 16 lines of 52 bytes fit in
/// [`MAX_DATAGRAM`] with the rest of the request.
pub const MAX_HASHES: usize = 16;

/// One announce: "I have these torrents on this TCP port".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub port: u16,
    pub info_hashes: Vec<[u8; 20]>,
    /// Opaque to everyone but its sender.
    pub cookie: Option<String>,
}

/// Why a datagram is not an announce we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LsdParseError {
    #[error("longer than {MAX_DATAGRAM} bytes")]
    TooLong,
    #[error("not text")]
    NotText,
    #[error("not a BT-SEARCH request")]
    NotBtSearch,
    #[error("no Port header")]
    MissingPort,
    #[error("bad port {0:?}")]
    BadPort(String),
    #[error("no usable Infohash header")]
    NoInfoHash,
}

impl Announce {
    /// The datagram, addressed to `host` (the group, as BEP 14 writes it in `Host`:
    /// `239.192.152.143:6771` or `[ff15::efc0:988f]:6771`).
    pub fn encode(&self, host: impl Into<SocketAddr>) -> Vec<u8> {
        let host = host.into();
        let mut s = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: {host}\r\nPort: {}\r\n",
            self.port
        );
        for ih in &self.info_hashes {
            s.push_str("Infohash: ");
            s.push_str(&data_encoding::HEXLOWER.encode(ih));
            s.push_str("\r\n");
        }
        if let Some(cookie) = &self.cookie {
            s.push_str("cookie: ");
            s.push_str(cookie);
            s.push_str("\r\n");
        }
        s.push_str("\r\n\r\n");
        s.into_bytes()
    }

    /// Reads a datagram. Info hashes that are not 40 hex digits (or are all zero) are skipped,
    /// as libtorrent does; a datagram left with none is an error.
    pub fn parse(datagram: &[u8]) -> Result<Announce, LsdParseError> {
        if datagram.len() > MAX_DATAGRAM {
            return Err(LsdParseError::TooLong);
        }
        let text = std::str::from_utf8(datagram).map_err(|_| LsdParseError::NotText)?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let request = lines.next().unwrap_or_default();
        let mut words = request.split_ascii_whitespace();
        if !words
            .next()
            .is_some_and(|m| m.eq_ignore_ascii_case("BT-SEARCH"))
        {
            return Err(LsdParseError::NotBtSearch);
        }
        let (mut port, mut cookie, mut info_hashes) = (None, None, Vec::new());
        for line in lines.take_while(|l| !l.is_empty()) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "port" => port = Some(value),
                "cookie" => cookie = Some(value.to_string()),
                "infohash" if info_hashes.len() < MAX_HASHES => {
                    if let Some(ih) = parse_hash(value) {
                        if !info_hashes.contains(&ih) {
                            info_hashes.push(ih);
                        }
                    }
                }
                _ => {}
            }
        }
        let port = port.ok_or(LsdParseError::MissingPort)?;
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(LsdParseError::BadPort(port.chars().take(16).collect())),
        };
        if info_hashes.is_empty() {
            return Err(LsdParseError::NoInfoHash);
        }
        Ok(Announce {
            port,
            info_hashes,
            cookie,
        })
    }
}

fn parse_hash(s: &str) -> Option<[u8; 20]> {
    if s.len() != 40 {
        return None;
    }
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .ok()?;
    let ih: [u8; 20] = bytes.try_into().ok()?;
    (ih != [0; 20]).then_some(ih)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IH: [u8; 20] = [0xab; 20];

    #[test]
    fn our_announce_reads_back() {
        let a = Announce {
            port: 6881,
            info_hashes: vec![IH, [1; 20]],
            cookie: Some("5f3a9c1e".into()),
        };
        let bytes = a.encode(GROUP_V4);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n"));
        assert!(text.ends_with("\r\n\r\n\r\n"));
        assert_eq!(Announce::parse(&bytes), Ok(a.clone()));
        let v6 = String::from_utf8(a.encode(GROUP_V6)).unwrap();
        assert!(v6.contains("\r\nHost: [ff15::efc0:988f]:6771\r\n"), "{v6}");
    }

    #[test]
    fn reads_libtorrents_form() {
        // As libtorrent 2.0's render_lsd_packet writes it.
        let d = format!(
            "BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 51413\r\n\
             Infohash: {}\r\ncookie: 1a2b3c\r\n\r\n\r\n",
            "AB".repeat(20)
        );
        let a = Announce::parse(d.as_bytes()).unwrap();
        assert_eq!(a.port, 51413);
        assert_eq!(a.info_hashes, vec![IH]);
        assert_eq!(a.cookie.as_deref(), Some("1a2b3c"));
    }

    #[test]
    fn bare_newlines_and_odd_case_are_fine() {
        let d = format!(
            "bt-search * HTTP/1.1\nPORT:  7000 \nINFOHASH:{}\n\n",
            "ab".repeat(20)
        );
        let a = Announce::parse(d.as_bytes()).unwrap();
        assert_eq!((a.port, a.info_hashes, a.cookie), (7000, vec![IH], None));
    }

    #[test]
    fn bad_hashes_are_skipped_and_none_left_is_an_error() {
        let good = "ab".repeat(20);
        let d = format!(
            "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: xyz\r\nInfohash: {}\r\n\
             Infohash: {good}\r\nInfohash: {good}\r\n\r\n",
            "0".repeat(40)
        );
        assert_eq!(Announce::parse(d.as_bytes()).unwrap().info_hashes, vec![IH]);
        let none = "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: 12\r\n\r\n";
        assert_eq!(
            Announce::parse(none.as_bytes()),
            Err(LsdParseError::NoInfoHash)
        );
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let ih = "ab".repeat(20);
        let cases: [(&[u8], LsdParseError); 6] = [
            (b"", LsdParseError::NotBtSearch),
            (b"M-SEARCH * HTTP/1.1\r\n\r\n", LsdParseError::NotBtSearch),
            (b"\xff\xfe", LsdParseError::NotText),
            (
                b"BT-SEARCH * HTTP/1.1\r\nInfohash: 00\r\n\r\n",
                LsdParseError::MissingPort,
            ),
            (
                b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\n\r\n",
                LsdParseError::BadPort("0".into()),
            ),
            (&[b'a'; MAX_DATAGRAM + 1], LsdParseError::TooLong),
        ];
        for (d, want) in cases {
            assert_eq!(
                Announce::parse(d),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(d)
            );
        }
        let big_port = format!("BT-SEARCH * HTTP/1.1\r\nPort: 65536\r\nInfohash: {ih}\r\n\r\n");
        assert!(matches!(
            Announce::parse(big_port.as_bytes()),
            Err(LsdParseError::BadPort(_))
        ));
    }

    #[test]
    fn at_most_max_hashes_are_taken() {
        let mut d = String::from("BT-SEARCH * HTTP/1.1\r\nPort: 9\r\n");
        for i in 0..(MAX_HASHES + 4) {
            d.push_str(&format!("Infohash: {:040x}\r\n", i + 1));
        }
        d.push_str("\r\n");
        assert_eq!(
            Announce::parse(d.as_bytes()).unwrap().info_hashes.len(),
            MAX_HASHES
        );
    }
}
