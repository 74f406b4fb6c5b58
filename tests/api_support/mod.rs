//! A test double of the client's event loop for the API and CLI-client tests: a thread that
//! answers `Command`s from a small in-memory model and publishes a snapshot after each change.
//! It checks status codes, auth, paths and framing; the real engine is tested end to end with
//! real daemons.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use btscion::api::{self, ApiConfig, ApiServer};
use btscion::client::control::{
    self, info_hash_hex, ClientSide, ClientSnapshot, Command, ControlError, HopSnapshot,
    LaneSnapshot, PathSnapshot, TorrentSnapshot, TorrentSource, TorrentState, Transport,
};
use btscion::torrent::meta::{self, Metainfo};

/// What the fake saw, for assertions the API cannot show.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub removed: Vec<(String, bool)>,
    pub out_dirs: Vec<PathBuf>,
    pub peers: Vec<String>,
    pub shutdown: bool,
}

pub struct Fake {
    pub server: ApiServer,
    pub base: String,
    pub seen: Arc<Mutex<Seen>>,
    pub root: PathBuf,
    pub dir: tempfile::TempDir,
    thread: Option<JoinHandle<()>>,
    handle: control::ClientHandle,
}

impl Fake {
    /// A fake client behind a real API server on 127.0.0.1 (free port).
    pub fn start(token: Option<&str>) -> Fake {
        Self::start_with(token, Duration::from_secs(15))
    }

    pub fn start_with(token: Option<&str>, keep_alive: Duration) -> Fake {
        Self::start_configured(token, |cfg| cfg.sse_keep_alive = keep_alive)
    }

    /// A fake whose API configuration `adjust` changes first.
    pub fn start_configured(token: Option<&str>, adjust: impl FnOnce(&mut ApiConfig)) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("downloads");
        let (handle, side) = control::channel();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s2 = seen.clone();
        let thread = std::thread::spawn(move || fake_loop(side, s2));
        let mut cfg = ApiConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            root.clone(),
            dir.path().join("data"),
        );
        cfg.token = token.map(str::to_owned);
        adjust(&mut cfg);
        let server = api::spawn(cfg, handle.clone()).expect("API starts");
        let base = format!("http://{}", server.local_addr());
        let root = root.canonicalize().unwrap();
        Fake {
            server,
            base,
            seen,
            root,
            dir,
            thread: Some(thread),
            handle,
        }
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let h = self.handle.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _ = rt.block_on(h.call(Command::Shutdown));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a small single-file torrent named `name` (content from `seed`); returns its bytes.
pub fn make_torrent(dir: &Path, name: &str, seed: u8) -> Vec<u8> {
    let src = dir.join(name);
    std::fs::write(&src, vec![seed; 40_000]).unwrap();
    meta::create(&src, Some(16384), vec![], false, None).unwrap()
}

