//! The path-selection options shared by downloads, seeds, `paths` and `bwtest`: scionproto's
//! sequence and ACL, the order of preference, and interactive choice.

use clap::Args;

use crate::lanes::interactive::{self, ChoiceError};
use crate::lanes::{Acl, PathPolicy, Preference, Sequence};
use crate::scion::{Ia, ScionPath};

/// Which paths may be used and in what order.
#[derive(Args, Debug, Clone, Default)]
pub struct PathFilterArgs {
    /// scionproto path sequence the path must match, e.g. "1-ff00:0:111#0 1-ff00:0:110#2,3 0*"
    /// (hop predicates ISD-AS#IN,OUT with 0 as wildcard; operators ? + * | and parentheses).
    #[arg(long, value_name = "SEQUENCE", value_parser = clap::value_parser!(Sequence))]
    pub sequence: Option<Sequence>,
    /// scionproto ACL, entries separated by ';', first match per interface wins, the last
    /// entry must match all, e.g. "- 1-ff00:0:120; +" or "+ 1-ff00:0:110; - 1; +".
    #[arg(long, value_name = "ACL", allow_hyphen_values = true, value_parser = clap::value_parser!(Acl))]
    pub acl: Option<Acl>,
    /// Order of the candidate paths: comma-separated latency, bandwidth, hops, mtu
    /// [default: latency,hops,mtu].
    #[arg(long, value_name = "ORDER", value_parser = clap::value_parser!(Preference))]
    pub preference: Option<Preference>,
}

/// The filter, and choosing one path by hand.
#[derive(Args, Debug, Clone, Default)]
pub struct PathSelectArgs {
    #[command(flatten)]
    pub filter: PathFilterArgs,
    /// List the usable paths (numbered, best first) and read the number of the one to use
    /// from standard input.
    #[arg(short = 'i', long)]
    pub interactive: bool,
}

impl PathFilterArgs {
    /// `base` (the `--path-policy` rules) with the sequence and the ACL added.
    pub fn policy(&self, base: PathPolicy) -> PathPolicy {
        base.with_sequence(self.sequence.clone())
            .with_acl(self.acl.clone())
    }

    pub fn preference(&self) -> Preference {
        self.preference.clone().unwrap_or_default()
    }
}

/// The paths to `dst` that `policy` permits, best first.
pub fn candidates(paths: Vec<ScionPath>, policy: &PathPolicy, pref: &Preference) -> Vec<ScionPath> {
    let mut v = policy.filter(paths);
    pref.sort(&mut v);
    v
}

/// Lists `paths` on stderr (stdout stays for results) and reads the choice from stdin.
pub fn choose_on_terminal(dst: Ia, paths: &[ScionPath]) -> Result<ScionPath, ChoiceError> {
    interactive::choose(
        dst,
        paths,
        &mut std::io::stdin().lock(),
        &mut std::io::stderr(),
    )
}
