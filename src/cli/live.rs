//! The live line of a transfer: what a download or a seeder is doing now, in one line that
//! fits the terminal. Lanes are named compactly (`via 1-ff00:0:120 21 MiB`) and dropped from
//! the right, whole, when the line has no room for them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::torrent::session::Session;

/// What the live line shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveView {
    /// Uploading only (seeding, or a complete download that keeps seeding): peers, lanes,
    /// rate up and total up instead of a download's progress.
    pub seeding: bool,
    /// Draw a progress bar (a terminal; not in log lines).
    pub bar: bool,
    pub done: u64,
    pub total: u64,
    /// Bytes per second over the last seconds.
    pub rate_down: f64,
    pub rate_up: f64,
    pub bytes_up: u64,
    pub peers: usize,
    /// Each open lane's short name and bytes moved (both ways).
    pub lanes: Vec<(String, u64)>,
}

const SEP: &str = " | ";
/// A bar only when the line is at least this wide (it takes 12 columns).
const BAR_FROM: usize = 60;
const BAR_CELLS: usize = 10;

impl LiveView {
    pub fn of(s: &Session, rates: (f64, f64), bar: bool) -> Self {
        let done = u64::from(s.have().count_ones()) * u64::from(s.meta().piece_length);
        let total = s.meta().total_length;
        let open: Vec<_> = s
            .lane_stats()
            .into_iter()
            .filter(|(id, l)| *id != u64::MAX && l.closed.is_none())
            .collect();
        let labels: Vec<&str> = open.iter().map(|(_, l)| l.label.as_str()).collect();
        let lanes = short_names(&labels)
            .into_iter()
            .zip(&open)
            .map(|(name, (_, l))| (name, l.bytes_down + l.bytes_up))
            .collect();
        Self {
            seeding: s.is_complete(),
            bar,
            done: done.min(total),
            total,
            rate_down: rates.0,
            rate_up: rates.1,
            bytes_up: s.bytes_up,
            peers: s.peer_count(),
            lanes,
        }
    }
}

/// The line, at most `width` characters: the head (progress or upload), then as many whole
/// lane labels as fit, and `+N` for those left out when there is room for it.
pub fn render(v: &LiveView, width: usize) -> String {
    let mut line = head(v, width);
    if line.chars().count() > width {
        return line.chars().take(width).collect();
    }
    let labels: Vec<String> = v
        .lanes
        .iter()
        .map(|(name, bytes)| format!("{name} {}", size(*bytes)))
        .collect();
    let len = |s: &str| s.chars().count();
    let all: usize = labels.iter().map(|l| SEP.len() + len(l)).sum();
    if len(&line) + all <= width {
        for l in &labels {
            line.push_str(SEP);
            line.push_str(l);
        }
        return line;
    }
    // Not all fit: keep the most that fit together with the `+N` of the rest.
    let mut used = len(&line);
    let mut kept = 0;
    for (i, l) in labels.iter().enumerate() {
        let more = format!("{SEP}+{}", labels.len() - i - 1);
        let rest = if i + 1 == labels.len() { 0 } else { len(&more) };
        if used + SEP.len() + len(l) + rest > width {
            break;
        }
        used += SEP.len() + len(l);
        kept += 1;
    }
    for l in &labels[..kept] {
        line.push_str(SEP);
        line.push_str(l);
    }
    let more = format!("{SEP}+{}", labels.len() - kept);
    if len(&line) + len(&more) <= width {
        line.push_str(&more);
    }
    line
}

fn head(v: &LiveView, width: usize) -> String {
    let lanes = v.lanes.len();
    if v.seeding {
        return format!(
            "seeding: {} {}, {} {}, up {}/s, {} up",
            v.peers,
            plural(v.peers, "peer", "peers"),
            lanes,
            plural(lanes, "lane", "lanes"),
            size(v.rate_up as u64),
            size(v.bytes_up)
        );
    }
    let pct = (v.done as f64 * 100.0 / v.total.max(1) as f64).floor() as u64;
    let progress = format!(
        "{pct:>3}% {}/{} down {}/s",
        size(v.done),
        size(v.total),
        size(v.rate_down as u64)
    );
    if !v.bar || width < BAR_FROM {
        return progress;
    }
    let filled = (v.done as u128 * BAR_CELLS as u128 / u128::from(v.total.max(1))) as usize;
    let filled = filled.min(BAR_CELLS);
    format!(
        "[{}{}] {progress}",
        "#".repeat(filled),
        "-".repeat(BAR_CELLS - filled)
    )
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Bytes in binary units, three significant digits at most: `512 B`, `21 MiB`, `1.2 GiB`.
pub fn size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 10.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Rates down and up over the last few seconds, from the session's byte counters.
pub struct Rates {
    samples: VecDeque<(Instant, u64, u64)>,
}

const RATE_WINDOW: Duration = Duration::from_secs(3);

impl Rates {
    pub fn new(now: Instant) -> Self {
        Self {
            samples: VecDeque::from([(now, 0, 0)]),
        }
    }

    /// Adds the counters at `now`; returns (down, up) in bytes per second.
    pub fn sample(&mut self, now: Instant, down: u64, up: u64) -> (f64, f64) {
        self.samples.push_back((now, down, up));
        while self.samples.len() > 2
            && now.saturating_duration_since(self.samples[1].0) >= RATE_WINDOW
        {
            self.samples.pop_front();
        }
        let (t0, d0, u0) = self.samples[0];
        let secs = now.saturating_duration_since(t0).as_secs_f64();
        if secs <= 0.0 {
            return (0.0, 0.0);
        }
        (
            down.saturating_sub(d0) as f64 / secs,
            up.saturating_sub(u0) as f64 / secs,
        )
    }
}

/// The terminal's width in columns (stderr's, where the line goes); 80 if unknown.
pub fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        return usize::from(ws.ws_col);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c > 0)
        .unwrap_or(80)
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