fn fake_loop(mut side: ClientSide, seen: Arc<Mutex<Seen>>) {
    let mut snap = ClientSnapshot {
        local_scion: Some("1-ff00:0:111,[127.0.0.1]:40000".into()),
        tcp_listen: Some("127.0.0.1:40000".into()),
        sciond: Some("127.0.0.1:30255".into()),
        ..Default::default()
    };
    let mut publish = |snap: &mut ClientSnapshot| {
        snap.at_unix_ms += 1;
        side.snapshots.send_replace(Arc::new(snap.clone()));
    };
    publish(&mut snap);
    while let Some(cmd) = side.commands.blocking_recv() {
        let unknown = |ih: &[u8; 20]| ControlError::UnknownTorrent(info_hash_hex(ih));
        match cmd {
            Command::Add(add, reply) => {
                let result = match &add.source {
                    TorrentSource::Magnet(_) => Err(ControlError::BadRequest(
                        "magnet links: not in the fake".into(),
                    )),
                    TorrentSource::Metainfo(bytes) => Metainfo::from_bytes(bytes)
                        .map_err(|e| ControlError::BadTorrent(e.to_string()))
                        .and_then(|m| {
                            let hex = info_hash_hex(&m.info_hash);
                            if snap.torrents.iter().any(|t| t.info_hash == hex) {
                                return Err(ControlError::Duplicate(hex));
                            }
                            let mut s = seen.lock().unwrap();
                            s.out_dirs.push(add.out_dir.clone());
                            s.peers.extend(add.peers.iter().map(|p| p.to_string()));
                            snap.torrents.push(torrent(&m, &add, hex));
                            Ok(m.info_hash)
                        }),
                };
                // Published before the reply, as the real client does: a caller that reads
                // the snapshot after the reply sees the command's effect.
                if result.is_ok() {
                    publish(&mut snap);
                }
                let _ = reply.send(result);
            }
            Command::Pause(ih, reply) => {
                set_state(&mut snap, &ih, TorrentState::Paused, reply, &mut publish)
            }
            Command::Resume(ih, reply) => set_state(
                &mut snap,
                &ih,
                TorrentState::Downloading,
                reply,
                &mut publish,
            ),
            Command::SetFilePriorities {
                info_hash, reply, ..
            }
            | Command::SetFileOrder {
                info_hash, reply, ..
            } => {
                let hex = info_hash_hex(&info_hash);
                match snap.torrents.iter().any(|t| t.info_hash == hex) {
                    true => drop(reply.send(Ok(()))),
                    false => drop(reply.send(Err(unknown(&info_hash)))),
                }
            }
            Command::Remove {
                info_hash,
                delete_data,
                reply,
            } => {
                let hex = info_hash_hex(&info_hash);
                let before = snap.torrents.len();
                snap.torrents.retain(|t| t.info_hash != hex);
                if snap.torrents.len() < before {
                    seen.lock().unwrap().removed.push((hex, delete_data));
                    publish(&mut snap);
                    let _ = reply.send(Ok(()));
                } else {
                    let _ = reply.send(Err(unknown(&info_hash)));
                }
            }
            Command::AddPeers {
                info_hash,
                peers,
                reply,
                ..
            } => {
                let hex = info_hash_hex(&info_hash);
                match snap.torrents.iter_mut().find(|t| t.info_hash == hex) {
                    Some(t) => {
                        let mut s = seen.lock().unwrap();
                        let mut new = 0;
                        for p in peers {
                            let p = p.to_string();
                            if !s.peers.contains(&p) {
                                s.peers.push(p);
                                new += 1;
                            }
                        }
                        t.peers_known += new;
                        drop(s);
                        publish(&mut snap);
                        let _ = reply.send(Ok(new));
                    }
                    None => drop(reply.send(Err(unknown(&info_hash)))),
                }
            }
            Command::SetLimits {
                info_hash,
                limits,
                reply,
            } => match info_hash {
                None => {
                    snap.limits = limits;
                    publish(&mut snap);
                    let _ = reply.send(Ok(()));
                }
                Some(ih) => {
                    let hex = info_hash_hex(&ih);
                    match snap.torrents.iter_mut().find(|t| t.info_hash == hex) {
                        Some(t) => {
                            t.limits = limits;
                            publish(&mut snap);
                            let _ = reply.send(Ok(()));
                        }
                        None => drop(reply.send(Err(unknown(&ih)))),
                    }
                }
            },
            Command::SetPathRules {
                info_hash,
                rules,
                reply,
            } => {
                let hex = info_hash_hex(&info_hash);
                match snap.torrents.iter_mut().find(|t| t.info_hash == hex) {
                    Some(t) => {
                        t.path_rules = rules.normalized();
                        publish(&mut snap);
                        let _ = reply.send(Ok(()));
                    }
                    None => drop(reply.send(Err(unknown(&info_hash)))),
                }
            }
            Command::SetSeedPolicy(p, reply) => {
                snap.seed_policy = p;
                publish(&mut snap);
                let _ = reply.send(Ok(()));
            }
            Command::SetEncryption(p, reply) => {
                snap.encryption = p;
                publish(&mut snap);
                let _ = reply.send(Ok(()));
            }
            Command::Recheck(ih, reply) => {
                set_state(&mut snap, &ih, TorrentState::Checking, reply, &mut publish)
            }
            // Streams are tested against the real client (tests/daemon_stream.rs).
            Command::Stream(cmd) => cmd.reject(ControlError::BadRequest("not in the fake".into())),
            Command::SetCategory {
                name,
                category,
                reply,
            } => {
                snap.categories.insert(name, category);
                publish(&mut snap);
                let _ = reply.send(Ok(()));
            }
            // Categories and tags of torrents: tested against the real client.
            Command::RemoveCategory { reply, .. }
            | Command::SetTorrentCategory { reply, .. }
            | Command::SetTags { reply, .. } => {
                let _ = reply.send(Err(ControlError::BadRequest("not in the fake".into())));
            }
            Command::Move { reply, .. } => {
                let _ = reply.send(Err(ControlError::BadRequest("not in the fake".into())));
            }
            // The queue is tested against the real client (tests/daemon_queue.rs).
            Command::ForceStart { reply, .. }
            | Command::QueueMove { reply, .. }
            | Command::SetQueue(_, reply) => {
                let _ = reply.send(Err(ControlError::BadRequest("not in the fake".into())));
            }
            Command::WatchReport(_) => {}
            Command::TrackerStatus { .. } | Command::Serve(_) => {}
            // The fake has no port-mapping front end: nothing to show.
            Command::PortMapping(_) => {}
            Command::Shutdown(reply) => {
                seen.lock().unwrap().shutdown = true;
                let _ = reply.send(Ok(()));
                return;
            }
        }
    }
}

