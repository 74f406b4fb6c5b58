//! What the scionproto services read: our topology turned into an address plan, one
//! `topology.json` per AS, the router/control/daemon/dispatcher TOML files, and the AS list
//! that `scion-pki testcrypto` takes. Pure functions of the topology and the plan (no files,
//! no processes), so they are unit-tested.
//!
//! Formats follow scionproto v0.14.0 (`private/topology/json`, `router/config`,
//! `control/config`, `daemon/config`, `dispatcher/config`, `scion-pki testcrypto`).

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::Path,
};

use anyhow::{bail, Context};
use sciparse::identifier::isd_asn::IsdAsn;
use serde_json::{json, Value};

use crate::topology::{parse_ia, LinkKind, Topology};

/// Port of each AS's border router internal (host-facing) address.
pub(crate) const ROUTER_PORT: u16 = 30042;
/// Port of each AS's daemon (gRPC).
pub(crate) const DAEMON_PORT: u16 = 30255;
/// Port of each AS's control service (QUIC and TCP); inside the dispatched range, so that
/// the router delivers SCION packets to it directly.
pub(crate) const CONTROL_PORT: u16 = 31000;
/// Port of every inter-AS link underlay socket.
pub(crate) const LINK_PORT: u16 = 50000;
/// Port the testnet itself holds on the first address of its subnet, to claim the subnet.
pub(crate) const CLAIM_PORT: u16 = 30999;
/// Dispatched port range of every AS: the router delivers SCION/UDP packets to a host's
/// own port only inside this range (as topogen and SCIONLab configure it).
pub(crate) const DISPATCHED_PORTS: (u16, u16) = (31000, 32767);
/// MTU of every AS and link: an Ethernet underlay less IPv4 and UDP headers (topogen's).
pub(crate) const MTU: u16 = 1472;
/// First host number used for the services (.1 holds the claim socket).
const FIRST_HOST: usize = 10;
/// Beaconing and segment query intervals: fast, so that paths appear within seconds.
pub(crate) const BEACON_INTERVAL: &str = "1s";
const QUERY_INTERVAL: &str = "5s";

/// One inter-AS link end in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkEnd {
    pub(crate) ia: IsdAsn,
    pub(crate) ifid: u16,
    /// The underlay socket of this end (its own loopback address).
    pub(crate) underlay: SocketAddrV4,
}

/// One link in the plan, in topology order.
#[derive(Debug, Clone)]
pub(crate) struct PlannedLink {
    pub(crate) a: LinkEnd,
    pub(crate) b: LinkEnd,
    /// Relation of `a` to `b`.
    pub(crate) kind: LinkKind,
    pub(crate) bandwidth_mbit: Option<f64>,
}

/// One AS in the plan.
#[derive(Debug, Clone)]
pub(crate) struct PlannedAs {
    pub(crate) ia: IsdAsn,
    pub(crate) core: bool,
    /// Address of the router's internal interface, the control service, the daemon and the
    /// dispatcher (each on its own port).
    pub(crate) ip: Ipv4Addr,
    /// The core AS that issues this AS's certificate (itself for a core AS).
    pub(crate) cert_issuer: IsdAsn,
}

impl PlannedAs {
    pub(crate) fn router(&self) -> SocketAddr {
        SocketAddr::from((self.ip, ROUTER_PORT))
    }
    pub(crate) fn daemon(&self) -> SocketAddr {
        SocketAddr::from((self.ip, DAEMON_PORT))
    }
    pub(crate) fn control(&self) -> SocketAddr {
        SocketAddr::from((self.ip, CONTROL_PORT))
    }
    /// Element ids, as topogen names them (`br1-ff00_0_110-1`, ...).
    pub(crate) fn router_id(&self) -> String {
        format!("br{}-1", file_fmt(self.ia))
    }
    pub(crate) fn control_id(&self) -> String {
        format!("cs{}-1", file_fmt(self.ia))
    }
    pub(crate) fn daemon_id(&self) -> String {
        format!("sd{}", file_fmt(self.ia))
    }
    pub(crate) fn dispatcher_id(&self) -> String {
        format!("disp{}", file_fmt(self.ia))
    }
}

/// Every address of a scionproto testnet: one /24 of 127.0.0.0/8 per testnet, one address
/// per AS and one per link end, fixed ports.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) ases: Vec<PlannedAs>,
    pub(crate) links: Vec<PlannedLink>,
}

/// `1-ff00:0:110` → `1-ff00_0_110`, as scionproto's file names write an ISD-AS.
pub(crate) fn file_fmt(ia: IsdAsn) -> String {
    ia.to_string().replace(':', "_")
}

