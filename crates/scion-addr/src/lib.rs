//! SCION and IP peer addresses: parsing and display.
//!
//! * ISD-AS: `1-ff00:0:110` (hex groups, ASes above 2^32) or `1-64512` (decimal BGP-style AS
//!   numbers). The type is sciparse's [`IsdAsn`], re-exported as [`Ia`]; it parses and displays
//!   both forms.
//! * SCION socket address ([`ScionAddr`]): `1-ff00:0:112,[127.0.0.1]:43000`. Also accepted on
//!   input: `1-ff00:0:112,127.0.0.1:43000`, `1-ff00:0:112,[::1]:43000` and sciparse's
//!   `[1-ff00:0:112,127.0.0.1]:43000`. Always displayed with brackets around the host.
//! * A peer ([`PeerAddr`]) is either a SCION address or a plain IP socket address
//!   (`127.0.0.1:6881`, `[::1]:6881`).

pub mod compact;

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    str::FromStr,
};

/// An ISD-AS identifier (sciparse's `IsdAsn`: a `u64`, ISD in the top 16 bits).
pub type Ia = sciparse::identifier::isd_asn::IsdAsn;

/// What went wrong parsing an address; the message names the input and the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{input}': {reason} (expected {expected})")]
pub struct AddrParseError {
    what: &'static str,
    input: String,
    reason: String,
    expected: &'static str,
}

const IA_FORM: &str = "ISD-AS such as 1-ff00:0:110 or 1-64512";
const SCION_FORM: &str = "ISD-AS,[IP]:port such as 1-ff00:0:112,[127.0.0.1]:43000";
const PEER_FORM: &str =
    "ISD-AS,[IP]:port such as 1-ff00:0:112,[127.0.0.1]:43000, or IP:port such as 127.0.0.1:6881 \
     or [::1]:6881";

impl AddrParseError {
    fn new(
        what: &'static str,
        input: &str,
        reason: impl Into<String>,
        expected: &'static str,
    ) -> Self {
        // Keep error messages bounded even for absurd inputs.
        let input: String = input.chars().take(120).collect();
        Self {
            what,
            input,
            reason: reason.into(),
            expected,
        }
    }
}

/// Parses an ISD-AS (`1-ff00:0:110`, `1-64512`) with a clear error message.
pub fn parse_ia(s: &str) -> Result<Ia, AddrParseError> {
    let t = s.trim();
    let err = |reason: &str| AddrParseError::new("ISD-AS", s, reason, IA_FORM);
    let Some((isd, asn)) = t.split_once('-') else {
        return Err(err("missing '-' between ISD and AS"));
    };
    if isd.is_empty() || asn.is_empty() {
        return Err(err("empty ISD or AS part"));
    }
    if isd.parse::<u16>().is_err() {
        return Err(err("the ISD must be a decimal number below 65536"));
    }
    Ia::from_str(t).map_err(|_| {
        err("the AS must be a decimal number below 2^32 or three ':'-separated hex groups")
    })
}

/// A SCION UDP endpoint: ISD-AS, host IP and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScionAddr {
    /// The AS the host is in.
    pub ia: Ia,
    /// The host's IP address inside its AS.
    pub host: IpAddr,
    /// The UDP port.
    pub port: u16,
}

impl ScionAddr {
    /// A SCION address from its parts.
    pub const fn new(ia: Ia, host: IpAddr, port: u16) -> Self {
        Self { ia, host, port }
    }

    /// The host part as an IP socket address (host IP and port), e.g. for the underlay.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The same host and AS on another port.
    pub fn with_port(self, port: u16) -> Self {
        Self { port, ..self }
    }
}

impl fmt::Display for ScionAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},[{}]:{}", self.ia, self.host, self.port)
    }
}

impl FromStr for ScionAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_scion(s, "SCION address", SCION_FORM)
    }
}

