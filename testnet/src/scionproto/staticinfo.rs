//! scionproto's `staticInfoConfig.json` for one AS: the path metadata its control service puts
//! in the beacons it originates and extends (the StaticInfo extension), from what our topology
//! announces. The daemons combine these into each path's latency, bandwidth, geo, link types,
//! internal hops and notes.
//!
//! Format: scionproto v0.14.0's `control/beaconing/staticinfo_config.go` and the control
//! service manual ("Path Metadata"): per interface id (as a string), `Latency` and
//! `Bandwidth` with an `Inter` value for the interface's link and `Intra` values to the AS's
//! other interfaces, `Geo`, `LinkType`, `Hops` (`Intra` only), and one `Note`.

use anyhow::bail;
use sciparse::identifier::isd_asn::IsdAsn;
use serde_json::{json, Map, Value};

use crate::topology::{AsSpec, LinkSpec, LinkType, Topology};

/// The file's name in the control service's config directory.
pub(crate) const FILE_NAME: &str = "staticInfoConfig.json";

/// The JSON for `ia`, or `None` when the AS announces nothing (no file: scionproto then sends
/// no StaticInfo extension, as before).
pub(crate) fn static_info(topology: &Topology, ia: IsdAsn) -> anyhow::Result<Option<String>> {
    let Some(spec) = topology.as_spec(ia) else {
        bail!("AS {ia} is not in the topology");
    };
    let mut ifs: Vec<(u16, &LinkSpec)> = Vec::new();
    for link in &topology.links {
        let (a, b) = link.ends()?;
        for end in [a, b] {
            if end.ia == ia {
                ifs.push((end.id, link));
            }
        }
    }
    ifs.sort_by_key(|(id, _)| *id);

    let mut latency = Map::new();
    let mut bandwidth = Map::new();
    let mut hops = Map::new();
    let mut geo = Map::new();
    let mut link_type = Map::new();
    for &(id, link) in &ifs {
        let others = || ifs.iter().map(|(o, _)| *o).filter(move |o| *o != id);
        let key = id.to_string();

        let intra: Map<String, Value> = match spec.internal_latency_ms {
            Some(ms) => others()
                .map(|o| (o.to_string(), json!(micros(ms))))
                .collect(),
            None => Map::new(),
        };
        match link.announced_latency_ms() {
            Some(ms) => {
                latency.insert(key.clone(), json!({ "Inter": micros(ms), "Intra": intra }));
            }
            // A missing Inter reads as 0 ms, which the daemons would show as a measured 0;
            // and scionproto's beacons cannot carry "unknown" (a negative value wraps).
            None if !intra.is_empty() => bail!(
                "AS {ia}: internal_latency_ms needs a latency on each of its links (link \
                 {} - {} has neither announce_latency_ms nor delay_ms): scionproto cannot \
                 announce an interface's internal latency without its link's",
                link.a,
                link.b
            ),
            None => {}
        }

        // A missing Inter bandwidth reads as 0, which scionproto takes as "not announced".
        let inter_bw = link.announced_bandwidth_mbit().map(kbps).unwrap_or(0);
        let intra_bw: Map<String, Value> = match spec.internal_bandwidth_mbit {
            Some(mbit) => others()
                .map(|o| (o.to_string(), json!(kbps(mbit))))
                .collect(),
            None => Map::new(),
        };
        if inter_bw > 0 || !intra_bw.is_empty() {
            bandwidth.insert(key.clone(), json!({ "Inter": inter_bw, "Intra": intra_bw }));
        }

        if let Some(n) = spec.internal_hops {
            let intra: Map<String, Value> = others().map(|o| (o.to_string(), json!(n))).collect();
            hops.insert(key.clone(), json!({ "Intra": intra }));
        }
        if let Some(g) = &spec.geo {
            geo.insert(
                key.clone(),
                json!({
                    "Latitude": g.latitude,
                    "Longitude": g.longitude,
                    "Address": g.address.clone().unwrap_or_default(),
                }),
            );
        }
        if let Some(t) = link.link_type {
            link_type.insert(key, json!(link_type_name(t)));
        }
    }

    let mut cfg = Map::new();
    for (name, map) in [
        ("Latency", latency),
        ("Bandwidth", bandwidth),
        ("Hops", hops),
        ("Geo", geo),
        ("LinkType", link_type),
    ] {
        if !map.is_empty() {
            cfg.insert(name.into(), Value::Object(map));
        }
    }
    if let Some(note) = note(spec) {
        cfg.insert("Note".into(), json!(note));
    }
    if cfg.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        serde_json::to_string_pretty(&Value::Object(cfg))? + "\n",
    ))
}