/// `1-ff00:0:110` → `ISD1/ASff00_0_110`: where `scion-pki testcrypto --isd-dir` puts an AS.
pub(crate) fn as_dir(ia: IsdAsn) -> String {
    let s = ia.to_string();
    let (isd, asn) = s.split_once('-').unwrap_or(("0", &s));
    format!("ISD{isd}/AS{}", asn.replace(':', "_"))
}

impl Plan {
    /// Lays out `topology` in 127.`subnet`.0/24.
    pub(crate) fn new(topology: &Topology, subnet: (u8, u8)) -> anyhow::Result<Plan> {
        for link in &topology.links {
            if link.delay_ms.is_some() || link.loss.is_some() {
                let (a, b) = link.ends()?;
                bail!(
                    "link {a} - {b}: the scionproto backend supports bandwidth_mbit only \
                     (delay_ms and loss need tc netem, which this kernel lacks); use the \
                     pocketscion backend for delay and loss"
                );
            }
        }
        let needed = FIRST_HOST + topology.ases.len() + 2 * topology.links.len();
        if needed > 254 {
            bail!(
                "the topology needs {needed} loopback addresses, more than the 254 of the /24 \
                 a scionproto testnet gets"
            );
        }
        let ip = |host: usize| Ipv4Addr::new(127, subnet.0, subnet.1, host as u8);

        let mut ases = Vec::new();
        for (n, spec) in topology.ases.iter().enumerate() {
            let ia = parse_ia(&spec.ia)?;
            let cert_issuer = if spec.core {
                ia
            } else {
                let issuer = topology
                    .ases
                    .iter()
                    .filter(|c| c.core)
                    .filter_map(|c| parse_ia(&c.ia).ok())
                    .find(|c| c.isd() == ia.isd());
                issuer.with_context(|| {
                    format!(
                        "AS {ia}: ISD {} has no core AS; scionproto needs one per ISD (it \
                         issues the AS certificates and votes on the TRC)",
                        ia.isd()
                    )
                })?
            };
            ases.push(PlannedAs {
                ia,
                core: spec.core,
                ip: ip(FIRST_HOST + n),
                cert_issuer,
            });
        }

        let mut next = FIRST_HOST + topology.ases.len();
        let mut links = Vec::new();
        for link in &topology.links {
            let (a, b) = link.ends()?;
            let kind = topology.link_kind(link)?;
            let end = |ia, ifid, host| LinkEnd {
                ia,
                ifid,
                underlay: SocketAddrV4::new(ip(host), LINK_PORT),
            };
            links.push(PlannedLink {
                a: end(a.ia, a.id, next),
                b: end(b.ia, b.id, next + 1),
                kind,
                bandwidth_mbit: link.bandwidth_mbit,
            });
            next += 2;
        }
        Ok(Plan { ases, links })
    }

    pub(crate) fn as_plan(&self, ia: IsdAsn) -> Option<&PlannedAs> {
        self.ases.iter().find(|a| a.ia == ia)
    }

    /// The link with an end at `ia#ifid`, and its index.
    pub(crate) fn link_at(&self, ia: IsdAsn, ifid: u16) -> Option<(usize, &PlannedLink)> {
        self.links
            .iter()
            .enumerate()
            .find(|(_, l)| (l.a.ia == ia && l.a.ifid == ifid) || (l.b.ia == ia && l.b.ifid == ifid))
    }

