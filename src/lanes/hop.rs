//! Hop predicates (`ISD-AS#IF,IF`), the unit of scionproto's path-policy ACLs and sequences.
//!
//! `0` is a wildcard for the ISD, the AS and each interface. One interface (`ISD-AS#IF`)
//! matches a hop entering or leaving through it; two (`#IN,OUT`) name the ingress and the
//! egress. ASes are compared as numbers, so `1-ff00:0:110` and `1-FF00:0:110` are the same AS.

use std::fmt;

use crate::scion::{Ia, ScionPath};

/// Which interfaces a hop predicate asks for (0 = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ifaces {
    Any,
    /// `#IF`: ingress or egress.
    Either(u16),
    /// `#IN,OUT`.
    Pair(u16, u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HopPredicate {
    /// 0: any ISD.
    pub isd: u16,
    /// 0: any AS.
    pub asn: u64,
    pub ifaces: Ifaces,
}

/// One AS on a path as a sequence sees it: its ISD-AS, the interface the path enters by and
/// the one it leaves by (0 at the source's ingress and the destination's egress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub ia: Ia,
    pub ingress: u16,
    pub egress: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopPredicateError {
    #[error("hop predicate {0:?} is empty")]
    Empty(String),
    #[error("hop predicate {0:?}: the ISD must be a decimal number below 65536")]
    Isd(String),
    #[error(
        "hop predicate {0:?}: the AS must be a decimal number below 2^32 or three ':'-separated \
         hex groups of at most 4 digits"
    )]
    As(String),
    #[error("hop predicate {0:?}: an interface must be a decimal number below 65536")]
    Interface(String),
    #[error("hop predicate {0:?}: interfaces need an AS (ISD-AS#IF)")]
    InterfaceWithoutAs(String),
    #[error("hop predicate {0:?}: interfaces need a specific AS, not the wildcard 0")]
    InterfaceOfAnyAs(String),
    #[error("hop predicate {0:?} has too many '-', '#' or ','")]
    Shape(String),
}

const ISD_SHIFT: u32 = 48;
const AS_MASK: u64 = (1 << ISD_SHIFT) - 1;

fn isd_of(ia: Ia) -> u16 {
    (ia.to_u64() >> ISD_SHIFT) as u16
}

fn as_of(ia: Ia) -> u64 {
    ia.to_u64() & AS_MASK
}

impl HopPredicate {
    pub const ANY: HopPredicate = HopPredicate {
        isd: 0,
        asn: 0,
        ifaces: Ifaces::Any,
    };

    /// Whether this predicate matches everything (an ACL's default entry).
    pub fn matches_all(&self) -> bool {
        self.isd == 0 && self.asn == 0 && self.ifaces == Ifaces::Any
    }

    fn matches_ia(&self, ia: Ia) -> bool {
        (self.isd == 0 || isd_of(ia) == self.isd) && (self.asn == 0 || as_of(ia) == self.asn)
    }

    /// Sequence semantics: one AS with the interfaces it is entered and left by.
    pub fn matches_hop(&self, h: &Hop) -> bool {
        let is = |want: u16, got: u16| want == 0 || want == got;
        self.matches_ia(h.ia)
            && match self.ifaces {
                Ifaces::Any => true,
                Ifaces::Either(i) => i == 0 || h.ingress == i || h.egress == i,
                Ifaces::Pair(i, e) => is(i, h.ingress) && is(e, h.egress),
            }
    }

    /// ACL semantics: one interface of a path, an ingress or an egress one.
    pub fn matches_interface(&self, ia: Ia, id: u16, ingress: bool) -> bool {
        let want = match self.ifaces {
            Ifaces::Any => 0,
            Ifaces::Either(i) => i,
            Ifaces::Pair(i, _) if ingress => i,
            Ifaces::Pair(_, e) => e,
        };
        self.matches_ia(ia) && (want == 0 || want == id)
    }
}

