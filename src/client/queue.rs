//! Queueing policy, sans-IO: which torrents run when at most N downloads and M seeds may be
//! active. Input: the torrents that want to run (not paused, not failed, not checking), each
//! with its kind, queue position, force flag, and whether it runs now and is stalled. Output:
//! which of them run; the driver (`client::driver::queueing`) starts and stops them.
//!
//! The rules (documented in README "Queueing"):
//! * Queue positions are one order over every torrent (0 = first), like Transmission's and
//!   qBittorrent's; downloads and seeds each take slots of their own in that order.
//! * A forced torrent always runs and takes no slot (it neither waits nor makes others wait).
//! * A download that runs but is *stalled* — no payload received for the configured time —
//!   keeps running but holds no slot, so the next one in the queue starts beside it. When it
//!   receives payload again it counts again, and a torrent after it in the queue may wait.
//! * Magnet links fetching metadata count as downloads; a torrent being checked is not
//!   queued.

use std::collections::HashSet;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

/// The queue's settings (saved with the client settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// Off: every torrent that is not paused runs (the default, as before queueing existed).
    #[serde(default)]
    pub enabled: bool,
    /// Downloads (incomplete torrents) running at once; `null`: no limit.
    #[serde(default = "default_slots")]
    pub max_active_downloads: Option<u32>,
    /// Seeds (complete torrents) running at once; `null`: no limit.
    #[serde(default = "default_slots")]
    pub max_active_seeds: Option<u32>,
    /// A download that received no payload for this long is stalled and holds no slot;
    /// `null`: stalled downloads hold their slot.
    #[serde(default = "default_stalled")]
    pub stalled_after_secs: Option<u64>,
}

/// qBittorrent's defaults for both limits.
fn default_slots() -> Option<u32> {
    Some(3)
}

/// Transmission's `queue-stalled-minutes` default: 30 minutes.
fn default_stalled() -> Option<u64> {
    Some(30 * 60)
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            max_active_downloads: default_slots(),
            max_active_seeds: default_slots(),
            stalled_after_secs: default_stalled(),
        }
    }
}

/// A queue setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueSettingsError {
    #[error(
        "queue.stalled_after_secs must be at least 1 (null: stalled downloads keep their slot)"
    )]
    StalledZero,
}

impl QueueSettings {
    pub fn validate(&self) -> Result<(), QueueSettingsError> {
        match self.stalled_after_secs {
            Some(0) => Err(QueueSettingsError::StalledZero),
            _ => Ok(()),
        }
    }

    /// These settings with `u`'s fields applied over them.
    pub fn updated(mut self, u: &QueueUpdate) -> Self {
        if let Some(v) = u.enabled {
            self.enabled = v;
        }
        if let Some(v) = u.max_active_downloads {
            self.max_active_downloads = v;
        }
        if let Some(v) = u.max_active_seeds {
            self.max_active_seeds = v;
        }
        if let Some(v) = u.stalled_after_secs {
            self.stalled_after_secs = v;
        }
        self
    }
}

/// A change to some of the queue settings (a field left out stays; `null` means no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueUpdate {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub max_active_downloads: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub max_active_seeds: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub stalled_after_secs: Option<Option<u64>>,
}

/// A field that is present (its value may be `null`), told apart from one left out.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Which slots a torrent takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Download,
    Seed,
}

/// One torrent that wants to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<K> {
    pub id: K,
    pub kind: Kind,
    /// Its queue position (lower runs first).
    pub position: u32,
    /// Force-started: runs regardless of the limits.
    pub forced: bool,
    /// Runs now (not queued).
    pub running: bool,
    /// Runs, and received no payload for the stalled time (downloads only).
    pub stalled: bool,
}

