//! Path policy: which SCION paths lanes may use.
//!
//! Syntax (rules separated by `;`, whitespace ignored):
//! `deny=2` (never cross ISD 2), `deny=1-ff00:0:110` (never cross that AS),
//! `allow=1` / `allow=1-ff00:0:111` (cross only allowed ISDs/ASes; several allow rules add up),
//! `max-hops=N` (at most N inter-AS links), `min-mtu=N` (path MTU at least N bytes).
//! Example: `--path-policy "deny=2; max-hops=4; min-mtu=1280"`.
//!
//! A scionproto sequence (`--sequence`) and ACL (`--acl`) may be added; a path must satisfy
//! all of them.

use std::fmt;
use std::str::FromStr;

use super::acl::Acl;
use super::sequence::Sequence;
use crate::scion::{parse_ia, AddrParseError, Ia, PathFingerprint, ScionPath};

/// Why a `--path-policy` text is not a path policy; each message quotes the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("path policy rule {0:?} is not key=value")]
    NotKeyValue(String),
    #[error("unknown path policy rule {0:?} (deny, allow, max-hops, min-mtu)")]
    UnknownRule(String),
    /// A `deny=` or `allow=` value that is neither an ISD nor an ISD-AS.
    #[error("{value:?} is neither an ISD number nor an ISD-AS: {source}")]
    Scope {
        value: String,
        source: AddrParseError,
    },
    /// `max-hops=` or `min-mtu=` with a value that is not a number (in range).
    #[error("{key}={value:?} is not a number")]
    NotANumber { key: &'static str, value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Isd(u16),
    As(Ia),
}

impl Scope {
    fn matches(&self, ia: Ia) -> bool {
        match self {
            Scope::Isd(isd) => ia.isd().to_u16() == *isd,
            Scope::As(a) => *a == ia,
        }
    }
}

impl FromStr for Scope {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        if let Ok(isd) = s.parse::<u16>() {
            return Ok(Scope::Isd(isd));
        }
        parse_ia(s)
            .map(Scope::As)
            .map_err(|source| PolicyError::Scope {
                value: s.to_string(),
                source,
            })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPolicy {
    allow: Vec<Scope>,
    deny: Vec<Scope>,
    max_hops: Option<usize>,
    min_mtu: Option<u16>,
    text: String,
    sequence: Option<Sequence>,
    acl: Option<Acl>,
    /// Paths chosen by hand (`-i`): to these destinations, only that path.
    pinned: Vec<(Ia, PathFingerprint)>,
}

impl PathPolicy {
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty()
            && self.deny.is_empty()
            && self.max_hops.is_none()
            && self.min_mtu.is_none()
            && self.sequence.is_none()
            && self.acl.is_none()
            && self.pinned.is_empty()
    }

    /// To `p`'s destination, only `p` from now on.
    pub fn pin(&mut self, p: &ScionPath) {
        self.pinned.retain(|(dst, _)| *dst != p.dst_ia);
        self.pinned.push((p.dst_ia, p.fingerprint()));
    }

    /// Also requires the path to match a scionproto sequence (an empty one matches all).
    pub fn with_sequence(mut self, s: Option<Sequence>) -> Self {
        self.sequence = s.filter(|s| !s.is_empty());
        self
    }

    /// Also requires every interface of the path to pass a scionproto ACL.
    pub fn with_acl(mut self, a: Option<Acl>) -> Self {
        self.acl = a;
        self
    }

    pub fn sequence(&self) -> Option<&Sequence> {
        self.sequence.as_ref()
    }

    pub fn acl(&self) -> Option<&Acl> {
        self.acl.as_ref()
    }

    /// Whether a path may be used.
    pub fn permits(&self, p: &ScionPath) -> bool {
        let ases: Vec<Ia> = p
            .interfaces
            .iter()
            .map(|i| i.ia)
            .chain([p.src_ia, p.dst_ia])
            .collect();
        if ases
            .iter()
            .any(|ia| self.deny.iter().any(|d| d.matches(*ia)))
        {
            return false;
        }
        if !self.allow.is_empty()
            && !ases
                .iter()
                .all(|ia| self.allow.iter().any(|a| a.matches(*ia)))
        {
            return false;
        }
        if self.max_hops.is_some_and(|m| p.hop_count() > m) {
            return false;
        }
        // An unknown MTU (0) does not satisfy a minimum.
        if self.min_mtu.is_some_and(|m| p.mtu < m) && !p.is_local() {
            return false;
        }
        if let Some((_, fp)) = self.pinned.iter().find(|(dst, _)| *dst == p.dst_ia) {
            if *fp != p.fingerprint() {
                return false;
            }
        }
        // As scionproto applies a policy: the ACL first, then the sequence.
        self.acl.as_ref().is_none_or(|a| a.permits(p))
            && self.sequence.as_ref().is_none_or(|s| s.matches(p))
    }

    pub fn filter(&self, paths: Vec<ScionPath>) -> Vec<ScionPath> {
        paths.into_iter().filter(|p| self.permits(p)).collect()
    }
}

impl FromStr for PathPolicy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, PolicyError> {
        let mut p = PathPolicy {
            text: s.trim().to_string(),
            ..Default::default()
        };
        for rule in s.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (key, value) = rule
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| PolicyError::NotKeyValue(rule.to_string()))?;
            match key {
                "deny" => p.deny.push(value.parse()?),
                "allow" => p.allow.push(value.parse()?),
                "max-hops" => p.max_hops = Some(number("max-hops", value)?),
                "min-mtu" => p.min_mtu = Some(number("min-mtu", value)?),
                _ => return Err(PolicyError::UnknownRule(key.to_string())),
            }
        }
        Ok(p)
    }
}

