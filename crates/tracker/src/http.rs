//! HTTP tracker protocol (BEP 3, 7, 23, 48), sans-IO: announce/scrape query strings in both
//! directions and the bencoded responses.
//!
//! SCION extensions (documented in the README, "Trackers"):
//! * query parameter `scion=<ISD-AS>,[<IP>]:<port>`: the announcing peer's SCION address
//!   (percent-encoded); its presence also says "I can use SCION peers".
//! * response keys `peers_scion` / `peers6_scion`: compact SCION peers, 14 bytes (8-byte ISD-AS
//!   big-endian, IPv4, port) / 26 bytes (ISD-AS, IPv6, port).
//! * non-compact peer dictionaries may carry `ia` (`1-ff00:0:110`): then `ip`/`port` are the
//!   host address inside that AS, as netsys-lab/scionbttracker returns them.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use percent_encoding::{percent_decode, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use scion_addr::compact::{self, IP_V4_LEN, IP_V6_LEN, SCION_V4_LEN, SCION_V6_LEN};
use scion_addr::{parse_ia, PeerAddr, ScionAddr};
use serde::{Deserialize, Serialize};

use bt_bencode::{Decoder, DictWriter, Error as BencodeError, ListWriter, Value};

use crate::InfoHash;

/// Deepest nesting accepted (tracker responses need 4).
pub const MAX_DEPTH: usize = 16;
/// Most values accepted in one response.
pub const MAX_ITEMS: usize = 200_000;
/// How tracker responses are read: leniently, since real trackers send unsorted keys
/// (netsys-lab/scionbttracker writes `interval` before `complete`), with hard limits.
pub const DECODER: Decoder = Decoder::LENIENT
    .with_max_depth(MAX_DEPTH)
    .with_max_items(MAX_ITEMS);

/// Bytes left unescaped in query values: RFC 3986 unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    #[default]
    None,
    Started,
    Completed,
    Stopped,
}

impl Event {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }
}

/// One announce, as the client sends it and the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    /// Port we accept BitTorrent connections on (TCP).
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
    pub key: Option<u32>,
    pub tracker_id: Option<Vec<u8>>,
    pub compact: bool,
    /// Our SCION address (`scion` parameter); also "send me SCION peers".
    pub scion: Option<ScionAddr>,
}

/// Appends the announce query to `base` (which may already carry a query).
pub fn announce_url(base: &str, r: &AnnounceRequest) -> String {
    let mut u = String::with_capacity(base.len() + 256);
    u.push_str(base);
    u.push(if base.contains('?') { '&' } else { '?' });
    let _ = write!(
        u,
        "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact={}",
        percent_encode(&r.info_hash, QUERY_VALUE),
        percent_encode(&r.peer_id, QUERY_VALUE),
        r.port,
        r.uploaded,
        r.downloaded,
        r.left,
        u8::from(r.compact)
    );
    if let Some(e) = r.event.as_str() {
        let _ = write!(u, "&event={e}");
    }
    if let Some(n) = r.numwant {
        let _ = write!(u, "&numwant={n}");
    }
    if let Some(k) = r.key {
        let _ = write!(u, "&key={k:08x}");
    }
    if let Some(t) = &r.tracker_id {
        let _ = write!(u, "&trackerid={}", percent_encode(t, QUERY_VALUE));
    }
    if let Some(s) = &r.scion {
        let _ = write!(
            u,
            "&scion={}",
            percent_encode(s.to_string().as_bytes(), QUERY_VALUE)
        );
    }
    u
}

/// Why a request (server side) cannot be served; the text becomes the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("missing parameter {0}")]
    Missing(&'static str),
    #[error("invalid parameter {0}")]
    Invalid(&'static str),
    #[error("too many info_hash parameters (at most {0})")]
    TooManyHashes(usize),
}

fn params(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split(|&b| b == b'&').filter_map(|kv| {
        if kv.is_empty() {
            return None;
        }
        let mut it = kv.splitn(2, |&b| b == b'=');
        let k = it.next()?;
        Some((k, it.next().unwrap_or(b"")))
    })
}

fn decode_20(v: &[u8], name: &'static str) -> Result<[u8; 20], QueryError> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for b in percent_decode(v) {
        *out.get_mut(n).ok_or(QueryError::Invalid(name))? = b;
        n += 1;
    }
    if n != 20 {
        return Err(QueryError::Invalid(name));
    }
    Ok(out)
}

