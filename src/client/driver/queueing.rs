//! The queue applied: which torrents run is decided by `client::queue::to_run`; this starts
//! the ones it lets run and holds back (lanes closed, as when paused) the ones that wait, and
//! keeps queue positions, force-start and the queue settings.

use super::*;
use crate::client::queue::{self, Entry, Kind, Move, QueueSettings, QueueUpdate};

/// How often the queue is looked at while queueing is on, without any other reason: the
/// stalled rule needs the clock (it counts in minutes, so seconds of delay do not matter).
pub(super) const QUEUE_EVERY: Duration = Duration::from_secs(5);

impl Client {
    /// Applies the queue when something it reads may have changed (`queue_due`) or its timer
    /// is due. True when a torrent was started or held back.
    pub(super) fn pump_queue(&mut self, net: &mut ScionNet, now: Instant) -> bool {
        let by_clock = self.queue.enabled && now >= self.next_queue;
        if !self.queue_due && !by_clock {
            return false;
        }
        self.queue_due = false;
        self.next_queue = now + QUEUE_EVERY;
        let settings = self.queue;
        let mut entries = Vec::new();
        for (ih, t) in self.torrents.iter_mut() {
            note_payload(t, &settings, now);
            if let Some(kind) = wants_to_run(t) {
                entries.push(Entry {
                    id: *ih,
                    kind,
                    position: t.settings.queue_position,
                    forced: t.settings.force_start,
                    running: !t.queued,
                    stalled: t.stalled,
                });
            } else if t.queued {
                // Paused, failed or checking: no longer waiting for a slot.
                t.queued = false;
                t.dirty = true;
            }
        }
        let run = queue::to_run(&settings, &entries);
        let mut changed = false;
        let mut fetch = Vec::new();
        for e in &entries {
            let Some(t) = self.torrents.get_mut(&e.id) else {
                continue;
            };
            match (run.contains(&e.id), t.queued) {
                (true, true) => {
                    t.queued = false;
                    t.stalled = false;
                    t.payload_seen = (payload(t), now);
                    match &mut t.phase {
                        Phase::Live(l) => l.tcp.dial_enabled = true,
                        Phase::Magnet(m) if m.fetch.is_none() => fetch.push(e.id),
                        _ => {}
                    }
                    t.dirty = true;
                    tracing::info!(torrent = %t.name(), "queue: starting");
                    changed = true;
                }
                (false, false) => {
                    t.queued = true;
                    t.stalled = false;
                    Self::stop_lanes(t, net, CloseReason::Queued, now);
                    if let Some(l) = t.phase.live_mut() {
                        l.tcp.dial_enabled = false;
                    }
                    t.dirty = true;
                    tracing::info!(torrent = %t.name(), "queue: waiting for a slot");
                    changed = true;
                }
                _ => {}
            }
        }
        for ih in fetch {
            self.start_fetch(&ih, now);
        }
        self.publish_due |= changed;
        changed
    }

    /// When the queue next needs a look by the clock alone (None while queueing is off).
    pub(super) fn queue_deadline(&self) -> Option<Instant> {
        self.queue.enabled.then_some(self.next_queue)
    }

    /// Gives every torrent a position without gaps or ties, in its current order (ties, as
    /// after loading an older torrent list, by the time they were added).
    pub(super) fn renumber_queue(&mut self) {
        let order = self.queue_order();
        self.set_queue_order(&order);
    }

    /// Every torrent, first in the queue first.
    fn queue_order(&self) -> Vec<InfoHash> {
        let mut v: Vec<(&InfoHash, &Torrent)> = self.torrents.iter().collect();
        v.sort_by_key(|(ih, t)| (t.settings.queue_position, t.settings.added_unix, **ih));
        v.into_iter().map(|(ih, _)| *ih).collect()
    }

