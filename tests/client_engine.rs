//! The multi-torrent client, driven only through its control channel: one client seeds two
//! torrents (single- and multi-file), a second downloads both at once over TCP, with pause,
//! resume, peers added while running, an unknown torrent refused, removal with its data, and
//! magnet links whose metadata comes from the other client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use btscion::client::control::{
    AddTorrent, ClientHandle, ClientSnapshot, Command, InfoHash, PeerSource, TorrentSource,
    TorrentState,
};
use btscion::client::{self, ClientConfig, ClientError};
use btscion::scion::PeerAddr;

struct Running {
    handle: ClientHandle,
    thread: Option<JoinHandle<Result<(), ClientError>>>,
    rt: tokio::runtime::Runtime,
}

impl Running {
    fn start(data_dir: &Path) -> Self {
        let (handle, side) = client::channel();
        let mut cfg = ClientConfig::new(data_dir.to_path_buf());
        // Nothing listens there: the client runs TCP only.
        cfg.sciond = Some("127.0.0.1:1".into());
        cfg.tcp_listen = Some("127.0.0.1:0".parse().unwrap());
        let thread = Some(std::thread::spawn(move || client::run(cfg, side)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self { handle, thread, rt }
    }

    fn add(&self, bytes: &[u8], out_dir: &Path, peers: Vec<PeerAddr>, paused: bool) -> InfoHash {
        self.add_source(
            TorrentSource::Metainfo(bytes.to_vec()),
            out_dir,
            peers,
            paused,
        )
    }

    fn add_source(
        &self,
        source: TorrentSource,
        out_dir: &Path,
        peers: Vec<PeerAddr>,
        paused: bool,
    ) -> InfoHash {
        let add = AddTorrent {
            source,
            out_dir: out_dir.to_path_buf(),
            paused,
            peers,
            limits: Default::default(),
            files: Default::default(),
            path_rules: Default::default(),
            labels: Default::default(),
        };
        self.rt
            .block_on(self.handle.call(|r| Command::Add(Box::new(add), r)))
            .expect("add")
    }

    /// Adds peers to a running torrent (as the API would); how many were new.
    fn add_peers(&self, info_hash: InfoHash, peers: Vec<PeerAddr>) -> usize {
        self.rt
            .block_on(self.handle.call(|reply| Command::AddPeers {
                info_hash,
                peers,
                source: PeerSource::Api,
                reply,
            }))
            .expect("add peers")
    }

    fn call(&self, make: impl FnOnce(btscion::client::control::Reply<()>) -> Command) {
        self.rt.block_on(self.handle.call(make)).expect("command");
    }

    /// Waits (up to `secs`) for a snapshot that satisfies `ok`.
    fn wait(&self, secs: u64, what: &str, ok: impl Fn(&ClientSnapshot) -> bool) -> ClientSnapshot {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.handle.snapshot();
            if ok(&s) {
                return (*s).clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last snapshot: {:#?}",
                s.torrents
                    .iter()
                    .map(|t| (&t.name, t.state, t.pieces_have, t.peers_connected, &t.error))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn tcp(&self) -> SocketAddr {
        let s = self.wait(10, "the TCP listener", |s| s.tcp_listen.is_some());
        s.tcp_listen.unwrap().parse().unwrap()
    }

    fn shutdown(mut self) {
        self.call(Command::Shutdown);
        let r = self.thread.take().unwrap().join().unwrap();
        assert!(r.is_ok(), "client ended with {r:?}");
    }
}

fn state_of(s: &ClientSnapshot, ih: &InfoHash) -> Option<TorrentState> {
    let hex = btscion::client::control::info_hash_hex(ih);
    s.torrents
        .iter()
        .find(|t| t.info_hash == hex)
        .map(|t| t.state)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// A single-file and a multi-file torrent under `dir/seed`; returns their .torrent bytes.
fn make_torrents(dir: &Path) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let seed = dir.join("seed");
    std::fs::create_dir_all(seed.join("multi/sub")).unwrap();
    std::fs::write(seed.join("single.bin"), data(3 << 20, 1)).unwrap();
    std::fs::write(seed.join("multi/a.bin"), data(1 << 20, 2)).unwrap();
    std::fs::write(seed.join("multi/sub/b.bin"), data(700_001, 3)).unwrap();
    let create = |p: PathBuf| {
        btscion::torrent::meta::create(&p, Some(1 << 16), vec![], false, None).unwrap()
    };
    let single = create(seed.join("single.bin"));
    let multi = create(seed.join("multi"));
    (seed, single, multi)
}

#[test]
fn one_client_downloads_two_torrents_from_another_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, single, multi) = make_torrents(dir.path());

    let seeder = Running::start(&dir.path().join("seeder-state"));
    let s1 = seeder.add(&single, &seed_dir, vec![], false);
    let s2 = seeder.add(&multi, &seed_dir, vec![], false);
    seeder.wait(30, "the seeder to check its data", |s| {
        state_of(s, &s1) == Some(TorrentState::Seeding)
            && state_of(s, &s2) == Some(TorrentState::Seeding)
    });
    let seeder_addr = PeerAddr::Ip(seeder.tcp());

    let out = dir.path().join("down");
    let leecher = Running::start(&dir.path().join("leecher-state"));
    // The multi-file torrent starts paused and without peers: added later through AddPeers.
    let l1 = leecher.add(&single, &out, vec![seeder_addr], false);
    let l2 = leecher.add(&multi, &out, vec![], true);
    assert_eq!((l1, l2), (s1, s2));
    leecher.wait(60, "the single-file download", |s| {
        state_of(s, &l1) == Some(TorrentState::Seeding)
    });
    assert_eq!(
        state_of(&leecher.handle.snapshot(), &l2),
        Some(TorrentState::Paused)
    );
    leecher.call(|r| Command::Resume(l2, r));
    let added = leecher.add_peers(l2, vec![seeder_addr, seeder_addr]);
    assert_eq!(added, 1, "the same address twice is one peer");
    let snap = leecher.wait(60, "the multi-file download", |s| {
        state_of(s, &l2) == Some(TorrentState::Seeding)
    });
    let t2 = snap.torrents.iter().find(|t| t.name == "multi").unwrap();
    assert!(
        t2.files.iter().all(|f| f.done == f.length),
        "{:?}",
        t2.files
    );

    for rel in ["single.bin", "multi/a.bin", "multi/sub/b.bin"] {
        assert!(
            std::fs::read(seed_dir.join(rel)).unwrap() == std::fs::read(out.join(rel)).unwrap(),
            "{rel} differs"
        );
    }

    // The seeder saw both torrents' lanes on its one listener (its snapshot may be a publish
    // behind the leecher's).
    seeder.wait(10, "the seeder's upload counters", |s| {
        s.torrents.iter().all(|t| t.bytes_up > 0)
    });

    // Removing with its data stops its lanes and deletes its files, nothing else.
    leecher.call(|r| Command::Remove {
        info_hash: l2,
        delete_data: true,
        reply: r,
    });
    assert!(!out.join("multi").exists());
    assert!(out.join("single.bin").exists());
    assert_eq!(leecher.handle.snapshot().torrents.len(), 1);
    let unknown = leecher
        .rt
        .block_on(leecher.handle.call(|r| Command::Pause([7; 20], r)));
    assert!(unknown.is_err());
    let magnet = leecher.rt.block_on(leecher.handle.call(|r| {
        Command::Add(
            Box::new(AddTorrent {
                source: TorrentSource::Magnet("magnet:?xt=urn:btih:00".into()),
                out_dir: out.clone(),
                paused: false,
                peers: vec![],
                limits: Default::default(),
                files: Default::default(),
                path_rules: Default::default(),
                labels: Default::default(),
            }),
            r,
        )
    }));
    assert!(
        matches!(&magnet, Err(e) if e.to_string().contains("bad magnet link")),
        "{magnet:?}"
    );

    leecher.shutdown();
    seeder.shutdown();
}

#[test]
fn an_incoming_lane_for_an_unknown_torrent_is_closed() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, single, _) = make_torrents(dir.path());
    let c = Running::start(&dir.path().join("state"));
    let ih = c.add(&single, &seed_dir, vec![], false);
    c.wait(30, "seeding", |s| {
        state_of(s, &ih) == Some(TorrentState::Seeding)
    });
    let mut tcp = std::net::TcpStream::connect(c.tcp()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&[0xee; 20]); // no such torrent
    hs.extend_from_slice(b"-XX0000-000000000000");
    tcp.write_all(&hs).unwrap();
    let mut buf = [0u8; 68];
    // Closed without an answer.
    assert_eq!(tcp.read(&mut buf).unwrap_or(0), 0);
    c.shutdown();
}

fn hex(ih: &InfoHash) -> String {
    btscion::client::control::info_hash_hex(ih)
}

#[test]
fn magnet_links_fetch_their_metadata_from_a_peer_then_download() {
    let dir = tempfile::tempdir().unwrap();
    let (seed_dir, single, multi) = make_torrents(dir.path());
    let seeder = Running::start(&dir.path().join("seeder-state"));
    let s1 = seeder.add(&single, &seed_dir, vec![], false);
    let s2 = seeder.add(&multi, &seed_dir, vec![], false);
    seeder.wait(30, "the seeder to check its data", |s| {
        state_of(s, &s1) == Some(TorrentState::Seeding)
            && state_of(s, &s2) == Some(TorrentState::Seeding)
    });
    let seeder_addr = seeder.tcp();

    let out = dir.path().join("down");
    let leecher = Running::start(&dir.path().join("leecher-state"));
    // The multi-file torrent: the link names its peer (x.pe) and nothing else.
    let link = format!("magnet:?xt=urn:btih:{}&x.pe={seeder_addr}", hex(&s2));
    let m2 = leecher.add_source(TorrentSource::Magnet(link), &out, vec![], false);
    assert_eq!(m2, s2);
    // The single-file one, in base32 with a name, and no peer yet.
    let b32 = data_encoding::BASE32.encode(&s1);
    let link = format!("magnet:?xt=urn:btih:{b32}&dn=the%20single%20file");
    let m1 = leecher.add_source(TorrentSource::Magnet(link), &out, vec![], false);
    assert_eq!(m1, s1);
    let snap = leecher.handle.snapshot();
    let t1 = snap
        .torrents
        .iter()
        .find(|t| t.info_hash == hex(&s1))
        .unwrap();
    assert_eq!(t1.state, TorrentState::FetchingMetadata);
    assert_eq!(t1.name, "the single file");

    leecher.wait(60, "the multi-file magnet download", |s| {
        state_of(s, &s2) == Some(TorrentState::Seeding)
    });
    for rel in ["multi/a.bin", "multi/sub/b.bin"] {
        assert!(
            std::fs::read(seed_dir.join(rel)).unwrap() == std::fs::read(out.join(rel)).unwrap(),
            "{rel} differs"
        );
    }
    // The other waits for a peer until one is added while it runs.
    assert_eq!(
        state_of(&leecher.handle.snapshot(), &s1),
        Some(TorrentState::FetchingMetadata)
    );
    let added = leecher.add_peers(s1, vec![PeerAddr::Ip(seeder_addr)]);
    assert_eq!(added, 1);
    leecher.wait(60, "the single-file magnet download", |s| {
        state_of(s, &s1) == Some(TorrentState::Seeding)
    });
    assert!(
        std::fs::read(seed_dir.join("single.bin")).unwrap()
            == std::fs::read(out.join("single.bin")).unwrap()
    );
    leecher.shutdown();
    seeder.shutdown();
}

/// Three clients on one torrent, in `dir`: seeder S, leecher A that knows only S, and
/// leecher B that knows only A. Limits keep everyone busy long enough: S uploads at 1 MB/s,
/// A downloads at 400 kB/s. Returns them once B is added, with the torrent, S's address and
/// the seeded data's directory.
struct PexSwarm {
    s: Running,
    a: Running,
    b: Running,
    ih: InfoHash,
    s_addr: SocketAddr,
    seed_dir: PathBuf,
}

fn pex_swarm(dir: &Path, private: bool) -> PexSwarm {
    use btscion::client::control::Limits;
    let limit = |r: &Running, ih: InfoHash, down: Option<u64>, up: Option<u64>| {
        r.call(|reply| Command::SetLimits {
            info_hash: Some(ih),
            limits: Limits {
                download_bps: down,
                upload_bps: up,
            },
            reply,
        })
    };
    let (seed_dir, single, _) = make_torrents(dir);
    let single = if private {
        btscion::torrent::meta::create(
            &seed_dir.join("single.bin"),
            Some(1 << 16),
            vec![],
            true,
            None,
        )
        .unwrap()
    } else {
        single
    };
    let s = Running::start(&dir.join("s"));
    let ih = s.add(&single, &seed_dir, vec![], false);
    s.wait(30, "S seeding", |x| {
        state_of(x, &ih) == Some(TorrentState::Seeding)
    });
    limit(&s, ih, None, Some(1_000_000));
    let s_addr = s.tcp();

    let a = Running::start(&dir.join("a"));
    a.add(
        &single,
        &dir.join("a-out"),
        vec![PeerAddr::Ip(s_addr)],
        true,
    );
    limit(&a, ih, Some(400_000), None);
    a.call(|r| Command::Resume(ih, r));
    a.wait(60, "A to have a few pieces", |x| {
        x.torrents.iter().any(|t| t.pieces_have >= 4)
    });
    let a_addr = a.tcp();

    let b = Running::start(&dir.join("b"));
    b.add(
        &single,
        &dir.join("b-out"),
        vec![PeerAddr::Ip(a_addr)],
        false,
    );
    PexSwarm {
        s,
        a,
        b,
        ih,
        s_addr,
        seed_dir,
    }
}

/// Peer exchange: B learns S from A's ut_pex and downloads from both.
#[test]
fn a_peer_learnt_through_pex_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let PexSwarm {
        s,
        a,
        b,
        ih,
        s_addr,
        seed_dir,
    } = pex_swarm(dir.path(), false);
    b.wait(60, "B to connect to S, learnt through PEX", |x| {
        x.torrents
            .iter()
            .flat_map(|t| &t.peers)
            .any(|p| p.addr == s_addr.to_string() && p.source == PeerSource::Pex)
    });
    b.wait(60, "B complete", |x| {
        state_of(x, &ih) == Some(TorrentState::Seeding)
    });
    assert!(
        std::fs::read(seed_dir.join("single.bin")).unwrap()
            == std::fs::read(dir.path().join("b-out/single.bin")).unwrap()
    );
    // Who gave B what: A uploads only to B (S is a seed and asks for nothing), so B's bytes
    // beyond what A uploaded came from S — whichever way the lanes between them were dialled.
    std::thread::sleep(Duration::from_millis(2500)); // a fresh snapshot everywhere
    let total = |r: &Running, f: fn(&btscion::client::control::TorrentSnapshot) -> u64| {
        r.handle.snapshot().torrents.iter().map(f).sum::<u64>()
    };
    let b_down = total(&b, |t| t.bytes_down);
    let a_up = total(&a, |t| t.bytes_up);
    assert!(a_up > 0, "A gave B nothing");
    assert!(
        b_down > a_up,
        "S gave B nothing: B got {b_down}, A sent {a_up}"
    );
    b.shutdown();
    a.shutdown();
    s.shutdown();
}

