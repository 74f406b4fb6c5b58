//! Drivers: the parts of the data path that touch sockets.

pub mod scion_net;
pub mod uring;

pub use scion_net::{NetEvent, Route, ScionNet};