fn note(spec: &AsSpec) -> Option<&str> {
    spec.note.as_deref().filter(|n| !n.is_empty())
}

/// scionproto's duration syntax takes whole numbers only; beacons carry microseconds.
fn micros(ms: f64) -> String {
    format!("{}us", (ms * 1000.0).round() as u64)
}

/// Mbit/s to the kbit/s scionproto announces.
fn kbps(mbit: f64) -> u64 {
    (mbit * 1000.0).round() as u64
}

fn link_type_name(t: LinkType) -> &'static str {
    match t {
        LinkType::Direct => "direct",
        LinkType::Multihop => "multihop",
        LinkType::Opennet => "opennet",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::parse_ia;

    const TOPO: &str = r#"
[[as]]
ia = "1-ff00:0:110"
core = true
note = "core"
geo = { latitude = 47.5, longitude = 8.25, address = "Zürich" }
internal_latency_ms = 0.5
internal_bandwidth_mbit = 1000.0
internal_hops = 2

[[as]]
ia = "1-ff00:0:111"

[[as]]
ia = "1-ff00:0:112"

[[link]]
a = "1-ff00:0:110#1"
b = "1-ff00:0:111#1"
announce_latency_ms = 5.0
bandwidth_mbit = 50.0
link_type = "direct"

[[link]]
a = "1-ff00:0:110#2"
b = "1-ff00:0:112#1"
announce_latency_ms = 7.25
announce_bandwidth_mbit = 100.0
"#;

    fn cfg(topo: &str, ia: &str) -> Option<Value> {
        let t = Topology::from_str(topo).unwrap();
        static_info(&t, parse_ia(ia).unwrap())
            .unwrap()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn core_as_announces_links_and_crossings() {
        let v = cfg(TOPO, "1-ff00:0:110").unwrap();
        assert_eq!(v["Latency"]["1"]["Inter"], "5000us");
        assert_eq!(v["Latency"]["1"]["Intra"]["2"], "500us");
        assert_eq!(v["Latency"]["2"]["Inter"], "7250us");
        assert_eq!(v["Bandwidth"]["1"]["Inter"], 50_000, "the cap, announced");
        assert_eq!(v["Bandwidth"]["2"]["Inter"], 100_000);
        assert_eq!(v["Bandwidth"]["2"]["Intra"]["1"], 1_000_000);
        assert_eq!(v["Hops"]["1"]["Intra"]["2"], 2);
        assert_eq!(v["Geo"]["2"]["Address"], "Zürich");
        assert_eq!(v["Geo"]["2"]["Latitude"], 47.5);
        assert_eq!(v["LinkType"], json!({ "1": "direct" }));
        assert_eq!(v["Note"], "core");
        // No entry of an interface to itself.
        assert!(v["Latency"]["1"]["Intra"].get("1").is_none());
    }

    #[test]
    fn leaf_announces_only_its_links() {
        let v = cfg(TOPO, "1-ff00:0:111").unwrap();
        assert_eq!(v["Latency"]["1"], json!({ "Inter": "5000us", "Intra": {} }));
        assert_eq!(v["LinkType"]["1"], "direct");
        assert!(v.get("Note").is_none() && v.get("Geo").is_none() && v.get("Hops").is_none());
    }

    #[test]
    fn nothing_announced_is_no_file() {
        let t = "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[as]]\nia = \"1-ff00:0:111\"\n\
                 [[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"\n";
        assert_eq!(cfg(t, "1-ff00:0:110"), None);
        let builtin = Topology::builtin("two-as").unwrap();
        assert_eq!(
            static_info(&builtin, parse_ia("1-ff00:0:110").unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn internal_latency_without_link_latency_is_refused() {
        let t = Topology::from_str(
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\ninternal_latency_ms = 1.0\n\
             [[as]]\nia = \"1-ff00:0:111\"\n\
             [[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"\ndelay_ms = 1.0\n\
             [[link]]\na = \"1-ff00:0:110#2\"\nb = \"1-ff00:0:111#2\"\n",
        )
        .unwrap();
        let e = static_info(&t, parse_ia("1-ff00:0:110").unwrap()).unwrap_err();
        assert!(e.to_string().contains("internal_latency_ms needs"), "{e}");
    }
}
