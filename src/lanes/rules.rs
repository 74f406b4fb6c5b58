//! A daemon torrent's own path rules: the text of `--sequence`, `--acl`, `--path-policy` and
//! `--preference` as the API takes them and `settings.json` keeps them, and their parsed form.
//! Text is what is stored, so what the user wrote is shown back unchanged.

use serde::{Deserialize, Serialize};

use super::acl::{Acl, AclError};
use super::policy::{PathPolicy, PolicyError};
use super::preference::{Preference, PreferenceError};
use super::sequence::{Sequence, SequenceError};
use crate::scion::ScionPath;

/// Longest text accepted per rule (API input and stored files alike).
pub const MAX_RULE_LEN: usize = 4096;

/// The rules as text; `None` (or blank text) = no such rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
// A misspelt rule from an API caller is an error, not a silently ignored restriction.
#[serde(deny_unknown_fields)]
pub struct PathRules {
    #[serde(default)]
    pub sequence: Option<String>,
    #[serde(default)]
    pub acl: Option<String>,
    #[serde(default)]
    pub path_policy: Option<String>,
    #[serde(default)]
    pub preference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathRulesError {
    #[error("{field} is longer than {MAX_RULE_LEN} characters")]
    TooLong { field: &'static str },
    #[error("sequence: {0}")]
    Sequence(#[from] SequenceError),
    #[error("acl: {0}")]
    Acl(#[from] AclError),
    #[error("path_policy: {0}")]
    Policy(#[from] PolicyError),
    #[error("preference: {0}")]
    Preference(#[from] PreferenceError),
}

/// Parsed rules, ready for a peer's dialer.
#[derive(Debug, Clone, Default)]
pub struct CompiledRules {
    /// Everything together: what a path must pass.
    pub policy: PathPolicy,
    pub preference: Preference,
    /// Each part alone, to say which one leaves no path.
    parts: Vec<(&'static str, PathPolicy)>,
}

impl PathRules {
    /// Blank text is no rule (a cleared form field), surrounding white space no part of one.
    pub fn normalized(self) -> Self {
        let clean = |s: Option<String>| {
            s.map(|s| s.trim().to_string())
                .filter(|s: &String| !s.is_empty())
        };
        Self {
            sequence: clean(self.sequence),
            acl: clean(self.acl),
            path_policy: clean(self.path_policy),
            preference: clean(self.preference),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.clone().normalized() == Self::default()
    }

    pub fn compile(&self) -> Result<CompiledRules, PathRulesError> {
        let r = self.clone().normalized();
        for (field, text) in [
            ("sequence", &r.sequence),
            ("acl", &r.acl),
            ("path_policy", &r.path_policy),
            ("preference", &r.preference),
        ] {
            if text.as_ref().is_some_and(|t| t.len() > MAX_RULE_LEN) {
                return Err(PathRulesError::TooLong { field });
            }
        }
        let sequence = r
            .sequence
            .as_deref()
            .map(str::parse::<Sequence>)
            .transpose()?;
        let acl = r.acl.as_deref().map(str::parse::<Acl>).transpose()?;
        let base = r
            .path_policy
            .as_deref()
            .map(str::parse::<PathPolicy>)
            .transpose()?
            .unwrap_or_default();
        let preference = r
            .preference
            .as_deref()
            .map(str::parse::<Preference>)
            .transpose()?
            .unwrap_or_default();
        let mut parts = Vec::new();
        if let Some(s) = &sequence {
            parts.push((
                "sequence",
                PathPolicy::default().with_sequence(Some(s.clone())),
            ));
        }
        if let Some(a) = &acl {
            parts.push(("ACL", PathPolicy::default().with_acl(Some(a.clone()))));
        }
        if !base.is_empty() {
            parts.push(("path policy", base.clone()));
        }
        Ok(CompiledRules {
            policy: base.with_sequence(sequence).with_acl(acl),
            preference,
            parts,
        })
    }
}

impl CompiledRules {
    /// When the daemon offers paths but the rules permit none of them: which rule is to
    /// blame (the first that alone leaves nothing, else the rules together).
    pub fn refusal(&self, offered: &[ScionPath]) -> Option<&'static str> {
        if offered.is_empty() || offered.iter().any(|p| self.policy.permits(p)) {
            return None;
        }
        let alone = self
            .parts
            .iter()
            .find(|(_, p)| !offered.iter().any(|path| p.permits(path)));
        Some(alone.map_or("path rules", |(name, _)| name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::{parse_ia, PathInterface};

    fn via(transit: &str, out: u16) -> ScionPath {
        let mut p = ScionPath::local(parse_ia("1-ff00:0:111").unwrap());
        p.dst_ia = parse_ia("1-ff00:0:112").unwrap();
        p.raw = bytes::Bytes::from_static(b"x");
        p.interfaces = [
            ("1-ff00:0:111", out),
            (transit, 1),
            (transit, 2),
            ("1-ff00:0:112", out),
        ]
        .iter()
        .map(|(ia, id)| PathInterface {
            ia: parse_ia(ia).unwrap(),
            id: *id,
        })
        .collect();
        p
    }

    fn rules(sequence: Option<&str>, acl: Option<&str>) -> PathRules {
        PathRules {
            sequence: sequence.map(str::to_string),
            acl: acl.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn blank_text_is_no_rule() {
        let r = PathRules {
            sequence: Some("  ".into()),
            preference: Some(" hops ".into()),
            ..Default::default()
        }
        .normalized();
        assert_eq!(r.sequence, None);
        assert_eq!(r.preference.as_deref(), Some("hops"));
        assert!(PathRules {
            acl: Some(String::new()),
            ..Default::default()
        }
        .is_empty());
        assert!(!r.is_empty());
    }

    #[test]
    fn each_bad_rule_is_its_own_error() {
        let bad = |r: PathRules| r.compile().unwrap_err();
        assert!(matches!(
            bad(rules(Some("1-ff00:0:120#"), None)),
            PathRulesError::Sequence(_)
        ));
        assert!(matches!(
            bad(rules(None, Some("+ 1"))),
            PathRulesError::Acl(_)
        ));
        let policy = PathRules {
            path_policy: Some("colour=blue".into()),
            ..Default::default()
        };
        let e = bad(policy);
        assert_eq!(
            e,
            PathRulesError::Policy(PolicyError::UnknownRule("colour".into()))
        );
        assert_eq!(
            e.to_string(),
            "path_policy: unknown path policy rule \"colour\" (deny, allow, max-hops, min-mtu)"
        );
        assert!(std::error::Error::source(&e).is_some());
        let pref = PathRules {
            preference: Some("speed".into()),
            ..Default::default()
        };
        let e = bad(pref);
        assert!(matches!(e, PathRulesError::Preference(_)));
        assert!(e.to_string().starts_with("preference: "), "{e}");
        let long = rules(Some(&"0 ".repeat(MAX_RULE_LEN)), None);
        assert_eq!(bad(long), PathRulesError::TooLong { field: "sequence" });
    }

    #[test]
    fn the_rule_that_leaves_no_path_is_named() {
        let offered = [via("1-ff00:0:110", 1), via("1-ff00:0:120", 2)];
        let only_130 = rules(Some("0 1-ff00:0:130 0"), Some("+"))
            .compile()
            .unwrap();
        assert_eq!(only_130.refusal(&offered), Some("sequence"));
        let no_isd_1 = rules(None, Some("- 1; +")).compile().unwrap();
        assert_eq!(no_isd_1.refusal(&offered), Some("ACL"));
        // Each alone leaves a path, together none.
        let both = rules(Some("0 1-ff00:0:110 0"), Some("- 1-ff00:0:110; +"))
            .compile()
            .unwrap();
        assert_eq!(both.refusal(&offered), Some("path rules"));
        let fine = rules(Some("0 1-ff00:0:120 0"), None).compile().unwrap();
        assert_eq!(fine.refusal(&offered), None);
        assert!(fine.policy.permits(&offered[1]) && !fine.policy.permits(&offered[0]));
        assert_eq!(
            fine.refusal(&[]),
            None,
            "no path at all is the daemon's news"
        );
    }
}
