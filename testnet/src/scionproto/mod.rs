//! The scionproto backend: scionproto's own border router, control service, daemon and shim
//! dispatcher for every AS of the topology, on loopback.
//!
//! Start-up: pick a free 127.x.y.0/24 for the testnet (claimed by a socket it holds), lay out
//! the addresses ([`gen::Plan`]), create keys, certificates and TRCs with
//! `scion-pki testcrypto`, write each AS's `topology.json` and the services' TOML files into
//! a temporary directory, start the processes, and wait until every daemon answers and
//! beaconing has produced the expected segments. See `testnet/README.md`, "The scionproto
//! backend".

pub(crate) mod gen;
mod procs;
mod staticinfo;
mod tc;

use std::{
    collections::{hash_map::RandomState, BTreeMap},
    hash::{BuildHasher, Hasher},
    io::Read,
    net::UdpSocket,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use sciparse::identifier::isd_asn::IsdAsn;

pub use procs::{scionproto_binary, SCIONPROTO_BIN_ENV, SCIONPROTO_VERSION};

use crate::{
    daemon,
    state::{AsState, LinkState, TestnetState},
    topology::{LinkKind, Topology},
};
use gen::Plan;
use procs::{run, Service};
use tc::LinkShaper;

/// How long a restarted daemon gets to answer.
const DAEMON_RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// How long beaconing gets to produce every expected segment.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Keep the generated files and logs after the testnet stops (for debugging).
const KEEP_ENV: &str = "SCION_TESTNET_KEEP";

/// A running scionproto network. Stops its processes and removes its tc setup and files when
/// dropped.
pub(crate) struct Network {
    plan: Plan,
    services: Mutex<Vec<Service>>,
    shaper: Mutex<Option<LinkShaper>>,
    stopped: AtomicBool,
    dir: PathBuf,
    /// Keep `dir` when dropped: the start failed, its logs say why.
    keep: bool,
    _claim: UdpSocket,
}

impl Network {
    /// Takes link `ia#ifid` down or up (see `tc`).
    pub(crate) fn set_link(&self, ia: IsdAsn, ifid: u16, up: bool) -> anyhow::Result<()> {
        let (n, _) = self
            .plan
            .link_at(ia, ifid)
            .with_context(|| format!("no link has an end at {ia}#{ifid}"))?;
        let mut shaper = self.shaper.lock().unwrap_or_else(|e| e.into_inner());
        if shaper.is_none() {
            if up {
                return Ok(()); // never cut, nothing to restore
            }
            *shaper = Some(LinkShaper::new(&self.plan.links)?);
        }
        shaper.as_ref().expect("set above").set_up(n, up)
    }

    /// Stops (SIGKILL) the SCION daemon of `ia`, or starts it again on the same address
    /// (with its path database as it was); a start returns once the daemon answers, a start
    /// of a running daemon does nothing. Call it on the testnet's runtime: the daemon gets
    /// SIGKILL when the thread that started it dies.
    pub(crate) async fn set_daemon(&self, ia: IsdAsn, running: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.stopped.load(Ordering::SeqCst),
            "the testnet is stopping"
        );
        let a = self
            .plan
            .as_plan(ia)
            .with_context(|| format!("no AS {ia} in the testnet"))?;
        let name = format!("daemon of {ia}");
        {
            let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
            let service = services
                .iter_mut()
                .find(|s| s.name == name)
                .with_context(|| format!("no daemon of {ia} in the testnet"))?;
            match (running, service.is_running()) {
                (false, _) => {
                    service.kill();
                    tracing::info!(%ia, daemon = %a.daemon(), "SCION daemon stopped");
                    return Ok(());
                }
                (true, true) => return Ok(()),
                (true, false) => service.restart()?,
            }
        }
        let deadline = Instant::now() + DAEMON_RESTART_TIMEOUT;
        loop {
            match daemon::as_info(a.daemon(), ia).await {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
                    let log = services
                        .iter()
                        .find(|s| s.name == name)
                        .map(|s| s.log_tail())
                        .unwrap_or_default();
                    bail!(
                        "the daemon of {ia} at {} did not answer within {} s of its restart: \
                         {e:#}; the end of its log:\n{log}",
                        a.daemon(),
                        DAEMON_RESTART_TIMEOUT.as_secs()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        tracing::info!(%ia, daemon = %a.daemon(), "SCION daemon started again");
        Ok(())
    }

    /// Packets dropped by tc on the link direction leaving `ia#ifid`.
    pub(crate) fn dropped(&self, ia: IsdAsn, ifid: u16) -> Option<u64> {
        let (n, link) = self.plan.link_at(ia, ifid)?;
        let dir = if link.a.ia == ia && link.a.ifid == ifid {
            0
        } else {
            1
        };
        let shaper = self.shaper.lock().unwrap_or_else(|e| e.into_inner());
        shaper.as_ref()?.dropped(n, dir)
    }

    /// Kills the services, removes the tc setup and the files (idempotent; also on drop).
    pub(crate) fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        for s in services.iter_mut() {
            s.kill();
        }
        services.clear();
        self.shaper.lock().unwrap_or_else(|e| e.into_inner()).take();
        if self.keep || std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("scion-testnet: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts scionproto for `topology`; returns once it is ready.
pub(crate) async fn launch(topology: &Topology) -> anyhow::Result<(Network, TestnetState)> {
    let mut bins = BTreeMap::new();
    for name in procs::NEEDED {
        bins.insert(*name, scionproto_binary(name)?);
    }
    let (claim, subnet) = claim_subnet()?;
    let plan = Plan::new(topology, subnet)?;

    remove_stale_dirs();
    let dir = std::env::temp_dir().join(format!(
        "scion-testnet-{}-{}-{}",
        std::process::id(),
        subnet.0,
        subnet.1
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut net = Network {
        plan,
        services: Mutex::new(Vec::new()),
        shaper: Mutex::new(None),
        stopped: AtomicBool::new(false),
        dir,
        keep: true,
        _claim: claim,
    };
    let config_dirs = write_configs(topology, &net.plan, &net.dir, &bins["scion-pki"])?;

    // Capped links are shaped before the first packet crosses them.
    if net.plan.links.iter().any(|l| l.bandwidth_mbit.is_some()) {
        *net.shaper.get_mut().unwrap_or_else(|e| e.into_inner()) =
            Some(LinkShaper::new(&net.plan.links)?);
    }

    for a in net.plan.ases.clone() {
        let cfg = &config_dirs[&a.ia];
        for (kind, id) in [
            ("router", a.router_id()),
            ("control", a.control_id()),
            ("daemon", a.daemon_id()),
            ("dispatcher", a.dispatcher_id()),
        ] {
            let service = Service::start(
                format!("{kind} of {}", a.ia),
                &bins[kind],
                &cfg.join(format!("{kind}.toml")),
                net.dir.join("logs").join(format!("{id}.log")),
            )?;
            net.services
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(service);
        }
    }

    let ases = wait_until_ready(&mut net).await?;
    net.keep = false;
    let links = LinkState::initial(topology)?;
    let state = TestnetState {
        ases,
        links,
        control: None,
    };
    Ok((net, state))
}

/// Removes the directories of testnets whose process is gone (killed while starting, or by
/// SIGKILL) unless they were meant to be kept.
fn remove_stale_dirs() {
    if std::env::var_os(KEEP_ENV).is_some() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("scion-testnet-")) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Claims a random 127.x.y.0/24 by binding its first address: testnets on one machine never
/// share addresses.
fn claim_subnet() -> anyhow::Result<(UdpSocket, (u8, u8))> {
    let mut last = None;
    for _ in 0..64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let r = h.finish();
        // 127.100.0.0 - 127.254.255.255: clear of 127.0.0.0/16, where everything else lives.
        let subnet = (100 + (r % 155) as u8, (r >> 8) as u8);
        let addr = std::net::SocketAddr::from(([127, subnet.0, subnet.1, 1], gen::CLAIM_PORT));
        match UdpSocket::bind(addr) {
            Ok(socket) => return Ok((socket, subnet)),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::anyhow!("{last:?}")).context("cannot claim a loopback subnet for the testnet")
}

/// Writes crypto material (`scion-pki testcrypto`), topology.json, master keys, TRCs, the
/// services' TOML files and the path metadata the ASes announce; returns each AS's config
/// directory.
fn write_configs(
    topology: &Topology,
    plan: &Plan,
    dir: &Path,
    scion_pki: &Path,
) -> anyhow::Result<BTreeMap<IsdAsn, PathBuf>> {
    let topo = dir.join("testcrypto.topo");
    std::fs::write(&topo, plan.testcrypto_topo())?;
    let gen_dir = dir.join("gen");
    run(Command::new(scion_pki)
        .arg("testcrypto")
        .arg("-t")
        .arg(&topo)
        .arg("-o")
        .arg(&gen_dir)
        .arg("--isd-dir")
        .arg("--as-validity")
        .arg("30d"))
    .context("scion-pki testcrypto failed")?;

    let trcs: Vec<PathBuf> = std::fs::read_dir(gen_dir.join("trcs"))
        .context("scion-pki testcrypto wrote no trcs/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "trc"))
        .collect();
    anyhow::ensure!(!trcs.is_empty(), "scion-pki testcrypto wrote no TRC");

    let mut dirs = BTreeMap::new();
    for a in &plan.ases {
        let cfg = gen_dir.join(gen::as_dir(a.ia));
        let write = |name: &str, text: String| {
            let path = cfg.join(name);
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
        };
        write("topology.json", plan.topology_json(a.ia)?)?;
        std::fs::create_dir_all(cfg.join("keys"))?;
        std::fs::create_dir_all(cfg.join("certs"))?;
        write("keys/master0.key", random_key()?)?;
        write("keys/master1.key", random_key()?)?;
        for trc in &trcs {
            let name = trc.file_name().context("TRC without a name")?;
            std::fs::copy(trc, cfg.join("certs").join(name))?;
        }
        write("router.toml", plan.router_toml(a, &cfg)?)?;
        write("control.toml", plan.control_toml(a, &cfg)?)?;
        write("daemon.toml", plan.daemon_toml(a, &cfg)?)?;
        write("dispatcher.toml", plan.dispatcher_toml(a)?)?;
        // Read by the control service from its config directory, if present.
        if let Some(json) = staticinfo::static_info(topology, a.ia)? {
            write(staticinfo::FILE_NAME, json)?;
        }
        dirs.insert(a.ia, cfg);
    }
    Ok(dirs)
}

/// 16 random bytes, base64: a forwarding (hop field MAC) master key.
fn random_key() -> anyhow::Result<String> {
    let mut key = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(base64(&key))
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Polls until every daemon answers and beaconing has produced, for every (core, non-core)
/// pair joined by beacons, at least as many up segments at the non-core AS and down
/// segments at the core AS as there are beacon paths between them, and a path across every
/// core link. Paths are requested with `refresh`, so the daemons' caches never hold an
/// answer from before convergence.
async fn wait_until_ready(net: &mut Network) -> anyhow::Result<BTreeMap<String, AsState>> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut expected: Vec<(IsdAsn, IsdAsn, usize)> = Vec::new();
    for ((core, leaf), n) in net.plan.beacon_paths() {
        expected.push((leaf, core, n));
        expected.push((core, leaf, n));
    }
    for l in &net.plan.links {
        if l.kind == LinkKind::Core {
            expected.push((l.a.ia, l.b.ia, 1));
            expected.push((l.b.ia, l.a.ia, 1));
        }
    }

    let mut ranges = BTreeMap::new();
    loop {
        for s in net.services.get_mut().unwrap_or_else(|e| e.into_inner()) {
            s.check()?;
        }
        let mut missing = Vec::new();
        for a in &net.plan.ases {
            if ranges.contains_key(&a.ia) {
                continue;
            }
            let answer = async {
                let info = daemon::as_info(a.daemon(), a.ia).await?;
                anyhow::ensure!(
                    info.isd_as == a.ia.to_u64(),
                    "daemon answered for another AS"
                );
                daemon::port_range(a.daemon()).await
            }
            .await;
            match answer {
                Ok(range) => {
                    ranges.insert(a.ia, range);
                }
                Err(e) => missing.push(format!("daemon of {} at {}: {e:#}", a.ia, a.daemon())),
            }
        }
        if missing.is_empty() {
            for (src, dst, n) in &expected {
                let addr = net.plan.as_plan(*src).context("AS in plan")?.daemon();
                match daemon::paths_refreshed(addr, *src, *dst).await {
                    Ok(p) if p.paths.len() >= *n => {}
                    Ok(p) => {
                        missing.push(format!("{src} -> {dst}: {} of {n} paths", p.paths.len()))
                    }
                    Err(e) => missing.push(format!("{src} -> {dst}: {e:#}")),
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the scionproto testnet was not ready after {} s (files and logs kept in {}): {}",
                READY_TIMEOUT.as_secs(),
                net.dir.display(),
                missing.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut ases = BTreeMap::new();
    for a in &net.plan.ases {
        let routers = net
            .plan
            .interfaces(a.ia)
            .into_iter()
            .map(|id| (id, a.router()))
            .collect();
        ases.insert(
            a.ia.to_string(),
            AsState {
                core: a.core,
                daemon: a.daemon(),
                routers,
                router: a.router(),
                port_range: ranges.get(&a.ia).copied(),
            },
        );
    }
    Ok(ases)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }
}