fn decode_num<T: std::str::FromStr>(v: &[u8], name: &'static str) -> Result<T, QueryError> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(QueryError::Invalid(name))
}

/// Parses an announce query string (the part after `?`). Unknown parameters are ignored; `ip`
/// is ignored (the server uses the connection's address).
pub fn parse_announce_query(query: &[u8]) -> Result<AnnounceRequest, QueryError> {
    let (mut info_hash, mut peer_id, mut port) = (None, None, None);
    let mut r = AnnounceRequest {
        info_hash: [0; 20],
        peer_id: [0; 20],
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::None,
        numwant: None,
        key: None,
        tracker_id: None,
        compact: false,
        scion: None,
    };
    for (k, v) in params(query) {
        match k {
            b"info_hash" => info_hash = Some(decode_20(v, "info_hash")?),
            b"peer_id" => peer_id = Some(decode_20(v, "peer_id")?),
            b"port" => port = Some(decode_num::<u16>(v, "port")?),
            b"uploaded" => r.uploaded = decode_num(v, "uploaded")?,
            b"downloaded" => r.downloaded = decode_num(v, "downloaded")?,
            b"left" => r.left = decode_num(v, "left")?,
            b"compact" => r.compact = v == b"1",
            b"numwant" => {
                // Negative (BEP 15's -1) means "the default", as over UDP.
                r.numwant = decode_num::<i64>(v, "numwant")
                    .ok()
                    .filter(|&n| n >= 0)
                    .map(|n| n.min(u32::MAX as i64) as u32)
            }
            b"key" => {
                r.key = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| u32::from_str_radix(s, 16).ok())
            }
            b"trackerid" => r.tracker_id = Some(percent_decode(v).take(64).collect()),
            b"event" => {
                r.event = match v {
                    b"started" => Event::Started,
                    b"completed" => Event::Completed,
                    b"stopped" => Event::Stopped,
                    b"" | b"empty" | b"paused" => Event::None,
                    _ => return Err(QueryError::Invalid("event")),
                }
            }
            b"scion" => {
                let s: Vec<u8> = percent_decode(v).take(128).collect();
                let s = std::str::from_utf8(&s).map_err(|_| QueryError::Invalid("scion"))?;
                r.scion = Some(s.parse().map_err(|_| QueryError::Invalid("scion"))?);
            }
            _ => {}
        }
    }
    r.info_hash = info_hash.ok_or(QueryError::Missing("info_hash"))?;
    r.peer_id = peer_id.ok_or(QueryError::Missing("peer_id"))?;
    r.port = port.ok_or(QueryError::Missing("port"))?;
    Ok(r)
}

/// The info hashes of a scrape query (`info_hash` repeated), at most `max`.
pub fn parse_scrape_query(query: &[u8], max: usize) -> Result<Vec<InfoHash>, QueryError> {
    let mut out = Vec::new();
    for (k, v) in params(query) {
        if k == b"info_hash" {
            if out.len() == max {
                return Err(QueryError::TooManyHashes(max));
            }
            out.push(decode_20(v, "info_hash")?);
        }
    }
    Ok(out)
}

/// The scrape URL for an announce URL (BEP 48: last path segment `announce` → `scrape`).
pub fn scrape_url(announce: &str) -> Option<String> {
    let (path, query) = match announce.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (announce, None),
    };
    let slash = path.rfind('/')?;
    let last = &path[slash + 1..];
    let rest = last.strip_prefix("announce")?;
    let mut u = format!("{}/scrape{}", &path[..slash], rest);
    if let Some(q) = query {
        u.push('?');
        u.push_str(q);
    }
    Some(u)
}

/// Appends `info_hash=..` parameters for a scrape.
pub fn scrape_request_url(scrape: &str, hashes: &[InfoHash]) -> String {
    let mut u = scrape.to_string();
    for (i, h) in hashes.iter().enumerate() {
        let sep = if i == 0 && !scrape.contains('?') {
            '?'
        } else {
            '&'
        };
        let _ = write!(u, "{sep}info_hash={}", percent_encode(h, QUERY_VALUE));
    }
    u
}

/// Limits for decoding responses from untrusted trackers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseLimits {
    /// Peers kept from one response (all kinds together); the rest are dropped and counted.
    pub max_peers: usize,
    /// Largest response body read.
    pub max_body: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self {
            max_peers: 1000,
            max_body: 512 * 1024,
        }
    }
}

