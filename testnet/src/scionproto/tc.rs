//! Links of a scionproto testnet, cut and capped in the kernel with `tc` on `lo`.
//!
//! Every link end has a loopback address of its own, so the packets of one link direction
//! are exactly those with that end's address as IP source. When the testnet first needs it
//! (a capped link at start, or the first link taken down), it puts an HTB qdisc at the root
//! of `lo` (shared by all testnets of the machine, removed by the last one to leave), and
//! gives each of its link directions an HTB class selected by a u32 filter on the source
//! address:
//!
//! - capped (`bandwidth_mbit = R`): rate and ceil R of SCION bytes (a size table takes the
//!   underlay headers off), bursts of 4 × 1500 bytes, a byte FIFO holding 50 ms at R but at
//!   most 64 KiB (at least 8 × 1500 bytes): tail drop beyond that;
//! - uncapped: a rate no loopback reaches;
//! - down: the class's FIFO is replaced by one of length 0, which drops every packet
//!   (this kernel has no `gact` action to drop in the filter itself).
//!
//! A down link drops everything in both directions, BFD included: both routers see their
//! BFD session time out (3 × 200 ms) and from then on answer packets for that interface with
//! SCMP external-interface-down, as on a real cut link. Traffic that no filter selects
//! (everything else on `lo`) goes to HTB's direct queue, unshaped.
//!
//! Testnets of one machine share the root qdisc, so each holds a *slot* (a file lock in
//! `$TMPDIR/scion-testnet-tc/`) that gives it a filter priority and a range of class ids of
//! its own; tc changes happen under a machine-wide file lock. Slots whose holder died (its
//! lock is free) are cleaned up by the next testnet that sets up tc.

use std::{
    fs::{File, OpenOptions},
    path::PathBuf,
    process::Command,
};

use anyhow::{bail, Context};

use super::{gen::PlannedLink, procs::run};

/// Handle (major) of the root HTB qdisc on `lo` that all scionproto testnets share.
const ROOT: &str = "5c10";
/// Slots: class minors `slot * 64 + 1 ..= slot * 64 + 63`, filter priority `100 + slot`.
const SLOTS: u32 = 1000;
const CLASSES_PER_SLOT: u32 = 64;
/// Rate of uncapped link directions: more than the routers forward on loopback. (At 100gbit
/// tc computes a burst of 0; 40gbit with an explicit burst is exact.)
const UNCAPPED: &str = "40gbit";
const UNCAPPED_BURST: u64 = 4 << 20;
/// Longest queue of a capped link direction, in bytes.
const MAX_QUEUE: u64 = 64 << 10;
/// What a SCION packet on a link carries in front of it on `lo`: the 14-byte link header
/// and the underlay's IPv4 and UDP headers.
const UNDERLAY_HEADERS: u32 = 14 + 20 + 8;

/// The tc state of one testnet.
pub(crate) struct LinkShaper {
    slot: u32,
    _slot_lock: File,
    links: Vec<PlannedLink>,
}

/// One direction of link `link`: `0` is a → b, `1` is b → a.
fn minor(slot: u32, link: usize, dir: u32) -> u32 {
    slot * CLASSES_PER_SLOT + 1 + 2 * link as u32 + dir
}

fn tc() -> Command {
    Command::new("tc")
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("scion-testnet-tc")
}

/// Holds the machine-wide lock on tc changes while alive.
struct TcLock(File);

impl TcLock {
    fn take() -> anyhow::Result<TcLock> {
        let dir = lock_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        f.lock().context("cannot lock the tc lock file")?;
        Ok(TcLock(f))
    }
}

impl Drop for TcLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn slot_file(slot: u32) -> anyhow::Result<File> {
    Ok(OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_dir().join(format!("slot-{slot}")))?)
}

/// Whether a slot is held by a live testnet.
fn slot_held(slot: u32) -> bool {
    match slot_file(slot) {
        Ok(f) => match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        },
        Err(_) => false,
    }
}

