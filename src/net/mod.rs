//! Drivers: the parts of the data path that touch sockets.

pub mod close_code;
pub mod gso;
pub mod scion_net;
#[cfg(test)]
mod scion_net_tests;
pub mod scion_quinn;
pub mod steering;
pub mod uring;

pub use close_code::LaneCloseCode;
pub use scion_net::{NetEvent, Outgoing, Route, ScionNet};
