//! How candidate paths are ordered before lanes pick them (`--preference`): a comma-separated
//! list of `latency` (lowest known first), `bandwidth` (highest known bottleneck first),
//! `hops` (fewest inter-AS links first) and `mtu` (largest first), as scion-apps' `pan`
//! names them. Ties, and the default with no list, go by latency, then hops, then MTU. A
//! path whose latency or bandwidth the daemon does not know sorts after every known one.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::scion::ScionPath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    Latency,
    Bandwidth,
    Hops,
    Mtu,
}

impl Criterion {
    const ALL: [(Criterion, &'static str); 4] = [
        (Criterion::Latency, "latency"),
        (Criterion::Bandwidth, "bandwidth"),
        (Criterion::Hops, "hops"),
        (Criterion::Mtu, "mtu"),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("?", |(_, n)| n)
    }

    fn compare(self, a: &ScionPath, b: &ScionPath) -> Ordering {
        match self {
            // Known before unknown: (0, value) < (1, _).
            Criterion::Latency => {
                let key = |p: &ScionPath| p.total_latency().map_or((1, Duration::ZERO), |l| (0, l));
                key(a).cmp(&key(b))
            }
            Criterion::Bandwidth => {
                let key = |p: &ScionPath| p.min_bandwidth().map_or((1, 0), |bw| (0, u64::MAX - bw));
                key(a).cmp(&key(b))
            }
            Criterion::Hops => a.hop_count().cmp(&b.hop_count()),
            Criterion::Mtu => b.mtu.cmp(&a.mtu),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferenceError {
    #[error("unknown path preference {0:?} (latency, bandwidth, hops, mtu)")]
    Unknown(String),
    #[error("path preference {0:?} is named twice")]
    Repeated(&'static str),
}

/// The order of criteria; empty means the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preference(Vec<Criterion>);

const DEFAULT: [Criterion; 3] = [Criterion::Latency, Criterion::Hops, Criterion::Mtu];

impl Preference {
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// Best first; equal paths by fingerprint, so the order never depends on the input's.
    pub fn compare(&self, a: &ScionPath, b: &ScionPath) -> Ordering {
        self.0
            .iter()
            .chain(DEFAULT.iter())
            .fold(Ordering::Equal, |o, c| o.then_with(|| c.compare(a, b)))
            .then_with(|| a.fingerprint().cmp(&b.fingerprint()))
    }

    pub fn sort(&self, paths: &mut [ScionPath]) {
        paths.sort_by(|a, b| self.compare(a, b));
    }
}

impl FromStr for Preference {
    type Err = PreferenceError;

    fn from_str(s: &str) -> Result<Self, PreferenceError> {
        let mut out: Vec<Criterion> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let c = Criterion::ALL
                .iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(part))
                .map(|(c, _)| *c)
                .ok_or_else(|| PreferenceError::Unknown(part.chars().take(40).collect()))?;
            if out.contains(&c) {
                return Err(PreferenceError::Repeated(c.name()));
            }
            out.push(c);
        }
        Ok(Preference(out))
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("latency,hops,mtu (default)");
        }
        let names: Vec<&str> = self.0.iter().map(|c| c.name()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::{parse_ia, PathInterface};

    fn path(transit: &[u16], latency_ms: Option<u64>, bw_kbps: Option<u64>, mtu: u16) -> ScionPath {
        let mut p = ScionPath::local(parse_ia("1-ff00:0:111").unwrap());
        p.dst_ia = parse_ia("1-ff00:0:112").unwrap();
        p.raw = bytes::Bytes::from_static(b"x");
        p.mtu = mtu;
        let mut ifs = vec![PathInterface {
            ia: p.src_ia,
            id: transit.first().copied().unwrap_or(99),
        }];
        for t in transit {
            let ia = parse_ia(&format!("1-{t}")).unwrap();
            ifs.push(PathInterface { ia, id: 1 });
            ifs.push(PathInterface { ia, id: 2 });
        }
        ifs.push(PathInterface {
            ia: p.dst_ia,
            id: 1,
        });
        p.latency = vec![latency_ms.map(Duration::from_millis); ifs.len() - 1];
        p.bandwidth = vec![bw_kbps; ifs.len() - 1];
        p.interfaces = ifs;
        p
    }

    #[test]
    fn each_criterion_orders_best_first() {
        let short_slow = path(&[], Some(30), Some(1_000), 1400);
        let long_fast = path(&[10, 11], Some(1), Some(100), 1500);
        let mid_wide = path(&[12], None, Some(50_000), 1280);
        let all = [short_slow.clone(), long_fast.clone(), mid_wide.clone()];
        let order = |pref: &str| {
            let mut v = all.to_vec();
            pref.parse::<Preference>().unwrap().sort(&mut v);
            v
        };
        assert_eq!(
            order("hops"),
            [short_slow.clone(), mid_wide.clone(), long_fast.clone()]
        );
        assert_eq!(
            order("latency"),
            [long_fast.clone(), short_slow.clone(), mid_wide.clone()]
        );
        assert_eq!(
            order("bandwidth"),
            [mid_wide.clone(), short_slow.clone(), long_fast.clone()]
        );
        assert_eq!(
            order("mtu"),
            [long_fast.clone(), short_slow.clone(), mid_wide.clone()]
        );
        assert_eq!(order(""), order("latency,hops,mtu"));
    }

    #[test]
    fn later_criteria_break_ties() {
        let a = path(&[10], None, None, 1400);
        let b = path(&[11, 12], None, None, 1500);
        let c = path(&[13], None, None, 1500);
        let mut v = vec![a.clone(), b.clone(), c.clone()];
        "hops,mtu".parse::<Preference>().unwrap().sort(&mut v);
        assert_eq!(v, [c.clone(), a.clone(), b.clone()]);
        "mtu,hops".parse::<Preference>().unwrap().sort(&mut v);
        assert_eq!(v, [c, b, a]);
    }

    #[test]
    fn bad_preferences_are_typed_errors() {
        assert_eq!(
            "latency,speed".parse::<Preference>(),
            Err(PreferenceError::Unknown("speed".into()))
        );
        assert_eq!(
            "hops, HOPS".parse::<Preference>(),
            Err(PreferenceError::Repeated("hops"))
        );
        assert_eq!(
            " Bandwidth ".parse::<Preference>().unwrap().to_string(),
            "bandwidth"
        );
    }
}
