//! scionproto's path-policy ACL: ordered allow (`+`) / deny (`-`) entries with hop
//! predicates; the first entry matching an interface decides for it, and a path is allowed
//! only if every interface on it is. The last entry must match everything (`+` or `-` alone,
//! or `+ 0`), and nothing may follow it.
//!
//! Written on one line with `;` between entries (`,` is taken by `#IN,OUT`):
//! `--acl "+ 1-ff00:0:133; + 1-ff00:0:120; - 1; +"` — ASes 133 and 120 of ISD 1, no other AS
//! of ISD 1, anything in other ISDs.

use std::fmt;
use std::str::FromStr;

use super::hop::{HopPredicate, HopPredicateError};
use crate::scion::ScionPath;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("the ACL has no entries")]
    Empty,
    #[error("ACL entry {0} is empty (two ';' in a row?)")]
    EmptyEntry(usize),
    #[error("ACL entry {index} {entry:?} must start with + (allow) or - (deny)")]
    Action { index: usize, entry: String },
    #[error("ACL entry {index}: {source}")]
    Predicate {
        index: usize,
        source: HopPredicateError,
    },
    #[error("the ACL must end with a default entry that matches everything (+ or -)")]
    NoDefault,
    #[error("ACL entries after the default entry {0} would never be used")]
    AfterDefault(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    allow: bool,
    rule: HopPredicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    entries: Vec<Entry>,
}

impl Acl {
    /// Whether every interface of the path is allowed. The same-AS path (no interfaces) is.
    pub fn permits(&self, p: &ScionPath) -> bool {
        // Interfaces alternate egress (even index) and ingress (odd), from the source on.
        p.interfaces.iter().enumerate().all(|(i, f)| {
            self.entries
                .iter()
                .find(|e| e.rule.matches_interface(f.ia, f.id, i % 2 == 1))
                .is_some_and(|e| e.allow)
        })
    }
}

impl FromStr for Acl {
    type Err = AclError;

    fn from_str(s: &str) -> Result<Self, AclError> {
        if s.trim().is_empty() {
            return Err(AclError::Empty);
        }
        let mut entries = Vec::new();
        for (n, raw) in s.split(';').enumerate() {
            let index = n + 1;
            let t = raw.trim();
            let allow = match t.chars().next() {
                None => return Err(AclError::EmptyEntry(index)),
                Some('+') => true,
                Some('-') => false,
                Some(_) => {
                    return Err(AclError::Action {
                        index,
                        entry: t.chars().take(120).collect(),
                    })
                }
            };
            let pred = t[1..].trim();
            let rule = if pred.is_empty() {
                HopPredicate::ANY
            } else {
                pred.parse()
                    .map_err(|source| AclError::Predicate { index, source })?
            };
            entries.push(Entry { allow, rule });
        }
        match entries.iter().position(|e| e.rule.matches_all()) {
            None => Err(AclError::NoDefault),
            Some(d) if d + 1 < entries.len() => Err(AclError::AfterDefault(d + 1)),
            Some(_) => Ok(Acl { entries }),
        }
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(if e.allow { "+" } else { "-" })?;
            if !e.rule.matches_all() {
                write!(f, " {}", e.rule)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::{parse_ia, PathInterface};

    /// A path from `IA#in,out` hops (scionproto's notation).
    fn path(desc: &str) -> ScionPath {
        let mut ifaces = Vec::new();
        let hops: Vec<&str> = desc.split_whitespace().collect();
        for (k, h) in hops.iter().enumerate() {
            let (ia, ifs) = h.split_once('#').unwrap();
            let (i, e) = ifs.split_once(',').unwrap();
            let ia = parse_ia(ia).unwrap();
            if k > 0 {
                ifaces.push(PathInterface {
                    ia,
                    id: i.parse().unwrap(),
                });
            }
            if k + 1 < hops.len() {
                ifaces.push(PathInterface {
                    ia,
                    id: e.parse().unwrap(),
                });
            }
        }
        let mut p = ScionPath::local(ifaces[0].ia);
        p.dst_ia = ifaces[ifaces.len() - 1].ia;
        p.interfaces = ifaces;
        p
    }

    #[test]
    fn scionproto_documented_example() {
        // PathPolicy.md: ASes 133 and 120 allowed, the rest of ISD 1 denied, other ISDs ok.
        let acl: Acl = "+ 1-ff00:0:133; + 1-ff00:0:120; - 1; +".parse().unwrap();
        assert!(acl.permits(&path("1-ff00:0:133#0,1 1-ff00:0:120#2,3 2-ff00:0:210#4,0")));
        assert!(!acl.permits(&path("1-ff00:0:133#0,1 1-ff00:0:121#2,3 2-ff00:0:210#4,0")));
        assert!(acl.permits(&ScionPath::local(parse_ia("1-ff00:0:121").unwrap())));
    }

    #[test]
    fn first_match_wins_and_interface_sides() {
        // `#IN,OUT` checks an ingress interface against IN and an egress one against OUT.
        let acl: Acl = "- 1-ff00:0:110#2,7; +1-ff00:0:110; - 1-ff00:0:110; +"
            .parse()
            .unwrap();
        assert!(!acl.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#2,3 1-ff00:0:112#4,0")));
        assert!(acl.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#5,2 1-ff00:0:112#4,0")));
        assert!(!acl.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#5,7 1-ff00:0:112#4,0")));
        // As in scionproto, a 0 side matches every interface on that side: this denies
        // every path through 110.
        let both: Acl = "- 1-ff00:0:110#2,0; +".parse().unwrap();
        assert!(!both.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#5,3 1-ff00:0:112#4,0")));
        let whitelist: Acl = "+ 1-ff00:0:111; + 1-ff00:0:112; -".parse().unwrap();
        assert!(whitelist.permits(&path("1-ff00:0:111#0,1 1-ff00:0:112#4,0")));
        assert!(!whitelist.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#5,2 1-ff00:0:112#4,0")));
        let single: Acl = "- 1-ff00:0:110#2; +".parse().unwrap();
        assert!(!single.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#5,2 1-ff00:0:112#4,0")));
        assert!(single.permits(&path("1-ff00:0:111#0,1 1-ff00:0:110#5,3 1-ff00:0:112#4,0")));
    }

    #[test]
    fn malformed_acls_are_typed_errors() {
        let err = |s: &str| s.parse::<Acl>().unwrap_err();
        assert_eq!(err(""), AclError::Empty);
        assert_eq!(err("+ 1; ; +"), AclError::EmptyEntry(2));
        assert!(matches!(
            err("1-ff00:0:110; +"),
            AclError::Action { index: 1, .. }
        ));
        assert!(matches!(
            err("+ x; +"),
            AclError::Predicate { index: 1, .. }
        ));
        assert_eq!(err("+ 1-ff00:0:110"), AclError::NoDefault);
        assert_eq!(err("+; - 1"), AclError::AfterDefault(1));
        assert_eq!(err("- 0-0#0; +"), AclError::AfterDefault(1));
    }

    #[test]
    fn display_round_trips() {
        let acl: Acl = " + 1-ff00:0:133#1,2 ;- 1;+ ".parse().unwrap();
        assert_eq!(acl.to_string(), "+ 1-ff00:0:133#1,2; - 1; +");
        assert_eq!(acl.to_string().parse::<Acl>().unwrap(), acl);
    }
}
