//! The DHT over SCION (the original client's address format) on the real local SCION network:
//! 28 bare DHT nodes spread over the five ASes of `three-paths` (one `dht-node` process, the
//! bootstrap node, and 27 in this process), a seeding daemon and a downloading daemon that
//! both know only the bootstrap node. The leecher gets a
//! magnet link with nothing but the info hash, finds the seeder through the DHT, fetches the
//! metadata and the data over SCION lanes; so does a single-shot download with the original
//! client's -enableDht / -dhtBootstrapAddr in a third AS.

mod common;

use std::time::Duration;

use btscion::discovery::dht::run_scion_node;
use btscion::discovery::scion_udp::ScionUdp;
use btscion::scion::ScionAddr;
use common::clients::Client;
use common::daemons::{peers_all_from, scion_bytes_down, state, Daemon};
use common::{
    daemon, info_hash_of, make_torrent, same_tree, testnet, testnet_on, write_random, Backend,
    Testnet, LEAF_A, LEAF_B,
};

#[test]
fn thirty_dht_nodes_over_scion_lead_a_bare_magnet_link_to_its_seeder() {
    dht_leads_a_bare_magnet_link_to_its_seeder(&testnet("three-paths"));
}

/// The same on scionproto's routers, control services and daemons.
#[test]
fn scionproto_thirty_dht_nodes_over_scion_lead_a_bare_magnet_link_to_its_seeder() {
    dht_leads_a_bare_magnet_link_to_its_seeder(&testnet_on("three-paths", Backend::Scionproto));
}

/// 28 DHT nodes over SCION in the five ASes; a seeding and a downloading daemon that know only
/// the bootstrap node, and a single-shot download with -enableDht in a third AS: the leechers
/// find the seeder only through the DHT and get byte-identical data over SCION lanes.
fn dht_leads_a_bare_magnet_link_to_its_seeder(tn: &Testnet) {
    let ases: Vec<String> = tn.state().ases.keys().cloned().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The bootstrap node is a `dht-node` process; the others join through it.
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["dht-node", "--port", "0", "--sciond", &daemon(tn, &ases[0])]);
    let work = tempfile::tempdir().unwrap();
    let mut boot_node = Client::spawn(cmd, work.path().join("dht-node.log"));
    let line = boot_node.wait_for("dht node on", Duration::from_secs(30));
    let boot: ScionAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let bind = |ia: &str| {
        rt.block_on(ScionUdp::bind(&daemon(tn, ia), None, 0))
            .expect("a DHT socket")
    };
    for i in 1..28 {
        let s = bind(&ases[i % ases.len()]);
        rt.spawn(run_scion_node(s, vec![boot], None));
    }

    let root = work.path().join("seed-root");
    let src = root.join("content");
    write_random(&src.join("x.bin"), 3_000_000, 51);
    write_random(&src.join("y/z.bin"), 1_000_001, 52);
    let torrent = root.join("c.torrent");
    make_torrent(&src, &torrent, Some(64 * 1024));
    let ih = btscion::client::control::info_hash_hex(&info_hash_of(&torrent));
    let node_args = |ia: &str| {
        vec![
            format!("--local={ia},[127.0.0.1]:0"),
            format!("--sciond={}", daemon(tn, ia)),
            "--dht-scion=0".to_string(),
            format!("--dht-scion-bootstrap={boot}"),
        ]
    };
    let mut seeder_args = node_args(LEAF_A);
    seeder_args.push(format!("--download-root={}", root.display()));
    let seeder = Daemon::start(&work.path().join("seeder"), &seeder_args, &[]);
    assert_eq!(seeder.add_torrent_path("c.torrent", ""), ih);
    seeder.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "seeding");

    let leecher = Daemon::start(&work.path().join("leecher"), &node_args(LEAF_B), &[]);
    let out = leecher.cli(&["add", &format!("magnet:?xt=urn:btih:{ih}")]);
    assert_eq!(out.0, 0, "{out:?}");
    let t = leecher.wait_torrent(&ih, Duration::from_secs(180), |t| state(t) == "seeding");
    // Its lanes stay open after the download: they show where the data came from.
    assert!(scion_bytes_down(&t) > 0, "no bytes over SCION lanes: {t:#}");
    assert!(
        peers_all_from(&t, "dht"),
        "every peer came from the DHT (or dialled us): {t:#}"
    );
    same_tree(&src, &leecher.data_dir.join("downloads/content"));

    // The original client's flags: a single-shot download in a third AS with -enableDht.
    let third = ases.iter().find(|a| *a != LEAF_A && *a != LEAF_B).unwrap();
    let out = work.path().join("single-out");
    let r = common::run(
        &[
            format!("-inPath=magnet:?xt=urn:btih:{ih}"),
            format!("-outPath={}", out.display()),
            "-enableDht".into(),
            format!("-dhtBootstrapAddr={boot}"),
        ],
        &[("SCION_DAEMON_ADDRESS", daemon(tn, third))],
        Duration::from_secs(240),
    );
    assert!(
        r.status.success(),
        "single-shot DHT download failed: {}\n{}",
        r.stdout,
        r.stderr
    );
    same_tree(&src, &out);
    drop(rt);
}