    fn set_queue_order(&mut self, order: &[InfoHash]) {
        for (i, ih) in order.iter().enumerate() {
            if let Some(t) = self.torrents.get_mut(ih) {
                t.settings.queue_position = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
    }

    /// Moves torrents in the queue (all named ones must exist).
    pub(super) fn queue_move(&mut self, ihs: &[InfoHash], to: Move) -> Result<(), ControlError> {
        if let Some(ih) = ihs.iter().find(|ih| !self.torrents.contains_key(*ih)) {
            return Err(ControlError::UnknownTorrent(info_hash_hex(ih)));
        }
        let order = queue::moved(&self.queue_order(), ihs, to);
        self.set_queue_order(&order);
        self.queue_due = true;
        self.save_torrent_list();
        Ok(())
    }

    /// Force-starts a torrent (resuming it if paused) or puts it back under the limits.
    pub(super) fn force_start(&mut self, ih: &InfoHash, force: bool) -> Result<(), ControlError> {
        self.with_torrent(ih, |t| {
            if force && t.settings.paused {
                unpause(t)?;
            }
            t.settings.force_start = force;
            Ok(())
        })?;
        let refetch = self.torrents.get(ih).is_some_and(|t| {
            !t.queued
                && matches!(
                    t.phase,
                    Phase::Magnet(MagnetPhase {
                        fetch: None,
                        failure: None,
                        ..
                    })
                )
        });
        if refetch && force {
            self.start_fetch(ih, Instant::now());
        }
        self.queue_due = true;
        self.save_torrent_list();
        Ok(())
    }

    /// Changes the queue settings; they apply at once.
    pub(super) fn set_queue(&mut self, u: &QueueUpdate) -> Result<(), ControlError> {
        let next = self.queue.updated(u);
        next.validate()
            .map_err(|e| ControlError::BadRequest(e.to_string()))?;
        self.queue = next;
        self.queue_due = true;
        self.save_client_settings();
        Ok(())
    }

    /// The queue settings loaded from the store.
    pub(super) fn load_queue(&mut self, q: QueueSettings) {
        self.queue = q;
        self.queue_due = true;
    }
}

/// Resumes a paused torrent (its space allocated first: it stays paused if that fails).
pub(super) fn unpause(t: &mut Torrent) -> Result<(), ControlError> {
    if let Some(d) = t.phase.data() {
        d.storage.allocate()?;
    }
    t.settings.paused = false;
    t.pause_note = None;
    if let Some(l) = t.phase.live_mut() {
        l.tcp.dial_enabled = !t.queued;
    }
    Ok(())
}

/// Whether (and as what) a torrent asks for a slot: not paused, not failed, and live or
/// fetching its metadata. A torrent being checked or moved across filesystems takes none.
fn wants_to_run(t: &Torrent) -> Option<Kind> {
    if t.settings.paused || t.phase.failure().is_some() {
        return None;
    }
    match &t.phase {
        Phase::Live(l) if l.app.session.is_complete() => Some(Kind::Seed),
        Phase::Live(_) | Phase::Magnet(_) => Some(Kind::Download),
        Phase::Checking(_) | Phase::Fetched(_) => None,
    }
}

/// Payload bytes the torrent received (0 before it has a session).
fn payload(t: &Torrent) -> u64 {
    t.phase.live().map_or(0, |l| l.app.session.bytes_down)
}

/// Notes whether payload arrived since the last look, and whether it is stalled: it runs as
/// a download and nothing arrived for `stalled_after_secs`.
fn note_payload(t: &mut Torrent, settings: &QueueSettings, now: Instant) {
    let bytes = payload(t);
    let downloading = !t.queued && wants_to_run(t) == Some(Kind::Download);
    if bytes != t.payload_seen.0 || !downloading {
        t.payload_seen = (bytes, now);
    }
    let stalled = downloading
        && settings.enabled
        && settings.stalled_after_secs.is_some_and(|secs| {
            now.saturating_duration_since(t.payload_seen.1) >= Duration::from_secs(secs)
        });
    if stalled != t.stalled {
        t.stalled = stalled;
        t.dirty = true;
    }
}
