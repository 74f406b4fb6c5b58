//! Trackers as a discovery front end. Every torrent that runs (fetching its metadata,
//! downloading or seeding) and has trackers gets an announcer (`bt-tracker`); peers it finds go into the torrent's peer book
//! (`AddPeers`, source `tracker`), and its per-tracker status comes back into the torrent's
//! snapshot (`TrackerStatus`). A torrent that pauses, fails or goes away stops its announcer,
//! which tells the trackers `stopped`; so does a client that shuts down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use bt_tracker::client::{AnnouncerConfig, AnnouncerHandle, ScionHttp, TrackerTls};
use tokio::sync::watch;

use crate::client::control::{
    parse_info_hash, ClientHandle, ClientSnapshot, Command, TorrentSnapshot,
};
use crate::client::trackers::spawn_announcer;
use crate::discovery::scion_http::LazyScionHttp;
use crate::scion::ScionAddr;

/// The TLS roots for https:// trackers: the system's, webpki's and the `--tracker-ca` files.
pub fn tracker_tls(
    ca_files: &[std::path::PathBuf],
) -> Result<TrackerTls, crate::cli::exit::CliError> {
    if ca_files.is_empty() {
        return Ok(TrackerTls::default());
    }
    TrackerTls::with_extra_cas(ca_files)
        .map_err(|e| crate::cli::exit::usage(format!("--tracker-ca: {e}")))
}

/// Starts the tracker front end on a thread of its own; it ends (after telling the trackers
/// `stopped`) when the client is gone. Join it to let those last announces out. `tls` holds
/// the roots https:// trackers are checked against.
pub fn spawn_trackers(handle: ClientHandle, tls: TrackerTls) -> std::io::Result<JoinHandle<()>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bts-trackers".into())
        .spawn(move || rt.block_on(run(handle, tls)))
}

struct Running {
    announcer: AnnouncerHandle,
    forward: tokio::task::JoinHandle<()>,
}

async fn run(handle: ClientHandle, tls: TrackerTls) {
    let mut snapshots = handle.subscribe();
    let peer_id = announce_peer_id();
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut scion_http: Option<ScionHttp> = None;
    loop {
        let snap = snapshots.borrow_and_update().clone();
        if scion_http.is_none() {
            // Trackers over SCION once the client runs with SCION; the socket opens at first use.
            scion_http = snap.sciond.clone().map(|sciond| {
                let host = snap
                    .local_scion
                    .as_deref()
                    .and_then(|a| a.parse::<ScionAddr>().ok())
                    .map(|a| a.host);
                ScionHttp(std::sync::Arc::new(LazyScionHttp::new(sciond, host)))
            });
        }
        reconcile(
            &handle,
            &snap,
            peer_id,
            scion_http.as_ref(),
            &tls,
            &mut running,
        );
        if snapshots.changed().await.is_err() {
            break;
        }
    }
    // The client stopped: `stopped` to every tracker that knows us, all at once.
    let tasks: Vec<_> = running
        .into_values()
        .map(|r| tokio::spawn(stop(r)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// Starts announcers for torrents that want one and stops those whose torrent no longer does
/// (on the current runtime).
fn reconcile(
    handle: &ClientHandle,
    snap: &ClientSnapshot,
    peer_id: [u8; 20],
    scion_http: Option<&ScionHttp>,
    tls: &TrackerTls,
    running: &mut HashMap<String, Running>,
) {
    let wanted: HashMap<&str, &TorrentSnapshot> = snap
        .torrents
        .iter()
        .filter(|t| wants_announcer(t))
        .map(|t| (t.info_hash.as_str(), t))
        .collect();
    let gone: Vec<String> = running
        .keys()
        .filter(|ih| !wanted.contains_key(ih.as_str()))
        .cloned()
        .collect();
    for ih in gone {
        if let Some(r) = running.remove(&ih) {
            // Not awaited here: a slow tracker must not hold up the others.
            tokio::spawn(stop(r));
        }
    }
    for (ih, t) in wanted {
        if running.contains_key(ih) {
            continue;
        }
        let Ok(info_hash) = parse_info_hash(ih) else {
            continue;
        };
        let config = AnnouncerConfig {
            peer_id,
            port: snap
                .tcp_listen
                .as_deref()
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .map_or(0, |a| a.port()),
            scion: snap
                .local_scion
                .as_deref()
                .and_then(|a| a.parse::<ScionAddr>().ok()),
            scion_http: scion_http.cloned(),
            tls: tls.clone(),
            ..AnnouncerConfig::default()
        };
        let announcer = spawn_announcer(handle.clone(), info_hash, t.announce.clone(), config);
        let forward = tokio::spawn(forward_status(
            handle.clone(),
            info_hash,
            announcer.subscribe(),
        ));
        running.insert(ih.to_string(), Running { announcer, forward });
    }
}

fn wants_announcer(t: &TorrentSnapshot) -> bool {
    !t.announce.is_empty() && super::wants_peers(t)
}

/// Hands each status change of an announcer to the client, for the torrent's snapshot.
async fn forward_status(
    handle: ClientHandle,
    info_hash: [u8; 20],
    mut status: watch::Receiver<bt_tracker::client::AnnouncerStatus>,
) {
    loop {
        let trackers = status.borrow_and_update().trackers.clone();
        let sent = handle.notify(Command::TrackerStatus {
            info_hash,
            trackers,
        });
        if !sent || status.changed().await.is_err() {
            return;
        }
        // Status changes come in bursts (one per tracker of a tier): report a settled one.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stop(r: Running) {
    r.forward.abort();
    r.announcer.stop().await;
}

/// The peer id told to trackers: Azureus style with our client code, random otherwise.
fn announce_peer_id() -> [u8; 20] {
    let mut id = *b"-BS0001-000000000000";
    for b in &mut id[8..] {
        *b = b'0' + rand::random::<u8>() % 10;
    }
    id
}