fn parse_scion(
    s: &str,
    what: &'static str,
    expected: &'static str,
) -> Result<ScionAddr, AddrParseError> {
    let err = |reason: String| AddrParseError::new(what, s, reason, expected);
    let t = s.trim();

    // sciparse's form: [1-ff00:0:112,127.0.0.1]:43000
    if let Some(inner) = t.strip_prefix('[') {
        if let Some((ia_host, port)) = inner.rsplit_once("]:") {
            if let Some((ia, host)) = ia_host.split_once(',') {
                let ia = parse_ia(ia).map_err(|e| err(format!("bad ISD-AS: {}", e.reason)))?;
                let host = parse_host(host.trim_matches(|c| c == '[' || c == ']')).map_err(&err)?;
                let port = parse_port(port).map_err(&err)?;
                return Ok(ScionAddr::new(ia, host, port));
            }
        }
    }

    let Some((ia, rest)) = t.split_once(',') else {
        return Err(err("missing ',' between ISD-AS and host".into()));
    };
    let ia = parse_ia(ia).map_err(|e| err(format!("bad ISD-AS '{}': {}", ia.trim(), e.reason)))?;
    let rest = rest.trim();
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((host, port)) = bracketed.split_once("]:") else {
            return Err(err("missing ']:port' after '[host'".into()));
        };
        (host, port)
    } else {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(err("missing ':port' after the host".into()));
        };
        if host.contains(':') {
            return Err(err(
                "an IPv6 host must be written in brackets, e.g. [::1]:43000".into(),
            ));
        }
        (host, port)
    };
    let host = parse_host(host).map_err(&err)?;
    let port = parse_port(port).map_err(&err)?;
    Ok(ScionAddr::new(ia, host, port))
}

fn parse_host(host: &str) -> Result<IpAddr, String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if let Ok(ip) = IpAddr::from_str(host) {
        return Ok(ip);
    }
    // Allow an IPv6 zone-less literal only; names are not resolved here.
    if Ipv6Addr::from_str(host.split('%').next().unwrap_or(host)).is_ok() {
        return Err(format!(
            "IPv6 zone identifiers are not supported in '{host}'"
        ));
    }
    Err(format!("'{host}' is not an IPv4 or IPv6 address"))
}

fn parse_port(port: &str) -> Result<u16, String> {
    port.trim()
        .parse::<u16>()
        .map_err(|_| format!("'{port}' is not a port number (0-65535)"))
}

impl serde::Serialize for ScionAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScionAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A peer: reachable over SCION (QUIC/SCION) or over plain IP (TCP or QUIC/IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerAddr {
    /// `ISD-AS,[IP]:port`
    Scion(ScionAddr),
    /// `IP:port` or `[IPv6]:port`
    Ip(SocketAddr),
}

impl PeerAddr {
    /// The SCION address, if this is a SCION peer.
    pub fn as_scion(&self) -> Option<&ScionAddr> {
        match self {
            PeerAddr::Scion(a) => Some(a),
            PeerAddr::Ip(_) => None,
        }
    }

    /// The host IP and port (for a SCION peer: its address inside its AS).
    pub fn socket_addr(&self) -> SocketAddr {
        match self {
            PeerAddr::Scion(a) => a.socket_addr(),
            PeerAddr::Ip(a) => *a,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.socket_addr().port()
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Scion(a) => a.fmt(f),
            PeerAddr::Ip(a) => a.fmt(f),
        }
    }
}

impl FromStr for PeerAddr {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.contains(',') {
            return parse_scion(s, "peer address", PEER_FORM).map(PeerAddr::Scion);
        }
        if let Ok(a) = SocketAddr::from_str(t) {
            return Ok(PeerAddr::Ip(a));
        }
        let reason = if t.is_empty() {
            "empty address".to_string()
        } else if let Ok(ip) = IpAddr::from_str(t) {
            if ip.is_ipv6() {
                "an IPv6 address needs brackets and a port, e.g. [::1]:6881".to_string()
            } else {
                "missing ':port'".to_string()
            }
        } else if t.matches(':').count() > 1 && !t.starts_with('[') {
            "an IPv6 host must be written in brackets, e.g. [::1]:6881".to_string()
        } else if let Some((host, port)) = t.rsplit_once(':') {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            match (parse_host(host), parse_port(port)) {
                (Err(r), _) | (_, Err(r)) => r,
                _ => "not an IP socket address".to_string(),
            }
        } else {
            "missing ':port' (host names are not resolved)".to_string()
        };
        Err(AddrParseError::new("peer address", s, reason, PEER_FORM))
    }
}

impl From<ScionAddr> for PeerAddr {
    fn from(a: ScionAddr) -> Self {
        PeerAddr::Scion(a)
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr::Ip(a)
    }
}

