//! Turning a [`Topology`] into a running pocketscion: one router socket (UDP underlay, router
//! mode) and one daemon per AS, all on loopback with OS-assigned ports.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU16,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use chrono::Utc;
use pocketscion::{
    comp::daemon::DaemonServiceState,
    io_config::IoConfig,
    network::scion::topology::{
        ScionAs, ScionLink, ScionLinkType, ScionRouter, ScionTopology, ScionTopologyBuilder,
    },
    runtime::{builder::PocketScionRuntimeBuilder, PocketScionRuntime},
    state::PocketScionState,
};
use sciparse::identifier::isd_asn::IsdAsn;

use crate::{
    daemon,
    shaper::{self, Shaper},
    state::{AsState, LinkState, TestnetState},
    topology::{parse_ia, LinkKind, Topology},
};

/// How long the daemons get to answer their first request.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A started pocketscion and what we learned about it.
pub(crate) struct Launched {
    pub(crate) runtime: PocketScionRuntime,
    pub(crate) pocket: PocketScionState,
    pub(crate) state: TestnetState,
    /// The shaping layer, if any link of the topology has attributes.
    pub(crate) shaper: Option<Arc<Shaper>>,
}

/// Starts pocketscion for `topology` and waits until every daemon answers.
pub(crate) async fn launch(topology: &Topology) -> anyhow::Result<Launched> {
    let ifaces = interfaces_by_as(topology)?;

    let mut pocket = PocketScionState::new(Utc::now());
    pocket.set_topology(build_topology(topology, &BTreeMap::new())?);

    // With shaping, hosts talk to front ends instead of pocketscion's router sockets (see
    // `shaper`): bound first, so that the daemons can advertise them as next hops.
    let shaper = Shaper::new(topology)?;
    let front_ends = match &shaper {
        Some(_) => Some(shaper::bind(ifaces.keys().copied()).await?),
        None => None,
    };

    let mut routers = BTreeMap::new();
    for (ia, ids) in &ifaces {
        let ids = ids.iter().filter_map(|id| NonZeroU16::new(*id)).collect();
        // No SNAP interfaces and no exclusions: plain router mode over the UDP underlay.
        routers.insert(*ia, pocket.add_router(*ia, ids, vec![], BTreeMap::new()));
        let mut daemon = DaemonServiceState::new();
        if let Some(socket) = front_ends.as_ref().and_then(|f| f.get(ia)) {
            daemon.set_override_path_underlay_next_hop(socket.local_addr()?);
        }
        pocket.add_daemon_service(*ia, daemon)?;
    }

    let io = IoConfig::new();
    io.set_bind_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let runtime = PocketScionRuntimeBuilder::new()
        .with_system_state(pocket.clone())
        .with_io_config(io.clone())
        .start()
        .await
        .context("pocketscion failed to start")?;

    let mut router_addrs = BTreeMap::new();
    for (ia, id) in &routers {
        let addr = runtime
            .router_socket_addr(*id)
            .with_context(|| format!("pocketscion bound no router socket for {ia}"))?;
        router_addrs.insert(*ia, addr);
    }

    // The front ends stand in for the router sockets wherever hosts see a router address.
    if let Some(sockets) = &front_ends {
        for (ia, socket) in sockets {
            router_addrs.insert(*ia, socket.local_addr()?);
        }
    }

    // Now that the router sockets are bound, tell the topology where they are. Without this
    // the daemon's Interfaces RPC answers 0.0.0.0:0 and routers source SCMP from 0.0.0.0.
    pocket.set_topology(build_topology(topology, &router_addrs)?);
    if let (Some(shaper), Some(sockets)) = (&shaper, front_ends) {
        shaper::start(shaper, &pocket, sockets)?;
    }

    let mut ases = BTreeMap::new();
    for (ia, ids) in &ifaces {
        let router = router_addrs
            .get(ia)
            .with_context(|| format!("no router address for {ia}"))?;
        let daemon = io
            .daemon_service_addr(*ia)
            .with_context(|| format!("pocketscion bound no daemon for {ia}"))?;
        let port_range = wait_for_daemon(daemon, *ia).await?;
        let spec = topology.as_spec(*ia).context("AS vanished from topology")?;
        let routers = ids.iter().map(|id| (*id, *router)).collect();
        ases.insert(
            ia.to_string(),
            AsState {
                core: spec.core,
                daemon,
                routers,
                router: *router,
                port_range: Some(port_range),
            },
        );
    }

    let links = LinkState::initial(topology)?;

    Ok(Launched {
        runtime,
        pocket,
        state: TestnetState {
            ases,
            links,
            control: None,
        },
        shaper,
    })
}

/// Interface ids per AS (every AS appears, even one without links).
fn interfaces_by_as(topology: &Topology) -> anyhow::Result<BTreeMap<IsdAsn, Vec<u16>>> {
    let mut map: BTreeMap<IsdAsn, Vec<u16>> = BTreeMap::new();
    for spec in &topology.ases {
        map.insert(parse_ia(&spec.ia)?, Vec::new());
    }
    for link in &topology.links {
        let (a, b) = link.ends()?;
        for end in [a, b] {
            map.entry(end.ia).or_default().push(end.id);
        }
    }
    for ids in map.values_mut() {
        ids.sort_unstable();
    }
    Ok(map)
}

/// Builds pocketscion's topology, with one router per AS at the given underlay addresses.
fn build_topology(
    topology: &Topology,
    routers: &BTreeMap<IsdAsn, SocketAddr>,
) -> anyhow::Result<ScionTopology> {
    let mut builder = ScionTopologyBuilder::new();
    for spec in &topology.ases {
        let ia = parse_ia(&spec.ia)?;
        let scion_as = if spec.core {
            ScionAs::new_core(ia)
        } else {
            ScionAs::new(ia)
        };
        builder.add_as(scion_as)?;
    }
    for link in &topology.links {
        let (a, b) = link.ends()?;
        let kind = match topology.link_kind(link)? {
            LinkKind::Core => ScionLinkType::Core,
            LinkKind::Parent => ScionLinkType::Parent,
            LinkKind::Child => ScionLinkType::Child,
            LinkKind::Peer => ScionLinkType::Peer,
        };
        let scion_link = ScionLink::new(a.ia, a.id, kind, b.ia, b.id)
            .with_context(|| format!("link {a} - {b}"))?;
        builder
            .add_link(scion_link)
            .with_context(|| format!("link {a} - {b}"))?;
    }
    for (ia, addr) in routers {
        builder.add_router(*ia, ScionRouter::new_fallback(*addr))?;
    }
    builder.build().context("pocketscion rejected the topology")
}

/// Polls the daemon until it answers an AS request for its own AS; returns its port range.
async fn wait_for_daemon(addr: SocketAddr, ia: IsdAsn) -> anyhow::Result<(u16, u16)> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let answer = async {
            let info = daemon::as_info(addr, ia).await?;
            anyhow::ensure!(info.isd_as == ia.to_u64(), "daemon answered for another AS");
            daemon::port_range(addr).await
        }
        .await;
        match answer {
            Ok(range) => return Ok(range),
            Err(e) if Instant::now() >= deadline => {
                bail!("daemon of {ia} at {addr} is not answering: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