/// A path's ASes with their interfaces, as scionproto's path sequence string lists them
/// (`1-ff00:0:133#0,42 1-ff00:0:120#2,1 1-ff00:0:110#21,0`). None for a path whose
/// interface list is malformed (odd length): no sequence matches it.
pub fn hops_of(p: &ScionPath) -> Option<Vec<Hop>> {
    let ifs = &p.interfaces;
    if ifs.is_empty() {
        return Some(Vec::new());
    }
    if !ifs.len().is_multiple_of(2) {
        return None;
    }
    let mut hops = Vec::with_capacity(ifs.len() / 2 + 1);
    hops.push(Hop {
        ia: ifs[0].ia,
        ingress: 0,
        egress: ifs[0].id,
    });
    for pair in ifs[1..ifs.len() - 1].chunks_exact(2) {
        hops.push(Hop {
            ia: pair[0].ia,
            ingress: pair[0].id,
            egress: pair[1].id,
        });
    }
    let last = ifs[ifs.len() - 1];
    hops.push(Hop {
        ia: last.ia,
        ingress: last.id,
        egress: 0,
    });
    Some(hops)
}

/// Parses an AS: decimal (below 2^32) or `hex:hex:hex` (each at most 4 digits).
pub(crate) fn parse_as(s: &str) -> Option<u64> {
    if s.contains(':') {
        let groups: Vec<&str> = s.split(':').collect();
        if groups.len() != 3 {
            return None;
        }
        let mut v = 0u64;
        for g in groups {
            if g.is_empty() || g.len() > 4 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            v = (v << 16) | u64::from_str_radix(g, 16).ok()?;
        }
        Some(v)
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u32>().ok().map(u64::from)
    } else {
        None
    }
}

