//! What a user runs by hand on torrents left to run unattended: re-checking a torrent's
//! data, categories and tags.

use super::*;

impl Client {
    /// Live → Checking with every piece to hash again: its lanes close, and once the check is
    /// done it goes live with what verified (what no longer does is downloaded again). A
    /// torrent already checking is left as it is; one without metadata has nothing to check.
    pub(super) fn recheck(
        &mut self,
        net: &mut ScionNet,
        ih: &InfoHash,
        now: Instant,
    ) -> Result<(), ControlError> {
        let Some(t) = self.torrents.get_mut(ih) else {
            return Err(ControlError::UnknownTorrent(info_hash_hex(ih)));
        };
        match &t.phase {
            Phase::Checking(_) => return Ok(()),
            Phase::Live(_) => {}
            Phase::Magnet(_) | Phase::Fetched(_) => {
                return Err(ControlError::BadRequest(format!(
                    "torrent {} has no metadata yet: nothing to check",
                    info_hash_hex(ih)
                )))
            }
        }
        Self::stop_lanes(t, net, CloseReason::Rechecking, now);
        let Some(mut t) = self.torrents.remove(ih) else {
            return Ok(());
        };
        self.router.forget_torrent(ih);
        t.phase = match t.phase {
            Phase::Live(l) => {
                let LivePhase { data, mut tcp, .. } = *l;
                tcp.close_all();
                let n = data.meta.num_pieces();
                t.pieces_checked = n;
                Phase::Checking(CheckingPhase {
                    data,
                    checker: Checker::new(Bitfield::new(n), (0..n).collect()),
                })
            }
            other => other,
        };
        // The verified set may change without its count changing: save it after the check.
        t.saved_have = None;
        t.seeding_since = None;
        t.dirty = true;
        tracing::info!(torrent = %t.name(), "re-checking all pieces");
        self.torrents.insert(*ih, t);
        Ok(())
    }
}

impl Client {
    /// Creates or changes a category (its save path was checked by the front end).
    pub(super) fn set_category(
        &mut self,
        name: String,
        category: super::super::control::Category,
    ) -> Result<(), ControlError> {
        crate::client::labels::check_category(&name)?;
        self.categories.insert(name, category);
        self.save_client_settings();
        Ok(())
    }

    /// Deletes a category: its torrents keep their data where it is, in no category.
    pub(super) fn remove_category(&mut self, name: &str) -> Result<(), ControlError> {
        if self.categories.remove(name).is_none() {
            return Err(ControlError::BadRequest(format!("no category {name:?}")));
        }
        let mut changed = false;
        for t in self.torrents.values_mut() {
            if t.settings.labels.category.as_deref() == Some(name) {
                t.settings.labels.category = None;
                changed = true;
            }
        }
        self.save_client_settings();
        if changed {
            self.save_torrent_list();
        }
        Ok(())
    }

    /// Puts a torrent in an existing category (or in none).
    pub(super) fn set_torrent_category(
        &mut self,
        ih: &InfoHash,
        category: Option<String>,
    ) -> Result<(), ControlError> {
        if let Some(c) = category
            .as_ref()
            .filter(|c| !self.categories.contains_key(*c))
        {
            return Err(ControlError::BadRequest(format!("no category {c:?}")));
        }
        self.with_torrent(ih, |t| {
            t.settings.labels.category = category;
            Ok(())
        })?;
        self.save_torrent_list();
        Ok(())
    }
}

impl Client {
    /// A new torrent's labels, if its category exists and its tags are good.
    pub(super) fn checked_labels(
        &self,
        labels: super::super::control::Labels,
    ) -> Result<super::super::control::Labels, ControlError> {
        if let Some(c) = labels
            .category
            .as_ref()
            .filter(|c| !self.categories.contains_key(*c))
        {
            return Err(ControlError::BadRequest(format!("no category {c:?}")));
        }
        labels
            .tags
            .iter()
            .try_for_each(|t| crate::client::labels::check_tag(t))?;
        Ok(labels)
    }
}
