//! Port mapping as a discovery front end: asks the home gateway to forward our BitTorrent TCP
//! port and the DHT's UDP port to us, by PCP (RFC 6887), NAT-PMP (RFC 6886) or UPnP-IGD
//! (tried in the configured order; the method that last worked is tried first), renews each
//! lease at half its length, learns the external address, and removes the mappings when the
//! client ends. Its status goes to the client (`Command::PortMapping`) for the API snapshot.
//!
//! It runs on a thread of its own whose gateway exchanges block (each bounded by timeouts);
//! [`schedule`] decides when, [`pmp`] and [`upnp`] speak the protocols. The gateway is
//! `--port-mapping-gateway`, else the default route's (read from /proc/net/route).

mod gateway;
mod pmp;
mod schedule;
pub mod upnp;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::client::control::{ClientHandle, ClientSnapshot, Command};
use pmp::PmpError;
use schedule::Schedule;
use upnp::{Igd, UpnpError};

/// Which ports a mapping carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// How a mapping was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Upnp,
    Natpmp,
    Pcp,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Pcp, Method::Natpmp, Method::Upnp];
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Upnp => "upnp",
            Method::Natpmp => "natpmp",
            Method::Pcp => "pcp",
        })
    }
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "upnp" => Ok(Method::Upnp),
            "natpmp" | "nat-pmp" => Ok(Method::Natpmp),
            "pcp" => Ok(Method::Pcp),
            other => Err(format!(
                "unknown port-mapping method {other:?} (upnp, natpmp, pcp)"
            )),
        }
    }
}

/// What a mapping is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// BitTorrent over TCP (our listener).
    Bittorrent,
    /// The mainline DHT over UDP/IP.
    Dht,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingState {
    /// Not asked for yet.
    Pending,
    /// The gateway holds it.
    Mapped,
    /// The last attempt failed (`last_error` says why); tried again on a back-off.
    Failed,
}

/// One mapping as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingStatus {
    pub protocol: Protocol,
    pub purpose: Purpose,
    pub internal_port: u16,
    /// The port the gateway opened (may differ from ours under NAT-PMP and PCP).
    pub external_port: Option<u16>,
    pub method: Option<Method>,
    pub state: MappingState,
    pub gateway: Option<String>,
    pub external_ip: Option<String>,
    pub last_error: Option<String>,
    /// When the lease runs out unless renewed (null: not held, or permanent).
    pub lease_expires_unix_ms: Option<u64>,
    /// Leases granted after the first.
    pub renewals: u32,
}

/// What the front end maps, and how.
#[derive(Debug, Clone)]
pub struct PortMapOptions {
    /// None: the default route's gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Tried in this order.
    pub methods: Vec<Method>,
    /// The lease asked for.
    pub lease: Duration,
    /// UDP ports to map: the DHT's.
    pub dht_port: Option<u16>,
}

