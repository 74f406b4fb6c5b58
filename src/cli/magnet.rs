//! A single-shot download of a magnet link: first the metadata (BEP 9), fetched by a client of
//! its own from the link's peers (`x.pe`), the command line's and the link's trackers' (`tr`);
//! then the download runs as with a .torrent, dialling those peers again.

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{Mode, TransferArgs};
use super::exit::{self, CliError};
use super::run::{liveness_rules, tracker_report};
use super::signals::Stopper;
use super::single::{split_peers, start_single};
use crate::client::control::{self, PeerSource};
use crate::client::magnet::FetchFailure;
use crate::client::phase::Phase;
use crate::client::EngineOptions;
use crate::net::uring;
use crate::scion::PeerAddr;
use crate::torrent::meta::Metainfo;

/// How long the fetch waits without any peer to ask before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// With the DHT, finding a first peer takes a few lookups.
const DHT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The metadata of `uri`. The link's peers join `t.peers`; `--save-torrent` gets the .torrent.
pub fn metadata_of_magnet(
    t: &mut TransferArgs,
    uri: &str,
    stopper: &Stopper,
) -> Result<Arc<Metainfo>, CliError> {
    if t.mode == Mode::Seed {
        return Err(exit::usage(
            "seeding needs a .torrent file, not a magnet link",
        ));
    }
    let magnet = bt_ext::parse_magnet(uri)
        .map_err(|e| exit::bad_torrent(format!("bad magnet link: {e}")))?;
    for p in &magnet.peers {
        let p = p.to_string();
        if !t.peers.contains(&p) {
            t.peers.push(p);
        }
    }
    if t.peers.is_empty() && magnet.trackers.is_empty() && !t.enable_dht {
        return Err(exit::usage(
            "fetching a magnet link's metadata needs a peer (-peer / --peer, or x.pe in the \
             link), a tracker (tr in the link) or the DHT (-enableDht)",
        ));
    }
    let bytes = tokio_uring::start(fetch(t.clone(), uri.to_string(), stopper))?;
    if let Some(path) = &t.save_torrent {
        fs::write(path, &bytes)
            .map_err(|e| exit::other(format!("cannot write {}: {e}", path.display())))?;
        tracing::info!("metadata saved as {}", path.display());
    }
    Metainfo::from_bytes(&bytes)
        .map(Arc::new)
        .map_err(|e| exit::bad_torrent(format!("fetched metadata: {e}")))
}

/// Runs a client until the magnet torrent's metadata arrived; its .torrent bytes.
async fn fetch(t: TransferArgs, uri: String, stopper: &Stopper) -> Result<Vec<u8>, CliError> {
    let (peers, tcp_peers) = split_peers(&t.peers)?;
    let mut opts = EngineOptions {
        // One lane per SCION peer is plenty for a few metadata pieces.
        max_lanes: Some(1),
        liveness: liveness_rules(&t)?,
        metadata_only: true,
        encryption: t.encryption,
        connect_timeout: Some(if t.enable_dht {
            DHT_CONNECT_TIMEOUT
        } else {
            CONNECT_TIMEOUT
        }),
        ..Default::default()
    };
    // The link's trackers and the DHT announce it and feed peers into its book.
    let (handle, side) = control::channel();
    let dht = super::single::start_scion_dht(&t, &handle, &[], &mut opts)?;
    let mut single = start_single(&t, &peers, None, None, opts).await?;
    let book: Vec<(PeerAddr, PeerSource)> = single
        .book(&peers, &tcp_peers)
        .into_iter()
        .map(|p| (p, PeerSource::Cli))
        .collect();
    let out_dir = t.out.clone().unwrap_or_default();
    let settings = crate::client::torrent::settings(out_dir, false, Default::default(), &[]);
    let ih = single
        .client
        .add_magnet(&uri, settings, &book, Instant::now())
        .map_err(|e| exit::bad_torrent(e.to_string()))?;
    // Before the start line, which scripts wait for before they may send a signal.
    stopper.stops(&handle);
    println!(
        "fetching the metadata of {} tcp {} as {}",
        control::info_hash_hex(&ih),
        single.tcp_addr,
        super::single::shown_scion(&single.local, single.scion_on)
    );
    single.client.attach_control(side.commands, side.snapshots);
    let tls = crate::discovery::tracker_tls(&t.tracker_ca)?;
    let trackers = crate::discovery::spawn_trackers(handle, tls)
        .map_err(|e| exit::other(format!("cannot start the tracker client: {e}")))?;
    let ran = uring::run(single.socket, &mut single.net, &mut single.client).await;
    single.client.stop_listening().await;
    ran.map_err(|e| exit::other(e.to_string()))?;
    let outcome = single.client.torrent(&ih).map(|t| {
        let failure = match &t.phase {
            Phase::Magnet(m) => m.failure.clone(),
            _ => None,
        };
        (
            t.phase.torrent_bytes().to_vec(),
            failure,
            tracker_report(&t.trackers),
        )
    });
    // Ends the snapshots: the tracker client says `stopped` and returns.
    drop(single.client);
    let _ = trackers.join();
    if let Some(d) = dht {
        let _ = d.join();
    }
    match outcome {
        _ if stopper.signalled() => Err(exit::interrupted(
            "stopped by a signal while fetching the metadata",
        )),
        Some((bytes, _, _)) if !bytes.is_empty() => Ok(bytes),
        Some((_, Some(f @ FetchFailure::Unusable(_)), report)) => {
            Err(exit::bad_torrent(format!("{f}{report}")))
        }
        Some((_, Some(f @ FetchFailure::NoPeer(_)), report)) => {
            Err(exit::unreachable(format!("{f}{report}")))
        }
        Some((_, None, report)) => Err(exit::unreachable(format!(
            "no peer gave the metadata{report}"
        ))),
        None => Err(exit::other("the magnet torrent vanished")),
    }
}
