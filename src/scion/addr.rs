//! Addresses live in their own small crate (`scion-addr`) so the tracker, DHT and extension
//! crates share one parser and one compact encoding with the engine.

pub use scion_addr::*;
