//! The tracker server: [`core::Tracker`] handles requests without sockets (HTTP request target
//! or UDP datagram in, bytes out), [`run`] serves it over TCP (HTTP/1.1) and UDP (BEP 15).

pub mod core;
pub mod run;
pub mod swarm;

pub use self::core::{parse_allow_list, HttpReply, Tracker, TrackerConfig};
pub use self::run::{start, RunningServer, ServerConfig};
