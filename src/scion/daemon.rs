//! Client for the SCION daemon's `proto.daemon.v1.DaemonService` (gRPC over plaintext HTTP/2).
//!
//! The messages and the client stub are the ones generated from scionproto's own
//! `daemon.proto` in the `scion-protobuf` crate (already a dependency of sciparse); the transport
//! is `connectrpc` speaking the gRPC protocol over h2c, so it works against a real scionproto
//! daemon as well as against pocketscion's (which serves gRPC and Connect on one port).
//!
//! [`DaemonClient`] is async and runs on any tokio runtime, including the current-thread
//! runtime underneath tokio-uring (it spawns one small task that drives the HTTP/2 connection).
//! [`BlockingDaemonClient`] wraps it with its own current-thread runtime for callers outside any
//! runtime.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, UNIX_EPOCH},
};

use bytes::Bytes;
use scion_protobuf::{
    buffa_types::google::protobuf::Empty,
    connectrpc::{
        client::{ClientConfig, Http2Connection, SharedHttp2Connection},
        ConnectError, ErrorCode, Protocol,
    },
    proto::daemon::v1 as pb,
};
use tokio::sync::OnceCell;

use super::{
    addr::Ia,
    meta::PathMeta,
    packet,
    path::{PathInterface, ScionPath},
};

/// The daemon address used when nothing else is configured (scionproto's default).
pub const DEFAULT_DAEMON_ADDRESS: &str = "127.0.0.1:30255";
/// The environment variable scionproto tools read the daemon address from.
pub const DAEMON_ADDRESS_ENV: &str = "SCION_DAEMON_ADDRESS";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors talking to the daemon. Each names the daemon address.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The address is not `host:port`.
    #[error("invalid SCION daemon address '{addr}': {reason}")]
    InvalidAddress {
        /// The address given.
        addr: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No connection could be made (nothing listening, timeout, connection lost).
    #[error("cannot reach SCION daemon at {addr}: {reason}")]
    Unreachable {
        /// The daemon address.
        addr: String,
        /// The transport error.
        reason: String,
    },
    /// The daemon answered with an error status.
    #[error("SCION daemon at {addr}: {rpc} failed: {reason}")]
    Rpc {
        /// The daemon address.
        addr: String,
        /// Which RPC.
        rpc: &'static str,
        /// The gRPC code and message.
        reason: String,
    },
    /// The daemon's answer made no sense.
    #[error("SCION daemon at {addr}: invalid {rpc} response: {reason}")]
    InvalidResponse {
        /// The daemon address.
        addr: String,
        /// Which RPC.
        rpc: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The blocking client could not make or use its runtime.
    #[error("SCION daemon client runtime: {0}")]
    Runtime(String),
}

/// What the daemon knows about an AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsInfo {
    /// The AS.
    pub ia: Ia,
    /// Whether it is a core AS.
    pub core: bool,
    /// Its internal MTU.
    pub mtu: u16,
}

/// An async client for one SCION daemon.
#[derive(Clone)]
pub struct DaemonClient {
    addr: String,
    client: pb::DaemonServiceClient<SharedHttp2Connection>,
    local_as: std::sync::Arc<OnceCell<AsInfo>>,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DaemonClient {
    /// The daemon address from `SCION_DAEMON_ADDRESS`, else `127.0.0.1:30255`.
    pub fn default_address() -> String {
        std::env::var(DAEMON_ADDRESS_ENV)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_DAEMON_ADDRESS.to_string())
    }