    /// Interface ids of an AS, sorted.
    pub(crate) fn interfaces(&self, ia: IsdAsn) -> Vec<u16> {
        let mut ids: Vec<u16> = self
            .links
            .iter()
            .flat_map(|l| [l.a, l.b])
            .filter(|e| e.ia == ia)
            .map(|e| e.ifid)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The AS list `scion-pki testcrypto -t` reads (YAML; JSON is valid YAML). Every core AS
    /// votes, is authoritative and issues certificates.
    pub(crate) fn testcrypto_topo(&self) -> String {
        let mut ases = serde_json::Map::new();
        for a in &self.ases {
            let entry = if a.core {
                json!({ "core": true, "voting": true, "authoritative": true, "issuing": true })
            } else {
                json!({ "cert_issuer": a.cert_issuer.to_string() })
            };
            ases.insert(a.ia.to_string(), entry);
        }
        serde_json::to_string_pretty(&json!({ "ASes": ases })).expect("JSON of plain values")
    }

    /// `topology.json` of one AS: one border router holding all its interfaces, one control
    /// service (also the discovery service).
    pub(crate) fn topology_json(&self, ia: IsdAsn) -> anyhow::Result<String> {
        let me = self.as_plan(ia).context("AS not in the plan")?;
        let mut interfaces = serde_json::Map::new();
        for link in &self.links {
            for (local, remote, remote_is) in [
                (link.a, link.b, relation_of_b(link.kind)),
                (link.b, link.a, relation_of_b(mirror(link.kind))),
            ] {
                if local.ia != ia {
                    continue;
                }
                let mut intf = json!({
                    "underlay": {
                        "local": local.underlay.to_string(),
                        "remote": remote.underlay.to_string(),
                    },
                    "isd_as": remote.ia.to_string(),
                    "link_to": remote_is,
                    "mtu": MTU,
                });
                if remote_is == "peer" {
                    intf["remote_interface_id"] = json!(remote.ifid);
                }
                interfaces.insert(local.ifid.to_string(), intf);
            }
        }
        let service = json!({ me.control_id(): { "addr": me.control().to_string() } });
        let topo = json!({
            "isd_as": ia.to_string(),
            "mtu": MTU,
            "dispatched_ports": format!("{}-{}", DISPATCHED_PORTS.0, DISPATCHED_PORTS.1),
            "attributes": if me.core { json!(["core"]) } else { json!([]) },
            "border_routers": {
                me.router_id(): {
                    "internal_addr": me.router().to_string(),
                    "interfaces": interfaces,
                }
            },
            "control_service": service.clone(),
            "discovery_service": service,
        });
        Ok(serde_json::to_string_pretty(&topo)? + "\n")
    }

    /// The border router's TOML.
    pub(crate) fn router_toml(&self, a: &PlannedAs, config_dir: &Path) -> anyhow::Result<String> {
        to_toml(json!({
            "general": { "id": a.router_id(), "config_dir": path_str(config_dir)? },
            "log": { "console": { "level": "info" } },
        }))
    }

    /// The control service's TOML: fast beaconing, databases in `config_dir`.
    pub(crate) fn control_toml(&self, a: &PlannedAs, config_dir: &Path) -> anyhow::Result<String> {
        let db = |name: &str| path_str(&config_dir.join(format!("cs.{name}.db")));
        to_toml(json!({
            "general": { "id": a.control_id(), "config_dir": path_str(config_dir)? },
            "log": { "console": { "level": "info" } },
            "trust_db": { "connection": db("trust")? },
            "beacon_db": { "connection": db("beacon")? },
            "path_db": { "connection": db("path")? },
            "beaconing": {
                "origination_interval": BEACON_INTERVAL,
                "propagation_interval": BEACON_INTERVAL,
                "registration_interval": BEACON_INTERVAL,
            },
            "path": { "query_interval": QUERY_INTERVAL },
        }))
    }

    /// The daemon's TOML.
    pub(crate) fn daemon_toml(&self, a: &PlannedAs, config_dir: &Path) -> anyhow::Result<String> {
        let db = |name: &str| path_str(&config_dir.join(format!("sd.{name}.db")));
        to_toml(json!({
            "general": { "id": a.daemon_id(), "config_dir": path_str(config_dir)? },
            "log": { "console": { "level": "info" } },
            "trust_db": { "connection": db("trust")? },
            "path_db": { "connection": db("path")? },
            "sd": { "address": a.daemon().to_string(), "query_interval": QUERY_INTERVAL },
        }))
    }

    /// The shim dispatcher's TOML: it listens on the AS's address, port 30041 (fixed by
    /// scionproto), where the router delivers SCMP echo requests (it answers them: `scion
    /// ping`) and packets for ports outside the dispatched range.
    pub(crate) fn dispatcher_toml(&self, a: &PlannedAs) -> anyhow::Result<String> {
        to_toml(json!({
            "dispatcher": { "id": a.dispatcher_id(), "underlay_addr": a.ip.to_string() },
            "log": { "console": { "level": "info" } },
        }))
    }

    /// Number of beacon paths from each core AS down to each non-core AS: chains of
    /// parent→child links through non-core ASes, without loops. These become the up segments
    /// of the non-core AS and the down segments of the core AS, so once beaconing has
    /// converged, the daemon of `leaf` has at least this many paths to `core` and back.
    pub(crate) fn beacon_paths(&self) -> BTreeMap<(IsdAsn, IsdAsn), usize> {
        let mut children: BTreeMap<IsdAsn, Vec<IsdAsn>> = BTreeMap::new();
        for l in &self.links {
            match l.kind {
                LinkKind::Parent => children.entry(l.a.ia).or_default().push(l.b.ia),
                LinkKind::Child => children.entry(l.b.ia).or_default().push(l.a.ia),
                LinkKind::Core | LinkKind::Peer => {}
            }
        }
        let core = |ia: IsdAsn| self.as_plan(ia).is_some_and(|a| a.core);
        let mut counts = BTreeMap::new();
        for c in self.ases.iter().filter(|a| a.core) {
            // Depth-first over simple paths from the core.
            let mut stack = vec![vec![c.ia]];
            while let Some(path) = stack.pop() {
                let last = *path.last().expect("never empty");
                for &child in children.get(&last).into_iter().flatten() {
                    if core(child) || path.contains(&child) {
                        continue;
                    }
                    *counts.entry((c.ia, child)).or_insert(0) += 1;
                    let mut next = path.clone();
                    next.push(child);
                    stack.push(next);
                }
            }
        }
        counts
    }
}

/// What the `b` end of a link of `kind` (relation of a to b) is, seen from `a`.
fn relation_of_b(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Core => "core",
        LinkKind::Parent => "child",
        LinkKind::Child => "parent",
        LinkKind::Peer => "peer",
    }
}

