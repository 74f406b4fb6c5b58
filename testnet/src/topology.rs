//! Our topology file format (TOML, documented in `topologies/README.md`) and its validation.
//!
//! The format is deliberately smaller than pocketscion's own model: ASes, links between
//! interfaces, and per-link attributes (bandwidth, delay, loss) that the shaper enforces.

use std::{collections::BTreeSet, fmt, path::Path, str::FromStr};

use anyhow::{bail, ensure, Context};
use sciparse::identifier::isd_asn::IsdAsn;
use serde::{Deserialize, Serialize};

/// Topologies shipped with the crate, embedded so that tests and the binary need no file paths.
const BUILTINS: &[(&str, &str)] = &[
    ("two-as", include_str!("../../topologies/two-as.toml")),
    (
        "three-paths",
        include_str!("../../topologies/three-paths.toml"),
    ),
    (
        "three-paths-capped",
        include_str!("../../topologies/three-paths-capped.toml"),
    ),
];

/// A validated testnet topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Free-form name, shown in logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Free-form description.
    #[serde(default)]
    pub description: Option<String>,
    /// The ASes, in file order.
    #[serde(rename = "as")]
    pub ases: Vec<AsSpec>,
    /// The inter-AS links, in file order.
    #[serde(rename = "link", default)]
    pub links: Vec<LinkSpec>,
}

/// One AS of the topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsSpec {
    /// ISD-AS, e.g. `1-ff00:0:110`.
    pub ia: String,
    /// Whether this is a core AS.
    #[serde(default)]
    pub core: bool,
    /// Free text the AS announces as its note on every path through it. This and the
    /// other announced attributes below are path metadata for the scionproto backend's
    /// beacons (scionproto's StaticInfo extension): announced, not enforced; pocketscion
    /// announces nothing.
    #[serde(default)]
    pub note: Option<String>,
    /// Where the AS's router is (all its interfaces: one router per AS).
    #[serde(default)]
    pub geo: Option<GeoSpec>,
    /// Latency announced between any two of its interfaces, in milliseconds.
    #[serde(default)]
    pub internal_latency_ms: Option<f64>,
    /// Bandwidth announced between any two of its interfaces, in Mbit/s.
    #[serde(default)]
    pub internal_bandwidth_mbit: Option<f64>,
    /// Router hops announced between any two of its interfaces.
    #[serde(default)]
    pub internal_hops: Option<u32>,
}

/// A position in WGS 84 and a civic address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoSpec {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub address: Option<String>,
}

/// One link between two interfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// One end, `ISD-AS#IFID`.
    pub a: String,
    /// The other end, `ISD-AS#IFID`.
    pub b: String,
    /// Relation of `a` to `b`; inferred from the ASes' core flags when absent.
    #[serde(rename = "type", default)]
    pub kind: Option<LinkKind>,
    /// Bandwidth cap in Mbit/s, in each direction separately (SCION packet bytes).
    #[serde(default)]
    pub bandwidth_mbit: Option<f64>,
    /// One-way delay in milliseconds, in each direction.
    #[serde(default)]
    pub delay_ms: Option<f64>,
    /// Packet loss probability in [0, 1], in each direction.
    #[serde(default)]
    pub loss: Option<f64>,
    /// Latency both ends announce for the link, in milliseconds (default: `delay_ms`).
    /// Announced only: the scionproto backend's beacons carry it; nothing enforces it.
    #[serde(default)]
    pub announce_latency_ms: Option<f64>,
    /// Bandwidth both ends announce for the link, in Mbit/s (default: `bandwidth_mbit`).
    #[serde(default)]
    pub announce_bandwidth_mbit: Option<f64>,
    /// Kind of link both ends announce.
    #[serde(default)]
    pub link_type: Option<LinkType>,
}

/// The announced kind of a link, as scionproto's staticInfoConfig.json names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    /// A direct physical connection.
    Direct,
    /// A connection with local routing or switching.
    Multihop,
    /// A connection over the public Internet.
    Opennet,
}

/// Relation of a link's `a` end to its `b` end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// `a` and `b` are core ASes.
    Core,
    /// `a` is the parent (provider) of `b`.
    Parent,
    /// `a` is the child (customer) of `b`.
    Child,
    /// Peering link.
    Peer,
}

/// A parsed `ISD-AS#IFID` interface reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interface {
    /// The AS owning the interface.
    pub ia: IsdAsn,
    /// The interface id inside that AS (never 0).
    pub id: u16,
}

