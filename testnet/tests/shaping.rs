//! Link shaping on real pocketscion networks: capped links carry about their cap in each
//! direction (and drop the excess), uncapped links are not slowed, delay shows in the round
//! trip, loss drops about its fraction, and links still go down and up.
//!
//! The bounds are generous on purpose (±25% around a cap, lower bounds only for delay): the
//! CI machine is small and busy. Measurements share the CPU, so they take turns (`TURN`).
//! `cargo test -p scion-testnet --test shaping -- --ignored --nocapture` prints figures.

mod common;

use std::{
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use common::{
    blast::{measure, receive, within, Blast},
    path_via, Host, Received,
};
use scion_testnet::{parse_ia, Testnet, Topology};
use sciparse::{path::ScionPath, payload::scmp::model::ScmpMessage};

const A: &str = "1-ff00:0:111";
const B: &str = "1-ff00:0:112";
const WAIT: Duration = Duration::from_secs(3);

/// One measurement at a time: they compete for the same two cores.
static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// three-paths with path 1 capped at `cap` Mbit/s (link 110#1 - 111#1), path 2 untouched, and
/// `delay` ms one-way delay on path 3 (link 130#1 - 111#3).
fn topology(cap: f64, delay: f64) -> Topology {
    let text = format!(
        r#"
        [[as]]
        ia = "1-ff00:0:110"
        core = true
        [[as]]
        ia = "1-ff00:0:120"
        core = true
        [[as]]
        ia = "1-ff00:0:130"
        core = true
        [[as]]
        ia = "1-ff00:0:111"
        [[as]]
        ia = "1-ff00:0:112"

        [[link]]
        a = "1-ff00:0:110#1"
        b = "1-ff00:0:111#1"
        bandwidth_mbit = {cap}
        [[link]]
        a = "1-ff00:0:110#2"
        b = "1-ff00:0:112#1"
        [[link]]
        a = "1-ff00:0:120#1"
        b = "1-ff00:0:111#2"
        [[link]]
        a = "1-ff00:0:120#2"
        b = "1-ff00:0:112#2"
        [[link]]
        a = "1-ff00:0:130#1"
        b = "1-ff00:0:111#3"
        delay_ms = {delay}
        [[link]]
        a = "1-ff00:0:130#2"
        b = "1-ff00:0:112#3"
        "#
    );
    Topology::from_str(&text).unwrap()
}

#[test]
fn a_capped_link_carries_its_cap_in_each_direction_and_drops_the_excess() {
    let _turn = turn();
    let cap = 20.0;
    let net = Testnet::start(&topology(cap, 0.0)).unwrap();
    let (a, b) = (Host::new(A), Host::new(B));
    let there = net.paths(A, B).unwrap();
    let back = net.paths(B, A).unwrap();
    // Both directions of link 110#1 - 111#1 at once, each offered twice the cap.
    let (forward, reverse) = thread::scope(|s| {
        let f = s.spawn(|| {
            measure(
                &a,
                &b,
                path_via(&there, 1),
                2.0 * cap,
                Duration::from_millis(1500),
            )
        });
        let r = s.spawn(|| {
            measure(
                &b,
                &a,
                path_via(&back, 1),
                2.0 * cap,
                Duration::from_millis(1500),
            )
        });
        (f.join().unwrap(), r.join().unwrap())
    });
    for (name, (sent, rate)) in [("111 -> 112", forward), ("112 -> 111", reverse)] {
        println!("{name}: {rate:?} of {sent} sent, cap {cap}");
        assert!(
            within(rate.mbit, cap, 0.25),
            "{name}: {rate:?} of {sent} sent, cap {cap}"
        );
        assert!(
            rate.packets < sent,
            "{name}: nothing dropped ({rate:?} of {sent})"
        );
    }
    // Both directions overflowed their queues.
    assert!(net.link_drops(A, 1).unwrap() > 0);
    assert!(net.link_drops("1-ff00:0:110", 1).unwrap() > 0);
    assert_eq!(net.link_drops(A, 2), None, "path 2 is not shaped");
}

#[test]
fn an_uncapped_link_next_to_a_capped_one_is_not_slowed() {
    let _turn = turn();
    let cap = 20.0;
    let net = Testnet::start(&topology(cap, 0.0)).unwrap();
    let (a, b1, b2) = (Host::new(A), Host::new(B), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    // The capped path saturated, the uncapped one offered three times the cap, at once.
    let ((_, capped), (sent, free)) = thread::scope(|s| {
        let c = s.spawn(|| {
            measure(
                &a,
                &b1,
                path_via(&paths, 1),
                2.0 * cap,
                Duration::from_millis(1500),
            )
        });
        let f = s.spawn(|| {
            measure(
                &a,
                &b2,
                path_via(&paths, 2),
                3.0 * cap,
                Duration::from_millis(1500),
            )
        });
        (c.join().unwrap(), f.join().unwrap())
    });
    println!("capped: {capped:?}; uncapped: {free:?} of {sent} sent");
    assert!(within(capped.mbit, cap, 0.25), "capped path: {capped:?}");
    // Well above the cap (it was offered 3x): not shaped. Not "everything arrived": on a busy
    // machine the simulator itself may drop some.
    assert!(
        free.mbit > 1.5 * cap,
        "uncapped path slowed to {free:?} ({sent} sent)"
    );
}

#[test]
fn delay_adds_to_the_round_trip() {
    let _turn = turn();
    let delay = 40.0;
    let net = Testnet::start(&topology(20.0, delay)).unwrap();
    let (client, server) = (Host::new(A), Host::new(B));
    let server_router = net.state().as_state(B).unwrap().router;
    let paths = net.paths(A, B).unwrap();

    let rtt = |path: &ScionPath| {
        let mut samples = Vec::new();
        for i in 0..5u8 {
            let start = Instant::now();
            client.send(&server, path, &[i]);
            assert_eq!(
                server.echo_one(server_router, WAIT).as_deref(),
                Some(&[i][..])
            );
            let reply = client.recv(WAIT).expect("no echo");
            assert_eq!(reply.udp_payload(), Some(&[i][..]));
            samples.push(start.elapsed());
        }
        samples
    };
    let slow = rtt(path_via(&paths, 3));
    let fast = rtt(path_via(&paths, 2));
    // The link delays both ways: at least twice the one-way delay, every time.
    let floor = Duration::from_secs_f64(2.0 * delay / 1e3);
    for s in &slow {
        assert!(
            *s >= floor,
            "rtt {s:?} over the delayed path, expected >= {floor:?}"
        );
        assert!(*s < floor + Duration::from_secs(1), "rtt {s:?}");
    }
    let min_fast = fast.iter().min().unwrap();
    let min_slow = slow.iter().min().unwrap();
    assert!(min_fast < min_slow, "fast {fast:?} slow {slow:?}");
}

#[test]
fn loss_drops_about_its_fraction() {
    let _turn = turn();
    let net = Testnet::start(
        &Topology::from_str(
            r#"
            [[as]]
            ia = "1-ff00:0:110"
            core = true
            [[as]]
            ia = "1-ff00:0:112"
            [[link]]
            a = "1-ff00:0:110#1"
            b = "1-ff00:0:112#1"
            loss = 0.2
            "#,
        )
        .unwrap(),
    )
    .unwrap();
    let core = "1-ff00:0:110";
    let (a, b) = (Host::new(core), Host::new(B));
    let paths = net.paths(core, B).unwrap();
    // 1500 packets at about 2000 packets/s: far below what the routers handle.
    let (sent, rate) = measure(&a, &b, &paths[0], 21.0, Duration::from_millis(750));
    let dropped = net.link_drops(core, 1).unwrap() as usize;
    // The fraction of the packets that entered the link (a busy machine may drop a few before
    // the shaper, in socket buffers): 0.2 ± 5 standard deviations.
    assert!(
        dropped + rate.packets <= sent,
        "{dropped} + {rate:?} > {sent}"
    );
    let lost = dropped as f64 / (dropped + rate.packets) as f64;
    println!("lost {lost}: {rate:?} of {sent} sent, {dropped} dropped by the shaper");
    assert!(
        (0.15..=0.25).contains(&lost),
        "lost {lost}: {rate:?} of {sent}"
    );
}

#[test]
fn links_of_a_shaped_network_still_go_down_and_up() {
    let _turn = turn();
    let net = Testnet::start(&Topology::builtin("three-paths-capped").unwrap()).unwrap();
    let (client, server) = (Host::new(A), Host::new(B));
    let (router_a, router_b) = (
        net.state().as_state(A).unwrap().router,
        net.state().as_state(B).unwrap().router,
    );
    let paths = net.paths(A, B).unwrap();
    assert_eq!(paths.len(), 3);
    for path in &paths {
        // The daemon advertises the front end, the address that delivers packets as well.
        assert_eq!(path.next_hop(), Some(router_a));
        client.send(&server, path, b"ping");
        assert_eq!(
            server.echo_one(router_b, WAIT).as_deref(),
            Some(&b"ping"[..])
        );
        match client.recv(WAIT).expect("no echo") {
            Received::Udp(p, from) => {
                assert_eq!(p.payload.payload, b"ping");
                assert_eq!(from, router_a, "delivered by another socket");
            }
            other => panic!("{other:?}"),
        }
    }

    // A down capped link: SCMP from the source AS, at once, and nothing crosses.
    net.set_link(A, 2, false).unwrap();
    client.send(&server, path_via(&paths, 2), b"over a down link");
    match client.recv(WAIT).expect("no SCMP").scmp() {
        Some(ScmpMessage::ExternalInterfaceDown(m)) => {
            assert_eq!(m.isd_asn, parse_ia(A).unwrap());
            assert_eq!(m.interface_id, 2);
        }
        other => panic!("expected SCMP external-interface-down, got {other:?}"),
    }
    assert!(server.recv(Duration::from_millis(300)).is_none());
    net.set_link(A, 2, true).unwrap();
    client.send(&server, path_via(&paths, 2), b"up again");
    let got = server.recv(WAIT).expect("link did not come back");
    assert_eq!(got.udp_payload(), Some(&b"up again"[..]));
}

#[test]
fn three_paths_capped_caps_each_path_at_50_mbit() {
    let _turn = turn();
    let net = Testnet::start(&Topology::builtin("three-paths-capped").unwrap()).unwrap();
    for link in &net.state().links {
        // The links at 1-ff00:0:111 carry the cap, the others nothing.
        let capped = link.b.starts_with(A);
        assert_eq!(link.bandwidth_mbit, capped.then_some(50.0), "{link:?}");
    }
    let (a, b) = (Host::new(A), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    let (sent, rate) = measure(
        &a,
        &b,
        path_via(&paths, 2),
        80.0,
        Duration::from_millis(1000),
    );
    assert!(within(rate.mbit, 50.0, 0.25), "{rate:?} of {sent} sent");
}

/// Figures for the README: capped and uncapped rates, a few runs each.
#[test]
#[ignore = "measurement, not a check"]
fn shaping_figures() {
    let _turn = turn();
    let net = Testnet::start(&Topology::builtin("three-paths-capped").unwrap()).unwrap();
    let (a, b) = (Host::new(A), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    for offered in [60.0, 100.0, 200.0] {
        let (sent, rate) = measure(
            &a,
            &b,
            path_via(&paths, 1),
            offered,
            Duration::from_millis(1500),
        );
        println!("capped 50 Mbit/s, offered {offered}: {rate:?} of {sent} sent");
    }
    let mut all = thread::scope(|s| {
        let hs: Vec<_> = (1..=3)
            .map(|k| {
                let (a, b) = (Host::new(A), Host::new(B));
                let path = path_via(&paths, k);
                s.spawn(move || measure(&a, &b, path, 70.0, Duration::from_millis(1500)))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (k, (sent, rate)) in all.drain(..).enumerate() {
        println!("all three at once, path {}: {rate:?} of {sent} sent", k + 1);
    }
}

/// The front end's forwarding rate on an uncapped path, to compare with `dataplane`'s
/// `router_throughput` (pocketscion's own router socket, unshaped topology).
#[test]
#[ignore = "measurement, not a check"]
fn front_end_throughput() {
    let _turn = turn();
    let net = Testnet::start(&topology(20.0, 0.0)).unwrap();
    let (client, server) = (Host::new(A), Host::new(B));
    let paths = net.paths(A, B).unwrap();
    let blast = Blast::new(&client, &server, path_via(&paths, 2));
    for burst in [0, 16, 4] {
        let rx = receive(&server, blast.bytes.len());
        let sent = 20_000;
        let start = Instant::now();
        for i in 0..sent {
            let _ = client.socket.send_to(&blast.bytes, blast.next_hop);
            if burst > 0 && i % burst == burst - 1 {
                thread::sleep(Duration::from_micros(50));
            }
        }
        let send_time = start.elapsed();
        let rate = rx.join().unwrap();
        println!(
            "burst {burst}: sent {sent} at {:.0} pkt/s, received {} at {:.0} pkt/s",
            sent as f64 / send_time.as_secs_f64(),
            rate.packets,
            rate.mbit * 1e6 / 8.0 / blast.bytes.len() as f64,
        );
    }
}
