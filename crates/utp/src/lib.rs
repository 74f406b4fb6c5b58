//! uTP, the micro transport protocol of BEP 29, sans-IO.
//!
//! [`Packet`] encodes and decodes the wire format (header version 1, extension chain, the
//! selective ACK). [`Connection`] is one connection's state machine: SYN/STATE/DATA/FIN/RESET,
//! 16-bit sequence and acknowledgement numbers that wrap, retransmission on timeout, on three
//! duplicate ACKs and on selective ACKs, the advertised receive window, a reorder buffer
//! bounded in packets and bytes, and [LEDBAT](ledbat) congestion control (100 ms target delay,
//! ten minutes of base-delay history). [`Endpoint`] demultiplexes one UDP socket's datagrams to
//! connections by (peer address, connection id), answers strays with RESET and bounds
//! half-open connections against SYN floods.
//!
//! Nothing here opens a socket, spawns a task or reads a clock: datagrams go in through
//! `handle_datagram`/`handle_packet`, come out of `poll_transmit`, and time goes in through
//! `poll_timeout`/`handle_timeout` (quinn-proto's shape), so one event loop of the caller's
//! drives every connection.

mod conn;
mod error;
pub mod ledbat;
mod packet;
mod seq;
mod socket;

pub use conn::{Config, Connection, State, Stats};
pub use error::{PacketError, UtpError};
pub use packet::{encode, Header, Packet, PacketType, EXT_SACK, HEADER_LEN, MAX_SACK_BYTES};
pub use seq::{before, before_or_eq};
pub use socket::{DatagramEvent, Dropped, Endpoint, EndpointConfig, EndpointStats, Handle};
