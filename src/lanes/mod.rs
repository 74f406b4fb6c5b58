//! Lanes: a peer reached over several SCION paths at once, one QUIC connection per path.

pub mod acl;
pub mod hop;
pub mod interactive;
pub mod policy;
pub mod preference;
pub mod rules;
pub mod select;
pub mod sequence;

pub use acl::{Acl, AclError};
pub use policy::{PathPolicy, PolicyError};
pub use preference::{Preference, PreferenceError};
pub use rules::{CompiledRules, PathRules, PathRulesError};
pub use select::{choose_paths, disjoint_count};
pub use sequence::{Sequence, SequenceError};