/// The relation of b to a, given that of a to b.
fn mirror(kind: LinkKind) -> LinkKind {
    match kind {
        LinkKind::Parent => LinkKind::Child,
        LinkKind::Child => LinkKind::Parent,
        k => k,
    }
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}

fn to_toml(v: Value) -> anyhow::Result<String> {
    toml::to_string(&v).context("cannot write TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(name: &str) -> Plan {
        Plan::new(&Topology::builtin(name).unwrap(), (200, 7)).unwrap()
    }

    #[test]
    fn addresses_are_distinct_and_in_the_subnet() {
        let p = plan("three-paths");
        let mut ips: Vec<Ipv4Addr> = p.ases.iter().map(|a| a.ip).collect();
        ips.extend(
            p.links
                .iter()
                .flat_map(|l| [*l.a.underlay.ip(), *l.b.underlay.ip()]),
        );
        let n = ips.len();
        assert_eq!(n, 5 + 12);
        ips.sort();
        ips.dedup();
        assert_eq!(ips.len(), n);
        assert!(ips.iter().all(|ip| ip.octets()[..3] == [127, 200, 7]));
    }

    #[test]
    fn topology_json_has_both_ends_of_each_link() {
        let p = plan("three-paths");
        let leaf = parse_ia("1-ff00:0:111").unwrap();
        let v: Value = serde_json::from_str(&p.topology_json(leaf).unwrap()).unwrap();
        assert_eq!(v["attributes"], json!([]));
        assert_eq!(v["dispatched_ports"], "31000-32767");
        let br = &v["border_routers"]["br1-ff00_0_111-1"];
        let ifs = br["interfaces"].as_object().unwrap();
        assert_eq!(ifs.len(), 3);
        assert_eq!(ifs["2"]["isd_as"], "1-ff00:0:120");
        assert_eq!(ifs["2"]["link_to"], "parent");
        let core = parse_ia("1-ff00:0:120").unwrap();
        let c: Value = serde_json::from_str(&p.topology_json(core).unwrap()).unwrap();
        let cif = &c["border_routers"]["br1-ff00_0_120-1"]["interfaces"]["1"];
        assert_eq!(cif["link_to"], "child");
        // The two ends point at each other.
        assert_eq!(cif["underlay"]["remote"], ifs["2"]["underlay"]["local"]);
        assert_eq!(cif["underlay"]["local"], ifs["2"]["underlay"]["remote"]);
        assert_eq!(c["attributes"], json!(["core"]));
    }

    #[test]
    fn testcrypto_topo_names_an_issuer_for_every_leaf() {
        let p = plan("three-paths");
        let v: Value = serde_json::from_str(&p.testcrypto_topo()).unwrap();
        assert_eq!(v["ASes"]["1-ff00:0:111"]["cert_issuer"], "1-ff00:0:110");
        assert_eq!(v["ASes"]["1-ff00:0:130"]["issuing"], true);
    }

    #[test]
    fn configs_are_toml() {
        let p = plan("two-as");
        let a = &p.ases[0];
        let dir = Path::new("/tmp/x");
        for text in [
            p.router_toml(a, dir).unwrap(),
            p.control_toml(a, dir).unwrap(),
            p.daemon_toml(a, dir).unwrap(),
            p.dispatcher_toml(a).unwrap(),
        ] {
            let _: toml::Table = toml::from_str(&text).unwrap();
        }
        assert!(p
            .control_toml(a, dir)
            .unwrap()
            .contains("origination_interval = \"1s\""));
    }

    #[test]
    fn beacon_paths_of_three_paths() {
        let p = plan("three-paths");
        let counts = p.beacon_paths();
        assert_eq!(counts.len(), 6);
        assert!(counts.values().all(|&n| n == 1));
    }

    #[test]
    fn delay_is_refused() {
        let t = Topology::from_str(
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[as]]\nia = \"1-ff00:0:111\"\n\
             [[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"\ndelay_ms = 5.0\n",
        )
        .unwrap();
        let e = Plan::new(&t, (200, 7)).unwrap_err().to_string();
        assert!(e.contains("bandwidth_mbit only"), "{e}");
    }
}