    /// Connects to the daemon at `addr` (`host:port`, e.g. `127.0.0.1:30255` or `[::1]:30255`;
    /// an `http://` prefix is accepted). Must be called inside a tokio runtime, which then
    /// drives the connection.
    pub async fn connect(addr: &str) -> Result<Self, DaemonError> {
        let addr = addr.trim();
        let authority = addr.strip_prefix("http://").unwrap_or(addr);
        let invalid = |reason: String| DaemonError::InvalidAddress {
            addr: addr.to_string(),
            reason,
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(invalid("expected host:port, e.g. 127.0.0.1:30255".into()));
        }
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(invalid("expected host:port, e.g. 127.0.0.1:30255".into())),
        }
        let uri = format!("http://{authority}")
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let conn = Http2Connection::builder()
            .tcp_connect_timeout(CONNECT_TIMEOUT)
            .establishment_timeout(CONNECT_TIMEOUT)
            .connect_plaintext(uri)
            .await
            .map_err(|e| DaemonError::Unreachable {
                addr: addr.to_string(),
                reason: describe(&e),
            })?;
        // Re-parse: the builder consumed the first Uri.
        let uri = format!("http://{authority}")
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        let config = ClientConfig::new(uri)
            .with_protocol(Protocol::Grpc)
            .with_default_timeout(RPC_TIMEOUT);
        Ok(Self {
            addr: addr.to_string(),
            client: pb::DaemonServiceClient::new(conn.shared(64), config),
            local_as: Default::default(),
        })
    }

    /// Connects to [`default_address`](Self::default_address).
    pub async fn connect_default() -> Result<Self, DaemonError> {
        Self::connect(&Self::default_address()).await
    }

    /// The daemon address this client talks to.
    pub fn address(&self) -> &str {
        &self.addr
    }

    fn rpc_error(&self, rpc: &'static str, e: ConnectError) -> DaemonError {
        match e.code {
            ErrorCode::Unavailable | ErrorCode::DeadlineExceeded | ErrorCode::Canceled => {
                DaemonError::Unreachable {
                    addr: self.addr.clone(),
                    reason: format!("{rpc}: {}", describe(&e)),
                }
            }
            _ => DaemonError::Rpc {
                addr: self.addr.clone(),
                rpc,
                reason: describe(&e),
            },
        }
    }

    fn invalid(&self, rpc: &'static str, reason: impl Into<String>) -> DaemonError {
        DaemonError::InvalidResponse {
            addr: self.addr.clone(),
            rpc,
            reason: reason.into(),
        }
    }

    /// What the daemon knows about AS `ia` (`None`: the local AS).
    pub async fn as_info(&self, ia: Option<Ia>) -> Result<AsInfo, DaemonError> {
        let req = pb::ASRequest {
            isd_as: ia.map_or(0, |ia| ia.to_u64()),
        };
        let resp = self
            .client
            .r#as(req)
            .await
            .map_err(|e| self.rpc_error("AS", e))?
            .into_owned();
        if resp.isd_as == 0 {
            return Err(self.invalid("AS", "ISD-AS 0"));
        }
        Ok(AsInfo {
            ia: Ia::from_u64(resp.isd_as),
            core: resp.core,
            mtu: u16::try_from(resp.mtu).unwrap_or(u16::MAX),
        })
    }

    /// The local AS (asked once, then remembered).
    pub async fn local_ia(&self) -> Result<Ia, DaemonError> {
        Ok(self.local_as().await?.ia)
    }

    /// The local AS's MTU (asked once with the AS, then remembered); `None` if the daemon
    /// does not answer or names none. Paths from the daemon carry their own MTU; this one
    /// bounds packets on paths that do not (the local AS, and paths remotes dialled us on).
    pub async fn local_mtu(&self) -> Option<u16> {
        self.local_as().await.ok().map(|a| a.mtu).filter(|&m| m > 0)
    }

    async fn local_as(&self) -> Result<AsInfo, DaemonError> {
        self.local_as
            .get_or_try_init(|| self.as_info(None))
            .await
            .copied()
    }

    /// The port range the local AS dispatches to end hosts (bind the SCION socket in it).
    pub async fn port_range(&self) -> Result<(u16, u16), DaemonError> {
        let resp = self
            .client
            .port_range(Empty::default())
            .await
            .map_err(|e| self.rpc_error("PortRange", e))?
            .into_owned();
        let (start, end) = (resp.dispatched_port_start, resp.dispatched_port_end);
        match (u16::try_from(start), u16::try_from(end)) {
            (Ok(s), Ok(e)) if s <= e => Ok((s, e)),
            _ => Err(self.invalid("PortRange", format!("bad range {start}-{end}"))),
        }
    }

    /// Underlay addresses of the local AS's border-router interfaces, by interface id.
    pub async fn interfaces(&self) -> Result<HashMap<u16, SocketAddr>, DaemonError> {
        let resp = self
            .client
            .interfaces(pb::InterfacesRequest::default())
            .await
            .map_err(|e| self.rpc_error("Interfaces", e))?
            .into_owned();
        let mut out = HashMap::with_capacity(resp.interfaces.len());
        for (id, intf) in resp.interfaces {
            let id = u16::try_from(id)
                .map_err(|_| self.invalid("Interfaces", format!("interface id {id}")))?;
            let Some(addr) = intf
                .address
                .as_option()
                .and_then(|u| parse_underlay(&u.address))
            else {
                return Err(self.invalid(
                    "Interfaces",
                    format!("interface {id} has no usable underlay address"),
                ));
            };
            out.insert(id, addr);
        }
        Ok(out)
    }

    /// Paths from the local AS to `dst`. For `dst` == the local AS: one empty path (send
    /// directly to the host). `refresh` asks the daemon to fetch fresh paths. Paths the daemon
    /// returns malformed are skipped (with a warning); each path's first hop comes from the
    /// response's `interface.address`, or else from the Interfaces RPC by the path's first
    /// egress interface.
    pub async fn paths(&self, dst: Ia, refresh: bool) -> Result<Vec<ScionPath>, DaemonError> {
        let src = self.local_ia().await?;
        if dst == src {
            return Ok(vec![ScionPath::local(src)]);
        }
        let req = pb::PathsRequest {
            source_isd_as: src.to_u64(),
            destination_isd_as: dst.to_u64(),
            refresh,
            hidden: false,
        };
        let resp = self
            .client
            .paths(req)
            .await
            .map_err(|e| self.rpc_error("Paths", e))?
            .into_owned();
        let mut paths = Vec::with_capacity(resp.paths.len());
        for p in resp.paths {
            match convert_path(src, dst, p) {
                Ok(p) => paths.push(p),
                Err(reason) => {
                    tracing::warn!(daemon = %self.addr, %dst, %reason, "skipping invalid path");
                }
            }
        }
        if paths.iter().any(|p| p.first_hop.is_none() && !p.is_local()) {
            let interfaces = self.interfaces().await?;
            for p in paths.iter_mut().filter(|p| p.first_hop.is_none()) {
                p.first_hop = first_egress(p).and_then(|id| interfaces.get(&id).copied());
            }
            let before = paths.len();
            paths.retain(|p| p.first_hop.is_some() || p.is_local());
            if paths.len() < before {
                tracing::warn!(
                    daemon = %self.addr, %dst, dropped = before - paths.len(),
                    "skipping paths without a known first hop"
                );
            }
        }
        Ok(paths)
    }
}

