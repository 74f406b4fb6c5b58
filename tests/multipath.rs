//! Multipath on the three-paths topology: failover when a link dies mid-download, and path
//! policy.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn download_survives_a_link_going_down_midway() {
    link_goes_down_midway(&testnet("three-paths"));
}

/// The same on scionproto: the link dies in tc, both routers' BFD sessions time out (~0.6 s,
/// packets on the link just vanish until then), and the real router's SCMP "external
/// interface down" is what closes the lane, as on a SCIONLab AS.
#[test]
fn scionproto_download_survives_a_link_going_down_midway() {
    link_goes_down_midway(&testnet_on("three-paths", Backend::Scionproto));
}

/// 48 MiB from 112 to 111 over the three disjoint paths; once a quarter of the pieces are in,
/// the link 111#1 goes down. The download completes byte-identical, the lane over the link
/// was closed by the routers' SCMP external-interface-down, and the two other lanes carried
/// the rest.
fn link_goes_down_midway(tn: &Testnet) {
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 48 << 20, 11, Some(128 * 1024));
    let (_seed, addr) = seeder(tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let metrics = dir.path().join("m.json");
    let killer = {
        let (out, data) = (out.clone(), data.clone());
        let ctl = tn.state().control.expect("control address");
        std::thread::spawn(move || {
            // Once a quarter of the pieces are in, cut the link 1-ff00:0:111#1.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            let mut done = 0;
            while std::time::Instant::now() < deadline {
                done = verified_pieces(&data, &out, 128 * 1024);
                if done >= 96 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let down = scion_testnet::ControlRequest::SetLink {
                ia: LEAF_A.to_string(),
                interface: 1,
                up: false,
            };
            scion_testnet::control_request(ctl, &down).expect("link down");
            done
        })
    };
    let r = leech(
        tn,
        LEAF_A,
        &torrent,
        &out,
        &addr,
        &[&format!("-metricsJson={}", metrics.display())],
    );
    let pieces_at_cut = killer.join().unwrap();
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    assert!(
        (96..384).contains(&pieces_at_cut),
        "link cut mid-download: {pieces_at_cut}/384 pieces"
    );
    same_tree(&data, &out);
    let s = json(&metrics);
    let l = lanes(&s);
    // the lane over the dead link was closed, the others carried the rest
    let dead: Vec<_> = s["lanes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["path"].as_str().unwrap().starts_with("1-ff00:0:111#1 "))
        .collect();
    assert!(!dead.is_empty(), "a lane used the link: {l:?}");
    assert!(
        dead.iter().all(|x| !x["closed"].is_null()),
        "lane over the dead link closed: {l:?}"
    );
    assert!(
        dead.iter().any(|x| x["closed"]
            .as_str()
            .unwrap()
            .contains("ExternalInterfaceDown { ia: 1-ff00:0:111, interface: 1")),
        "the routers' SCMP closed the lane: {dead:?}"
    );
    assert!(
        l.iter()
            .filter(|(p, b)| !p.starts_with("1-ff00:0:111#1 ") && *b > 0)
            .count()
            >= 2,
        "{l:?}"
    );
}

#[test]
fn path_policy_excludes_a_path_completely() {
    let tn = testnet("three-paths");
    let dir = tempfile::tempdir().unwrap();
    let (data, torrent) = random_torrent(dir.path(), 8 << 20, 12, None);
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let metrics = dir.path().join("m.json");
    let r = leech(
        &tn,
        LEAF_A,
        &torrent,
        &out,
        &addr,
        &[
            "-pathPolicy=deny=1-ff00:0:120",
            &format!("-metricsJson={}", metrics.display()),
        ],
    );
    assert!(r.status.success(), "{}", r.stderr);
    same_tree(&data, &out);
    let l = lanes(&json(&metrics));
    assert!(l.iter().all(|(p, _)| !p.contains("1-ff00:0:120")), "{l:?}");
    assert_eq!(l.iter().filter(|(_, b)| *b > 0).count(), 2, "{l:?}");

    // a policy no path satisfies: clear error, exit 4
    let r = leech(
        &tn,
        LEAF_A,
        &torrent,
        &dir.path().join("o2.bin"),
        &addr,
        &["-pathPolicy=deny=1"],
    );
    assert_eq!(r.status.code(), Some(4), "{}", r.stderr);
    assert!(r.stderr.contains("path policy"), "{}", r.stderr);
}

/// scionproto: the leecher's SCION daemon is stopped a little into a download and started
/// again (same address) once the leecher has said that path refresh fails. Its paths stay in
/// use meanwhile, it says when refresh works again, and the download completes
/// byte-identical. The links at 111 are capped at 4 Mbit/s each so that the download (32 MiB,
/// ~22 s) outlasts a refresh period (10 s) and the retry after the restart.
#[test]
fn scionproto_download_survives_the_leechers_daemon_restarting() {
    let mut topology = Topology::builtin("three-paths-capped").unwrap();
    for l in topology
        .links
        .iter_mut()
        .filter(|l| l.bandwidth_mbit.is_some())
    {
        l.bandwidth_mbit = Some(4.0);
    }
    let options = StartOptions {
        backend: Backend::Scionproto,
        ..Default::default()
    };
    let tn = Testnet::start_with(&topology, options).expect("testnet starts");
    let dir = tempfile::tempdir().unwrap();
    let piece = 128 * 1024;
    let (data, torrent) = random_torrent(dir.path(), 32 << 20, 13, Some(piece as u32));
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    let out = dir.path().join("out.bin");
    let daemon_addr = daemon(&tn, LEAF_A);
    let mut cmd = std::process::Command::new(bin());
    cmd.arg(format!("-inPath={}", torrent.display()))
        .arg(format!("-outPath={}", out.display()))
        .arg(format!("-peer={addr}"))
        .arg("-seed=false")
        .env("SCION_DAEMON_ADDRESS", &daemon_addr);
    let mut leecher = common::clients::Client::spawn(cmd, dir.path().join("leech.log"));
    let total = 256;
    let wait_until = |what: &str, leecher: &common::clients::Client, f: &dyn Fn() -> bool| {
        // Generous: on a loaded 2-core machine a scionproto daemon takes seconds to start.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !f() {
            assert!(
                Instant::now() < deadline,
                "no {what} within 120 s; leecher's log:\n{}",
                leecher.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_until("first pieces", &leecher, &|| {
        verified_pieces(&data, &out, piece) >= 4
    });
    tn.set_daemon(LEAF_A, false).expect("daemon stops");
    let failed =
        format!("path refresh for AS {LEAF_B} failed: cannot reach SCION daemon at {daemon_addr}");
    wait_until("warning that path refresh fails", &leecher, &|| {
        leecher.log().contains(&failed)
    });
    let at_warning = verified_pieces(&data, &out, piece);
    tn.set_daemon(LEAF_A, true).expect("daemon starts again");
    let again = format!(
        "path refresh for AS {LEAF_B} works again: the SCION daemon at {daemon_addr} answered"
    );
    wait_until("word that path refresh works again", &leecher, &|| {
        leecher.log().contains(&again)
    });
    let at_recovery = verified_pieces(&data, &out, piece);
    let status = leecher.wait_exit(Duration::from_secs(300));
    let log = leecher.log();
    assert!(status.success(), "{status}; leecher's log:\n{log}");
    assert!(
        at_recovery < total,
        "the download was still running when refresh worked again: {at_warning} then \
         {at_recovery} of {total} pieces"
    );
    same_tree(&data, &out);
    // One warning for the outage, not one per retry.
    assert_eq!(log.matches(&failed).count(), 1, "{log}");
}

/// scionproto: every link of the leecher's AS is down (tc) before the download starts. The
/// daemon still hands out its paths (segments stay valid for hours), the leecher's router
/// answers every packet with SCMP external-interface-down: the download ends with exit 4
/// and an error naming the destination, in bounded time.
#[test]
fn scionproto_no_path_to_the_seeder_is_a_clear_error() {
    let tn = testnet_on("three-paths", Backend::Scionproto);
    let dir = tempfile::tempdir().unwrap();
    let (_data, torrent) = random_torrent(dir.path(), 1 << 20, 14, None);
    let data = dir.path().join("data.bin");
    let (_seed, addr) = seeder(&tn, LEAF_B, &torrent, &data, dir.path(), &[]);
    for interface in 1..=3 {
        tn.set_link(LEAF_A, interface, false).unwrap();
    }
    let out = dir.path().join("out.bin");
    let r = common::run(
        &[
            format!("-inPath={}", torrent.display()),
            format!("-outPath={}", out.display()),
            format!("-peer={addr}"),
            "-seed=false".to_string(),
        ],
        &[("SCION_DAEMON_ADDRESS", daemon(&tn, LEAF_A))],
        Duration::from_secs(180),
    );
    assert_eq!(r.status.code(), Some(4), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(LEAF_B),
        "names the destination: {}",
        r.stderr
    );
}