impl FromStr for Interface {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (ia, id) = s
            .split_once('#')
            .with_context(|| format!("interface '{s}' is not of the form ISD-AS#IFID"))?;
        let ia = parse_ia(ia)?;
        let id: u16 = id
            .parse()
            .with_context(|| format!("interface id in '{s}' is not a number in 1..=65535"))?;
        ensure!(id != 0, "interface id 0 in '{s}' is reserved");
        Ok(Self { ia, id })
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.ia, self.id)
    }
}

/// Parses an ISD-AS such as `1-ff00:0:110`, with an error that names the input.
pub fn parse_ia(s: &str) -> anyhow::Result<IsdAsn> {
    let ia = IsdAsn::from_str(s.trim())
        .map_err(|e| anyhow::anyhow!("'{s}' is not a valid ISD-AS ({e})"))?;
    ensure!(
        !ia.is_wildcard(),
        "'{s}' is a wildcard, not a concrete ISD-AS"
    );
    Ok(ia)
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read topology file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in topology file {}", path.display()))
    }

    /// Parses and validates a topology from TOML text.
    #[allow(clippy::should_implement_trait)] // named in the crate's published contract
    pub fn from_str(s: &str) -> anyhow::Result<Self> {
        Self::from_toml(s)
    }

    fn from_toml(s: &str) -> anyhow::Result<Self> {
        let topo: Topology = toml::from_str(s).context("invalid topology TOML")?;
        topo.validate()?;
        Ok(topo)
    }

    /// Returns a topology shipped with the crate: `two-as`, `three-paths` or
    /// `three-paths-capped`.
    pub fn builtin(name: &str) -> anyhow::Result<Self> {
        let (_, text) = BUILTINS.iter().find(|(n, _)| *n == name).with_context(|| {
            format!(
                "no builtin topology '{name}' (known: {})",
                Self::builtin_names().join(", ")
            )
        })?;
        Self::from_toml(text).with_context(|| format!("in builtin topology '{name}'"))
    }

    /// Names accepted by [`Topology::builtin`].
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTINS.iter().map(|(n, _)| *n).collect()
    }

    /// A builtin name if `arg` is one, otherwise a file path.
    pub fn from_arg(arg: &str) -> anyhow::Result<Self> {
        let is_builtin = Self::builtin_names().contains(&arg);
        if Path::new(arg).exists() || !is_builtin && arg.contains(['/', '.']) {
            Self::from_file(arg)
        } else if is_builtin {
            Self::builtin(arg)
        } else {
            bail!(
                "'{arg}' is neither a topology file nor a builtin topology (builtins: {})",
                Self::builtin_names().join(", ")
            )
        }
    }

    /// Looks up the AS spec for an ISD-AS.
    pub fn as_spec(&self, ia: IsdAsn) -> Option<&AsSpec> {
        self.ases.iter().find(|a| parse_ia(&a.ia).ok() == Some(ia))
    }

    /// Checks everything we can check before pocketscion sees the topology, so that mistakes
    /// come back as messages about the file rather than about pocketscion internals.
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.ases.is_empty(), "the topology has no [[as]] entries");

        let mut seen = BTreeSet::new();
        for a in &self.ases {
            let ia = parse_ia(&a.ia)?;
            ensure!(seen.insert(ia), "AS {ia} is listed twice");
            a.validate_announced().with_context(|| format!("AS {ia}"))?;
        }
        ensure!(
            self.ases.iter().any(|a| a.core),
            "the topology needs at least one core AS (core = true)"
        );

        let mut used = BTreeSet::new();
        for (n, link) in self.links.iter().enumerate() {
            let ctx = || format!("link #{} ({} - {})", n + 1, link.a, link.b);
            let (a, b) = link.ends().with_context(ctx)?;
            for end in [a, b] {
                ensure!(
                    seen.contains(&end.ia),
                    "{}: AS {} is not declared as [[as]]",
                    ctx(),
                    end.ia
                );
                ensure!(
                    used.insert(end),
                    "{}: interface {end} is used by more than one link",
                    ctx()
                );
            }
            ensure!(
                a.ia != b.ia,
                "{}: a link must join two different ASes",
                ctx()
            );
            self.link_kind(link).with_context(ctx)?;
            check_attr("bandwidth_mbit", link.bandwidth_mbit, |v| v > 0.0).with_context(ctx)?;
            check_attr("delay_ms", link.delay_ms, |v| v >= 0.0).with_context(ctx)?;
            check_attr("loss", link.loss, |v| (0.0..=1.0).contains(&v)).with_context(ctx)?;
            check_attr("announce_latency_ms", link.announce_latency_ms, |v| {
                v >= 0.0
            })
            .with_context(ctx)?;
            check_attr(
                "announce_bandwidth_mbit",
                link.announce_bandwidth_mbit,
                |v| v > 0.0,
            )
            .with_context(ctx)?;
        }
        Ok(())
    }

    /// The link's kind as written, or inferred: two core ASes are joined by a core link, and a
    /// core AS is the parent of a non-core one. Two non-core ASes need an explicit kind.
    pub fn link_kind(&self, link: &LinkSpec) -> anyhow::Result<LinkKind> {
        let (a, b) = link.ends()?;
        let core = |ia| self.as_spec(ia).map(|s| s.core).unwrap_or(false);
        let kind = match (link.kind, core(a.ia), core(b.ia)) {
            (Some(kind), _, _) => kind,
            (None, true, true) => LinkKind::Core,
            (None, true, false) => LinkKind::Parent,
            (None, false, true) => LinkKind::Child,
            (None, false, false) => {
                bail!("neither AS is core: set type = \"parent\", \"child\" or \"peer\"")
            }
        };
        Ok(kind)
    }
}