/// The egress interface of the local AS on `p`.
fn first_egress(p: &ScionPath) -> Option<u16> {
    if let Some(i) = p.interfaces.first() {
        return Some(i.id);
    }
    packet::path_interfaces(&p.raw)
        .ok()?
        .first()
        .map(|(_, egress)| *egress)
        .filter(|id| *id != 0)
}

/// `ip:port` / `[ipv6]:port` as scionproto writes underlay addresses.
fn parse_underlay(s: &str) -> Option<SocketAddr> {
    s.trim().parse().ok()
}

fn describe(e: &ConnectError) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}

/// Why a path the daemon offered is skipped.
#[derive(Debug, thiserror::Error)]
pub enum BadPath {
    #[error("unreadable raw path: {0}")]
    Raw(#[from] packet::PacketError),
    #[error("empty raw path to a remote AS")]
    Empty,
    #[error("interface id {0} out of range")]
    InterfaceId(u64),
    #[error("odd number of interfaces ({0})")]
    OddInterfaces(usize),
}

fn convert_path(src: Ia, dst: Ia, mut p: pb::Path) -> Result<ScionPath, BadPath> {
    packet::validate_path(&p.raw)?;
    if p.raw.is_empty() {
        return Err(BadPath::Empty);
    }
    let interfaces = p
        .interfaces
        .iter()
        .map(|i| {
            Ok(PathInterface {
                ia: Ia::from_u64(i.isd_as),
                id: u16::try_from(i.id).map_err(|_| BadPath::InterfaceId(i.id))?,
            })
        })
        .collect::<Result<Vec<_>, BadPath>>()?;
    if interfaces.len() % 2 != 0 {
        return Err(BadPath::OddInterfaces(interfaces.len()));
    }
    let first_hop = p
        .interface
        .as_option()
        .and_then(|i| i.address.as_option())
        .and_then(|u| parse_underlay(&u.address));
    let meta = PathMeta::from_daemon(&p, interfaces.len());
    let raw = Bytes::from(std::mem::take(&mut p.raw));
    let expiry = p
        .expiration
        .as_option()
        .filter(|t| t.seconds > 0)
        // An absurd expiry is no expiry (SystemTime + Duration panics on overflow).
        .and_then(|t| UNIX_EPOCH.checked_add(Duration::from_secs(t.seconds as u64)))
        .or_else(|| packet::path_expiry(&raw));
    let links = interfaces.len().saturating_sub(1);
    let latency = if p.latency.len() == links {
        p.latency
            .iter()
            .map(|d| {
                (d.seconds >= 0 && d.nanos >= 0)
                    .then(|| Duration::new(d.seconds as u64, d.nanos as u32))
            })
            .collect()
    } else {
        Vec::new()
    };
    let bandwidth = if p.bandwidth.len() == links {
        p.bandwidth.iter().map(|b| (*b > 0).then_some(*b)).collect()
    } else {
        Vec::new()
    };
    Ok(ScionPath {
        src_ia: src,
        dst_ia: dst,
        raw,
        first_hop,
        interfaces,
        mtu: u16::try_from(p.mtu).unwrap_or(u16::MAX),
        expiry,
        latency,
        bandwidth,
        meta,
    })
}

/// A blocking client: a [`DaemonClient`] on its own small current-thread runtime. For callers
/// outside any async runtime (calling it from inside one is an error, not a deadlock).
#[derive(Debug)]
pub struct BlockingDaemonClient {
    rt: tokio::runtime::Runtime,
    inner: DaemonClient,
}

impl BlockingDaemonClient {
    /// Connects to the daemon at `addr`.
    pub fn connect(addr: &str) -> Result<Self, DaemonError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(DaemonError::Runtime(
                "BlockingDaemonClient used inside an async runtime; use DaemonClient".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DaemonError::Runtime(e.to_string()))?;
        let inner = rt.block_on(DaemonClient::connect(addr))?;
        Ok(Self { rt, inner })
    }

    fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, DaemonError>>,
    ) -> Result<T, DaemonError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(DaemonError::Runtime(
                "BlockingDaemonClient used inside an async runtime; use DaemonClient".into(),
            ));
        }
        self.rt.block_on(f)
    }

    /// The async client (to be used only on this client's runtime).
    pub fn inner(&self) -> &DaemonClient {
        &self.inner
    }

    /// See [`DaemonClient::local_ia`].
    pub fn local_ia(&self) -> Result<Ia, DaemonError> {
        self.run(self.inner.local_ia())
    }

    /// See [`DaemonClient::as_info`].
    pub fn as_info(&self, ia: Option<Ia>) -> Result<AsInfo, DaemonError> {
        self.run(self.inner.as_info(ia))
    }

    /// See [`DaemonClient::paths`].
    pub fn paths(&self, dst: Ia, refresh: bool) -> Result<Vec<ScionPath>, DaemonError> {
        self.run(self.inner.paths(dst, refresh))
    }

    /// See [`DaemonClient::port_range`].
    pub fn port_range(&self) -> Result<(u16, u16), DaemonError> {
        self.run(self.inner.port_range())
    }

    /// See [`DaemonClient::interfaces`].
    pub fn interfaces(&self) -> Result<HashMap<u16, SocketAddr>, DaemonError> {
        self.run(self.inner.interfaces())
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn ok<T: Send + Sync>() {}
    ok::<DaemonClient>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_address_reads_env() {
        // Only checks the fallback shape; the env may be set by the caller.
        let a = DaemonClient::default_address();
        assert!(a.contains(':'), "{a}");
    }

    #[test]
    fn unreachable_daemon_is_a_clear_error() {
        // A port nothing listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let e = BlockingDaemonClient::connect(&addr).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot reach SCION daemon at {addr}")),
            "{msg}"
        );
    }

    #[test]
    fn invalid_addresses() {
        for bad in ["", "127.0.0.1", "host:port", "http://a:1/x", ":30255"] {
            let e = BlockingDaemonClient::connect(bad).unwrap_err();
            assert!(
                matches!(e, DaemonError::InvalidAddress { .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn convert_path_metadata() {
        use crate::scion::packet::tests::two_segment_path;
        let ia = |s| crate::scion::addr::parse_ia(s).unwrap();
        let (a, b, c) = (ia("1-ff00:0:111"), ia("1-ff00:0:120"), ia("1-ff00:0:112"));
        let mut p = pb::Path {
            raw: two_segment_path(),
            mtu: 1400,
            latency: vec![
                scion_protobuf::buffa_types::google::protobuf::Duration {
                    seconds: 0,
                    nanos: 1_000_000,
                    ..Default::default()
                };
                3
            ],
            bandwidth: vec![0, 5, 6],
            link_type: vec![pb::LinkType::LINK_TYPE_OPEN_NET.into(); 2],
            notes: vec!["a".into(), String::new(), "c".into()],
            ..Default::default()
        };
        p.interfaces = [(a, 2), (b, 1), (b, 3), (c, 1)]
            .iter()
            .map(|(ia, id)| pb::PathInterface {
                isd_as: ia.to_u64(),
                id: *id,
            })
            .collect();
        p.interface = pb::Interface {
            address: pb::Underlay {
                address: "127.0.0.9:31000".into(),
            }
            .into(),
        }
        .into();
        let sp = convert_path(a, c, p.clone()).unwrap();
        assert_eq!(sp.first_hop, Some("127.0.0.9:31000".parse().unwrap()));
        assert_eq!(sp.hop_count(), 2);
        assert_eq!(sp.mtu, 1400);
        assert_eq!(sp.total_latency(), Some(Duration::from_millis(3)));
        assert_eq!(sp.bandwidth, vec![None, Some(5), Some(6)]);
        assert!(sp.expiry.is_some(), "expiry from the hop fields");
        assert_eq!(sp.meta.link_types, vec![crate::scion::LinkType::OpenNet; 2]);
        assert_eq!(
            sp.meta.notes,
            vec![Some("a".into()), None, Some("c".into())]
        );
        assert!(sp.meta.geo.is_empty(), "none given");
        assert_eq!(
            sp.to_string(),
            "1-ff00:0:111#2 > 1-ff00:0:120#1 > 1-ff00:0:120#3 > 1-ff00:0:112#1"
        );
        assert_eq!(first_egress(&sp), Some(2));
        let mut no_meta = sp.clone();
        no_meta.interfaces.clear();
        assert_eq!(first_egress(&no_meta), Some(2), "from the raw hop fields");

        let mut bad = p.clone();
        bad.raw.pop();
        assert!(matches!(convert_path(a, c, bad), Err(BadPath::Raw(_))));
        // Absurd metadata is unknown metadata, not a panic.
        let mut absurd = p.clone();
        absurd.expiration = scion_protobuf::buffa_types::google::protobuf::Timestamp {
            seconds: i64::MAX,
            ..Default::default()
        }
        .into();
        absurd.latency[0].seconds = i64::MAX;
        absurd.latency[1].seconds = i64::MAX;
        absurd.latency[2].nanos = i32::MAX;
        absurd.mtu = u32::MAX;
        let sp = convert_path(a, c, absurd).unwrap();
        assert!(sp.expiry.is_some(), "from the hop fields instead");
        assert_eq!(sp.total_latency(), None, "the sum overflows");
        let mut odd = p;
        odd.interfaces.pop();
        assert!(matches!(
            convert_path(a, c, odd),
            Err(BadPath::OddInterfaces(_))
        ));
    }
}
