//! The SCION daemon client against the real thing: pocketscion's daemons on the local testnet
//! (three-paths topology: 1-ff00:0:111 and 1-ff00:0:112 joined by three link-disjoint paths).

use std::collections::BTreeSet;

use btscion::scion::{
    daemon::{BlockingDaemonClient, DaemonClient, DaemonError},
    packet, parse_ia, Ia,
};
use scion_testnet::{Testnet, Topology};

const SRC: &str = "1-ff00:0:111";
const DST: &str = "1-ff00:0:112";

fn ia(s: &str) -> Ia {
    parse_ia(s).unwrap()
}

fn three_paths() -> Testnet {
    Testnet::start(&Topology::builtin("three-paths").expect("topology")).expect("testnet")
}

#[test]
fn local_ia_port_range_and_interfaces() {
    let net = three_paths();
    let st = net.state().as_state(SRC).unwrap().clone();
    let c = BlockingDaemonClient::connect(&st.daemon.to_string()).unwrap();

    assert_eq!(c.local_ia().unwrap(), ia(SRC));
    let info = c.as_info(None).unwrap();
    assert_eq!(info.ia, ia(SRC));
    assert!(!info.core);
    assert!(c.as_info(Some(ia("1-ff00:0:110"))).unwrap().core);

    let (lo, hi) = c.port_range().unwrap();
    assert!(lo <= hi);
    if let Some(expected) = st.port_range {
        assert_eq!((lo, hi), expected);
    }

    let ifs = c.interfaces().unwrap();
    assert_eq!(
        ifs.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2, 3])
    );
    for (id, addr) in &ifs {
        assert_eq!(Some(addr), st.routers.get(id), "interface {id}");
        assert!(addr.ip().is_loopback());
    }
}

#[test]
fn three_interface_disjoint_paths_with_first_hops() {
    let net = three_paths();
    let st = net.state().as_state(SRC).unwrap().clone();
    let c = BlockingDaemonClient::connect(&st.daemon.to_string()).unwrap();

    for refresh in [false, true] {
        let paths = c.paths(ia(DST), refresh).unwrap();
        assert_eq!(paths.len(), 3, "{paths:#?}");
        for p in &paths {
            assert_eq!((p.src_ia, p.dst_ia), (ia(SRC), ia(DST)));
            assert!(!p.is_local());
            assert_eq!(p.first_hop, Some(st.router), "first hop of {p}");
            assert_eq!(p.hop_count(), 2, "{p}");
            assert_eq!(p.interfaces.len(), 4, "{p}");
            assert_eq!(p.interfaces[0].ia, ia(SRC));
            assert_eq!(p.interfaces[3].ia, ia(DST));
            assert!(p.expiry.is_some_and(|e| e > std::time::SystemTime::now()));
            // The raw hop fields agree with the interface metadata.
            let hops = packet::path_interfaces(&p.raw).unwrap();
            assert_eq!(hops.first().map(|h| h.1), Some(p.interfaces[0].id), "{p}");
            assert_eq!(hops.last().map(|h| h.0), Some(p.interfaces[3].id), "{p}");
        }
        for (i, a) in paths.iter().enumerate() {
            for b in &paths[i + 1..] {
                assert!(!a.shares_link_with(b), "{a} and {b} share a link");
                assert_ne!(a.fingerprint(), b.fingerprint());
            }
        }
        // Path k leaves 111 on interface k and enters 112 on interface k.
        let mut ks: Vec<_> = paths
            .iter()
            .map(|p| (p.interfaces[0].id, p.interfaces[3].id))
            .collect();
        ks.sort();
        assert_eq!(ks, vec![(1, 1), (2, 2), (3, 3)]);
    }

    // Fingerprints are stable across requests.
    let a: BTreeSet<_> = c
        .paths(ia(DST), false)
        .unwrap()
        .iter()
        .map(|p| p.fingerprint())
        .collect();
    let b: BTreeSet<_> = c
        .paths(ia(DST), true)
        .unwrap()
        .iter()
        .map(|p| p.fingerprint())
        .collect();
    assert_eq!(a, b);

    // To the local AS: one empty path, sent directly to the host.
    let local = c.paths(ia(SRC), false).unwrap();
    assert_eq!(local.len(), 1);
    assert!(local[0].is_local() && local[0].first_hop.is_none());

    // The other direction works from the other AS's daemon.
    let st2 = net.state().as_state(DST).unwrap().clone();
    let c2 = BlockingDaemonClient::connect(&st2.daemon.to_string()).unwrap();
    assert_eq!(c2.local_ia().unwrap(), ia(DST));
    let back = c2.paths(ia(SRC), false).unwrap();
    assert_eq!(back.len(), 3);
    assert!(back.iter().all(|p| p.first_hop == Some(st2.router)));
}

/// The product runs on tokio-uring; the async client must work on its runtime (a
/// current-thread tokio runtime underneath).
#[test]
fn async_client_on_tokio_uring_runtime() {
    let net = three_paths();
    let daemon = net.state().as_state(SRC).unwrap().daemon.to_string();
    let body = |daemon: String| async move {
        let c = DaemonClient::connect(&daemon).await.unwrap();
        assert_eq!(c.local_ia().await.unwrap(), ia(SRC));
        let paths = c.paths(ia(DST), false).await.unwrap();
        assert_eq!(paths.len(), 3);
        // Concurrent calls share the one connection.
        let c2 = c.clone();
        let (a, b) = tokio::join!(c.port_range(), c2.interfaces());
        assert!(a.is_ok() && b.is_ok());
        // The blocking helper inside a runtime: an error, not a panic or a deadlock.
        assert!(matches!(
            BlockingDaemonClient::connect(&daemon),
            Err(DaemonError::Runtime(_))
        ));
    };
    // The product needs io_uring; a machine without it must fail this test, not pass it on
    // another runtime.
    if let Err(e) = std::panic::catch_unwind(|| tokio_uring::start(async {})) {
        panic!(
            "io_uring is unavailable (kernel too old, or blocked by seccomp/sysctl \
             kernel.io_uring_disabled): the product cannot run here: {e:?}"
        );
    }
    tokio_uring::start(body(daemon));
}

#[test]
fn daemon_gone_is_a_clear_error() {
    let net = three_paths();
    let daemon = net.state().as_state(SRC).unwrap().daemon.to_string();
    let c = BlockingDaemonClient::connect(&daemon).unwrap();
    assert_eq!(c.local_ia().unwrap(), ia(SRC));
    drop(net);
    let e = c.paths(ia(DST), true).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot reach SCION daemon at {daemon}")),
        "{e}"
    );
}
