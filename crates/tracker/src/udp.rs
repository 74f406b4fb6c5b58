//! UDP tracker protocol (BEP 15), sans-IO: packet encoders and decoders for both sides and the
//! client's timing rules (connection-id lifetime, retransmission schedule).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use scion_addr::compact::{self, IP_V4_LEN, IP_V6_LEN};

use crate::http::{Event, ScrapeStats};
use crate::InfoHash;

/// The magic constant of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
pub const ACTION_CONNECT: u32 = 0;
pub const ACTION_ANNOUNCE: u32 = 1;
pub const ACTION_SCRAPE: u32 = 2;
pub const ACTION_ERROR: u32 = 3;
/// Length of an announce request without extensions.
pub const ANNOUNCE_LEN: usize = 98;
/// Most info hashes in one scrape (BEP 15: about 74 fit in a packet).
pub const MAX_SCRAPE: usize = 74;
/// A client may use a connection id this long after receiving it.
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// Retransmission schedule: wait `base · 2^n` after attempt `n`, up to `max_retransmits`
/// retransmissions (BEP 15: base 15 s, n up to 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retransmit {
    pub base: Duration,
    pub max_retransmits: u32,
}

impl Default for Retransmit {
    /// The BEP's 15 s base, but giving up after 2 retransmissions (15+30+60 s): a dead
    /// tracker must not hold its tier for the BEP's full hour; the back-off takes over.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(15),
            max_retransmits: 2,
        }
    }
}

impl Retransmit {
    /// How long to wait for an answer to attempt `n` (0-based), or `None` after the last.
    pub fn timeout(&self, n: u32) -> Option<Duration> {
        (n <= self.max_retransmits).then(|| self.base.saturating_mul(1u32 << n.min(16)))
    }
}

fn event_code(e: Event) -> u32 {
    match e {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    }
}

fn event_from_code(c: u32) -> Option<Event> {
    Some(match c {
        0 => Event::None,
        1 => Event::Completed,
        2 => Event::Started,
        3 => Event::Stopped,
        _ => return None,
    })
}

/// An announce request (BEP 15 layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    /// 0: use the sender's address.
    pub ip: Ipv4Addr,
    pub key: u32,
    /// -1: the tracker's default.
    pub num_want: i32,
    pub port: u16,
}

/// A request as the server reads it; scrape hashes borrow the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    Connect {
        transaction_id: u32,
    },
    Announce(AnnounceRequest),
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        /// A multiple of 20 bytes, 1..=MAX_SCRAPE hashes.
        info_hashes: &'a [u8],
    },
}

/// A response as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    Announce {
        transaction_id: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        peers: Vec<SocketAddr>,
        /// Entries beyond the caller's cap.
        dropped: usize,
    },
    Scrape {
        transaction_id: u32,
        stats: Vec<ScrapeStats>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

impl Response {
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    #[error("packet too short ({len} bytes, need {need})")]
    Short { len: usize, need: usize },
    #[error("unknown action {0}")]
    Action(u32),
    #[error("not a BEP 15 connect request (wrong protocol id)")]
    ProtocolId,
    #[error("invalid event {0}")]
    Event(u32),
    #[error("scrape of {0} bytes is not 1..={MAX_SCRAPE} info hashes")]
    ScrapeLength(usize),
    #[error("peer list of {len} bytes is not a multiple of {entry}")]
    PeerLength { len: usize, entry: usize },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(b, at)) << 32) | u64::from(u32_at(b, at + 4))
}

fn need(b: &[u8], n: usize) -> Result<(), UdpError> {
    if b.len() < n {
        return Err(UdpError::Short {
            len: b.len(),
            need: n,
        });
    }
    Ok(())
}

fn arr20(b: &[u8], at: usize) -> [u8; 20] {
    let mut a = [0; 20];
    a.copy_from_slice(&b[at..at + 20]);
    a
}

/// Decodes a client request (server side). BEP 41 extension bytes after an announce are
/// ignored.
pub fn decode_request(b: &[u8]) -> Result<Request<'_>, UdpError> {
    need(b, 16)?;
    let connection_id = u64_at(b, 0);
    let action = u32_at(b, 8);
    let transaction_id = u32_at(b, 12);
    match action {
        ACTION_CONNECT => {
            if connection_id != PROTOCOL_ID {
                return Err(UdpError::ProtocolId);
            }
            Ok(Request::Connect { transaction_id })
        }
        ACTION_ANNOUNCE => {
            need(b, ANNOUNCE_LEN)?;
            let code = u32_at(b, 80);
            Ok(Request::Announce(AnnounceRequest {
                connection_id,
                transaction_id,
                info_hash: arr20(b, 16),
                peer_id: arr20(b, 36),
                downloaded: u64_at(b, 56),
                left: u64_at(b, 64),
                uploaded: u64_at(b, 72),
                event: event_from_code(code).ok_or(UdpError::Event(code))?,
                ip: Ipv4Addr::from(u32_at(b, 84)),
                key: u32_at(b, 88),
                num_want: u32_at(b, 92) as i32,
                port: u16::from_be_bytes([b[96], b[97]]),
            }))
        }
        ACTION_SCRAPE => {
            let hashes = &b[16..];
            if hashes.is_empty()
                || !hashes.len().is_multiple_of(20)
                || hashes.len() / 20 > MAX_SCRAPE
            {
                return Err(UdpError::ScrapeLength(hashes.len()));
            }
            Ok(Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes: hashes,
            })
        }
        a => Err(UdpError::Action(a)),
    }
}

