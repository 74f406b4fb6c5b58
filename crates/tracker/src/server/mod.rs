//! The tracker server: [`core::Tracker`] handles requests without sockets (HTTP request target
//! or UDP datagram in, bytes out), [`run`] serves it over TCP (HTTP/1.1) and UDP (BEP 15);
//! [`run::serve_http_connection`] serves any other byte stream (the binary's QUIC/SCION
//! listener).

pub mod core;
pub mod run;
pub mod swarm;

pub use self::core::{
    parse_allow_list, HttpReply, Remote, Tracker, TrackerConfig, DEFAULT_MAX_PEERS_PER_HOST,
};
pub use self::run::{serve_http_connection, start, RunningServer, ServerConfig};
