//! What a running testnet tells its users: addresses of daemons, routers, the control socket,
//! and link state. Serialized as STATE.json by the binary.

use std::{collections::BTreeMap, net::SocketAddr, path::Path};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Everything a client of the testnet needs to reach it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TestnetState {
    /// Per AS, keyed by ISD-AS (`1-ff00:0:111`).
    pub ases: BTreeMap<String, AsState>,
    /// All inter-AS links, in topology file order.
    pub links: Vec<LinkState>,
    /// Loopback TCP address of the control channel (used by `scion-testnet link`).
    pub control: Option<SocketAddr>,
}

/// Addresses of one AS.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AsState {
    /// Whether the AS is a core AS.
    pub core: bool,
    /// SCION daemon (scionproto `DaemonService`, gRPC and Connect over plain HTTP/2).
    pub daemon: SocketAddr,
    /// Router underlay address for each interface id of the AS. pocketscion runs one router
    /// socket per AS, so all entries carry the same address; it is also the address end hosts
    /// of this AS send their outgoing SCION packets to.
    pub routers: BTreeMap<u16, SocketAddr>,
    /// The AS's single router underlay socket (the value of every entry in `routers`).
    pub router: SocketAddr,
    /// Dispatched port range the daemon reports (pocketscion: all ports).
    pub port_range: Option<(u16, u16)>,
}

/// One inter-AS link.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LinkState {
    /// One end, `ISD-AS#IFID`.
    pub a: String,
    /// The other end, `ISD-AS#IFID`.
    pub b: String,
    /// Bandwidth cap in Mbit/s, per direction (enforced by the shaper).
    pub bandwidth_mbit: Option<f64>,
    /// One-way delay in milliseconds (enforced by the shaper).
    pub delay_ms: Option<f64>,
    /// Loss probability (enforced by the shaper).
    pub loss: Option<f64>,
    /// Whether the link forwards packets.
    pub up: bool,
}

impl LinkState {
    /// Every link of `topology` as it starts: up, with the file's shaping.
    pub(crate) fn initial(topology: &crate::topology::Topology) -> anyhow::Result<Vec<Self>> {
        topology
            .links
            .iter()
            .map(|l| {
                let (a, b) = l.ends()?;
                Ok(LinkState {
                    a: a.to_string(),
                    b: b.to_string(),
                    bandwidth_mbit: l.bandwidth_mbit,
                    delay_ms: l.delay_ms,
                    loss: l.loss,
                    up: true,
                })
            })
            .collect()
    }
}

impl TestnetState {
    /// Reads a state file written by the binary.
    pub fn read(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read state file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("state file {} is not valid testnet state", path.display()))
    }

    /// Writes the state file atomically (temp file + rename), so readers never see half a file.
    pub fn write(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, json + "\n")
            .with_context(|| format!("cannot write state file {}", path.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot write state file {}", path.display()))
    }

    /// The state of an AS, or an error naming the known ones.
    pub fn as_state(&self, ia: &str) -> anyhow::Result<&AsState> {
        self.ases.get(ia).with_context(|| {
            let known: Vec<_> = self.ases.keys().map(String::as_str).collect();
            format!("no AS {ia} in the testnet (known: {})", known.join(", "))
        })
    }

    /// The link with an end at `ia#interface`.
    pub fn link(&self, ia: &str, interface: u16) -> Option<&LinkState> {
        let end = format!("{ia}#{interface}");
        self.links.iter().find(|l| l.a == end || l.b == end)
    }
}