/// Appends a connect request.
pub fn encode_connect(out: &mut Vec<u8>, transaction_id: u32) {
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// Appends an announce request.
pub fn encode_announce(out: &mut Vec<u8>, r: &AnnounceRequest) {
    out.extend_from_slice(&r.connection_id.to_be_bytes());
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&r.transaction_id.to_be_bytes());
    out.extend_from_slice(&r.info_hash);
    out.extend_from_slice(&r.peer_id);
    out.extend_from_slice(&r.downloaded.to_be_bytes());
    out.extend_from_slice(&r.left.to_be_bytes());
    out.extend_from_slice(&r.uploaded.to_be_bytes());
    out.extend_from_slice(&event_code(r.event).to_be_bytes());
    out.extend_from_slice(&r.ip.octets());
    out.extend_from_slice(&r.key.to_be_bytes());
    out.extend_from_slice(&r.num_want.to_be_bytes());
    out.extend_from_slice(&r.port.to_be_bytes());
}

/// Appends a scrape request.
pub fn encode_scrape(
    out: &mut Vec<u8>,
    connection_id: u64,
    transaction_id: u32,
    hashes: &[InfoHash],
) {
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for h in hashes.iter().take(MAX_SCRAPE) {
        out.extend_from_slice(h);
    }
}

/// Writes a connect response into `out` (16 bytes); its length.
pub fn write_connect_response(
    out: &mut [u8; 16],
    transaction_id: u32,
    connection_id: u64,
) -> usize {
    out[0..4].copy_from_slice(&ACTION_CONNECT.to_be_bytes());
    out[4..8].copy_from_slice(&transaction_id.to_be_bytes());
    out[8..16].copy_from_slice(&connection_id.to_be_bytes());
    16
}

/// Appends an announce response header; the caller appends compact peers (6 or 18 bytes).
pub fn encode_announce_header(
    out: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) {
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&leechers.to_be_bytes());
    out.extend_from_slice(&seeders.to_be_bytes());
}

