//! `/metrics`: the latest snapshot in the Prometheus text format.
//!
//! The client keeps the numbers; this renders them through a registry built per scrape (the
//! `prometheus` crate's types, names and encoder), so nothing here can drift from the snapshot.
//! Counters are the client's running totals; a lane's block latency comes as pre-computed
//! quantiles, exported as gauges with a `quantile` label (the snapshot has no sample count or
//! sum, which a Prometheus summary would need).

use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::client::control::{ClientSnapshot, TorrentState, Transport};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const STATES: [(TorrentState, &str); 8] = [
    (TorrentState::FetchingMetadata, "fetching_metadata"),
    (TorrentState::Checking, "checking"),
    (TorrentState::Downloading, "downloading"),
    (TorrentState::Seeding, "seeding"),
    (TorrentState::Paused, "paused"),
    (TorrentState::Error, "error"),
    (TorrentState::QueuedDownload, "queued_download"),
    (TorrentState::QueuedSeed, "queued_seed"),
];

struct Families {
    registry: Registry,
}

impl Families {
    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name");
        self.registry
            .register(Box::new(c.clone()))
            .expect("registered once");
        c
    }
    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric name");
        self.registry
            .register(Box::new(g.clone()))
            .expect("registered once");
        g
    }
    fn int_gauge(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric name");
        self.registry
            .register(Box::new(g.clone()))
            .expect("registered once");
        g
    }
}

/// The snapshot as Prometheus text.
pub fn render(snap: &ClientSnapshot) -> String {
    let f = Families {
        registry: Registry::new_custom(Some("bts".into()), None).expect("valid prefix"),
    };
    let t = ["info_hash"];
    let info = f.int_gauge(
        "torrent_info",
        "Always 1; names each torrent.",
        &["info_hash", "name"],
    );
    let state = f.int_gauge(
        "torrent_state",
        "1 for the torrent's current state, 0 for the others.",
        &["info_hash", "state"],
    );
    let down = f.counter(
        "torrent_downloaded_bytes_total",
        "Payload bytes received.",
        &t,
    );
    let up = f.counter("torrent_uploaded_bytes_total", "Payload bytes sent.", &t);
    let rate_down = f.gauge(
        "torrent_download_rate_bytes",
        "Download rate over the last seconds, bytes/s.",
        &t,
    );
    let rate_up = f.gauge(
        "torrent_upload_rate_bytes",
        "Upload rate over the last seconds, bytes/s.",
        &t,
    );
    let progress = f.gauge("torrent_progress_ratio", "Verified fraction, 0..1.", &t);
    let size = f.int_gauge("torrent_size_bytes", "Total bytes.", &t);
    let pieces = f.int_gauge(
        "torrent_pieces",
        "Pieces verified (have), in the torrent (total), found verified at start (resumed), hashed at start (checked).",
        &["info_hash", "kind"],
    );
    let peers = f.int_gauge(
        "torrent_peers",
        "Peer book: known, connected, banned.",
        &["info_hash", "kind"],
    );
    let lane_labels = ["info_hash", "peer", "transport", "path", "label"];
    let lane_down = f.counter(
        "lane_downloaded_bytes_total",
        "Payload bytes received on a lane (QUIC path or TCP connection).",
        &lane_labels,
    );
    let lane_up = f.counter(
        "lane_uploaded_bytes_total",
        "Payload bytes sent on a lane.",
        &lane_labels,
    );
    let lane_rate = f.gauge(
        "lane_download_rate_bytes",
        "Download rate of a lane, bytes/s.",
        &lane_labels,
    );
    let lane_open = f.int_gauge(
        "lane_open",
        "Lanes open now with these labels.",
        &lane_labels,
    );
    let mut latency_labels = lane_labels.to_vec();
    latency_labels.push("quantile");
    let latency = f.gauge(
        "lane_block_latency_seconds",
        "Request-to-data latency of a lane's blocks, quantiles.",
        &latency_labels,
    );
    let path_labels = ["destination", "path"];
    let path_lanes = f.int_gauge(
        "path_lanes",
        "Lanes on a known path, over all torrents.",
        &path_labels,
    );
    let path_up = f.int_gauge(
        "path_usable",
        "1 if the path is usable, 0 while it is avoided after a failure.",
        &path_labels,
    );
    let path_latency = f.gauge(
        "path_latency_seconds",
        "The path's latency as the path service knows it.",
        &path_labels,
    );
    let torrents = f.int_gauge("torrents", "Torrents in the client.", &[]);
    torrents
        .with_label_values::<&str>(&[])
        .set(snap.torrents.len() as i64);

    for tor in &snap.torrents {
        let ih = tor.info_hash.as_str();
        info.with_label_values(&[ih, tor.name.as_str()]).set(1);
        for (s, name) in STATES {
            state
                .with_label_values(&[ih, name])
                .set(i64::from(tor.state == s));
        }
        down.with_label_values(&[ih]).inc_by(tor.bytes_down);
        up.with_label_values(&[ih]).inc_by(tor.bytes_up);
        rate_down.with_label_values(&[ih]).set(tor.rate_down);
        rate_up.with_label_values(&[ih]).set(tor.rate_up);
        progress.with_label_values(&[ih]).set(tor.progress);
        size.with_label_values(&[ih]).set(tor.size as i64);
        pieces
            .with_label_values(&[ih, "have"])
            .set(tor.pieces_have.into());
        pieces
            .with_label_values(&[ih, "total"])
            .set(tor.pieces_total.into());
        pieces
            .with_label_values(&[ih, "resumed"])
            .set(tor.pieces_resumed.into());
        pieces
            .with_label_values(&[ih, "checked"])
            .set(tor.pieces_checked.into());
        for (kind, n) in [
            ("known", tor.peers_known),
            ("connected", tor.peers_connected),
            ("banned", tor.peers_banned),
        ] {
            peers.with_label_values(&[ih, kind]).set(n as i64);
        }
        for lane in &tor.lanes {
            let transport = match lane.transport {
                Transport::Scion => "scion",
                Transport::Tcp => "tcp",
            };
            let path = lane.path.as_ref().map_or("", |p| p.fingerprint.as_str());
            let labels = [ih, lane.peer.as_str(), transport, path, lane.label.as_str()];
            // Several lanes can share labels (a lane reopened on the same path): they add up.
            lane_down.with_label_values(&labels).inc_by(lane.bytes_down);
            lane_up.with_label_values(&labels).inc_by(lane.bytes_up);
            lane_rate.with_label_values(&labels).add(lane.rate_down);
            lane_open
                .with_label_values(&labels)
                .add(i64::from(lane.open));
            if lane.open {
                for (q, v) in [
                    ("0.5", lane.latency_ms_p50),
                    ("0.9", lane.latency_ms_p90),
                    ("0.99", lane.latency_ms_p99),
                ] {
                    if let Some(ms) = v {
                        let l = [labels[0], labels[1], labels[2], labels[3], labels[4], q];
                        latency.with_label_values(&l).set(ms / 1000.0);
                    }
                }
            }
        }
    }
    for dest in &snap.paths {
        for known in &dest.paths {
            let labels = [dest.ia.as_str(), known.path.fingerprint.as_str()];
            path_lanes
                .with_label_values(&labels)
                .set(known.lanes as i64);
            path_up
                .with_label_values(&labels)
                .set(i64::from(known.failed.is_none()));
            if let Some(ms) = known.path.latency_ms {
                path_latency.with_label_values(&labels).set(ms / 1000.0);
            }
        }
    }

    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&f.registry.gather(), &mut out) {
        tracing::warn!("encoding metrics: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}
