//! What a transfer prints: live progress and the end summary (text, CSV, JSON).

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::quic::QuicBtApp;
use crate::metrics::{mbit, Percentiles};
use crate::scion::ScionAddr;
use crate::torrent::meta::Metainfo;
use crate::torrent::session::Session;

#[derive(Debug, Clone, Serialize)]
pub struct LaneSummary {
    pub path: String,
    pub bytes_down: u64,
    pub bytes_up: u64,
    pub seconds: f64,
    pub goodput_mbit: f64,
    pub block_latency: Percentiles,
    pub closed: Option<String>,
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
            .into_iter()
            .map(|(_, l)| {
                let until = l.closed.as_ref().map(|c| c.0).unwrap_or(end);
                let d = until.saturating_duration_since(l.opened);
                LaneSummary {
                    path: l.label.clone(),
                    bytes_down: l.bytes_down,
                    bytes_up: l.bytes_up,
                    seconds: d.as_secs_f64(),
                    goodput_mbit: mbit(l.bytes_down.max(l.bytes_up), d),
                    block_latency: Percentiles::of(&l.block_latency),
                    closed: l.closed.as_ref().map(|c| c.1.to_string()),
                }
            })
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

    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.csv())
    }

    /// One row per lane (path), with a header line.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "path,bytes_down,bytes_up,seconds,goodput_mbit,block_latency_p50_ms,block_latency_p90_ms,block_latency_p99_ms,block_latency_max_ms,closed\n",
        );
        for l in &self.lanes {
            out.push_str(&format!(
                "\"{}\",{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},\"{}\"\n",
                l.path.replace('"', "'"),
                l.bytes_down,
                l.bytes_up,
                l.seconds,
                l.goodput_mbit,
                l.block_latency.p50_ms,
                l.block_latency.p90_ms,
                l.block_latency.p99_ms,
                l.block_latency.max_ms,
                l.closed.clone().unwrap_or_default().replace('"', "'")
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
                "lane {i}: {}  down {} B  up {} B  {:.1} Mbit/s  block latency {}{}",
                l.path,
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

/// Live progress: a bar on a terminal, a log line every few seconds otherwise.
pub fn attach_progress(app: &mut QuicBtApp, tty: bool) {
    let started = Instant::now();
    if tty {
        let total = app.session.meta().total_length;
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                // `wide_msg` is cut to the terminal's width: one line however many lanes.
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} lanes {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        if let Ok(mut b) = super::PROGRESS_BAR.lock() {
            *b = Some(bar.clone());
        }
        app.progress_every = Some(Duration::from_millis(200));
        app.on_progress = Some(Box::new(move |s: &Session| {
            let done = u64::from(s.have().count_ones()) * u64::from(s.meta().piece_length);
            bar.set_position(done.min(total));
            bar.set_message(lane_line(s));
        }));
    } else {
        app.progress_every = Some(Duration::from_secs(2));
        app.on_progress = Some(Box::new(move |s: &Session| {
            let n = s.meta().num_pieces();
            tracing::info!(
                "{}/{} pieces, down {} B, up {} B, {:.0} s, lanes: {}",
                s.have().count_ones(),
                n,
                s.bytes_down,
                s.bytes_up,
                started.elapsed().as_secs_f64(),
                lane_line(s)
            );
        }));
    }
}

fn lane_line(s: &Session) -> String {
    let open: Vec<_> = s
        .lane_stats()
        .into_iter()
        .filter(|(id, l)| *id != u64::MAX && l.closed.is_none())
        .collect();
    let labels: Vec<&str> = open.iter().map(|(_, l)| l.label.as_str()).collect();
    short_names(&labels)
        .into_iter()
        .zip(&open)
        .map(|(name, (_, l))| format!("[{name}: {} MB]", (l.bytes_down + l.bytes_up) >> 20))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Names lanes by what tells their paths apart: the first transit AS (or interface) a lane's
/// path crosses that not every other path crosses, e.g. `via 1-ff00:0:120`. Labels that are
/// not SCION paths (TCP, same-AS) are kept, shortened.
pub(crate) fn short_names(labels: &[&str]) -> Vec<String> {
    let hops: Vec<Option<Vec<&str>>> = labels
        .iter()
        .map(|l| {
            let h: Vec<&str> = l.split(" > ").collect();
            (h.len() >= 2 && h.iter().all(|x| x.contains('#'))).then_some(h)
        })
        .collect();
    let ia = |hop: &str| hop.split('#').next().unwrap_or(hop).to_string();
    let transit = |h: &Vec<&str>| -> Vec<String> {
        let mut v: Vec<String> = h[1..h.len() - 1].iter().map(|x| ia(x)).collect();
        v.dedup();
        v
    };
    let all: Vec<&Vec<&str>> = hops.iter().flatten().collect();
    let in_all =
        |x: &String, f: &dyn Fn(&Vec<&str>) -> Vec<String>| all.iter().all(|h| f(h).contains(x));
    let interfaces = |h: &Vec<&str>| -> Vec<String> { h.iter().map(|x| x.to_string()).collect() };
    labels
        .iter()
        .zip(&hops)
        .map(|(label, h)| {
            let Some(h) = h else { return short(label) };
            if all.len() < 2 {
                return transit(h)
                    .first()
                    .map_or_else(|| short(label), |t| format!("via {t}"));
            }
            if let Some(t) = transit(h).into_iter().find(|t| !in_all(t, &transit)) {
                return format!("via {t}");
            }
            match interfaces(h).into_iter().find(|i| !in_all(i, &interfaces)) {
                Some(i) => format!("via {i}"),
                None => short(label),
            }
        })
        .collect()
}

fn short(label: &str) -> String {
    if label.len() > 40 {
        format!("…{}", &label[label.len() - 39..])
    } else {
        label.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::short_names;

    #[test]
    fn lanes_are_named_by_the_hop_that_tells_them_apart() {
        let a = "1-ff00:0:111#1 > 1-ff00:0:120#2 > 1-ff00:0:120#3 > 1-ff00:0:112#1";
        let b = "1-ff00:0:111#2 > 1-ff00:0:130#1 > 1-ff00:0:130#4 > 1-ff00:0:112#2";
        // Same transit AS, other interfaces.
        let c = "1-ff00:0:111#3 > 1-ff00:0:120#5 > 1-ff00:0:120#6 > 1-ff00:0:112#3";
        assert_eq!(
            short_names(&[a, b, "tcp 127.0.0.1:5000"]),
            vec!["via 1-ff00:0:120", "via 1-ff00:0:130", "tcp 127.0.0.1:5000"]
        );
        assert_eq!(
            short_names(&[a, c]),
            vec!["via 1-ff00:0:111#1", "via 1-ff00:0:111#3"]
        );
        assert_eq!(short_names(&[a]), vec!["via 1-ff00:0:120"]);
    }
}
