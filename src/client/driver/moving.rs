//! Moving a torrent's data to another directory of the download root while it runs: renamed
//! at once on one filesystem, else copied and verified off the loop (`client::mover`) and
//! switched over when the copy is done.

use super::*;
use crate::client::control::MoveProgress;
use crate::client::mover::{MoveError, MoveJob, MovePlan};

/// How often a move across filesystems is looked at while its copy runs.
const MOVE_POLL: Duration = Duration::from_millis(50);

impl Client {
    /// Moves a live torrent's data below `to` (see [`Command::Move`]).
    pub(super) fn move_data(
        &mut self,
        net: &mut ScionNet,
        ih: &InfoHash,
        to: PathBuf,
        now: Instant,
    ) -> Result<MoveProgress, ControlError> {
        let in_use = self.data_paths_in_use(ih);
        let Some(t) = self.torrents.get(ih) else {
            return Err(ControlError::UnknownTorrent(info_hash_hex(ih)));
        };
        let Some(l) = t.phase.live() else {
            return Err(ControlError::BadRequest(
                "only a torrent that has its data and is not being checked can move".into(),
            ));
        };
        if self.moves.contains_key(ih) {
            return Err(ControlError::BadRequest("it is already moving".into()));
        }
        if to == t.settings.out_dir {
            return Ok(MoveProgress::Done);
        }
        let meta = l.data.meta.clone();
        let plan = MovePlan {
            skipped: crate::client::wanted::skipped_files(&meta, &t.settings.files),
            from: t.settings.out_dir.clone(),
            to: to.clone(),
            meta,
        };
        let (from, dest) = (plan.data_from(), plan.data_to());
        if dest.starts_with(&from) {
            return Err(ControlError::BadRequest(format!(
                "cannot move {} into itself",
                from.display()
            )));
        }
        if let Some((name, _)) = in_use
            .iter()
            .find(|(_, p)| p.starts_with(&dest) || dest.starts_with(p))
        {
            return Err(ControlError::DataConflict(format!(
                "{} would share files with torrent {name:?}",
                dest.display()
            )));
        }
        if dest.symlink_metadata().is_ok() {
            return Err(ControlError::DataConflict(format!(
                "{} already exists",
                dest.display()
            )));
        }
        // What is on disk is what moves: verified pieces must be in the files first.
        l.data.storage.sync()?;
        let have = l.app.session.have().clone();
        self.move_errors.remove(ih);
        match rename_data(&plan) {
            Ok(()) => {
                if let Err(e) = self.switch_place(net, ih, &plan, have, false, now) {
                    // Back where it was: the torrent still runs from there.
                    let _ = rename_back(&plan);
                    return Err(e);
                }
                tracing::info!(to = %to.display(), "moved (renamed) {}", info_hash_hex(ih));
                Ok(MoveProgress::Done)
            }
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                tracing::info!(to = %to.display(), "moving {} across filesystems", info_hash_hex(ih));
                self.moves.insert(*ih, MoveJob::start(plan, have));
                Ok(MoveProgress::Copying)
            }
            Err(e) => Err(ControlError::Storage(format!(
                "cannot move {} to {}: {e}",
                from.display(),
                dest.display()
            ))),
        }
    }

    /// Switches torrents whose copy is done over to their new place (or leaves them at the
    /// old one with the reason shown); when to look again while copies run.
    pub(super) fn pump_moves(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        let done: Vec<(InfoHash, Result<(), MoveError>)> = self
            .moves
            .iter()
            .filter_map(|(ih, job)| job.poll().map(|r| (*ih, r)))
            .collect();
        for (ih, r) in done {
            let Some(job) = self.moves.remove(&ih) else {
                continue;
            };
            let plan = self.torrents.get(&ih).and_then(|t| {
                let meta = t.phase.live()?.data.meta.clone();
                Some(MovePlan {
                    skipped: crate::client::wanted::skipped_files(&meta, &t.settings.files),
                    from: t.settings.out_dir.clone(),
                    to: job.to.clone(),
                    meta,
                })
            });
            let r = r.map_err(|e| e.to_string()).and_then(|()| {
                let plan = plan.as_ref().ok_or("it is no longer running")?;
                // The copy has the pieces verified when it began; ones fetched since are
                // fetched again at the new place.
                self.switch_place(net, &ih, plan, job.have.clone(), true, now)
                    .map_err(|e| e.to_string())
            });
            match r {
                Ok(()) => tracing::info!(to = %job.to.display(), "moved {}", info_hash_hex(&ih)),
                Err(e) => {
                    tracing::warn!("moving {} failed: {e}", info_hash_hex(&ih));
                    if let Some(plan) = &plan {
                        // Nothing of the failed copy is left behind (the thread cleans up
                        // after itself; this is the renamed copy a late failure leaves).
                        let _ = std::fs::remove_dir_all(plan.data_to())
                            .or_else(|_| std::fs::remove_file(plan.data_to()));
                    }
                    self.move_errors.insert(ih, format!("move failed: {e}"));
                }
            }
            self.publish_due = true;
        }
        (!self.moves.is_empty()).then_some(now + MOVE_POLL)
    }

    /// Rebuilds a live torrent on its data at `plan.to` (lanes close and are made again),
    /// with `have` verified; deletes the old data when `delete_old` (it was copied).
    fn switch_place(
        &mut self,
        net: &mut ScionNet,
        ih: &InfoHash,
        plan: &MovePlan,
        have: Bitfield,
        delete_old: bool,
        now: Instant,
    ) -> Result<(), ControlError> {
        let paused = self.torrents.get(ih).is_some_and(|t| t.settings.paused);
        // Opened before anything is torn down: if it fails, the torrent runs on as it was.
        let place = DataPlace::below(&plan.to, &plan.meta.name)?;
        let data_path = place.data_path();
        let allocation = match paused {
            true => Allocation::Sparse,
            false => Allocation::Full,
        };
        let storage = MmapStorage::create_in_skipping(&plan.meta, place, allocation, &plan.skipped)
            .map(Arc::new)?;
        let Some(mut t) = self.torrents.remove(ih) else {
            return Err(ControlError::UnknownTorrent(info_hash_hex(ih)));
        };
        Self::stop_lanes(&mut t, net, CloseReason::Moved, now);
        self.router.forget_torrent(ih);
        let phase = std::mem::replace(
            &mut t.phase,
            Phase::Fetched(FetchedPhase {
                meta: plan.meta.clone(),
                torrent_bytes: Vec::new(),
            }),
        );
        let Phase::Live(l) = phase else {
            t.phase = phase;
            self.torrents.insert(*ih, t);
            return Err(ControlError::BadRequest("it is no longer running".into()));
        };
        let LivePhase { data, mut tcp, .. } = *l;
        tcp.close_all();
        // Pieces fetched while a copy ran are not in it.
        let mut kept = Bitfield::new(plan.meta.num_pieces());
        for p in have.iter_ones() {
            kept.set(p);
        }
        let new_data = TorrentData {
            meta: data.meta.clone(),
            torrent_bytes: data.torrent_bytes.clone(),
            data_path,
            storage,
        };
        let buckets = (t.down_bucket.clone(), t.up_bucket.clone());
        let live = self.new_live(new_data, kept, &buckets, paused, StopWhen::Never, now);
        t.phase = Phase::Live(Box::new(live));
        t.settings.out_dir = plan.to.clone();
        t.saved_have = None;
        self.register_live(*ih, &mut t);
        self.torrents.insert(*ih, t);
        if delete_old {
            data.storage.delete_files();
        }
        drop(data);
        self.save_torrent_list();
        self.save_resume(false);
        Ok(())
    }

    /// Puts what moves and why the last move failed into the torrents' snapshots.
    pub(super) fn show_moves(&self, torrents: &mut [super::super::control::TorrentSnapshot]) {
        if self.moves.is_empty() && self.move_errors.is_empty() {
            return;
        }
        for (ih, job) in &self.moves {
            let hex = info_hash_hex(ih);
            if let Some(s) = torrents.iter_mut().find(|s| s.info_hash == hex) {
                s.moving_to = Some(job.to.display().to_string());
            }
        }
        for (ih, e) in &self.move_errors {
            let hex = info_hash_hex(ih);
            if let Some(s) = torrents.iter_mut().find(|s| s.info_hash == hex) {
                s.error.get_or_insert_with(|| e.clone());
            }
        }
    }
}

/// Renames the data (and its parts file) to the new place; on one filesystem this is atomic
/// and instant. `EXDEV` says the places are on two.
fn rename_data(plan: &MovePlan) -> std::io::Result<()> {
    std::fs::create_dir_all(&plan.to)?;
    std::fs::rename(plan.data_from(), plan.data_to())?;
    let parts = plan.parts_from();
    if parts.exists() {
        if let Err(e) = std::fs::rename(&parts, plan.parts_to()) {
            let _ = std::fs::rename(plan.data_to(), plan.data_from());
            return Err(e);
        }
    }
    Ok(())
}

fn rename_back(plan: &MovePlan) -> std::io::Result<()> {
    std::fs::rename(plan.data_to(), plan.data_from())?;
    if plan.parts_to().exists() {
        std::fs::rename(plan.parts_to(), plan.parts_from())?;
    }
    Ok(())
}
