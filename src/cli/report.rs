//! What a transfer prints: live progress and the end summary (text, CSV, JSON).

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::quic::QuicBtApp;
use crate::metrics::{mbit, Percentiles};
use crate::scion::ScionAddr;
use crate::torrent::meta::Metainfo;
use crate::torrent::session::{LaneStats, Session};

use super::live::{self, LiveView, Rates};

#[derive(Debug, Clone, Serialize)]
pub struct LaneSummary {
    /// The remote's address (empty if the transport never proved one).
    pub peer: String,
    pub path: String,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub seconds: f64,
    pub goodput_mbit: f64,
    pub block_latency: Percentiles,
    pub closed: Option<String>,
}

impl LaneSummary {
    /// One lane's line; `end` stands for its close while it is still open.
    fn of(l: &LaneStats, end: Instant) -> Self {
        let until = l.closed.as_ref().map(|c| c.0).unwrap_or(end);
        let d = until.saturating_duration_since(l.opened);
        LaneSummary {
            peer: l.peer.map(|p| p.to_string()).unwrap_or_default(),
            path: l.label.clone(),
            bytes_down: l.bytes_down,
            bytes_up: l.bytes_up,
            seconds: d.as_secs_f64(),
            goodput_mbit: mbit(l.bytes_down.max(l.bytes_up), d),
            block_latency: Percentiles::of(&l.block_latency),
            closed: l.closed.as_ref().map(|c| c.1.to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub torrent: String,
    pub local: String,
    pub complete: bool,
    pub pieces: u32,
    pub pieces_resumed: u32,
    pub pieces_downloaded: u32,
    pub pieces_failed: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub seconds: f64,
    pub goodput_mbit: f64,
    pub piece_verification: Percentiles,
    pub lanes: Vec<LaneSummary>,
}

impl Summary {
    pub fn collect(
        app: &QuicBtApp,
        meta: &Metainfo,
        resumed: u32,
        started: Instant,
        local: &ScionAddr,
    ) -> Self {
        let s = &app.session;
        let end = app.completed_at.unwrap_or_else(Instant::now);
        let secs = end.saturating_duration_since(started);
        let lanes = s
            .lane_stats()
            .iter()
            .map(|(_, l)| LaneSummary::of(l, end))
            .collect();
        Summary {
            torrent: meta.name.clone(),
            local: local.to_string(),
            complete: s.is_complete(),
            pieces: meta.num_pieces(),
            pieces_resumed: resumed,
            pieces_downloaded: s.pieces_verified,
            pieces_failed: s.pieces_failed,
            bytes_down: s.bytes_down,
            bytes_up: s.bytes_up,
            seconds: secs.as_secs_f64(),
            goodput_mbit: mbit(s.bytes_down.max(s.bytes_up), secs),
            piece_verification: Percentiles::of(&s.verify_time),
            lanes,
        }
    }

    /// Adds what the seeder's other runtimes (`--runtimes`) served: their lanes, and their
    /// upload to the totals. `end` is when the run ended, for lanes still open then.
    pub fn add_runtime_lanes(&mut self, lanes: &[LaneStats], bytes_up: u64, end: Instant) {
        self.lanes
            .extend(lanes.iter().map(|l| LaneSummary::of(l, end)));
        self.bytes_up += bytes_up;
        let secs = Duration::from_secs_f64(self.seconds);
        self.goodput_mbit = mbit(self.bytes_down.max(self.bytes_up), secs);
    }

    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.csv())
    }

    /// One row per lane (connection on one path), with a header line. `peer` is last so the
    /// columns before it stay where they always were.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "path,bytes_down,bytes_up,seconds,goodput_mbit,block_latency_p50_ms,block_latency_p90_ms,block_latency_p99_ms,block_latency_max_ms,closed,peer\n",
        );
        for l in &self.lanes {
            out.push_str(&format!(
                "\"{}\",{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},\"{}\",\"{}\"\n",
                l.path.replace('"', "'"),
                l.bytes_down,
                l.bytes_up,
                l.seconds,
                l.goodput_mbit,
                l.block_latency.p50_ms,
                l.block_latency.p90_ms,
                l.block_latency.p99_ms,
                l.block_latency.max_ms,
                l.closed.clone().unwrap_or_default().replace('"', "'"),
                l.peer.replace('"', "'")
            ));
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== summary: {} ==", self.torrent)?;
        writeln!(
            f,
            "complete: {}  pieces: {} (verified on disk at start: {}, downloaded: {}, failed hash: {})",
            self.complete, self.pieces, self.pieces_resumed, self.pieces_downloaded, self.pieces_failed
        )?;
        writeln!(
            f,
            "downloaded {} bytes, uploaded {} bytes in {:.2} s: {:.1} Mbit/s",
            self.bytes_down, self.bytes_up, self.seconds, self.goodput_mbit
        )?;
        writeln!(f, "piece verification: {}", self.piece_verification)?;
        for (i, l) in self.lanes.iter().enumerate() {
            writeln!(
                f,
                "lane {i}: {}{}  down {} B  up {} B  {:.1} Mbit/s  block latency {}{}",
                l.path,
                if l.peer.is_empty() {
                    String::new()
                } else {
                    format!("  peer {}", l.peer)
                },
                l.bytes_down,
                l.bytes_up,
                l.goodput_mbit,
                l.block_latency,
                l.closed
                    .as_ref()
                    .map(|c| format!("  (closed: {c})"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// Live progress: one line redrawn on a terminal (fitted to its width), a log line every few
/// seconds otherwise. A complete torrent (a seeder) shows its upload instead of progress.
pub fn attach_progress(app: &mut QuicBtApp, tty: bool) {
    let started = Instant::now();
    let mut rates = Rates::new(started);
    if tty {
        let bar = indicatif::ProgressBar::new(app.session.meta().total_length);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        if let Ok(mut b) = super::PROGRESS_BAR.lock() {
            *b = Some(bar.clone());
        }
        app.progress_every = Some(Duration::from_millis(200));
        app.on_progress = Some(Box::new(move |s: &Session| {
            let r = rates.sample(Instant::now(), s.bytes_down, s.bytes_up);
            // One column spare: a line that fills the last column wraps on some terminals.
            let width = live::terminal_width().saturating_sub(1);
            bar.set_message(live::render(&LiveView::of(s, r, true), width));
        }));
    } else {
        app.progress_every = Some(Duration::from_secs(2));
        app.on_progress = Some(Box::new(move |s: &Session| {
            let r = rates.sample(Instant::now(), s.bytes_down, s.bytes_up);
            let line = live::render(&LiveView::of(s, r, false), usize::MAX);
            tracing::info!("{line} ({:.0} s)", started.elapsed().as_secs_f64());
        }));
    }
}