fn set_state(
    snap: &mut ClientSnapshot,
    ih: &[u8; 20],
    state: TorrentState,
    reply: control::Reply<()>,
    publish: &mut impl FnMut(&mut ClientSnapshot),
) {
    let hex = info_hash_hex(ih);
    match snap.torrents.iter_mut().find(|t| t.info_hash == hex) {
        Some(t) => {
            t.state = state;
            publish(snap);
            let _ = reply.send(Ok(()));
        }
        None => drop(reply.send(Err(ControlError::UnknownTorrent(hex)))),
    }
}

fn torrent(m: &Metainfo, add: &control::AddTorrent, hex: String) -> TorrentSnapshot {
    let lane = LaneSnapshot {
        id: 1,
        peer: "1-ff00:0:112,[127.0.0.1]:40001".into(),
        transport: Transport::Scion,
        label: "via 1-ff00:0:110".into(),
        path: Some(PathSnapshot {
            fingerprint: "1-ff00:0:111#1>1-ff00:0:110#2".into(),
            hops: vec![HopSnapshot {
                ia: "1-ff00:0:110".into(),
                interface: 2,
                geo: None,
            }],
            mtu: Some(1472),
            latency_ms: Some(4.0),
            bandwidth_kbps: None,
            expiry_unix_ms: None,
            steps: Vec::new(),
            notes: Vec::new(),
        }),
        bytes_down: 16384,
        bytes_up: 0,
        rate_down: 1000.0,
        rate_up: 0.0,
        latency_ms_p50: Some(2.0),
        latency_ms_p90: Some(5.0),
        latency_ms_p99: Some(9.0),
        open: true,
        closed_reason: None,
        runtime: 0,
    };
    TorrentSnapshot {
        info_hash: hex,
        name: m.name.clone(),
        size: m.total_length,
        state: if add.paused {
            TorrentState::Paused
        } else {
            TorrentState::Downloading
        },
        error: None,
        progress: 0.25,
        wanted_bytes: m.total_length,
        wanted_done: 0,
        sequential: false,
        first_last_piece: false,
        pieces_have: 1,
        pieces_resumed: 0,
        pieces_checked: 0,
        announce: vec![],
        trackers: vec![],
        private: false,
        uploaded_by_runtime: vec![],
        category: None,
        tags: vec![],
        moving_to: None,
        queue_position: 0,
        force_start: false,
        stalled: false,
        pieces_total: m.num_pieces(),
        piece_length: m.piece_length.into(),
        bytes_down: 16384,
        bytes_up: 0,
        rate_down: 1000.0,
        rate_up: 0.0,
        ratio: 0.0,
        eta_secs: None,
        out_dir: add.out_dir.display().to_string(),
        added_unix: 1,
        limits: add.limits,
        path_rules: add.path_rules.clone(),
        files: vec![],
        peers: vec![],
        lanes: vec![lane],
        peers_known: add.peers.len(),
        peers_connected: 1,
        peers_banned: 0,
        web_seeds: vec![],
    }
}
