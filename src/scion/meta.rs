//! What a daemon says about a path beyond its route and the per-link latency and bandwidth:
//! where its routers are, what kind of links it crosses, the hops inside each transit AS and
//! each AS's note (scionproto's path metadata, carried by the beacons' StaticInfo extension).
//! Any entry may be unknown: an AS announces what it likes, pocketscion announces nothing.

use std::fmt;

use scion_protobuf::proto::daemon::v1 as pb;

/// Longest note or civic address kept, in characters: it is text from other ASes, shown as is.
const MAX_TEXT: usize = 512;

/// The metadata of one path beyond latency and bandwidth. Each list is either empty (the
/// daemon gave none, or gave one of the wrong length) or has exactly the documented length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathMeta {
    /// Position of the router at each interface of the path (`interfaces.len()` entries).
    pub geo: Vec<Option<Geo>>,
    /// Kind of each inter-AS link (`interfaces.len() / 2` entries).
    pub link_types: Vec<LinkType>,
    /// Hops inside each AS the path crosses completely, the transit ASes
    /// (`interfaces.len() / 2 - 1` entries).
    pub internal_hops: Vec<Option<u32>>,
    /// Each AS's note, the source AS first (`interfaces.len() / 2 + 1` entries).
    pub notes: Vec<Option<String>>,
}

/// A router's announced position (WGS 84) and civic address.
#[derive(Debug, Clone)]
pub struct Geo {
    pub latitude: f32,
    pub longitude: f32,
    /// Free text, possibly empty.
    pub address: String,
}

// Coordinates are finite (checked on the way in), so bitwise equality is a true equivalence.
impl PartialEq for Geo {
    fn eq(&self, other: &Self) -> bool {
        self.latitude.to_bits() == other.latitude.to_bits()
            && self.longitude.to_bits() == other.longitude.to_bits()
            && self.address == other.address
    }
}

impl Eq for Geo {}

impl fmt::Display for Geo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.4},{:.4}", self.latitude, self.longitude)?;
        if !self.address.is_empty() {
            write!(f, " ({})", self.address)?;
        }
        Ok(())
    }
}

/// The announced kind of an inter-AS link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkType {
    /// Not announced (or a kind this client does not know).
    #[default]
    Unknown,
    /// A direct physical connection.
    Direct,
    /// A connection with local routing or switching.
    MultiHop,
    /// A connection over the public Internet.
    OpenNet,
}

