//! Bootstrap node addresses as the original client takes them: a torrent's `nodes` key (BEP 5
//! form `[["host", port], ...]`, where the original client writes the host as `"ISD-AS,[IP]"`)
//! and the `-dhtBootstrapAddr` flag (`ISD-AS,[IP]:port`).

use std::net::{IpAddr, SocketAddr};

use scion_addr::{PeerAddr, ScionAddr};

use bt_bencode::Value;

use crate::krpc::DECODER;

/// Why a `nodes` entry or list was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodesError {
    /// Not bencode (the reader's error), or bencode of another type (None).
    #[error("'nodes' is not a bencoded list")]
    NotAList(#[source] Option<bt_bencode::Error>),
    #[error("node entry {index} is not a [host, port] pair")]
    BadEntry { index: usize },
    #[error("node '{host}': port {port} is not in 1..=65535")]
    BadPort { host: String, port: i64 },
    #[error("node '{host}': {reason}")]
    BadHost { host: String, reason: String },
}

/// One `[host, port]` entry: `"1-ff00:0:110,[10.0.0.1]"` (SCION, also without brackets) or a
/// literal IPv4/IPv6 address (IP). Host names are not resolved here.
pub fn parse_node_entry(host: &str, port: i64) -> Result<PeerAddr, NodesError> {
    let short: String = host.chars().take(120).collect();
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or(NodesError::BadPort {
            host: short.clone(),
            port,
        })?;
    let host = host.trim();
    if host.contains(',') {
        let (ia, ip) = host.split_once(',').unwrap_or((host, ""));
        let ip = ip.trim().trim_start_matches('[').trim_end_matches(']');
        return format!("{ia},[{ip}]:{port}")
            .parse::<ScionAddr>()
            .map(PeerAddr::Scion)
            .map_err(|e| NodesError::BadHost {
                host: short,
                reason: e.to_string(),
            });
    }
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .map(|ip| PeerAddr::Ip(SocketAddr::new(ip, port)))
        .map_err(|_| NodesError::BadHost {
            host: short,
            reason: "not an IP address or ISD-AS,[IP] (host names are not resolved)".into(),
        })
}

/// The addresses in a torrent's `nodes` value (the raw bencoded list). Unusable entries are
/// returned separately so the caller can log them; the original client rejected the torrent.
pub fn parse_torrent_nodes(raw: &[u8]) -> Result<(Vec<PeerAddr>, Vec<NodesError>), NodesError> {
    let v = DECODER
        .decode(raw)
        .map_err(|e| NodesError::NotAList(Some(e)))?;
    let list = v.as_list().ok_or(NodesError::NotAList(None))?;
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        let pair = match entry.as_list() {
            Some([Value::Bytes(h), Value::Int(p)]) => std::str::from_utf8(h).ok().map(|h| (h, *p)),
            _ => None,
        };
        match pair {
            Some((host, port)) => match parse_node_entry(host, port) {
                Ok(a) => ok.push(a),
                Err(e) => bad.push(e),
            },
            None => bad.push(NodesError::BadEntry { index }),
        }
    }
    Ok((ok, bad))
}

/// A `-dhtBootstrapAddr` / `--dht-bootstrap` value: `ISD-AS,[IP]:port` (SCION, as the
/// original client's `snet.ParseUDPAddr`) or `IP:port`.
pub fn parse_bootstrap_addr(s: &str) -> Result<PeerAddr, scion_addr::AddrParseError> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_client_torrent_nodes() {
        let entry = |host: &str, port: i64| format!("l{}:{host}i{port}ee", host.len());
        let raw = [
            entry("19-ffaa:1:c3f,[1.2.3.4]", 7000),
            entry("1-ff00:0:110,[fd00::1:2]", 1),
            entry("127.0.0.1", 6881),
            entry("router.bt.example", 6881),
            entry("1.2.3", 1),
            "i5e".to_string(),
            entry("1.2.3.4", 0),
        ]
        .concat();
        let raw = format!("l{raw}e");
        let raw = raw.as_bytes();
        let (ok, bad) = parse_torrent_nodes(raw).unwrap();
        let ok: Vec<String> = ok.iter().map(ToString::to_string).collect();
        assert_eq!(
            ok,
            [
                "19-ffaa:1:c3f,[1.2.3.4]:7000",
                "1-ff00:0:110,[fd00::1:2]:1",
                "127.0.0.1:6881"
            ]
        );
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].to_string().contains("not resolved"));
        assert!(matches!(bad[2], NodesError::BadEntry { index: 5 }));
        assert!(matches!(bad[3], NodesError::BadPort { port: 0, .. }));
        assert!(parse_torrent_nodes(b"i1e").is_err());
        assert!(parse_torrent_nodes(b"l").is_err());
    }

    #[test]
    fn entry_forms() {
        assert_eq!(
            parse_node_entry("1-ff00:0:110,10.0.0.1", 7000)
                .unwrap()
                .to_string(),
            "1-ff00:0:110,[10.0.0.1]:7000"
        );
        assert_eq!(parse_node_entry("::1", 5).unwrap().to_string(), "[::1]:5");
        assert!(parse_node_entry("1-ff00:0:110,[10.0.0.1]", 70000).is_err());
        assert!(parse_node_entry("1-zz,[10.0.0.1]", 1).is_err());
    }

    #[test]
    fn bootstrap_flag() {
        let a = parse_bootstrap_addr("19-ffaa:1:e4b,[127.0.0.1]:7000").unwrap();
        assert!(a.as_scion().is_some());
        assert_eq!(a.port(), 7000);
        assert!(parse_bootstrap_addr("127.0.0.1:6881")
            .unwrap()
            .as_scion()
            .is_none());
        assert!(parse_bootstrap_addr("19-ffaa:1:e4b").is_err());
    }
}