/// A successful announce response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceResponse {
    pub interval: Option<u32>,
    pub min_interval: Option<u32>,
    pub tracker_id: Option<Vec<u8>>,
    pub complete: Option<u32>,
    pub incomplete: Option<u32>,
    pub warning: Option<String>,
    /// IP and SCION peers, in the order read, at most `max_peers`.
    pub peers: Vec<PeerAddr>,
    /// Peers beyond `max_peers` that were not kept.
    pub peers_dropped: usize,
}

/// Why a tracker response is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("tracker failure: {0}")]
    Failure(String),
    #[error("response is not bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("response is not a bencoded dictionary")]
    NotADict,
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("key {key:?} has {len} bytes, not a multiple of the {entry}-byte compact entry")]
    CompactLength {
        key: &'static str,
        len: usize,
        entry: usize,
    },
    #[error("key {0:?} has the wrong type")]
    WrongType(&'static str),
    #[error("{0:?} is out of range")]
    OutOfRange(&'static str),
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(512)]).into_owned()
}

fn opt_u32(v: &Value, key: &'static str) -> Result<Option<u32>, ResponseError> {
    match v.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Int(i)) => u32::try_from(*i)
            .map(Some)
            .map_err(|_| ResponseError::OutOfRange(key)),
        Some(_) => Err(ResponseError::WrongType(key)),
    }
}

/// What every tracker response starts with: a bounded body that is a bencoded dictionary and
/// not a `failure reason`.
fn response_dict<'a>(body: &'a [u8], limits: &ResponseLimits) -> Result<Value<'a>, ResponseError> {
    if body.len() > limits.max_body {
        return Err(ResponseError::TooLarge(limits.max_body));
    }
    let v = DECODER.decode(body)?;
    if v.as_dict().is_none() {
        return Err(ResponseError::NotADict);
    }
    if let Some(f) = v.get(b"failure reason") {
        return Err(ResponseError::Failure(
            f.as_bytes()
                .map(text)
                .unwrap_or_else(|| "(not a string)".into()),
        ));
    }
    Ok(v)
}

/// Decodes an announce response body. A `failure reason` is an error; peers beyond
/// `limits.max_peers` are dropped (counted), a compact list of the wrong length is an error.
pub fn parse_announce_response(
    body: &[u8],
    limits: &ResponseLimits,
) -> Result<AnnounceResponse, ResponseError> {
    let v = response_dict(body, limits)?;
    let mut r = AnnounceResponse {
        interval: opt_u32(&v, "interval")?,
        min_interval: opt_u32(&v, "min interval")?,
        complete: opt_u32(&v, "complete")?,
        incomplete: opt_u32(&v, "incomplete")?,
        tracker_id: v
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .map(|b| b[..b.len().min(64)].to_vec()),
        warning: v
            .get(b"warning message")
            .and_then(Value::as_bytes)
            .map(text),
        ..Default::default()
    };
    let keep = |p: PeerAddr, r: &mut AnnounceResponse| {
        if r.peers.len() < limits.max_peers {
            r.peers.push(p);
        } else {
            r.peers_dropped += 1;
        }
    };
    match v.get(b"peers") {
        None => {}
        Some(Value::Bytes(b)) => {
            for p in compact_list(b, "peers", IP_V4_LEN, compact::read_ip)? {
                keep(PeerAddr::Ip(p), &mut r);
            }
        }
        Some(Value::List(l)) => {
            for d in l {
                if let Some(p) = peer_from_dict(d) {
                    keep(p, &mut r);
                }
            }
        }
        Some(_) => return Err(ResponseError::WrongType("peers")),
    }
    for (key, entry) in [("peers6", IP_V6_LEN)] {
        if let Some(b) = bytes_key(&v, key)? {
            for p in compact_list(b, key, entry, compact::read_ip)? {
                keep(PeerAddr::Ip(p), &mut r);
            }
        }
    }
    for (key, entry) in [
        ("peers_scion", SCION_V4_LEN),
        ("peers6_scion", SCION_V6_LEN),
    ] {
        if let Some(b) = bytes_key(&v, key)? {
            for p in compact_list(b, key, entry, compact::read_scion)? {
                keep(PeerAddr::Scion(p), &mut r);
            }
        }
    }
    Ok(r)
}