impl LinkType {
    /// The name scionproto's tools and staticInfoConfig.json use.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkType::Unknown => "unknown",
            LinkType::Direct => "direct",
            LinkType::MultiHop => "multihop",
            LinkType::OpenNet => "opennet",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PathMeta {
    /// Whether the daemon told anything at all.
    pub fn is_empty(&self) -> bool {
        self.geo.iter().all(Option::is_none)
            && self.link_types.iter().all(|t| *t == LinkType::Unknown)
            && self.internal_hops.iter().all(Option::is_none)
            && self.notes.iter().all(Option::is_none)
    }

    /// The metadata of a daemon's path crossing `interfaces` interfaces. A list of the wrong
    /// length is dropped whole (its entries could not be placed); an entry that says "not
    /// announced" by scionproto's conventions (0, empty, unspecified) or that makes no sense
    /// (coordinates off the globe) is unknown.
    pub fn from_daemon(p: &pb::Path, interfaces: usize) -> PathMeta {
        let links = interfaces / 2;
        let sized = |len: usize, want: usize| interfaces > 0 && len == want;
        PathMeta {
            geo: if sized(p.geo.len(), interfaces) {
                p.geo.iter().map(geo).collect()
            } else {
                Vec::new()
            },
            link_types: if sized(p.link_type.len(), links) {
                p.link_type
                    .iter()
                    .map(|t| match t.to_i32() {
                        1 => LinkType::Direct,
                        2 => LinkType::MultiHop,
                        3 => LinkType::OpenNet,
                        _ => LinkType::Unknown,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            internal_hops: if sized(p.internal_hops.len(), links.saturating_sub(1)) {
                p.internal_hops
                    .iter()
                    .map(|h| (*h > 0).then_some(*h))
                    .collect()
            } else {
                Vec::new()
            },
            notes: if sized(p.notes.len(), links + 1) {
                p.notes.iter().map(|n| text(n)).collect()
            } else {
                Vec::new()
            },
        }
    }
}

fn geo(g: &pb::GeoCoordinates) -> Option<Geo> {
    let (lat, lon) = (g.latitude, g.longitude);
    let address = text(&g.address).unwrap_or_default();
    if !lat.is_finite() || !lon.is_finite() || lat.abs() > 90.0 || lon.abs() > 180.0 {
        return None;
    }
    if lat == 0.0 && lon == 0.0 && address.is_empty() {
        return None; // scionproto's "not announced"
    }
    Some(Geo {
        latitude: lat,
        longitude: lon,
        address,
    })
}

/// Text from another AS, made safe to print on one line: control characters (scionproto joins
/// an AS's several notes with newlines) become spaces, and it is cut at [`MAX_TEXT`].
fn text(s: &str) -> Option<String> {
    let t: String = s
        .chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use scion_protobuf::buffa::EnumValue;

    fn g(lat: f32, lon: f32, address: &str) -> pb::GeoCoordinates {
        pb::GeoCoordinates {
            latitude: lat,
            longitude: lon,
            address: address.into(),
        }
    }

    #[test]
    fn announced_and_unannounced_entries() {
        let p = pb::Path {
            geo: vec![
                g(47.3769, 8.5417, "Zürich"),
                g(0.0, 0.0, ""),
                g(0.0, 0.0, "Null Island"),
                g(-33.9, 151.2, ""),
            ],
            link_type: vec![
                pb::LinkType::LINK_TYPE_DIRECT.into(),
                pb::LinkType::LINK_TYPE_UNSPECIFIED.into(),
            ],
            internal_hops: vec![3],
            notes: vec!["first\nline".into(), String::new(), "  ".into()],
            ..Default::default()
        };
        let m = PathMeta::from_daemon(&p, 4);
        assert_eq!(m.geo[0].as_ref().unwrap().address, "Zürich");
        assert_eq!(m.geo[1], None);
        assert_eq!(m.geo[2].as_ref().unwrap().latitude, 0.0);
        assert_eq!(m.geo[3].as_ref().unwrap().to_string(), "-33.9000,151.2000");
        assert_eq!(m.link_types, vec![LinkType::Direct, LinkType::Unknown]);
        assert_eq!(m.internal_hops, vec![Some(3)]);
        assert_eq!(m.notes, vec![Some("first line".into()), None, None]);
        assert!(!m.is_empty());
    }

    #[test]
    fn odd_answers_are_unknown_not_a_panic() {
        let huge = "x".repeat(100_000);
        let p = pb::Path {
            // Wrong lengths: dropped whole.
            geo: vec![g(1.0, 1.0, "")],
            link_type: vec![pb::LinkType::LINK_TYPE_DIRECT.into(); 3],
            internal_hops: vec![1, 2, 3, 4],
            notes: vec![huge.clone(); 3],
            ..Default::default()
        };
        let m = PathMeta::from_daemon(&p, 4);
        assert!(m.geo.is_empty() && m.link_types.is_empty() && m.internal_hops.is_empty());
        assert!(m.notes.iter().all(Option::is_some), "3 notes fit 2 links");
        assert_eq!(m.notes[0].as_ref().unwrap().chars().count(), MAX_TEXT);

        let p = pb::Path {
            geo: vec![
                g(f32::NAN, 1.0, "a"),
                g(1.0, f32::INFINITY, "b"),
                g(91.0, 1.0, "c"),
                g(1.0, -181.0, "d"),
            ],
            link_type: vec![EnumValue::Unknown(77), EnumValue::Unknown(-1)],
            internal_hops: vec![0],
            notes: vec![],
            ..Default::default()
        };
        let m = PathMeta::from_daemon(&p, 4);
        assert_eq!(m.geo, vec![None; 4]);
        assert_eq!(m.link_types, vec![LinkType::Unknown; 2]);
        assert_eq!(m.internal_hops, vec![None]);
        assert!(m.is_empty());
        // No interfaces: nothing can be placed.
        assert_eq!(PathMeta::from_daemon(&p, 0), PathMeta::default());
    }
}
