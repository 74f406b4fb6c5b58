//! What pocketscion's routers do with packets beyond plain forwarding: MAC verification, and a
//! rough throughput figure (ignored by default; run with `--ignored --nocapture`).

mod common;

use std::time::{Duration, Instant};

use common::{path_via, Host};
use scion_testnet::{Testnet, Topology};
use sciparse::{
    core::encode::WireEncode,
    dataplane_path::{model::DpPath, view::ScionDpPathViewExt},
    packet::model::ScionUdpPacket,
};

const A: &str = "1-ff00:0:111";
const B: &str = "1-ff00:0:112";

#[test]
fn routers_drop_packets_with_a_bad_hop_field_mac() {
    let net = Testnet::start(&Topology::builtin("three-paths").unwrap()).unwrap();
    let (client, server) = (Host::new(A), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    let path = path_via(&paths, 1);

    let mut dp = path.dp_path().to_model();
    let DpPath::Standard(standard) = &mut dp else {
        panic!("expected a standard path");
    };
    // Up segment: hop 0 is 1-ff00:0:111, hop 1 is the core 1-ff00:0:110.
    standard.segments[0].hop_fields[1].mac.0[0] ^= 0xff;
    let packet = ScionUdpPacket::new(client.scion_addr(), server.scion_addr(), dp, b"x".to_vec());
    let bytes = packet.try_encode_to_vec().unwrap();
    client
        .socket
        .send_to(&bytes, path.next_hop().unwrap())
        .unwrap();

    assert!(server.recv(Duration::from_millis(400)).is_none());
    // Dropped silently: no SCMP comes back either.
    assert!(client.recv(Duration::from_millis(200)).is_none());

    // The untouched path still works.
    client.send(&server, path, b"fine");
    assert!(server.recv(Duration::from_secs(3)).is_some());
}

#[test]
#[ignore = "measurement, not a check"]
fn router_throughput() {
    let net = Testnet::start(&Topology::builtin("three-paths").unwrap()).unwrap();
    let (client, server) = (Host::new(A), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    let path = path_via(&paths, 1);
    let hop = path.next_hop().unwrap();
    let packet = ScionUdpPacket::new(
        client.scion_addr(),
        server.scion_addr(),
        path.dp_path().to_model(),
        vec![0u8; 1200],
    );
    let bytes = packet.try_encode_to_vec().unwrap();

    // Unpaced (0), then paced: a short sleep every `burst` packets, so that the router's
    // socket buffer is not the only thing measured.
    for burst in [0, 16, 4] {
        let socket = server.socket.try_clone().unwrap();
        let receiver = std::thread::spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_millis(700)))
                .unwrap();
            let mut buf = vec![0u8; 65536];
            let (mut got, mut first, mut last) = (0usize, None, Instant::now());
            while socket.recv_from(&mut buf).is_ok() {
                got += 1;
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
            }
            (got, first.map(|f| last - f).unwrap_or_default())
        });
        let sent = 20_000;
        let start = Instant::now();
        for i in 0..sent {
            client.socket.send_to(&bytes, hop).unwrap();
            if burst > 0 && i % burst == burst - 1 {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        let send_time = start.elapsed();
        let (got, span) = receiver.join().unwrap();
        println!(
            "burst {burst}: sent {sent} x 1200 B at {:.0} pkt/s, received {got} at {:.0} pkt/s",
            sent as f64 / send_time.as_secs_f64(),
            got as f64 / span.as_secs_f64().max(1e-9),
        );
    }
}