fn bytes_key<'a>(v: &Value<'a>, key: &'static str) -> Result<Option<&'a [u8]>, ResponseError> {
    match v.get(key.as_bytes()) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b)),
        Some(_) => Err(ResponseError::WrongType(key)),
    }
}

fn compact_list<T>(
    b: &[u8],
    key: &'static str,
    entry: usize,
    read: impl Fn(&[u8]) -> Option<T>,
) -> Result<Vec<T>, ResponseError> {
    compact::read_list(b, entry, read).map_err(|e| ResponseError::CompactLength {
        key,
        len: e.len,
        entry,
    })
}

/// A non-compact peer: `ip` (literal; names are not resolved and skipped), `port`, and for a
/// SCION peer `ia`.
fn peer_from_dict(d: &Value) -> Option<PeerAddr> {
    let ip: IpAddr = std::str::from_utf8(d.get(b"ip")?.as_bytes()?)
        .ok()?
        .parse()
        .ok()?;
    let port = u16::try_from(d.get(b"port")?.as_int()?).ok()?;
    match d.get(b"ia").and_then(Value::as_bytes) {
        Some(ia) if !ia.is_empty() => {
            let ia = parse_ia(std::str::from_utf8(ia).ok()?).ok()?;
            Some(PeerAddr::Scion(ScionAddr::new(ia, ip, port)))
        }
        _ => Some(PeerAddr::Ip(SocketAddr::new(ip, port))),
    }
}

/// Counters of one torrent in a scrape response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeStats {
    pub complete: u32,
    pub downloaded: u32,
    pub incomplete: u32,
}

/// Decodes a scrape response: `files` → info hash → counters (at most 1000 entries).
pub fn parse_scrape_response(
    body: &[u8],
    limits: &ResponseLimits,
) -> Result<Vec<(InfoHash, ScrapeStats)>, ResponseError> {
    let v = response_dict(body, limits)?;
    let files = match v.get(b"files") {
        None => return Ok(Vec::new()),
        Some(f) => f.as_dict().ok_or(ResponseError::WrongType("files"))?,
    };
    let mut out = Vec::new();
    for (k, s) in files.iter().take(1000) {
        let Ok(h) = <InfoHash>::try_from(k) else {
            continue;
        };
        out.push((
            h,
            ScrapeStats {
                complete: opt_u32(s, "complete")?.unwrap_or(0),
                downloaded: opt_u32(s, "downloaded")?.unwrap_or(0),
                incomplete: opt_u32(s, "incomplete")?.unwrap_or(0),
            },
        ));
    }
    Ok(out)
}

/// Writes a scrape response.
pub fn write_scrape_response(out: &mut Vec<u8>, files: &[(InfoHash, ScrapeStats)]) {
    let mut by_hash = DictWriter::new();
    for (h, s) in files {
        let mut stats = DictWriter::new();
        stats
            .int("complete", i64::from(s.complete))
            .int("downloaded", i64::from(s.downloaded))
            .int("incomplete", i64::from(s.incomplete));
        by_hash.dict(h, stats);
    }
    let mut d = DictWriter::new();
    d.dict("files", by_hash);
    d.write_to(out);
}

/// A complete `d14:failure reason<len>:<msg>e` document.
pub fn failure(msg: &str) -> Vec<u8> {
    let mut d = DictWriter::new();
    d.bytes("failure reason", msg);
    d.finish()
}

/// The counters and warning every announce response carries.
fn response_head(b: &ResponseBody) -> DictWriter {
    let mut d = DictWriter::new();
    d.int("complete", i64::from(b.complete))
        .int("incomplete", i64::from(b.incomplete))
        .int("interval", i64::from(b.interval))
        .int("min interval", i64::from(b.min_interval));
    if let Some(w) = b.warning {
        d.bytes("warning message", w);
    }
    d
}

/// What the server puts into one announce response; peer lists are already selected.
#[derive(Debug, Default)]
pub struct ResponseBody<'a> {
    pub interval: u32,
    pub min_interval: u32,
    pub complete: u32,
    pub incomplete: u32,
    pub warning: Option<&'a str>,
    /// Compact forms: 6-, 18-, 14- and 26-byte entries.
    pub peers: &'a [u8],
    pub peers6: &'a [u8],
    pub peers_scion: &'a [u8],
    pub peers6_scion: &'a [u8],
}