/// Which of `entries` run under `settings`.
pub fn to_run<K: Copy + Eq + Hash>(settings: &QueueSettings, entries: &[Entry<K>]) -> HashSet<K> {
    if !settings.enabled {
        return entries.iter().map(|e| e.id).collect();
    }
    let mut order: Vec<&Entry<K>> = entries.iter().collect();
    order.sort_by_key(|e| e.position);
    let (mut downloads, mut seeds) = (0u32, 0u32);
    let mut run = HashSet::new();
    for e in order {
        let (used, max) = match e.kind {
            Kind::Download => (&mut downloads, settings.max_active_downloads),
            Kind::Seed => (&mut seeds, settings.max_active_seeds),
        };
        let holds_no_slot = e.forced || (e.kind == Kind::Download && e.running && e.stalled);
        if holds_no_slot {
            run.insert(e.id);
        } else if max.is_none_or(|m| *used < m) {
            *used += 1;
            run.insert(e.id);
        }
    }
    run
}

/// A queue move, as Transmission's `queue-move-*` and qBittorrent's `*Prio` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Move {
    Top,
    Up,
    Down,
    Bottom,
    /// To this position (past the end: last), as Transmission's `queuePosition` sets it.
    #[serde(skip)]
    To(u32),
}

impl Move {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "top" => Some(Self::Top),
            "up" => Some(Self::Up),
            "down" => Some(Self::Down),
            "bottom" => Some(Self::Bottom),
            _ => None,
        }
    }
}

