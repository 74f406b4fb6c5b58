//! Lanes: a peer reached over several SCION paths at once, one QUIC connection per path.

pub mod policy;
pub mod select;

pub use policy::PathPolicy;
pub use select::{choose_paths, disjoint_count};
