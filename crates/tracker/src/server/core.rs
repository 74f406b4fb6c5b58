//! The tracker's request handling, independent of any socket: an HTTP request target
//! (`/announce?…`) or a UDP datagram in, response bytes out. The HTTP entry point serves
//! HTTP over TCP and HTTP over QUIC/SCION alike; only [`Remote`] differs.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::http::failure;
use crate::http::{
    parse_announce_query, parse_scrape_query, write_compact_response, write_dict_response,
    write_scrape_response, DictPeer, Event, ResponseBody,
};
pub use crate::server::swarm::DEFAULT_MAX_PEERS_PER_HOST;
use crate::server::swarm::{CompactLists, Peer, PeerUpdate, Swarms, Wanted};
use crate::udp::{self, Request};
use crate::{InfoHash, ScionAddr};

/// Where an HTTP request came from: an IP socket, or a SCION address (HTTP over QUIC/SCION).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    Ip(SocketAddr),
    Scion(ScionAddr),
}

impl From<SocketAddr> for Remote {
    fn from(a: SocketAddr) -> Self {
        Remote::Ip(a)
    }
}

impl From<ScionAddr> for Remote {
    fn from(a: ScionAddr) -> Self {
        Remote::Scion(a)
    }
}

/// How the tracker behaves.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Announce interval told to clients; peers expire after 1.5 × this.
    pub interval: Duration,
    /// Peers returned when a client does not say `numwant`.
    pub numwant_default: usize,
    /// Most peers returned in one response.
    pub numwant_max: usize,
    /// Only these info hashes are tracked, if set.
    pub allow: Option<HashSet<InfoHash>>,
    pub max_peers_per_swarm: usize,
    /// Entries one host may hold in one swarm (see [`DEFAULT_MAX_PEERS_PER_HOST`]).
    pub max_peers_per_host: usize,
    pub max_swarms: usize,
    /// Most info hashes in one HTTP scrape.
    pub max_scrape: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1800),
            numwant_default: 50,
            numwant_max: 200,
            allow: None,
            max_peers_per_swarm: 100_000,
            max_peers_per_host: DEFAULT_MAX_PEERS_PER_HOST,
            max_swarms: 1_000_000,
            max_scrape: 100,
        }
    }
}

