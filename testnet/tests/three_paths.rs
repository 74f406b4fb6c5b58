//! The three-paths topology: three interface-disjoint paths between the leaves, real packets
//! over each of them, and links going down and up while the network runs.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{hops, path_via, Host};
use scion_testnet::{parse_ia, Testnet, Topology};
use sciparse::payload::scmp::model::ScmpMessage;

const A: &str = "1-ff00:0:111";
const B: &str = "1-ff00:0:112";
const WAIT: Duration = Duration::from_secs(3);
/// How long we listen to be sure that nothing arrives.
const SILENCE: Duration = Duration::from_millis(400);

fn start() -> Testnet {
    Testnet::start(&Topology::builtin("three-paths").unwrap()).unwrap()
}

#[test]
fn three_interface_disjoint_paths_between_the_leaves() {
    let net = start();
    for (src, dst) in [(A, B), (B, A)] {
        let paths = net.paths(src, dst).unwrap();
        assert_eq!(paths.len(), 3, "{src} -> {dst}: {paths:?}");

        let mut interfaces = BTreeSet::new();
        let mut transit = BTreeSet::new();
        for path in &paths {
            let hops = hops(path);
            // leaf -> core -> leaf: egress, ingress+egress at the core, ingress.
            assert_eq!(hops.len(), 4, "{path}");
            assert_eq!(hops[0].0, parse_ia(src).unwrap());
            assert_eq!(hops[3].0, parse_ia(dst).unwrap());
            assert_eq!(hops[1].0, hops[2].0);
            transit.insert(hops[1].0);
            for hop in hops {
                assert!(interfaces.insert(hop), "interface {hop:?} on two paths");
            }
        }
        let cores: BTreeSet<_> = ["1-ff00:0:110", "1-ff00:0:120", "1-ff00:0:130"]
            .iter()
            .map(|ia| parse_ia(ia).unwrap())
            .collect();
        assert_eq!(transit, cores);

        // Path k leaves the source on interface k, as topologies/three-paths.toml promises.
        let first: BTreeSet<_> = paths
            .iter()
            .map(|p| p.first_egress_interface().unwrap().id)
            .collect();
        assert_eq!(first, BTreeSet::from([1, 2, 3]));
    }
}

#[test]
fn packets_cross_every_path_and_come_back() {
    let net = start();
    let (client, server) = (Host::new(A), Host::new(B));
    let server_router = net.state().as_state(B).unwrap().router;

    let paths = net.paths(A, B).unwrap();
    for path in &paths {
        assert_eq!(
            path.next_hop(),
            Some(net.state().as_state(A).unwrap().router)
        );
        let payload = format!("hello over {path}");
        client.send(&server, path, payload.as_bytes());
        let echoed = server.echo_one(server_router, WAIT);
        assert_eq!(echoed.as_deref(), Some(payload.as_bytes()), "over {path}");
        let reply = client.recv(WAIT).expect("no reply");
        assert_eq!(reply.udp_payload(), Some(payload.as_bytes()));
    }
}

#[test]
fn a_down_link_drops_its_packets_and_the_other_paths_still_work() {
    let net = start();
    let (client, server) = (Host::new(A), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    let path = |id| path_via(&paths, id);

    // Down at the first hop: the source AS's router refuses to send out of 111#2.
    net.set_link(A, 2, false).unwrap();
    client.send(&server, path(2), b"over a down link");
    assert!(server.recv(SILENCE).is_none(), "packet crossed a down link");
    expect_interface_down(&client, "1-ff00:0:111", 2);

    // Down in the middle: 120#2 - 112#2 is cut, so 120 cannot forward to 112. Its SCMP
    // travels back to the client over the reversed path.
    net.set_link(A, 2, true).unwrap();
    net.set_link(B, 2, false).unwrap();
    assert!(!net.snapshot().link(B, 2).unwrap().up);
    client.send(&server, path(2), b"over a down link");
    assert!(server.recv(SILENCE).is_none(), "packet crossed a down link");
    expect_interface_down(&client, "1-ff00:0:120", 2);

    for id in [1, 3] {
        client.send(&server, path(id), b"still fine");
        let got = server.recv(WAIT).expect("other path broke");
        assert_eq!(got.udp_payload(), Some(&b"still fine"[..]));
    }

    // And back up.
    net.set_link(B, 2, true).unwrap();
    client.send(&server, path(2), b"up again");
    let got = server.recv(WAIT).expect("link did not come back");
    assert_eq!(got.udp_payload(), Some(&b"up again"[..]));
    assert!(net.snapshot().links.iter().all(|l| l.up));
}

fn expect_interface_down(client: &Host, ia: &str, interface: u16) {
    let got = client.recv(WAIT).expect("no SCMP for a down link");
    match got.scmp() {
        Some(ScmpMessage::ExternalInterfaceDown(m)) => {
            assert_eq!(m.isd_asn, parse_ia(ia).unwrap());
            assert_eq!(m.interface_id, interface);
        }
        other => panic!("expected SCMP external-interface-down, got {other:?}"),
    }
}