/// The queue `order` (first = position 0) after moving `chosen` by `mv`. Several chosen
/// torrents keep their order among themselves; one moving up never jumps over another chosen
/// one (Transmission's rule), so moving a block up moves the block.
pub fn moved<K: Copy + Eq + Hash>(order: &[K], chosen: &[K], mv: Move) -> Vec<K> {
    let chosen: HashSet<K> = chosen.iter().copied().collect();
    let is_chosen = |k: &K| chosen.contains(k);
    match mv {
        Move::Top => order
            .iter()
            .filter(|k| is_chosen(k))
            .chain(order.iter().filter(|k| !is_chosen(k)))
            .copied()
            .collect(),
        Move::Bottom => order
            .iter()
            .filter(|k| !is_chosen(k))
            .chain(order.iter().filter(|k| is_chosen(k)))
            .copied()
            .collect(),
        Move::Up => {
            let mut v = order.to_vec();
            for i in 1..v.len() {
                if is_chosen(&v[i]) && !is_chosen(&v[i - 1]) {
                    v.swap(i, i - 1);
                }
            }
            v
        }
        Move::Down => {
            let mut v = order.to_vec();
            for i in (0..v.len().saturating_sub(1)).rev() {
                if is_chosen(&v[i]) && !is_chosen(&v[i + 1]) {
                    v.swap(i, i + 1);
                }
            }
            v
        }
        Move::To(position) => {
            let (mut rest, block): (Vec<K>, Vec<K>) = order.iter().partition(|k| !is_chosen(k));
            let at = usize::try_from(position).map_or(rest.len(), |p| p.min(rest.len()));
            rest.splice(at..at, block);
            rest
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(downloads: Option<u32>, seeds: Option<u32>) -> QueueSettings {
        QueueSettings {
            enabled: true,
            max_active_downloads: downloads,
            max_active_seeds: seeds,
            stalled_after_secs: Some(60),
        }
    }

    fn dl(id: u8, position: u32) -> Entry<u8> {
        Entry {
            id,
            kind: Kind::Download,
            position,
            forced: false,
            running: false,
            stalled: false,
        }
    }

    fn seed(id: u8, position: u32) -> Entry<u8> {
        Entry {
            kind: Kind::Seed,
            ..dl(id, position)
        }
    }

    fn sorted(s: HashSet<u8>) -> Vec<u8> {
        let mut v: Vec<u8> = s.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn off_runs_everything() {
        let s = QueueSettings {
            enabled: false,
            ..on(Some(0), Some(0))
        };
        assert_eq!(
            sorted(to_run(&s, &[dl(1, 0), dl(2, 1), seed(3, 2)])),
            [1, 2, 3]
        );
    }

    #[test]
    fn limits_take_torrents_in_position_order_per_kind() {
        let entries = [dl(1, 3), dl(2, 0), dl(3, 1), seed(4, 2), seed(5, 4)];
        assert_eq!(sorted(to_run(&on(Some(2), Some(1)), &entries)), [2, 3, 4]);
        assert_eq!(sorted(to_run(&on(None, Some(0)), &entries)), [1, 2, 3]);
        assert_eq!(sorted(to_run(&on(Some(0), None), &entries)), [4, 5]);
    }

    #[test]
    fn forced_runs_past_the_limit_and_takes_no_slot() {
        let mut f = dl(1, 5);
        f.forced = true;
        let entries = [f, dl(2, 0), dl(3, 1)];
        assert_eq!(sorted(to_run(&on(Some(1), None), &entries)), [1, 2]);
        assert_eq!(sorted(to_run(&on(Some(0), None), &entries)), [1]);
    }

    #[test]
    fn a_stalled_running_download_frees_its_slot() {
        let mut stuck = dl(1, 0);
        (stuck.running, stuck.stalled) = (true, true);
        let entries = [stuck, dl(2, 1), dl(3, 2)];
        // 1 keeps running without a slot; 2 takes the one slot.
        assert_eq!(sorted(to_run(&on(Some(1), None), &entries)), [1, 2]);
        // Stalled but not running (queued) cannot free anything: it waits for its slot.
        let mut waiting = dl(1, 0);
        waiting.stalled = true;
        assert_eq!(
            sorted(to_run(&on(Some(1), None), &[waiting, dl(2, 1)])),
            [1]
        );
        // A stalled seed holds its slot (stalled is about downloads).
        let mut idle_seed = seed(4, 0);
        (idle_seed.running, idle_seed.stalled) = (true, true);
        assert_eq!(
            sorted(to_run(&on(None, Some(1)), &[idle_seed, seed(5, 1)])),
            [4]
        );
    }

    #[test]
    fn moves_keep_chosen_blocks_together() {
        let q = [1u8, 2, 3, 4, 5];
        assert_eq!(moved(&q, &[4], Move::Top), [4, 1, 2, 3, 5]);
        assert_eq!(moved(&q, &[2, 4], Move::Top), [2, 4, 1, 3, 5]);
        assert_eq!(moved(&q, &[2, 4], Move::Bottom), [1, 3, 5, 2, 4]);
        assert_eq!(moved(&q, &[3], Move::Up), [1, 3, 2, 4, 5]);
        assert_eq!(moved(&q, &[1, 2, 4], Move::Up), [1, 2, 4, 3, 5]);
        assert_eq!(moved(&q, &[3], Move::Down), [1, 2, 4, 3, 5]);
        assert_eq!(moved(&q, &[4, 5], Move::Down), q);
        assert_eq!(moved(&q, &[9], Move::Top), q, "an unknown id moves nothing");
        assert_eq!(moved(&q, &[5], Move::To(1)), [1, 5, 2, 3, 4]);
        assert_eq!(moved(&q, &[1], Move::To(99)), [2, 3, 4, 5, 1]);
        assert_eq!(moved(&q, &[4], Move::To(0)), [4, 1, 2, 3, 5]);
    }

    #[test]
    fn updates_apply_only_given_fields_and_null_lifts_a_limit() {
        let u: QueueUpdate =
            serde_json::from_str(r#"{"enabled":true,"max_active_seeds":null}"#).unwrap();
        let s = QueueSettings::default().updated(&u);
        assert!(s.enabled);
        assert_eq!(s.max_active_downloads, Some(3));
        assert_eq!(s.max_active_seeds, None);
        assert!(serde_json::from_str::<QueueUpdate>(r#"{"max_downloads":1}"#).is_err());
        let zero = QueueSettings {
            stalled_after_secs: Some(0),
            ..s
        };
        assert_eq!(zero.validate(), Err(QueueSettingsError::StalledZero));
    }
}
