//! Shared test helpers: end hosts as plain UDP sockets speaking SCION through the routers,
//! like pocketscion's own router-mode echo test.
#![allow(dead_code)] // each test binary uses a different subset

pub mod blast;

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use scion_testnet::parse_ia;
use sciparse::{
    address::socket_addr::ScionSocketAddr,
    core::{convert::TryFromView, encode::WireEncode},
    dataplane_path::view::ScionDpPathViewExt,
    identifier::isd_asn::IsdAsn,
    packet::model::{ScionScmpPacket, ScionUdpPacket},
    path::ScionPath,
    payload::scmp::model::ScmpMessage,
};

/// An end host in `ia`: a UDP socket on loopback.
pub struct Host {
    pub ia: IsdAsn,
    pub socket: UdpSocket,
    pub addr: SocketAddr,
}

impl Host {
    pub fn new(ia: &str) -> Host {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind host socket");
        let addr = socket.local_addr().unwrap();
        Host {
            ia: parse_ia(ia).unwrap(),
            socket,
            addr,
        }
    }

    /// An end host in `ia` on a port inside `range` (scionproto's routers deliver SCION/UDP
    /// only to ports in the AS's dispatched range).
    pub fn in_port_range(ia: &str, range: (u16, u16)) -> Host {
        let span = u32::from(range.1 - range.0) + 1;
        let start = std::process::id() % span;
        let socket = (0..span)
            .map(|n| range.0 + ((start + n) % span) as u16)
            .find_map(|port| UdpSocket::bind(("127.0.0.1", port)).ok())
            .expect("no free port in the range");
        let addr = socket.local_addr().unwrap();
        Host {
            ia: parse_ia(ia).unwrap(),
            socket,
            addr,
        }
    }

    pub fn scion_addr(&self) -> ScionSocketAddr {
        ScionSocketAddr::new(self.ia, self.addr.ip().into(), self.addr.port())
    }

    /// Sends `payload` to `to` over `path`, handing the packet to the path's next hop.
    pub fn send(&self, to: &Host, path: &ScionPath, payload: &[u8]) {
        let next_hop = path.next_hop().expect("daemon path without next hop");
        let packet = ScionUdpPacket::new(
            self.scion_addr(),
            to.scion_addr(),
            path.dp_path().to_model(),
            payload.to_vec(),
        );
        let bytes = packet.try_encode_to_vec().expect("encode SCION/UDP");
        self.socket.send_to(&bytes, next_hop).expect("send");
    }

    /// Receives one SCION packet (UDP or SCMP), or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let Ok((len, from)) = self.socket.recv_from(&mut buf) else {
                return None;
            };
            let bytes = &buf[..len];
            if let Ok((udp, _)) = ScionUdpPacket::try_from_slice(bytes) {
                return Some(Received::Udp(udp, from));
            }
            if let Ok((scmp, _)) = ScionScmpPacket::try_from_slice(bytes) {
                return Some(Received::Scmp(scmp, from));
            }
            // Not SCION: ignore it.
        }
    }

    /// Receives one SCION/UDP packet and answers it over the reversed path via `router`.
    pub fn echo_one(&self, router: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
        let Received::Udp(packet, _) = self.recv(timeout)? else {
            return None;
        };
        let payload = packet.payload.payload.clone();
        let reply = ScionUdpPacket::new(
            packet.dst_socket_addr().unwrap(),
            packet.src_socket_addr().unwrap(),
            packet.header.path.clone().try_into_reversed().unwrap(),
            payload.clone(),
        );
        self.socket
            .send_to(&reply.try_encode_to_vec().unwrap(), router)
            .unwrap();
        Some(payload)
    }
}

#[derive(Debug)]
pub enum Received {
    Udp(ScionUdpPacket, SocketAddr),
    Scmp(ScionScmpPacket, SocketAddr),
}

impl Received {
    pub fn udp_payload(&self) -> Option<&[u8]> {
        match self {
            Received::Udp(p, _) => Some(&p.payload.payload),
            Received::Scmp(..) => None,
        }
    }

    pub fn scmp(&self) -> Option<&ScmpMessage> {
        match self {
            Received::Scmp(p, _) => Some(&p.payload),
            Received::Udp(..) => None,
        }
    }
}

/// Interfaces of a path as (ISD-AS, id), from the daemon's metadata.
pub fn hops(path: &ScionPath) -> Vec<(IsdAsn, u16)> {
    path.metadata()
        .and_then(|m| m.interfaces.as_ref())
        .expect("daemon path without interface metadata")
        .iter()
        .map(|i| (i.interface.isd_asn, i.interface.id))
        .collect()
}

/// The path leaving the source on interface `id`.
pub fn path_via(paths: &[ScionPath], id: u16) -> &ScionPath {
    paths
        .iter()
        .find(|p| p.first_egress_interface().map(|i| i.id) == Some(id))
        .unwrap_or_else(|| panic!("no path leaves on interface {id}"))
}