impl Default for PortMapOptions {
    fn default() -> Self {
        Self {
            gateway: None,
            methods: Method::ALL.to_vec(),
            lease: Duration::from_secs(3600),
            dht_port: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortMapError {
    #[error("no port-mapping method given")]
    NoMethod,
    #[error("cannot start the port-mapping thread: {0}")]
    Thread(std::io::Error),
}

/// Starts the front end; it ends when the client is gone, after removing its mappings.
pub fn spawn_port_mapping(
    handle: ClientHandle,
    opts: PortMapOptions,
) -> Result<JoinHandle<()>, PortMapError> {
    if opts.methods.is_empty() {
        return Err(PortMapError::NoMethod);
    }
    std::thread::Builder::new()
        .name("bts-portmap".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build();
            match rt {
                Ok(rt) => rt.block_on(Mapper::new(opts).run(handle)),
                Err(e) => tracing::warn!("port mapping: no runtime: {e}"),
            }
        })
        .map_err(PortMapError::Thread)
}

struct Mapping {
    protocol: Protocol,
    purpose: Purpose,
    internal_port: u16,
    schedule: Schedule,
    /// PCP's nonce: the same for every renewal and the removal of this mapping.
    nonce: [u8; 12],
    method: Option<Method>,
    external_port: Option<u16>,
    last_error: Option<String>,
    grants: u32,
}

impl Mapping {
    fn new(protocol: Protocol, purpose: Purpose, port: u16, now: Instant) -> Self {
        Self {
            protocol,
            purpose,
            internal_port: port,
            schedule: Schedule::new(now),
            nonce: rand::random(),
            method: None,
            external_port: None,
            last_error: None,
            grants: 0,
        }
    }

    fn status(&self, gw: &GatewayState, now: Instant) -> MappingStatus {
        let held = self.schedule.is_held(now);
        let state = match (held, &self.last_error) {
            (true, _) => MappingState::Mapped,
            (false, Some(_)) => MappingState::Failed,
            (false, None) => MappingState::Pending,
        };
        let expires = self.schedule.expires().filter(|_| held).map(|e| {
            let at = SystemTime::now() + e.saturating_duration_since(now);
            at.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64
        });
        MappingStatus {
            protocol: self.protocol,
            purpose: self.purpose,
            internal_port: self.internal_port,
            external_port: self.external_port.filter(|_| held),
            method: self.method,
            state,
            gateway: gw.gateway.map(|g| g.to_string()),
            external_ip: gw.external_ip.map(|i| i.to_string()),
            last_error: self.last_error.clone(),
            lease_expires_unix_ms: expires,
            renewals: self.grants.saturating_sub(1),
        }
    }
}

/// What is known about the gateway.
#[derive(Default)]
struct GatewayState {
    gateway: Option<Ipv4Addr>,
    external_ip: Option<Ipv4Addr>,
    igd: Option<Igd>,
    /// The method that last worked: tried first.
    preferred: Option<Method>,
}

struct Mapper {
    opts: PortMapOptions,
    mappings: Vec<Mapping>,
    gw: GatewayState,
    published: Vec<MappingStatus>,
}

/// Where the gateway is and our address toward it.
#[derive(Clone, Copy)]
struct Route {
    gateway: Ipv4Addr,
    local: Ipv4Addr,
}

impl Mapper {
    fn new(opts: PortMapOptions) -> Self {
        let now = Instant::now();
        let mappings = opts
            .dht_port
            .map(|p| Mapping::new(Protocol::Udp, Purpose::Dht, p, now))
            .into_iter()
            .collect();
        Self {
            opts,
            mappings,
            gw: GatewayState::default(),
            published: vec![],
        }
    }

    async fn run(mut self, handle: ClientHandle) {
        let mut snapshots = handle.subscribe();
        loop {
            self.track_tcp_port(&snapshots.borrow_and_update(), Instant::now());
            self.round(&|| snapshots.has_changed().is_err());
            self.publish(&handle);
            let next = self.mappings.iter().map(|m| m.schedule.due()).min();
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { break },
                _ = sleep_until(next) => {}
            }
        }
        self.remove_all();
    }

    /// The TCP listener's port, once the client has bound it.
    fn track_tcp_port(&mut self, snap: &ClientSnapshot, now: Instant) {
        let port = snap
            .tcp_listen
            .as_deref()
            .and_then(|l| l.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.port());
        let Some(port) = port else { return };
        let have = self
            .mappings
            .iter()
            .any(|m| m.purpose == Purpose::Bittorrent);
        if !have {
            self.mappings.insert(
                0,
                Mapping::new(Protocol::Tcp, Purpose::Bittorrent, port, now),
            );
        }
    }

    fn route(&mut self) -> Result<Route, String> {
        let gateway = match self.opts.gateway {
            Some(g) => g,
            None => gateway::default_gateway().map_err(|e| e.to_string())?,
        };
        self.gw.gateway = Some(gateway);
        let local = gateway::local_toward(gateway).map_err(|e| e.to_string())?;
        Ok(Route { gateway, local })
    }

    /// Asks for every mapping that is due. A method whose gateway did not answer at all is
    /// not asked again for the other mappings of the same round. `stop` says the client is
    /// gone (then the round ends early).
    fn round(&mut self, stop: &dyn Fn() -> bool) {
        let now = Instant::now();
        if !self.mappings.iter().any(|m| m.schedule.is_due(now)) {
            return;
        }
        let route = match self.route() {
            Ok(r) => r,
            Err(e) => {
                for m in self.mappings.iter_mut().filter(|m| m.schedule.is_due(now)) {
                    m.last_error = Some(format!("no gateway: {e}"));
                    m.schedule.failed(now);
                }
                return;
            }
        };
        let mut dead: Vec<(Method, String)> = vec![];
        for i in 0..self.mappings.len() {
            if stop() {
                return;
            }
            let now = Instant::now();
            if !self.mappings[i].schedule.is_due(now) {
                continue;
            }
            let mut errors = vec![];
            let mut done = false;
            for method in self.order() {
                // Each method may take seconds against a silent gateway: a shutdown waits
                // for one at most.
                if stop() {
                    return;
                }
                if let Some((_, e)) = dead.iter().find(|(m, _)| *m == method) {
                    errors.push(format!("{method}: {e}"));
                    continue;
                }
                match self.map_with(method, i, route) {
                    Ok(lease) => {
                        let m = &mut self.mappings[i];
                        m.schedule.granted(Instant::now(), lease);
                        m.method = Some(method);
                        m.last_error = None;
                        m.grants = m.grants.saturating_add(1);
                        self.gw.preferred = Some(method);
                        done = true;
                        break;
                    }
                    Err(Failure { why, gateway_dead }) => {
                        if gateway_dead {
                            dead.push((method, why.clone()));
                        }
                        errors.push(format!("{method}: {why}"));
                    }
                }
            }
            if !done {
                let m = &mut self.mappings[i];
                m.last_error = Some(errors.join("; "));
                m.schedule.failed(Instant::now());
                tracing::info!(
                    port = m.internal_port,
                    "port mapping failed: {}",
                    errors.join("; ")
                );
            }
        }
    }

    fn order(&self) -> Vec<Method> {
        let mut order = self.opts.methods.clone();
        if let Some(p) = self.gw.preferred {
            if let Some(i) = order.iter().position(|m| *m == p) {
                order.remove(i);
                order.insert(0, p);
            }
        }
        order
    }

    fn lease_secs(&self) -> u32 {
        self.opts.lease.as_secs().clamp(1, u32::MAX.into()) as u32
    }

    /// One attempt; the lease granted.
    fn map_with(&mut self, method: Method, i: usize, r: Route) -> Result<Duration, Failure> {
        let lease = self.lease_secs();
        let m = &self.mappings[i];
        let (p, port, nonce) = (m.protocol, m.internal_port, m.nonce);
        let want = m.external_port.unwrap_or(port);
        let granted = match method {
            Method::Pcp => {
                let req = pmp::pcp_map_request(p, port, want, lease, r.local, nonce);
                let g = pmp::exchange(r.gateway, r.local, &req, |b| {
                    pmp::pcp_parse_map(b, p, port, nonce)
                })?;
                if let Some(ip) = g.external_ip.filter(|ip| !ip.is_unspecified()) {
                    self.gw.external_ip = Some(ip);
                }
                g
            }
            Method::Natpmp => {
                let req = pmp::pmp_map_request(p, port, want, lease);
                let g =
                    pmp::exchange(r.gateway, r.local, &req, |b| pmp::pmp_parse_map(b, p, port))?;
                let ext = pmp::exchange(
                    r.gateway,
                    r.local,
                    &pmp::pmp_external_request(),
                    pmp::pmp_parse_external,
                );
                match ext {
                    Ok(ip) if !ip.is_unspecified() => self.gw.external_ip = Some(ip),
                    Ok(_) => {}
                    Err(e) => tracing::debug!("NAT-PMP external address: {e}"),
                }
                g
            }
            Method::Upnp => self.upnp_map(p, port, lease, r)?,
        };
        let m = &mut self.mappings[i];
        m.external_port = Some(granted.external_port);
        Ok(granted.lifetime)
    }

    fn upnp_map(
        &mut self,
        p: Protocol,
        port: u16,
        lease: u32,
        r: Route,
    ) -> Result<pmp::Granted, Failure> {
        let igd = match &self.gw.igd {
            Some(igd) => igd.clone(),
            None => {
                let igd = upnp::discover(r.local, Some(r.gateway)).map_err(Failure::dead)?;
                self.gw.igd = Some(igd.clone());
                igd
            }
        };
        let mut lease = lease;
        let mut added = upnp::add_port_mapping(&igd, p, port, r.local, lease);
        // 725 OnlyPermanentLeasesSupported (IGD v1 devices): a permanent one, removed at exit.
        if matches!(added, Err(UpnpError::Fault { code: 725, .. })) {
            lease = 0;
            added = upnp::add_port_mapping(&igd, p, port, r.local, 0);
        }
        if let Err(e) = added {
            if !matches!(e, UpnpError::Fault { .. }) {
                self.gw.igd = None; // look for the gateway again next time
            }
            return Err(Failure::from(e));
        }
        match upnp::external_ip(&igd) {
            Ok(ip) if !ip.is_unspecified() => self.gw.external_ip = Some(ip),
            Ok(_) => {}
            Err(e) => tracing::debug!("UPnP external address: {e}"),
        }
        Ok(pmp::Granted {
            external_port: port,
            lifetime: Duration::from_secs(lease.into()),
            external_ip: None,
        })
    }

    fn publish(&mut self, handle: &ClientHandle) {
        let now = Instant::now();
        let statuses: Vec<_> = self
            .mappings
            .iter()
            .map(|m| m.status(&self.gw, now))
            .collect();
        if statuses != self.published {
            self.published = statuses.clone();
            handle.notify(Command::PortMapping(statuses));
        }
    }

    /// Removes every mapping the gateway may hold (the client is gone).
    fn remove_all(&mut self) {
        let Ok(r) = self.route() else { return };
        let now = Instant::now();
        for m in &self.mappings {
            let (Some(method), Some(ext)) = (m.method, m.external_port) else {
                continue;
            };
            if !m.schedule.is_held(now) {
                continue; // ran out already
            }
            let (p, port) = (m.protocol, m.internal_port);
            let result = match method {
                Method::Pcp => {
                    let req = pmp::pcp_map_request(p, port, ext, 0, r.local, m.nonce);
                    pmp::exchange(r.gateway, r.local, &req, |b| {
                        pmp::pcp_parse_map(b, p, port, m.nonce)
                    })
                    .map(drop)
                    .map_err(|e| e.to_string())
                }
                Method::Natpmp => {
                    let req = pmp::pmp_map_request(p, port, 0, 0);
                    pmp::exchange(r.gateway, r.local, &req, |b| pmp::pmp_parse_map(b, p, port))
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
                Method::Upnp => match &self.gw.igd {
                    Some(igd) => upnp::delete_port_mapping(igd, p, ext).map_err(|e| e.to_string()),
                    None => Err("the gateway is no longer known".into()),
                },
            };
            match result {
                Ok(()) => tracing::info!(port, %method, "port mapping removed"),
                Err(e) => tracing::warn!(port, %method, "cannot remove the port mapping: {e}"),
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Why an attempt failed, and whether the gateway did not speak the method at all (then
/// the other mappings of the round do not try it).
struct Failure {
    why: String,
    gateway_dead: bool,
}

impl Failure {
    fn dead(e: UpnpError) -> Self {
        Failure {
            why: e.to_string(),
            gateway_dead: true,
        }
    }
}

impl From<PmpError> for Failure {
    fn from(e: PmpError) -> Self {
        let gateway_dead = matches!(
            e,
            PmpError::NoAnswer(_) | PmpError::NatPmpOnly | PmpError::Io(_)
        );
        Failure {
            why: e.to_string(),
            gateway_dead,
        }
    }
}

impl From<UpnpError> for Failure {
    fn from(e: UpnpError) -> Self {
        Failure {
            why: e.to_string(),
            gateway_dead: false,
        }
    }
}