/// Reads an allow-list: one 40-hex-digit info hash per line, `#` comments and blank lines
/// ignored.
pub fn parse_allow_list(text: &str) -> Result<HashSet<InfoHash>, String> {
    let mut out = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let bad = || format!("line {}: {l:?} is not a 40-hex-digit info hash", n + 1);
        if l.len() != 40 || !l.is_ascii() {
            return Err(bad());
        }
        let mut h = [0u8; 20];
        for (i, b) in h.iter_mut().enumerate() {
            *b = u8::from_str_radix(&l[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        out.insert(h);
    }
    Ok(out)
}

/// An HTTP response: status code and bencoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The in-memory tracker.
pub struct Tracker {
    config: TrackerConfig,
    swarms: Swarms,
    /// Keys the stateless UDP connection ids.
    secret: std::hash::RandomState,
    epoch: Instant,
}

const NOT_ALLOWED: &str = "torrent not tracked here (not in the allow-list)";

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Self {
            swarms: Swarms::new(
                config.max_peers_per_swarm,
                config.max_swarms,
                config.max_peers_per_host,
            ),
            config,
            secret: std::hash::RandomState::new(),
            epoch: Instant::now(),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    pub fn swarms(&self) -> &Swarms {
        &self.swarms
    }

    fn allowed(&self, h: &InfoHash) -> bool {
        self.config.allow.as_ref().is_none_or(|a| a.contains(h))
    }

    fn interval_secs(&self) -> u32 {
        self.config.interval.as_secs().clamp(1, u64::from(u32::MAX)) as u32
    }

    /// Drops peers not seen for 1.5 intervals.
    pub fn expire(&self, now: Instant) -> usize {
        self.swarms.expire(now, self.config.interval.mul_f64(1.5))
    }

    /// Handles an HTTP GET for `target` (`/announce?…` or `/scrape?…`) from `remote`.
    pub fn handle_http(&self, target: &[u8], remote: impl Into<Remote>, now: Instant) -> HttpReply {
        let remote = remote.into();
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(i) => (&target[..i], &target[i + 1..]),
            None => (target, &b""[..]),
        };
        if path.ends_with(b"/announce") {
            HttpReply {
                status: 200,
                body: self.http_announce(query, remote, now),
            }
        } else if path.ends_with(b"/scrape") {
            HttpReply {
                status: 200,
                body: self.http_scrape(query),
            }
        } else {
            HttpReply {
                status: 404,
                body: failure("unknown path: use /announce or /scrape"),
            }
        }
    }

    fn http_announce(&self, query: &[u8], remote: Remote, now: Instant) -> Vec<u8> {
        let r = match parse_announce_query(query) {
            Ok(r) => r,
            Err(e) => return failure(&e.to_string()),
        };
        if !self.allowed(&r.info_hash) {
            return failure(NOT_ALLOWED);
        }
        // Over SCION the connection proves the AS and host; the port is the announced one (the
        // `scion` parameter's, else `port`): the announce need not come from the peer's socket.
        // Port 0 names no listening socket: such an address is never handed out (a SCION peer
        // that only listens over SCION announces port 0 with its `scion` address).
        let (ip, scion) = match remote {
            Remote::Ip(a) => (
                (r.port != 0).then(|| SocketAddr::new(canonical(a.ip()), r.port)),
                r.scion.filter(|s| s.port != 0),
            ),
            Remote::Scion(a) => {
                let port = r.scion.map_or(r.port, |s| s.port);
                (
                    None,
                    (port != 0).then(|| ScionAddr::new(a.ia, a.host, port)),
                )
            }
        };
        let update = PeerUpdate {
            info_hash: r.info_hash,
            peer: Peer {
                id: r.peer_id,
                ip,
                scion,
                seeder: r.left == 0,
                last_seen: now,
            },
            stopped: r.event == Event::Stopped,
            completed: r.event == Event::Completed,
        };
        let wanted = if scion.is_some() {
            Wanted::IpAndScion
        } else {
            Wanted::Ip
        };
        let numwant = r
            .numwant
            .map_or(self.config.numwant_default, |n| n as usize)
            .min(self.config.numwant_max);
        let mut lists = CompactLists::default();
        let o = self.swarms.announce(
            &update,
            numwant,
            wanted,
            None,
            rand::random::<u32>() as usize,
            &mut lists,
        );
        let body = ResponseBody {
            interval: self.interval_secs(),
            min_interval: (self.interval_secs() / 2).max(1),
            complete: o.stats.complete,
            incomplete: o.stats.incomplete,
            warning: None,
            peers: &lists.peers,
            peers6: &lists.peers6,
            peers_scion: &lists.peers_scion,
            peers6_scion: &lists.peers6_scion,
        };
        let mut out = Vec::with_capacity(128 + lists.peers.len() + lists.peers6.len());
        if r.compact {
            write_compact_response(&mut out, &body);
        } else {
            let peers: Vec<DictPeer> = lists
                .selected
                .iter()
                .filter_map(|p| {
                    let addr = match (wanted, p.scion, p.ip) {
                        (Wanted::IpAndScion, Some(s), _) => s.into(),
                        (_, _, Some(ip)) => ip.into(),
                        _ => return None,
                    };
                    Some(DictPeer {
                        peer_id: &p.id,
                        addr,
                    })
                })
                .collect();
            write_dict_response(&mut out, &body, &peers);
        }
        out
    }

    fn http_scrape(&self, query: &[u8]) -> Vec<u8> {
        let hashes = match parse_scrape_query(query, self.config.max_scrape) {
            Ok(h) => h,
            Err(e) => return failure(&e.to_string()),
        };
        if hashes.is_empty() {
            return failure("scrape needs info_hash (full scrapes are not served)");
        }
        let files: Vec<_> = hashes
            .iter()
            .filter(|h| self.allowed(h))
            .map(|h| (*h, self.swarms.scrape(h)))
            .collect();
        let mut out = Vec::new();
        write_scrape_response(&mut out, &files);
        out
    }

    fn connection_id(&self, remote: &SocketAddr, bucket: u64) -> u64 {
        self.secret.hash_one((remote.ip(), remote.port(), bucket))
    }

    fn connection_bucket(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / udp::CONNECTION_ID_LIFETIME.as_secs()
    }

    /// A connection id is valid in its minute and the next (BEP 15: up to two minutes).
    fn connection_ok(&self, id: u64, remote: &SocketAddr, now: Instant) -> bool {
        let b = self.connection_bucket(now);
        id == self.connection_id(remote, b) || (b > 0 && id == self.connection_id(remote, b - 1))
    }

    /// Handles one UDP datagram; the response (if any) is left in `out` (cleared first).
    /// `scratch` is reused between calls so a worker does not allocate per request.
    pub fn handle_udp(
        &self,
        packet: &[u8],
        remote: SocketAddr,
        now: Instant,
        out: &mut Vec<u8>,
        scratch: &mut CompactLists,
    ) {
        out.clear();
        self.answer_udp(packet, remote, now, out, scratch);
        // Never an amplifier: an error answer (whose text is ours to choose) is cut to the
        // size of the request that caused it. Announce answers need the connection id, which
        // proves the sender's address by a round trip first.
        if out.len() > packet.len() && u32_at(out, 0) == Some(udp::ACTION_ERROR) {
            out.truncate(packet.len());
        }
    }

    fn answer_udp(
        &self,
        packet: &[u8],
        remote: SocketAddr,
        now: Instant,
        out: &mut Vec<u8>,
        scratch: &mut CompactLists,
    ) {
        let req = match udp::decode_request(packet) {
            Ok(r) => r,
            Err(e) => {
                // Answer only what carries a transaction id; a tiny packet gets nothing.
                if packet.len() >= 16 {
                    let tx = u32::from_be_bytes([packet[12], packet[13], packet[14], packet[15]]);
                    udp::encode_error(out, tx, &e.to_string());
                }
                return;
            }
        };
        match req {
            Request::Connect { transaction_id } => {
                let mut b = [0u8; 16];
                let id = self.connection_id(&remote, self.connection_bucket(now));
                let n = udp::write_connect_response(&mut b, transaction_id, id);
                out.extend_from_slice(&b[..n]);
            }
            Request::Announce(a) => {
                if !self.connection_ok(a.connection_id, &remote, now) {
                    return udp::encode_error(
                        out,
                        a.transaction_id,
                        "connection id expired or unknown",
                    );
                }
                if !self.allowed(&a.info_hash) {
                    return udp::encode_error(out, a.transaction_id, NOT_ALLOWED);
                }
                let ip = canonical(remote.ip());
                let update = PeerUpdate {
                    info_hash: a.info_hash,
                    peer: Peer {
                        id: a.peer_id,
                        // Port 0: answered, not recorded (as over HTTP).
                        ip: (a.port != 0).then(|| SocketAddr::new(ip, a.port)),
                        scion: None,
                        seeder: a.left == 0,
                        last_seen: now,
                    },
                    stopped: a.event == Event::Stopped,
                    completed: a.event == Event::Completed,
                };
                let numwant = if a.num_want < 0 {
                    self.config.numwant_default
                } else {
                    a.num_want as usize
                }
                .min(self.config.numwant_max);
                scratch.clear();
                let v6 = ip.is_ipv6();
                let o = self.swarms.announce(
                    &update,
                    numwant,
                    Wanted::Ip,
                    Some(v6),
                    rand::random::<u32>() as usize,
                    scratch,
                );
                udp::encode_announce_header(
                    out,
                    a.transaction_id,
                    self.interval_secs(),
                    o.stats.incomplete,
                    o.stats.complete,
                );
                out.extend_from_slice(if v6 { &scratch.peers6 } else { &scratch.peers });
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                if !self.connection_ok(connection_id, &remote, now) {
                    return udp::encode_error(
                        out,
                        transaction_id,
                        "connection id expired or unknown",
                    );
                }
                udp::encode_scrape_header(out, transaction_id);
                for h in info_hashes.chunks_exact(20) {
                    let mut ih = [0u8; 20];
                    ih.copy_from_slice(h);
                    let s = if self.allowed(&ih) {
                        self.swarms.scrape(&ih)
                    } else {
                        Default::default()
                    };
                    udp::encode_scrape_entry(out, &s);
                }
            }
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// IPv4-mapped IPv6 (from a dual-stack socket) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{announce_url, parse_announce_response, AnnounceRequest, ResponseLimits};
    use proptest::prelude::*;

    fn announce(port: u16, scion: Option<&str>, compact: bool) -> String {
        let r = AnnounceRequest {
            info_hash: [5; 20],
            peer_id: [port as u8; 20],
            port,
            uploaded: 0,
            downloaded: 0,
            left: 10,
            event: Event::Started,
            numwant: None,
            key: None,
            tracker_id: None,
            compact,
            scion: scion.map(|s| s.parse().unwrap()),
        };
        announce_url("/announce", &r)
    }

    #[test]
    fn http_mixes_ip_and_scion_peers() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let l = ResponseLimits::default();
        let scion_peer = "1-ff00:0:112,[127.0.0.1]:43000";
        t.handle_http(announce(1, Some(scion_peer), true).as_bytes(), remote, now);
        // An IP-only client gets the SCION-capable peer by its IP.
        let r = t.handle_http(announce(2, None, true).as_bytes(), remote, now);
        let got = parse_announce_response(&r.body, &l).unwrap();
        assert_eq!(got.peers, vec!["127.0.0.1:1".parse().unwrap()]);
        // A SCION-capable client gets it by its SCION address, and the IP-only one by IP; as
        // dictionaries too.
        for compact in [true, false] {
            let r = t.handle_http(
                announce(3, Some("1-ff00:0:113,[127.0.0.1]:1"), compact).as_bytes(),
                remote,
                now,
            );
            let mut got = parse_announce_response(&r.body, &l).unwrap().peers;
            got.sort();
            assert_eq!(
                got,
                vec![scion_peer.parse().unwrap(), "127.0.0.1:2".parse().unwrap()],
                "compact={compact}"
            );
        }
    }

    #[test]
    fn announces_over_scion_register_the_source_as_a_scion_peer() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let l = ResponseLimits::default();
        // Over SCION: AS and host from the connection, port from the `scion` parameter, or from
        // `port` without one; a lie about the AS in the parameter is not believed.
        let from_a: ScionAddr = "1-ff00:0:111,[127.0.0.1]:40001".parse().unwrap();
        let from_b: ScionAddr = "1-ff00:0:112,[127.0.0.1]:40002".parse().unwrap();
        t.handle_http(
            announce(7, Some("1-ff00:0:999,[10.9.9.9]:31000"), true).as_bytes(),
            from_a,
            now,
        );
        let r = t.handle_http(announce(8, None, true).as_bytes(), from_b, now);
        let got = parse_announce_response(&r.body, &l).unwrap();
        assert_eq!(
            got.peers,
            vec!["1-ff00:0:111,[127.0.0.1]:31000".parse().unwrap()]
        );
        // An IP client sees neither (they have no IP address it could use).
        let r = t.handle_http(
            announce(9, None, true).as_bytes(),
            "127.0.0.1:5000".parse::<SocketAddr>().unwrap(),
            now,
        );
        let got = parse_announce_response(&r.body, &l).unwrap();
        assert!(got.peers.is_empty(), "{:?}", got.peers);
        // A SCION client gets both SCION peers (and the IP one), as dictionaries too.
        let r = t.handle_http(
            announce(10, None, false).as_bytes(),
            "1-ff00:0:113,[127.0.0.1]:1".parse::<ScionAddr>().unwrap(),
            now,
        );
        let mut got = parse_announce_response(&r.body, &l).unwrap().peers;
        got.sort();
        assert_eq!(
            got,
            vec![
                "1-ff00:0:111,[127.0.0.1]:31000".parse().unwrap(),
                "1-ff00:0:112,[127.0.0.1]:8".parse().unwrap(),
                "127.0.0.1:9".parse().unwrap(),
            ]
        );
    }

    #[test]
    fn http_errors_are_failure_reasons() {
        let t = Tracker::new(TrackerConfig {
            allow: Some(
                parse_allow_list("# x\n0101010101010101010101010101010101010101\n").unwrap(),
            ),
            ..Default::default()
        });
        let now = Instant::now();
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let r = t.handle_http(b"/announce?info_hash=x", remote, now);
        assert!(String::from_utf8_lossy(&r.body).contains("failure reason"));
        let r = t.handle_http(announce(1, None, true).as_bytes(), remote, now);
        assert!(String::from_utf8_lossy(&r.body).contains("allow-list"));
        assert_eq!(t.handle_http(b"/x", remote, now).status, 404);
        assert!(parse_allow_list("zz").is_err());
    }

    #[test]
    fn udp_connect_then_announce() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (mut out, mut scratch) = (Vec::new(), CompactLists::default());
        let mut p = Vec::new();
        udp::encode_connect(&mut p, 77);
        t.handle_udp(&p, remote, now, &mut out, &mut scratch);
        let Ok(udp::Response::Connect {
            transaction_id: 77,
            connection_id,
        }) = udp::decode_response(&out, false, 10)
        else {
            panic!("{out:?}")
        };
        let mut a = udp::AnnounceRequest {
            connection_id,
            transaction_id: 78,
            info_hash: [1; 20],
            peer_id: [1; 20],
            downloaded: 0,
            left: 0,
            uploaded: 0,
            event: Event::Started,
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            key: 0,
            num_want: -1,
            port: 1,
        };
        let mut p = Vec::new();
        udp::encode_announce(&mut p, &a);
        t.handle_udp(&p, remote, now, &mut out, &mut scratch);
        assert!(matches!(
            udp::decode_response(&out, false, 10),
            Ok(udp::Response::Announce { seeders: 1, .. })
        ));
        // Another peer sees the first; a stale connection id gets an error.
        a.port = 2;
        a.left = 5;
        let mut p = Vec::new();
        udp::encode_announce(&mut p, &a);
        t.handle_udp(&p, remote, now, &mut out, &mut scratch);
        match udp::decode_response(&out, false, 10).unwrap() {
            udp::Response::Announce {
                peers,
                leechers: 1,
                seeders: 1,
                ..
            } => {
                assert_eq!(peers, vec!["127.0.0.1:1".parse().unwrap()])
            }
            other => panic!("{other:?}"),
        }
        t.handle_udp(
            &p,
            remote,
            now + Duration::from_secs(180),
            &mut out,
            &mut scratch,
        );
        assert!(matches!(
            udp::decode_response(&out, false, 10),
            Ok(udp::Response::Error {
                transaction_id: 78,
                ..
            })
        ));
    }

    /// A connection id for `remote`, from a real connect exchange.
    fn connect(t: &Tracker, remote: SocketAddr, now: Instant) -> u64 {
        let (mut out, mut scratch) = (Vec::new(), CompactLists::default());
        let mut p = Vec::new();
        udp::encode_connect(&mut p, 1);
        t.handle_udp(&p, remote, now, &mut out, &mut scratch);
        match udp::decode_response(&out, false, 10) {
            Ok(udp::Response::Connect { connection_id, .. }) => connection_id,
            other => panic!("{other:?}"),
        }
    }

    fn udp_announce(connection_id: u64, port: u16, num_want: i32) -> Vec<u8> {
        let mut p = Vec::new();
        udp::encode_announce(
            &mut p,
            &udp::AnnounceRequest {
                connection_id,
                transaction_id: 9,
                info_hash: [1; 20],
                peer_id: [port as u8; 20],
                downloaded: 0,
                left: 5,
                uploaded: 0,
                event: Event::Started,
                ip: std::net::Ipv4Addr::UNSPECIFIED,
                key: 0,
                num_want,
                port,
            },
        );
        p
    }

    #[test]
    fn udp_error_answers_are_never_larger_than_the_request() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (mut out, mut scratch) = (Vec::new(), CompactLists::default());
        for len in 16..64 {
            let garbage = vec![0xee; len];
            t.handle_udp(&garbage, remote, now, &mut out, &mut scratch);
            assert!(
                out.len() <= len,
                "{len}-byte request, {}-byte answer",
                out.len()
            );
        }
        // A scrape with an unknown connection id: the shortest one that has a transaction id.
        let mut p = Vec::new();
        udp::encode_scrape(&mut p, 1234, 5, &[[1; 20]]);
        t.handle_udp(&p, remote, now, &mut out, &mut scratch);
        assert!(
            !out.is_empty() && out.len() <= p.len(),
            "{} > {}",
            out.len(),
            p.len()
        );
    }

    #[test]
    fn port_0_is_never_recorded_nor_handed_out() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let id = connect(&t, remote, now);
        let (mut out, mut scratch) = (Vec::new(), CompactLists::default());
        t.handle_udp(
            &udp_announce(id, 3, -1),
            remote,
            now,
            &mut out,
            &mut scratch,
        );
        t.handle_udp(
            &udp_announce(id, 0, -1),
            remote,
            now,
            &mut out,
            &mut scratch,
        );
        match udp::decode_response(&out, false, 10) {
            Ok(udp::Response::Announce { peers, .. }) => {
                assert_eq!(peers, vec!["127.0.0.1:3".parse().unwrap()])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.swarms().peers(&[1; 20]).len(), 1);
        // Over HTTP a peer with port 0 (a leecher that does not listen) is not recorded, and
        // still gets the peers that are.
        let l = ResponseLimits::default();
        t.handle_http(announce(7, None, true).as_bytes(), remote, now);
        let r = t.handle_http(announce(0, None, true).as_bytes(), remote, now);
        let got = parse_announce_response(&r.body, &l).unwrap();
        assert_eq!(got.peers, vec!["127.0.0.1:7".parse().unwrap()]);
        let ports: Vec<u16> = t
            .swarms()
            .peers(&[5; 20])
            .iter()
            .filter_map(|p| p.ip.map(|a| a.port()))
            .collect();
        assert_eq!(ports, vec![7]);
    }

    #[test]
    fn numwant_minus_one_means_the_default_over_http_as_over_udp() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let remote: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let l = ResponseLimits::default();
        t.handle_http(announce(1, None, true).as_bytes(), remote, now);
        let url = announce(2, None, true) + "&numwant=-1";
        let r = t.handle_http(url.as_bytes(), remote, now);
        let got = parse_announce_response(&r.body, &l).unwrap();
        assert_eq!(got.peers, vec!["127.0.0.1:1".parse().unwrap()]);
    }

    #[test]
    fn one_host_cannot_fill_a_swarm() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let flooder: SocketAddr = "10.1.1.1:5000".parse().unwrap();
        let id = connect(&t, flooder, now);
        let (mut out, mut scratch) = (Vec::new(), CompactLists::default());
        for port in 1..=1000 {
            t.handle_udp(
                &udp_announce(id, port, 0),
                flooder,
                now,
                &mut out,
                &mut scratch,
            );
        }
        let peers = t.swarms().peers(&[1; 20]);
        assert_eq!(peers.len(), DEFAULT_MAX_PEERS_PER_HOST);
        // An honest peer still gets in and is handed to the next requester.
        let honest: SocketAddr = "10.2.2.2:6000".parse().unwrap();
        let id = connect(&t, honest, now);
        t.handle_udp(
            &udp_announce(id, 6000, 0),
            honest,
            now,
            &mut out,
            &mut scratch,
        );
        let asker: SocketAddr = "10.3.3.3:7000".parse().unwrap();
        let id = connect(&t, asker, now);
        t.handle_udp(
            &udp_announce(id, 7000, 200),
            asker,
            now,
            &mut out,
            &mut scratch,
        );
        match udp::decode_response(&out, false, 200).unwrap() {
            udp::Response::Announce { peers, .. } => {
                assert!(
                    peers.contains(&"10.2.2.2:6000".parse().unwrap()),
                    "{peers:?}"
                );
                assert_eq!(peers.len(), DEFAULT_MAX_PEERS_PER_HOST + 1);
            }
            other => panic!("{other:?}"),
        }
        // Entries that leave free their host's slots.
        t.expire(now + Duration::from_secs(10_000));
        t.handle_udp(
            &udp_announce(connect(&t, flooder, now), 999, 0),
            flooder,
            now,
            &mut out,
            &mut scratch,
        );
        assert!(t
            .swarms()
            .peers(&[1; 20])
            .iter()
            .any(|p| p.ip == Some("10.1.1.1:999".parse().unwrap())));
    }

    proptest! {
        #[test]
        fn handlers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let t = Tracker::new(TrackerConfig::default());
            let remote: SocketAddr = "[::1]:1".parse().unwrap();
            let (mut out, mut scratch) = (Vec::new(), CompactLists::default());
            t.handle_udp(&data, remote, Instant::now(), &mut out, &mut scratch);
            let mut target = b"/announce?".to_vec();
            target.extend_from_slice(&data);
            t.handle_http(&target, remote, Instant::now());
        }
    }
}