fn parse_u16(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl std::str::FromStr for HopPredicate {
    type Err = HopPredicateError;

    /// The ACL form: `ISD`, `ISD-AS`, `ISD-AS#IF` or `ISD-AS#IN,OUT`.
    fn from_str(s: &str) -> Result<Self, HopPredicateError> {
        let t = s.trim();
        let own = || t.chars().take(120).collect::<String>();
        if t.is_empty() {
            return Err(HopPredicateError::Empty(own()));
        }
        let count = |c| t.matches(c).count();
        if count('-') > 1 || count('#') > 1 || count(',') > 1 {
            return Err(HopPredicateError::Shape(own()));
        }
        let (isd, rest) = match t.split_once('-') {
            Some((i, r)) => (i, Some(r)),
            None if t.contains(['#', ',']) => {
                return Err(HopPredicateError::InterfaceWithoutAs(own()))
            }
            None => (t, None),
        };
        let isd = parse_u16(isd).ok_or_else(|| HopPredicateError::Isd(own()))?;
        let Some(rest) = rest else {
            return Ok(HopPredicate {
                isd,
                ..HopPredicate::ANY
            });
        };
        let (asn, ifs) = match rest.split_once('#') {
            Some((a, i)) => (a, Some(i)),
            None if rest.contains(',') => return Err(HopPredicateError::Shape(own())),
            None => (rest, None),
        };
        let asn = parse_as(asn).ok_or_else(|| HopPredicateError::As(own()))?;
        let iface = |v: &str| parse_u16(v).ok_or_else(|| HopPredicateError::Interface(own()));
        let ifaces = match ifs.map(|i| i.split_once(',')) {
            None => Ifaces::Any,
            Some(Some((a, b))) => Ifaces::Pair(iface(a)?, iface(b)?),
            Some(None) => Ifaces::Either(iface(ifs.unwrap_or_default())?),
        };
        let ifaces = match ifaces {
            Ifaces::Either(0) | Ifaces::Pair(0, 0) => Ifaces::Any,
            other => other,
        };
        if asn == 0 && ifaces != Ifaces::Any {
            return Err(HopPredicateError::InterfaceOfAnyAs(own()));
        }
        Ok(HopPredicate { isd, asn, ifaces })
    }
}

impl fmt::Display for HopPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.isd)?;
        if self.asn == 0 && self.ifaces == Ifaces::Any {
            return Ok(());
        }
        if self.asn <= u64::from(u32::MAX) {
            write!(f, "-{}", self.asn)?;
        } else {
            let a = self.asn;
            write!(
                f,
                "-{:x}:{:x}:{:x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xffff
            )?;
        }
        match self.ifaces {
            Ifaces::Any => Ok(()),
            Ifaces::Either(i) => write!(f, "#{i}"),
            Ifaces::Pair(i, e) => write!(f, "#{i},{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::parse_ia;

    fn hop(ia: &str, ingress: u16, egress: u16) -> Hop {
        Hop {
            ia: parse_ia(ia).unwrap(),
            ingress,
            egress,
        }
    }

    #[test]
    fn scionproto_documented_forms() {
        // "Match ISD 1: 1 or 1-0 or 1-0#0 or 1-0#0,0"
        for s in ["1", "1-0", "1-0#0", "1-0#0,0"] {
            let p: HopPredicate = s.parse().unwrap();
            assert!(p.matches_hop(&hop("1-ff00:0:133", 3, 4)), "{s}");
            assert!(!p.matches_hop(&hop("2-ff00:0:133", 3, 4)), "{s}");
        }
        // "Match AS 1-ff00:0:133: 1-ff00:0:133 or 1-ff00:0:133#0 or 1-ff00:0:133#0,0"
        for s in ["1-ff00:0:133", "1-ff00:0:133#0", "1-ff00:0:133#0,0"] {
            let p: HopPredicate = s.parse().unwrap();
            assert!(p.matches_hop(&hop("1-ff00:0:133", 3, 4)), "{s}");
            assert!(!p.matches_hop(&hop("1-ff00:0:134", 3, 4)), "{s}");
        }
        let inbound: HopPredicate = "1-ff00:0:133#2,0".parse().unwrap();
        assert!(inbound.matches_hop(&hop("1-ff00:0:133", 2, 5)));
        assert!(!inbound.matches_hop(&hop("1-ff00:0:133", 5, 2)));
        let outbound: HopPredicate = "1-ff00:0:133#0,2".parse().unwrap();
        assert!(outbound.matches_hop(&hop("1-ff00:0:133", 5, 2)));
        assert!(!outbound.matches_hop(&hop("1-ff00:0:133", 2, 5)));
        let either: HopPredicate = "1-ff00:0:133#2".parse().unwrap();
        assert!(either.matches_hop(&hop("1-ff00:0:133", 5, 2)));
        assert!(either.matches_hop(&hop("1-ff00:0:133", 2, 5)));
        assert!(!either.matches_hop(&hop("1-ff00:0:133", 3, 5)));
    }

    #[test]
    fn acl_interface_sides() {
        let ia = parse_ia("1-ff00:0:110").unwrap();
        let p: HopPredicate = "1-ff00:0:110#2,3".parse().unwrap();
        assert!(p.matches_interface(ia, 2, true));
        assert!(!p.matches_interface(ia, 2, false));
        assert!(p.matches_interface(ia, 3, false));
        let one: HopPredicate = "1-ff00:0:110#2".parse().unwrap();
        assert!(one.matches_interface(ia, 2, true) && one.matches_interface(ia, 2, false));
        assert!(!one.matches_interface(ia, 3, true));
        assert!("1-64512".parse::<HopPredicate>().unwrap().asn == 64512);
        assert!("1-FF00:0:110"
            .parse::<HopPredicate>()
            .unwrap()
            .matches_interface(ia, 9, true));
    }

    #[test]
    fn malformed_predicates_are_typed_errors() {
        use HopPredicateError as E;
        let err = |s: &str| s.parse::<HopPredicate>().unwrap_err();
        assert!(matches!(err(""), E::Empty(_)));
        assert!(matches!(err("0-0-0#0"), E::Shape(_)));
        assert!(matches!(err("0#0#0"), E::Shape(_)));
        assert!(matches!(err("1#0"), E::InterfaceWithoutAs(_)));
        assert!(matches!(err("x"), E::Isd(_)));
        assert!(matches!(err("70000"), E::Isd(_)));
        assert!(matches!(err("1-ff00:0"), E::As(_)));
        assert!(matches!(err("1-fffff:0:1"), E::As(_)));
        assert!(matches!(err("1-4294967296"), E::As(_)));
        assert!(matches!(err("1-ff00:0:1#x"), E::Interface(_)));
        assert!(matches!(err("1-ff00:0:1#1,70000"), E::Interface(_)));
        assert!(matches!(err("1-0#2"), E::InterfaceOfAnyAs(_)));
        assert!(matches!(err("1-ff00:0:1,2"), E::Shape(_)));
    }

    #[test]
    fn display_round_trips() {
        for s in ["0", "1-0", "1-ff00:0:110", "1-64512#3", "2-ff00:0:1#1,2"] {
            let p: HopPredicate = s.parse().unwrap();
            assert_eq!(p.to_string().parse::<HopPredicate>().unwrap(), p, "{s}");
        }
        assert_eq!(
            "1-ff00:0:110#2,3"
                .parse::<HopPredicate>()
                .unwrap()
                .to_string(),
            "1-ff00:0:110#2,3"
        );
    }
}