/// Appends a scrape response header; the caller appends 12 bytes per hash.
pub fn encode_scrape_header(out: &mut Vec<u8>, transaction_id: u32) {
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// Appends one scrape entry (seeders, completed, leechers).
pub fn encode_scrape_entry(out: &mut Vec<u8>, s: &ScrapeStats) {
    out.extend_from_slice(&s.complete.to_be_bytes());
    out.extend_from_slice(&s.downloaded.to_be_bytes());
    out.extend_from_slice(&s.incomplete.to_be_bytes());
}

/// Appends an error response.
pub fn encode_error(out: &mut Vec<u8>, transaction_id: u32, message: &str) {
    out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(message.as_bytes());
}

/// Decodes a tracker response (client side). `ipv6`: the request went over IPv6, so peers are
/// 18-byte entries (BEP 15 via the IPv6 extension); at most `max_peers` are kept.
pub fn decode_response(b: &[u8], ipv6: bool, max_peers: usize) -> Result<Response, UdpError> {
    need(b, 8)?;
    let action = u32_at(b, 0);
    let transaction_id = u32_at(b, 4);
    match action {
        ACTION_CONNECT => {
            need(b, 16)?;
            Ok(Response::Connect {
                transaction_id,
                connection_id: u64_at(b, 8),
            })
        }
        ACTION_ANNOUNCE => {
            need(b, 20)?;
            let entry = if ipv6 { IP_V6_LEN } else { IP_V4_LEN };
            let list = &b[20..];
            if !list.len().is_multiple_of(entry) {
                return Err(UdpError::PeerLength {
                    len: list.len(),
                    entry,
                });
            }
            let total = list.len() / entry;
            let peers: Vec<SocketAddr> = list
                .chunks_exact(entry)
                .take(max_peers)
                .filter_map(compact::read_ip)
                .collect();
            Ok(Response::Announce {
                transaction_id,
                interval: u32_at(b, 8),
                leechers: u32_at(b, 12),
                seeders: u32_at(b, 16),
                dropped: total.saturating_sub(max_peers),
                peers,
            })
        }
        ACTION_SCRAPE => {
            let body = &b[8..];
            if !body.len().is_multiple_of(12) {
                return Err(UdpError::PeerLength {
                    len: body.len(),
                    entry: 12,
                });
            }
            let stats = body
                .chunks_exact(12)
                .take(MAX_SCRAPE)
                .map(|c| ScrapeStats {
                    complete: u32_at(c, 0),
                    downloaded: u32_at(c, 4),
                    incomplete: u32_at(c, 8),
                })
                .collect();
            Ok(Response::Scrape {
                transaction_id,
                stats,
            })
        }
        ACTION_ERROR => Ok(Response::Error {
            transaction_id,
            message: String::from_utf8_lossy(&b[8..b.len().min(8 + 512)]).into_owned(),
        }),
        a => Err(UdpError::Action(a)),
    }
}

/// The IP the response's peers are in (for choosing 6- or 18-byte entries).
pub fn is_v6(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn announce() -> AnnounceRequest {
        AnnounceRequest {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 7,
            info_hash: [1; 20],
            peer_id: [2; 20],
            downloaded: 3,
            left: 4,
            uploaded: 5,
            event: Event::Completed,
            ip: Ipv4Addr::UNSPECIFIED,
            key: 9,
            num_want: -1,
            port: 6881,
        }
    }

    #[test]
    fn requests_round_trip() {
        let mut b = Vec::new();
        encode_connect(&mut b, 42);
        assert_eq!(b.len(), 16);
        assert_eq!(
            decode_request(&b),
            Ok(Request::Connect { transaction_id: 42 })
        );

        let a = announce();
        let mut b = Vec::new();
        encode_announce(&mut b, &a);
        assert_eq!(b.len(), ANNOUNCE_LEN);
        assert_eq!(decode_request(&b), Ok(Request::Announce(a)));
        // BEP 41 extension bytes are ignored.
        b.extend_from_slice(&[2, 3, b'/', b'a', b'b']);
        assert_eq!(decode_request(&b), Ok(Request::Announce(a)));

        let mut b = Vec::new();
        encode_scrape(&mut b, 5, 6, &[[7; 20], [8; 20]]);
        match decode_request(&b).unwrap() {
            Request::Scrape {
                connection_id: 5,
                transaction_id: 6,
                info_hashes,
            } => {
                assert_eq!(info_hashes.len(), 40)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_requests() {
        assert_eq!(
            decode_request(&[0; 10]),
            Err(UdpError::Short { len: 10, need: 16 })
        );
        let mut b = Vec::new();
        encode_connect(&mut b, 1);
        b[0] = 9;
        assert_eq!(decode_request(&b), Err(UdpError::ProtocolId));
        let mut b = Vec::new();
        encode_announce(&mut b, &announce());
        assert!(matches!(
            decode_request(&b[..97]),
            Err(UdpError::Short { .. })
        ));
        b[83] = 9;
        assert_eq!(decode_request(&b), Err(UdpError::Event(9)));
        b[11] = 7;
        assert_eq!(decode_request(&b), Err(UdpError::Action(7)));
        let mut b = Vec::new();
        encode_scrape(&mut b, 5, 6, &[]);
        assert_eq!(decode_request(&b), Err(UdpError::ScrapeLength(0)));
    }

    #[test]
    fn responses_round_trip() {
        let mut b = [0u8; 16];
        write_connect_response(&mut b, 3, 99);
        assert_eq!(
            decode_response(&b, false, 10),
            Ok(Response::Connect {
                transaction_id: 3,
                connection_id: 99
            })
        );

        let mut b = Vec::new();
        encode_announce_header(&mut b, 4, 1800, 2, 1);
        let p: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        for _ in 0..3 {
            compact::write_ip(p, &mut b);
        }
        assert_eq!(
            decode_response(&b, false, 2),
            Ok(Response::Announce {
                transaction_id: 4,
                interval: 1800,
                leechers: 2,
                seeders: 1,
                peers: vec![p, p],
                dropped: 1
            })
        );
        // The same bytes read as IPv6 entries have the wrong length.
        assert!(matches!(
            decode_response(&b[..b.len() - 6], true, 2),
            Err(UdpError::PeerLength { .. })
        ));

        let mut b = Vec::new();
        encode_error(&mut b, 5, "go away");
        assert_eq!(
            decode_response(&b, false, 1),
            Ok(Response::Error {
                transaction_id: 5,
                message: "go away".into()
            })
        );
        let mut b = Vec::new();
        encode_scrape_header(&mut b, 6);
        let s = ScrapeStats {
            complete: 1,
            downloaded: 2,
            incomplete: 3,
        };
        encode_scrape_entry(&mut b, &s);
        assert_eq!(
            decode_response(&b, false, 1),
            Ok(Response::Scrape {
                transaction_id: 6,
                stats: vec![s]
            })
        );
        assert_eq!(
            decode_response(&[0, 0, 0, 9, 0, 0, 0, 0], false, 1),
            Err(UdpError::Action(9))
        );
        assert!(matches!(
            decode_response(&[0, 0, 0, 1], false, 1),
            Err(UdpError::Short { .. })
        ));
    }

    #[test]
    fn retransmit_schedule() {
        let r = Retransmit {
            base: Duration::from_secs(15),
            max_retransmits: 8,
        };
        assert_eq!(r.timeout(0), Some(Duration::from_secs(15)));
        assert_eq!(r.timeout(3), Some(Duration::from_secs(120)));
        assert_eq!(r.timeout(8), Some(Duration::from_secs(3840)));
        assert_eq!(r.timeout(9), None);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
            let _ = decode_request(&data);
            let _ = decode_response(&data, v6, 50);
        }
    }
}