fn number<T: FromStr>(key: &'static str, value: &str) -> Result<T, PolicyError> {
    value.parse().map_err(|_| PolicyError::NotANumber {
        key,
        value: value.to_string(),
    })
}

impl fmt::Display for PathPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.text.is_empty() {
            parts.push(self.text.clone());
        }
        if let Some(a) = &self.acl {
            parts.push(format!("acl \"{a}\""));
        }
        if let Some(s) = &self.sequence {
            parts.push(format!("sequence \"{s}\""));
        }
        for (dst, fp) in &self.pinned {
            parts.push(format!("path {fp} to {dst} chosen"));
        }
        if parts.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::PathInterface;

    fn path(ases: &[&str], mtu: u16) -> ScionPath {
        let mut p = ScionPath::local(parse_ia(ases[0]).unwrap());
        p.dst_ia = parse_ia(ases[ases.len() - 1]).unwrap();
        p.raw = bytes::Bytes::from_static(b"x");
        p.mtu = mtu;
        for (i, w) in ases.windows(2).enumerate() {
            p.interfaces.push(PathInterface {
                ia: parse_ia(w[0]).unwrap(),
                id: i as u16 + 1,
            });
            p.interfaces.push(PathInterface {
                ia: parse_ia(w[1]).unwrap(),
                id: i as u16 + 10,
            });
        }
        p
    }

    #[test]
    fn deny_allow_hops_and_mtu() {
        let via_110 = path(&["1-ff00:0:111", "1-ff00:0:110", "1-ff00:0:112"], 1400);
        let via_isd2 = path(&["1-ff00:0:111", "2-ff00:0:210", "1-ff00:0:112"], 1400);
        let pol: PathPolicy = "deny=1-ff00:0:110".parse().unwrap();
        assert!(!pol.permits(&via_110) && pol.permits(&via_isd2));
        let pol: PathPolicy = "deny = 2".parse().unwrap();
        assert!(pol.permits(&via_110) && !pol.permits(&via_isd2));
        let pol: PathPolicy = "allow=1".parse().unwrap();
        assert!(pol.permits(&via_110) && !pol.permits(&via_isd2));
        let pol: PathPolicy = "max-hops=1".parse().unwrap();
        assert!(!pol.permits(&via_110));
        let pol: PathPolicy = "min-mtu=1500; max-hops=4".parse().unwrap();
        assert!(!pol.permits(&via_110));
        assert!(PathPolicy::default().permits(&via_110));
    }

    #[test]
    fn sequence_and_acl_combine_with_rules() {
        let via_110 = path(&["1-ff00:0:111", "1-ff00:0:110", "1-ff00:0:112"], 1400);
        let via_120 = path(&["1-ff00:0:111", "1-ff00:0:120", "1-ff00:0:112"], 1400);
        let seq = |s: &str| Some(s.parse::<Sequence>().unwrap());
        let pol = PathPolicy::default().with_sequence(seq("0 1-ff00:0:110 0"));
        assert!(pol.permits(&via_110) && !pol.permits(&via_120));
        let pol: PathPolicy = "max-hops=1".parse().unwrap();
        let pol = pol.with_sequence(seq("0*"));
        assert!(!pol.permits(&via_110), "the rules still apply");
        let pol = PathPolicy::default()
            .with_acl(Some("- 1-ff00:0:120; +".parse().unwrap()))
            .with_sequence(seq("0 0 0"));
        assert!(pol.permits(&via_110) && !pol.permits(&via_120));
        assert_eq!(
            pol.to_string(),
            "acl \"- 1-ff00:0:120; +\"; sequence \"0 0 0\""
        );
        assert!(PathPolicy::default().with_sequence(seq(" ")).is_empty());
        let mut pinned = PathPolicy::default();
        pinned.pin(&via_120);
        assert!(pinned.permits(&via_120) && !pinned.permits(&via_110));
        let elsewhere = path(&["1-ff00:0:111", "1-ff00:0:110", "1-ff00:0:113"], 1400);
        assert!(
            pinned.permits(&elsewhere),
            "other destinations are not pinned"
        );
    }

    #[test]
    fn bad_rules_are_explained() {
        let bad = |s: &str| s.parse::<PathPolicy>().unwrap_err();
        assert_eq!(
            bad("max-hops=2; deny"),
            PolicyError::NotKeyValue("deny".into())
        );
        assert_eq!(
            bad("deny").to_string(),
            "path policy rule \"deny\" is not key=value"
        );
        assert_eq!(bad(" foo = 1 "), PolicyError::UnknownRule("foo".into()));
        assert!(bad("foo=1").to_string().contains("unknown"));
        let e = bad("deny=x-y");
        assert!(
            matches!(&e, PolicyError::Scope { value, .. } if value == "x-y"),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("\"x-y\" is neither an ISD number nor an ISD-AS: "),
            "{msg}"
        );
        let source = std::error::Error::source(&e).expect("the address error is the source");
        assert!(msg.ends_with(&source.to_string()), "{msg}");
        assert_eq!(
            bad("max-hops=many"),
            PolicyError::NotANumber {
                key: "max-hops",
                value: "many".into()
            }
        );
        assert_eq!(
            bad("min-mtu=70000").to_string(),
            "min-mtu=\"70000\" is not a number"
        );
    }
}