impl LinkShaper {
    /// Sets up tc for `links` (in topology order). Needs root (CAP_NET_ADMIN) and iproute2.
    pub(crate) fn new(links: &[PlannedLink]) -> anyhow::Result<LinkShaper> {
        if links.len() * 2 >= CLASSES_PER_SLOT as usize {
            bail!(
                "the scionproto backend shapes or cuts links of topologies with at most {} links",
                (CLASSES_PER_SLOT - 1) / 2
            );
        }
        let _lock = TcLock::take()?;
        let (slot, slot_lock) = (1..=SLOTS)
            .find_map(|slot| {
                let f = slot_file(slot).ok()?;
                f.try_lock().ok()?;
                Some((slot, f))
            })
            .context("no free tc slot (1000 scionproto testnets at once?)")?;
        ensure_root()?;
        collect_garbage();
        remove_slot(slot);
        let shaper = LinkShaper {
            slot,
            _slot_lock: slot_lock,
            links: links.to_vec(),
        };
        let setup = (|| {
            for (n, link) in links.iter().enumerate() {
                for (dir, src) in [(0, link.a.underlay.ip()), (1, link.b.underlay.ip())] {
                    let class = format!("{ROOT}:{:x}", minor(slot, n, dir));
                    let (rate, burst) = match link.bandwidth_mbit {
                        // Bursts of four 1500-byte packets (or 1 ms at the rate) pass at
                        // once, as in the pocketscion backend's shaper.
                        Some(r) => (
                            format!("{}kbit", (r * 1000.0).round().max(8.0) as u64),
                            ((r * 1e6 / 8.0 / 1000.0) as u64).max(4 * 1500),
                        ),
                        None => (UNCAPPED.to_string(), UNCAPPED_BURST),
                    };
                    let burst = format!("{burst}b");
                    run(tc()
                        .args(["class", "add", "dev", "lo", "parent"])
                        .arg(format!("{ROOT}:"))
                        .args(["classid", &class, "htb", "rate", &rate, "ceil", &rate])
                        .args(["burst", &burst, "cburst", &burst]))?;
                    shaper.set_leaf(n, dir, true)?;
                    run(tc()
                        .args(["filter", "add", "dev", "lo", "parent"])
                        .arg(format!("{ROOT}:"))
                        .args(["pref", &(100 + slot).to_string(), "protocol", "ip", "u32"])
                        .args(["match", "ip", "src", &format!("{src}/32")])
                        .args(["flowid", &class]))?;
                }
            }
            anyhow::Ok(())
        })();
        if let Err(e) = setup {
            drop(_lock);
            drop(shaper);
            return Err(e.context(
                "cannot set up tc on lo for the scionproto testnet's links (needs root and \
                 iproute2's tc; the kernel needs HTB and u32)",
            ));
        }
        Ok(shaper)
    }

    /// Takes link `n` (topology order) down or up, both directions.
    pub(crate) fn set_up(&self, n: usize, up: bool) -> anyhow::Result<()> {
        let _lock = TcLock::take()?;
        for dir in [0, 1] {
            self.set_leaf(n, dir, up)?;
        }
        Ok(())
    }

    /// The FIFO below a link direction's class: sized for the cap when up, empty when down.
    fn set_leaf(&self, n: usize, dir: u32, up: bool) -> anyhow::Result<()> {
        let m = minor(self.slot, n, dir);
        let parent = format!("{ROOT}:{m:x}");
        let handle = format!("{:x}:", 0x1000 + m);
        let mut cmd = tc();
        cmd.args([
            "qdisc", "replace", "dev", "lo", "parent", &parent, "handle", &handle,
        ]);
        if !up {
            cmd.args(["pfifo", "limit", "0"]);
        } else if let Some(rate) = self.links[n].bandwidth_mbit {
            // 50 ms of traffic at the cap, as the pocketscion backend's shaper queues, but at
            // most 64 KiB: a longer queue would fill the router's socket send buffer first,
            // and the router, not the link, would drop the excess.
            let bytes = ((rate * 1e6 / 8.0 * 0.050) as u64).clamp(8 * 1500, MAX_QUEUE);
            cmd.args(["bfifo", "limit", &bytes.to_string()]);
        } else {
            cmd.args(["pfifo", "limit", "10000"]);
        }
        run(&mut cmd)?;
        Ok(())
    }