impl LinkSpec {
    /// Both ends, parsed.
    pub fn ends(&self) -> anyhow::Result<(Interface, Interface)> {
        Ok((self.a.parse()?, self.b.parse()?))
    }

    /// The latency announced for the link, in milliseconds.
    pub fn announced_latency_ms(&self) -> Option<f64> {
        self.announce_latency_ms.or(self.delay_ms)
    }

    /// The bandwidth announced for the link, in Mbit/s.
    pub fn announced_bandwidth_mbit(&self) -> Option<f64> {
        self.announce_bandwidth_mbit.or(self.bandwidth_mbit)
    }
}

impl AsSpec {
    fn validate_announced(&self) -> anyhow::Result<()> {
        check_attr("internal_latency_ms", self.internal_latency_ms, |v| {
            v >= 0.0
        })?;
        check_attr(
            "internal_bandwidth_mbit",
            self.internal_bandwidth_mbit,
            |v| v > 0.0,
        )?;
        ensure!(
            self.internal_hops != Some(0),
            "internal_hops = 0 is out of range"
        );
        if let Some(g) = &self.geo {
            check_attr("geo.latitude", Some(g.latitude), |v| v.abs() <= 90.0)?;
            check_attr("geo.longitude", Some(g.longitude), |v| v.abs() <= 180.0)?;
        }
        Ok(())
    }
}

fn check_attr(name: &str, value: Option<f64>, ok: impl Fn(f64) -> bool) -> anyhow::Result<()> {
    match value {
        Some(v) if !v.is_finite() || !ok(v) => bail!("{name} = {v} is out of range"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for name in Topology::builtin_names() {
            Topology::builtin(name).unwrap();
        }
        assert!(Topology::builtin("nope").is_err());
    }

    #[test]
    fn kinds_are_inferred() {
        let t = Topology::builtin("two-as").unwrap();
        assert_eq!(t.link_kind(&t.links[0]).unwrap(), LinkKind::Parent);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let cases = [
            "",
            "[[as]]\nia = \"x\"\ncore = true",
            "[[as]]\nia = \"1-ff00:0:110\"",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[as]]\nia = \"1-ff00:0:111\"\n[[link]]\na = \"1-ff00:0:110#0\"\nb = \"1-ff00:0:111#1\"",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[as]]\nia = \"1-ff00:0:111\"\n[[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"\nloss = 2.0",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\nbogus = 1",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\ngeo = { latitude = 91.0, longitude = 0.0 }",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\ngeo = { latitude = 1.0, longitude = 0.0, x = 1 }",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\ninternal_hops = 0",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\ninternal_latency_ms = -1.0",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[as]]\nia = \"1-ff00:0:111\"\n[[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"\nlink_type = \"fiber\"",
            "[[as]]\nia = \"1-ff00:0:110\"\ncore = true\n[[as]]\nia = \"1-ff00:0:111\"\n[[link]]\na = \"1-ff00:0:110#1\"\nb = \"1-ff00:0:111#1\"\nannounce_bandwidth_mbit = 0.0",
        ];
        for case in cases {
            assert!(Topology::from_str(case).is_err(), "accepted: {case}");
        }
    }
}