/// BEP 27: the same swarm with a private torrent. A must not tell B about S (no ut_pex for a
/// private torrent), so B completes from A alone: B never knows S, S never sees B.
#[test]
fn a_private_torrent_is_never_exchanged_through_pex() {
    let dir = tempfile::tempdir().unwrap();
    let PexSwarm {
        s,
        a,
        b,
        ih,
        s_addr,
        seed_dir,
    } = pex_swarm(dir.path(), true);
    let leaked = std::cell::Cell::new(None);
    b.wait(90, "B complete from A alone", |x| {
        for t in &x.torrents {
            if t.peers_known > 1 || t.peers.iter().any(|p| p.source == PeerSource::Pex) {
                leaked.set(Some(format!("{:?}", t.peers)));
            }
        }
        state_of(x, &ih) == Some(TorrentState::Seeding)
    });
    assert_eq!(leaked.take(), None, "B learnt a peer of a private torrent");
    assert!(
        std::fs::read(seed_dir.join("single.bin")).unwrap()
            == std::fs::read(dir.path().join("b-out/single.bin")).unwrap()
    );
    let s_peers: Vec<String> = s.handle.snapshot().torrents[0]
        .peers
        .iter()
        .map(|p| p.addr.clone())
        .collect();
    assert!(
        s_peers.len() <= 1,
        "S should serve A alone (S is {s_addr}): {s_peers:?}"
    );
    b.shutdown();
    a.shutdown();
    s.shutdown();
}