    /// Packets dropped so far on the link direction leaving through `a` (dir 0) or `b`.
    pub(crate) fn dropped(&self, n: usize, dir: u32) -> Option<u64> {
        let class = format!("{ROOT}:{:x}", minor(self.slot, n, dir));
        let out = run(tc().args(["-s", "class", "show", "dev", "lo", "classid", &class])).ok()?;
        let after = out.split("dropped ").nth(1)?;
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for LinkShaper {
    fn drop(&mut self) {
        let Ok(_lock) = TcLock::take() else { return };
        remove_slot(self.slot);
        remove_root_if_unused();
    }
}

/// Puts the shared HTB at the root of `lo` unless it is there.
fn ensure_root() -> anyhow::Result<()> {
    let qdiscs = run(tc().args(["qdisc", "show", "dev", "lo", "root"]))?;
    if qdiscs.contains(&format!("htb {ROOT}:")) {
        return Ok(());
    }
    if !qdiscs.trim().is_empty() && !qdiscs.contains("noqueue") {
        bail!(
            "lo's root qdisc is not scion-testnet's ({}); not replacing it",
            qdiscs.trim()
        );
    }
    // The size table makes HTB count SCION bytes, as the pocketscion backend's shaper does:
    // without it a packet counts with its loopback link header and underlay IP/UDP headers.
    run(tc()
        .args(["qdisc", "add", "dev", "lo", "root", "handle"])
        .arg(format!("{ROOT}:"))
        .args(["stab", "overhead", &format!("-{UNDERLAY_HEADERS}"), "htb"]))?;
    Ok(())
}

/// Removes a slot's filters and classes (errors ignored: they may not exist).
fn remove_slot(slot: u32) {
    let _ = run(tc()
        .args(["filter", "del", "dev", "lo", "parent"])
        .arg(format!("{ROOT}:"))
        .args(["pref", &(100 + slot).to_string()]));
    let ids = class_ids();
    for m in slot * CLASSES_PER_SLOT + 1..(slot + 1) * CLASSES_PER_SLOT {
        if !ids.contains(&m) {
            continue;
        }
        let _ = run(tc()
            .args(["class", "del", "dev", "lo", "classid"])
            .arg(format!("{ROOT}:{m:x}")));
    }
}

/// Class minors under the shared root.
fn class_ids() -> Vec<u32> {
    let Ok(out) = run(tc().args(["class", "show", "dev", "lo"])) else {
        return Vec::new();
    };
    out.lines()
        .filter_map(|l| {
            let id = l.split_whitespace().nth(2)?;
            let (major, minor) = id.split_once(':')?;
            (major == ROOT).then(|| u32::from_str_radix(minor, 16).ok())?
        })
        .collect()
}

/// Removes what testnets that died without cleaning up left behind.
fn collect_garbage() {
    let mut slots: Vec<u32> = class_ids().iter().map(|m| m / CLASSES_PER_SLOT).collect();
    slots.dedup();
    for slot in slots {
        if !slot_held(slot) {
            tracing::info!(slot, "removing tc classes of a testnet that is gone");
            remove_slot(slot);
        }
    }
}

fn remove_root_if_unused() {
    if class_ids().is_empty() {
        let _ = run(tc()
            .args(["qdisc", "del", "dev", "lo", "root", "handle"])
            .arg(format!("{ROOT}:"))
            .arg("htb"));
    }
}
