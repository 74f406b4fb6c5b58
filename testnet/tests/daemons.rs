//! Both builtin topologies start, every daemon answers, and what the daemons say matches the
//! state we publish.

use std::collections::BTreeSet;

use scion_testnet::{daemon, parse_ia, Testnet, Topology};

/// Also proves that `start` and drop work from inside a caller's tokio runtime.
#[tokio::test]
async fn builtins_start_and_every_daemon_answers() {
    for name in ["two-as", "three-paths"] {
        let net = Testnet::start(&Topology::builtin(name).unwrap()).unwrap();
        let state = net.state().clone();
        assert!(state.control.is_some());

        for (ia_name, as_state) in &state.ases {
            let ia = parse_ia(ia_name).unwrap();
            let info = daemon::as_info(as_state.daemon, ia).await.unwrap();
            assert_eq!(info.isd_as, ia.to_u64());
            assert_eq!(info.core, as_state.core, "{ia}");

            let range = daemon::port_range(as_state.daemon).await.unwrap();
            assert_eq!(Some(range), as_state.port_range);

            // Interfaces RPC: every interface maps to the AS's router socket.
            let ifs = daemon::interfaces(as_state.daemon).await.unwrap();
            let reported: BTreeSet<u16> = ifs.interfaces.keys().map(|k| *k as u16).collect();
            let expected: BTreeSet<u16> = as_state.routers.keys().copied().collect();
            assert_eq!(reported, expected, "{ia}");
            for intf in ifs.interfaces.values() {
                let addr = intf.address.as_option().unwrap().address.parse().unwrap();
                assert_eq!(as_state.router, addr);
            }

            // Paths to every other AS carry the router as next hop.
            for other in state.ases.keys().filter(|o| *o != ia_name) {
                let paths = daemon::paths(as_state.daemon, ia, parse_ia(other).unwrap())
                    .await
                    .unwrap();
                // Three-paths has no core links, so cores don't reach each other.
                let reachable = name == "two-as" || !(as_state.core && state.ases[other].core);
                assert_eq!(!paths.is_empty(), reachable, "{name}: {ia} -> {other}");
                for path in paths {
                    assert_eq!(path.next_hop(), Some(as_state.router));
                }
            }
        }
        if name == "two-as" {
            assert_eq!(net.paths("1-ff00:0:110", "1-ff00:0:112").unwrap().len(), 1);
            assert_eq!(net.paths("1-ff00:0:112", "1-ff00:0:110").unwrap().len(), 1);
        }
    }
}

#[test]
fn two_testnets_in_one_process_do_not_collide() {
    let topo = Topology::builtin("two-as").unwrap();
    let (one, two) = (
        Testnet::start(&topo).unwrap(),
        Testnet::start(&topo).unwrap(),
    );
    let addrs = |net: &Testnet| {
        let s = net.state();
        let mut v: Vec<_> = s.ases.values().flat_map(|a| [a.daemon, a.router]).collect();
        v.extend(s.control);
        v
    };
    let (a, b) = (addrs(&one), addrs(&two));
    assert!(a.iter().all(|x| !b.contains(x)), "{a:?} vs {b:?}");
    assert!(a.iter().chain(&b).all(|x| x.ip().is_loopback()));
    one.stop();
    // The second one keeps working after the first is gone.
    assert_eq!(two.paths("1-ff00:0:112", "1-ff00:0:110").unwrap().len(), 1);
}

#[test]
fn bad_link_requests_are_errors() {
    let net = Testnet::start(&Topology::builtin("two-as").unwrap()).unwrap();
    assert!(net.set_link("1-ff00:0:112", 7, false).is_err());
    assert!(net.set_link("not-an-ia", 1, false).is_err());
    assert!(net.set_link("1-ff00:0:999", 1, false).is_err());
    assert!(net.paths("1-ff00:0:999", "1-ff00:0:110").is_err());
    assert!(net.paths("1-ff00:0:110", "1-ff00:0:110").is_err());
    // The far end names the same link.
    net.set_link("1-ff00:0:110", 1, false).unwrap();
    assert!(!net.snapshot().link("1-ff00:0:112", 1).unwrap().up);
    assert!(net.state().links[0].up, "state() is the state at start");
}

#[test]
fn a_topology_file_with_link_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(
        &file,
        r#"
        [[as]]
        ia = "2-ff00:0:210"
        core = true
        [[as]]
        ia = "2-ff00:0:211"
        [[link]]
        a = "2-ff00:0:211#5"
        b = "2-ff00:0:210#7"
        bandwidth_mbit = 100
        delay_ms = 20.5
        loss = 0.01
        "#,
    )
    .unwrap();
    let net = Testnet::start(&Topology::from_file(&file).unwrap()).unwrap();
    let link = &net.state().links[0];
    assert_eq!(
        (link.a.as_str(), link.b.as_str()),
        ("2-ff00:0:211#5", "2-ff00:0:210#7")
    );
    assert_eq!(link.bandwidth_mbit, Some(100.0));
    assert_eq!(link.delay_ms, Some(20.5));
    assert_eq!(link.loss, Some(0.01));
    let paths = net.paths("2-ff00:0:211", "2-ff00:0:210").unwrap();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].first_egress_interface().unwrap().id, 5);
}