impl serde::Serialize for PeerAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ia(s: &str) -> Ia {
        parse_ia(s).unwrap()
    }

    #[test]
    fn ia_forms() {
        assert_eq!(ia("1-ff00:0:110").to_u64(), 0x0001_ff00_0000_0110);
        assert_eq!(ia("1-ff00:0:110").to_string(), "1-ff00:0:110");
        assert_eq!(ia("1-64512").to_u64(), (1u64 << 48) | 64512);
        assert_eq!(ia("1-64512").to_string(), "1-64512");
        assert_eq!(
            ia("65535-ffff:ffff:ffff").to_string(),
            "65535-ffff:ffff:ffff"
        );
        assert_eq!(ia(" 2-0:0:1 ").to_string(), "2-1");
        for bad in [
            "",
            "1",
            "1-",
            "-1",
            "x-1",
            "1-x",
            "70000-1",
            "1-1:2",
            "1-ff00:0:110:1",
            "1-10000:0:1",
            "1-4294967296",
        ] {
            let e = parse_ia(bad).unwrap_err().to_string();
            assert!(e.contains("ISD-AS") && e.contains("expected"), "{bad}: {e}");
        }
    }

    #[test]
    fn scion_addr_forms() {
        let a: ScionAddr = "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap();
        assert_eq!(a.ia, ia("1-ff00:0:112"));
        assert_eq!(a.host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(a.port, 43000);
        assert_eq!(a.to_string(), "1-ff00:0:112,[127.0.0.1]:43000");

        let b: ScionAddr = "1-ff00:0:112,127.0.0.1:43000".parse().unwrap();
        assert_eq!(a, b);
        let c: ScionAddr = "[1-ff00:0:112,127.0.0.1]:43000".parse().unwrap();
        assert_eq!(a, c);

        let v6: ScionAddr = "2-64512,[fd00::1]:1".parse().unwrap();
        assert_eq!(v6.host, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(v6.to_string(), "2-64512,[fd00::1]:1");
        assert_eq!(v6.to_string().parse::<ScionAddr>().unwrap(), v6);
    }

    #[test]
    fn scion_addr_errors() {
        for (bad, hint) in [
            ("1-ff00:0:112", "','"),
            ("1-ff00:0:112,[127.0.0.1]", "]:port"),
            ("1-ff00:0:112,127.0.0.1", ":port"),
            ("1-ff00:0:112,::1:80", "brackets"),
            ("1-ff00:0:112,[127.0.0.1]:70000", "port"),
            ("1-ff00:0:112,[127.0.0.x]:7", "not an IPv4"),
            ("1-zz,[127.0.0.1]:7", "ISD-AS"),
            ("1-ff00:0:112,host.example:7", "not an IPv4"),
            ("1-ff00:0:112,[fe80::1%eth0]:7", "zone"),
        ] {
            let e = bad.parse::<ScionAddr>().unwrap_err().to_string();
            assert!(e.contains(hint), "{bad}: {e}");
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn peer_addr_forms() {
        let p: PeerAddr = "1-ff00:0:112,[127.0.0.1]:43000".parse().unwrap();
        assert!(matches!(p, PeerAddr::Scion(_)));
        assert_eq!(p.to_string(), "1-ff00:0:112,[127.0.0.1]:43000");
        assert_eq!(p.port(), 43000);

        let p: PeerAddr = "127.0.0.1:6881".parse().unwrap();
        assert_eq!(p, PeerAddr::Ip("127.0.0.1:6881".parse().unwrap()));
        assert_eq!(p.to_string(), "127.0.0.1:6881");

        let p: PeerAddr = "[::1]:6881".parse().unwrap();
        assert_eq!(p.to_string(), "[::1]:6881");
        assert_eq!(p.as_scion(), None);

        for (bad, hint) in [
            ("", "empty"),
            ("127.0.0.1", "port"),
            ("::1", "brackets and a port"),
            ("::1:6881", "brackets"),
            ("localhost:6881", "not an IPv4"),
            ("127.0.0.1:99999", "port"),
            ("1-ff00:0:112,[127.0.0.1]", "]:port"),
        ] {
            let e = bad.parse::<PeerAddr>().unwrap_err().to_string();
            assert!(e.contains(hint), "{bad:?}: {e}");
            assert!(e.contains("expected"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let p: PeerAddr = "1-ff00:0:112,[::1]:43000".parse().unwrap();
        let j = serde_json::to_string(&p).unwrap();
        assert_eq!(j, "\"1-ff00:0:112,[::1]:43000\"");
        assert_eq!(serde_json::from_str::<PeerAddr>(&j).unwrap(), p);
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet = b"0123456789abcdef:-,[]. %x";
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((seed >> (i % 8 * 8)) as usize + i) % alphabet.len()] as char)
                .collect();
            let _ = s.parse::<PeerAddr>();
            let _ = s.parse::<ScionAddr>();
            let _ = parse_ia(&s);
        }
    }
}