/// Writes a compact announce response (keys sorted, empty SCION lists omitted).
pub fn write_compact_response(out: &mut Vec<u8>, b: &ResponseBody) {
    let mut d = response_head(b);
    d.bytes("peers", b.peers).bytes("peers6", b.peers6);
    if !b.peers6_scion.is_empty() {
        d.bytes("peers6_scion", b.peers6_scion);
    }
    if !b.peers_scion.is_empty() {
        d.bytes("peers_scion", b.peers_scion);
    }
    d.write_to(out);
}

/// One peer of a non-compact response.
pub struct DictPeer<'a> {
    pub peer_id: &'a [u8; 20],
    pub addr: PeerAddr,
}

/// Writes a non-compact announce response: `peers` is a list of dictionaries with `ip`,
/// `peer id`, `port`, and `ia` for SCION peers (netsys-lab/scionbttracker's form, which also
/// uses `id`; we write `peer id` as BEP 3 says).
pub fn write_dict_response(out: &mut Vec<u8>, b: &ResponseBody, peers: &[DictPeer]) {
    let mut list = ListWriter::new();
    for p in peers {
        let mut peer = DictWriter::new();
        if let PeerAddr::Scion(s) = &p.addr {
            peer.bytes("ia", s.ia.to_string());
        }
        let sa = p.addr.socket_addr();
        peer.bytes("ip", sa.ip().to_string())
            .bytes("peer id", p.peer_id)
            .int("port", i64::from(sa.port()));
        list.dict(peer);
    }
    let mut d = response_head(b);
    d.list("peers", list);
    d.write_to(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: *b"\x00\x01 &=?+%\xff\xfeabcdefghij",
            peer_id: *b"-BS0001-abcdefghijkl",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            numwant: Some(50),
            key: Some(0xdead_beef),
            tracker_id: Some(b"t&1".to_vec()),
            compact: true,
            scion: Some("1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap()),
        }
    }

    #[test]
    fn announce_query_round_trip() {
        let r = req();
        let url = announce_url("http://t.example/announce", &r);
        assert!(
            url.contains("scion=1-ff00%3A0%3A112%2C%5B127.0.0.1%5D%3A43000"),
            "{url}"
        );
        assert!(url.contains("key=deadbeef") && url.contains("event=started"));
        let q = url.split_once('?').unwrap().1;
        assert_eq!(parse_announce_query(q.as_bytes()).unwrap(), r);
        // An existing query is kept.
        assert!(
            announce_url("http://t/a?passkey=x", &r).starts_with("http://t/a?passkey=x&info_hash=")
        );
    }

    #[test]
    fn announce_query_errors() {
        assert_eq!(
            parse_announce_query(b"peer_id=aaaaaaaaaaaaaaaaaaaa&port=1"),
            Err(QueryError::Missing("info_hash"))
        );
        assert_eq!(
            parse_announce_query(b"info_hash=abc&peer_id=aaaaaaaaaaaaaaaaaaaa&port=1"),
            Err(QueryError::Invalid("info_hash"))
        );
        let base = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=aaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            parse_announce_query(format!("{base}&port=70000").as_bytes()),
            Err(QueryError::Invalid("port"))
        );
        assert_eq!(
            parse_announce_query(format!("{base}&port=1&scion=nonsense").as_bytes()),
            Err(QueryError::Invalid("scion"))
        );
        assert!(parse_announce_query(format!("{base}&port=1").as_bytes()).is_ok());
    }

    #[test]
    fn scrape_urls() {
        assert_eq!(
            scrape_url("http://t/announce").as_deref(),
            Some("http://t/scrape")
        );
        assert_eq!(
            scrape_url("http://t/x/announce.php?k=1").as_deref(),
            Some("http://t/x/scrape.php?k=1")
        );
        assert_eq!(scrape_url("http://t/a"), None);
        let u = scrape_request_url("http://t/scrape", &[[1; 20], [2; 20]]);
        let q = u.split_once('?').unwrap().1;
        assert_eq!(
            parse_scrape_query(q.as_bytes(), 10).unwrap(),
            vec![[1; 20], [2; 20]]
        );
        assert_eq!(
            parse_scrape_query(q.as_bytes(), 1),
            Err(QueryError::TooManyHashes(1))
        );
    }

    #[test]
    fn compact_response_round_trip_all_kinds() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:81".parse().unwrap();
        let s4: ScionAddr = "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap();
        let s6: ScionAddr = "2-64512,[fd00::1]:7".parse().unwrap();
        let (mut p4, mut p6, mut ps4, mut ps6) = (vec![], vec![], vec![], vec![]);
        compact::write_ip(v4, &mut p4);
        compact::write_ip(v6, &mut p6);
        compact::write_scion(&s4, &mut ps4);
        compact::write_scion(&s6, &mut ps6);
        let mut out = Vec::new();
        write_compact_response(
            &mut out,
            &ResponseBody {
                interval: 900,
                min_interval: 60,
                complete: 2,
                incomplete: 3,
                warning: Some("careful"),
                peers: &p4,
                peers6: &p6,
                peers_scion: &ps4,
                peers6_scion: &ps6,
            },
        );
        let r = parse_announce_response(&out, &ResponseLimits::default()).unwrap();
        assert_eq!(r.interval, Some(900));
        assert_eq!(r.min_interval, Some(60));
        assert_eq!((r.complete, r.incomplete), (Some(2), Some(3)));
        assert_eq!(r.warning.as_deref(), Some("careful"));
        assert_eq!(
            r.peers,
            vec![
                v4.into(),
                v6.into(),
                PeerAddr::Scion(s4),
                PeerAddr::Scion(s6)
            ]
        );
        // Sorted keys: the strict reader accepts what we write.
        assert!(Decoder::STRICT.decode(&out).is_ok());
    }

    #[test]
    fn netsys_scionbttracker_response() {
        // Their format: unsorted top-level keys, peers as dicts with id/ip/ia/port (+ extras).
        let body = b"d8:intervali120e12:min intervali30e8:completei1e10:incompletei1e5:peersl\
d10:bytes_lefti0e2:ia12:1-ff00:0:1122:id20:aaaaaaaaaaaaaaaaaaaa9:info_hash20:bbbbbbbbbbbbbbbbbbbb2:ip9:127.0.0.14:porti43000ee\
d2:ip3:::14:porti6881eed2:ip9:some.host4:porti1eeee";
        let r = parse_announce_response(body, &ResponseLimits::default()).unwrap();
        assert_eq!(r.interval, Some(120));
        assert_eq!(
            r.peers,
            vec![
                "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap(),
                "[::1]:6881".parse().unwrap()
            ]
        );
    }

    #[test]
    fn hostile_responses() {
        let l = ResponseLimits {
            max_peers: 10,
            max_body: 1000,
        };
        let e = parse_announce_response(b"d8:intervali60e5:peers7:abcdefge", &l).unwrap_err();
        assert_eq!(
            e,
            ResponseError::CompactLength {
                key: "peers",
                len: 7,
                entry: 6
            }
        );
        assert!(e.to_string().contains("not a multiple of the 6-byte"));
        let e = parse_announce_response(b"d11:peers_scion13:abcdefghijklme", &l).unwrap_err();
        assert!(matches!(e, ResponseError::CompactLength { entry: 14, .. }));
        assert!(matches!(
            parse_announce_response(b"d8:intervali6", &l),
            Err(ResponseError::Bencode(_))
        ));
        assert_eq!(
            parse_announce_response(b"d14:failure reason6:bannede", &l),
            Err(ResponseError::Failure("banned".into()))
        );
        assert_eq!(
            parse_announce_response(b"d8:intervali-1ee", &l),
            Err(ResponseError::OutOfRange("interval"))
        );
        assert_eq!(
            parse_announce_response(b"le", &l),
            Err(ResponseError::NotADict)
        );
        // Many peers: keep 10, count the rest.
        let mut body = b"d5:peers600:".to_vec();
        body.extend_from_slice(&[7u8; 600]);
        body.push(b'e');
        let r = parse_announce_response(&body, &l).unwrap();
        assert_eq!((r.peers.len(), r.peers_dropped), (10, 90));
        assert_eq!(
            parse_announce_response(&vec![b'x'; 1001], &l),
            Err(ResponseError::TooLarge(1000))
        );
    }

    #[test]
    fn dict_response_carries_ia() {
        let s: PeerAddr = "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap();
        let i: PeerAddr = "127.0.0.1:6881".parse().unwrap();
        let id = [b'x'; 20];
        let mut out = Vec::new();
        write_dict_response(
            &mut out,
            &ResponseBody {
                interval: 60,
                ..Default::default()
            },
            &[
                DictPeer {
                    peer_id: &id,
                    addr: s,
                },
                DictPeer {
                    peer_id: &id,
                    addr: i,
                },
            ],
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("2:ia12:1-ff00:0:112"), "{text}");
        let r = parse_announce_response(&out, &ResponseLimits::default()).unwrap();
        assert_eq!(r.peers, vec![s, i]);
    }

    #[test]
    fn scrape_response_round_trip() {
        let files = vec![(
            [3u8; 20],
            ScrapeStats {
                complete: 1,
                downloaded: 2,
                incomplete: 3,
            },
        )];
        let mut out = Vec::new();
        write_scrape_response(&mut out, &files);
        assert_eq!(
            parse_scrape_response(&out, &ResponseLimits::default()).unwrap(),
            files
        );
    }

    proptest! {
        #[test]
        fn response_parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_announce_response(&data, &ResponseLimits::default());
            let _ = parse_scrape_response(&data, &ResponseLimits::default());
        }

        #[test]
        fn query_parser_never_panics(data in "[a-z_=&%0-9A-F:,\\[\\].-]{0,200}") {
            let _ = parse_announce_query(data.as_bytes());
            let _ = parse_scrape_query(data.as_bytes(), 10);
        }

        #[test]
        fn announce_round_trip(ih in any::<[u8; 20]>(), pid in any::<[u8; 20]>(), port in any::<u16>(),
                               up in any::<u64>(), left in any::<u64>(), key in any::<u32>()) {
            let r = AnnounceRequest { info_hash: ih, peer_id: pid, port, uploaded: up, downloaded: 0,
                left, event: Event::None, numwant: None, key: Some(key), tracker_id: None,
                compact: true, scion: None };
            let url = announce_url("http://x/announce", &r);
            let q = url.split_once('?').unwrap().1;
            prop_assert_eq!(parse_announce_query(q.as_bytes()).unwrap(), r);
        }
    }

    /// The tracker's bencode rules ([`DECODER`]) and the failure document (moved here with
    /// the tracker's own reader, which bt-bencode replaced).
    mod bencode_rules {
        use super::super::{failure, DECODER};
        use bt_bencode::{Error as BencodeError, Value};
        use proptest::prelude::*;

        fn decode(input: &[u8]) -> Result<Value<'_>, BencodeError> {
            DECODER.decode(input)
        }

        #[test]
        fn decodes_unsorted_dicts_and_nesting() {
            let v = decode(b"d8:intervali60e8:completei1e5:peersld2:ip9:127.0.0.14:porti80eeee")
                .unwrap();
            assert_eq!(v.get(b"interval").and_then(Value::as_int), Some(60));
            let peers = v.get(b"peers").and_then(Value::as_list).unwrap();
            assert_eq!(peers[0].get(b"port").and_then(Value::as_int), Some(80));
        }

        #[test]
        fn rejects_bad_input_clearly() {
            for (bad, hint) in [
                (&b"d8:interval"[..], "truncated"),
                (b"i12", "truncated"),
                (b"5:abc", "truncated"),
                (b"i1x2e", "non-digit"),
                (b"ie", "empty number"),
                (b"i99999999999999999999e", "out of range"),
                (b"di1ei2ee", "key is not a string"),
                (b"i1ei2e", "trailing"),
                (b"x", "expected"),
            ] {
                let e = decode(bad).unwrap_err().to_string();
                assert!(e.contains(hint), "{:?}: {e}", String::from_utf8_lossy(bad));
            }
            let deep = [b"l".repeat(100), b"e".repeat(100)].concat();
            assert_eq!(decode(&deep), Err(BencodeError::TooDeep));
        }

        #[test]
        fn failure_document() {
            let f = failure("nope");
            assert_eq!(f, b"d14:failure reason4:nopee");
            assert_eq!(
                decode(&f).unwrap().get(b"failure reason"),
                Some(&Value::Bytes(b"nope"))
            );
        }

        proptest! {
            #[test]
            fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
                let _ = decode(&data);
            }

            #[test]
            fn never_panics_on_bencode_alphabet(data in "[dlie0-9:-]{0,64}") {
                let _ = decode(data.as_bytes());
            }
        }
    }
}