/// At most 40 characters: the end of a long label, which names where it goes.
fn short(label: &str) -> String {
    let n = label.chars().count();
    if n > 40 {
        let tail: String = label.chars().skip(n - 39).collect();
        format!("…{tail}")
    } else {
        label.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn lanes(n: usize) -> Vec<(String, u64)> {
        (0..n)
            .map(|i| {
                (
                    format!("via 1-ff00:0:{}", 120 + i * 10),
                    (21 + i as u64) << 20,
                )
            })
            .collect()
    }

    fn download(n: usize) -> LiveView {
        LiveView {
            seeding: false,
            bar: true,
            done: 27 << 20,
            total: 64 << 20,
            rate_down: 81.3 * 1048576.0,
            peers: 1,
            lanes: lanes(n),
            ..Default::default()
        }
    }

    /// Every label in `line` is whole: the lane parts are exactly some first labels.
    fn whole_labels(line: &str, v: &LiveView) -> usize {
        let parts: Vec<&str> = line.split(SEP).skip(1).collect();
        let mut shown = 0;
        for (p, (name, bytes)) in parts.iter().zip(&v.lanes) {
            if p.starts_with('+') {
                break;
            }
            assert_eq!(*p, format!("{name} {}", size(*bytes)), "in {line:?}");
            shown += 1;
        }
        if let Some(more) = parts.iter().find(|p| p.starts_with('+')) {
            assert_eq!(*more, format!("+{}", v.lanes.len() - shown), "in {line:?}");
        }
        shown
    }

    #[test]
    fn a_download_line_fits_80_and_120_columns_with_whole_lane_labels() {
        let v = download(8);
        let at80 = render(&v, 80);
        let at120 = render(&v, 120);
        assert!(at80.chars().count() <= 80, "{at80:?}");
        assert!(at120.chars().count() <= 120, "{at120:?}");
        assert!(at80.starts_with("[####------]  42% 27 MiB/64 MiB down 81 MiB/s"));
        let (n80, n120) = (whole_labels(&at80, &v), whole_labels(&at120, &v));
        assert!(n80 >= 1 && n80 < n120 && n120 < 8, "{n80} {n120}");
        assert!(at80.ends_with(&format!("+{}", 8 - n80)), "{at80:?}");
        assert_eq!(at80, render(&v, at80.chars().count()), "shortest fit");
        // Room for everything: nothing dropped, no +N.
        let wide = render(&v, 1000);
        assert_eq!(whole_labels(&wide, &v), 8);
        assert!(!wide.contains('+'));
    }

    #[test]
    fn a_seeder_line_shows_upload_not_progress() {
        let v = LiveView {
            seeding: true,
            bar: true,
            done: 64 << 20,
            total: 64 << 20,
            rate_up: 12.25 * 1048576.0,
            bytes_up: 1288490189,
            peers: 2,
            lanes: lanes(5),
            ..Default::default()
        };
        let line = render(&v, 120);
        assert!(
            line.starts_with("seeding: 2 peers, 5 lanes, up 12 MiB/s, 1.2 GiB up | via "),
            "{line:?}"
        );
        assert!(!line.contains('#') && !line.contains('%'), "{line:?}");
        assert!(line.chars().count() <= 120);
        let narrow = render(&v, 80);
        assert!(narrow.chars().count() <= 80, "{narrow:?}");
        whole_labels(&narrow, &v);
    }

    #[test]
    fn a_narrow_terminal_drops_the_bar_then_every_lane() {
        let v = download(3);
        let line = render(&v, 50);
        assert!(!line.starts_with('['), "{line:?}");
        assert!(line.chars().count() <= 50);
        assert_eq!(render(&v, 10).chars().count(), 10);
    }

    #[test]
    fn rates_are_over_the_last_seconds() {
        let t0 = Instant::now();
        let mut r = Rates::new(t0);
        assert_eq!(
            r.sample(t0 + Duration::from_secs(1), 1000, 0),
            (1000.0, 0.0)
        );
        for s in 2..10 {
            r.sample(t0 + Duration::from_secs(s), 1000, 500 * s);
        }
        let (down, up) = r.sample(t0 + Duration::from_secs(10), 1000, 5000);
        assert_eq!(down, 0.0, "nothing came down in the last seconds");
        assert!((up - 500.0).abs() < 1.0, "{up}");
    }
}
