//! What survives a restart: the torrent list, each torrent's resume data, the client settings.

use super::*;

impl Client {
    /// Saves resume data of torrents whose verified set changed (all with `force`), after
    /// their data is on disk.
    pub(super) fn save_resume(&mut self, force: bool) {
        let Some(store) = &mut self.store else { return };
        for t in self.torrents.values_mut() {
            save_one(store.as_mut(), t, force);
        }
    }

    pub(super) fn save_torrent_list(&mut self) {
        let Some(store) = &mut self.store else { return };
        let list: Vec<SavedTorrent<'_>> = self
            .torrents
            .values()
            .map(|t| SavedTorrent {
                info_hash: t.info_hash,
                name: t.meta().map_or("", |m| m.name.as_str()),
                torrent: t.phase.torrent_bytes(),
                settings: &t.settings,
            })
            .collect();
        if let Err(e) = store.save_torrents(&list) {
            tracing::warn!("cannot save the torrent list: {e}");
        }
    }

    pub(super) fn save_client_settings(&mut self) {
        let settings = ClientSettings {
            categories: self.categories.clone(),
            limits: self.limits,
            seed_policy: self.seed_policy,
            encryption: Some(self.tcp.encryption()),
            queue: self.queue,
        };
        if let Some(store) = &mut self.store {
            if let Err(e) = store.save_client_settings(&settings) {
                tracing::warn!("cannot save the client settings: {e}");
            }
        }
    }

    /// Loads the client settings and every torrent the store remembers.
    pub fn load_saved(&mut self, now: Instant) {
        if let Some(s) = self.store.as_mut().and_then(|s| s.load_client_settings()) {
            let (s, rejected) = s.validated();
            for e in rejected {
                tracing::warn!("saved client settings: {e}; using the default instead");
            }
            self.seed_policy = s.seed_policy;
            self.categories = s.categories;
            // A policy given on the command line wins over the saved one.
            if let (None, Some(p)) = (self.opts.encryption, s.encryption) {
                self.tcp.set_encryption(p);
            }
            self.set_global_limits(s.limits, now);
            self.load_queue(s.queue);
        }
        let Some(store) = &mut self.store else { return };
        let saved = store.load_all();
        let mut loaded = Vec::new();
        for (bytes, settings) in saved {
            let ih = Metainfo::from_bytes(&bytes).map(|m| m.info_hash).ok();
            let resume = ih.and_then(|ih| store.load_resume(&ih));
            loaded.push((bytes, settings, resume));
        }
        for (bytes, settings, resume) in loaded {
            let added = match (bytes.is_empty(), settings.magnet.clone()) {
                (true, Some(uri)) => self.add_magnet(&uri, settings, &[], now),
                _ => self.add_torrent(bytes, settings, resume, &[], now),
            };
            if let Err(e) = added {
                tracing::warn!("cannot load a saved torrent: {e}");
            }
        }
        self.renumber_queue();
    }
}

pub(super) fn save_one(store: &mut dyn ResumeStore, t: &mut Torrent, force: bool) {
    let Some(LivePhase { app, data, .. }) = t.phase.live() else {
        return;
    };
    let (storage, meta) = (&data.storage, &data.meta);
    let have = app.session.have().clone();
    let n = have.count_ones();
    if !force && t.saved_have == Some(n) {
        return;
    }
    // The data first: a piece recorded as verified must be on disk.
    if let Err(e) = storage.sync() {
        tracing::warn!(torrent = %meta.name, "cannot sync data; resume data not saved: {e}");
        return;
    }
    let mut stamps = resume::stamp_files(meta, &data.data_path, storage.paths());
    // A skipped file kept in the parts file has no stamp of its own: an empty one, which never
    // matches, so the pieces it shares are hashed again at start (from the parts file).
    for (i, s) in stamps.iter_mut().enumerate() {
        if s.is_none() && storage.is_parted(i) {
            *s = Some(resume::FileStamp {
                path: String::new(),
                length: 0,
                mtime_ns: 0,
            });
        }
    }
    let Some(r) = resume::resume_data(&have, stamps) else {
        tracing::warn!(torrent = %meta.name, "cannot stat the data files; resume data not saved");
        return;
    };
    match store.save_resume(&t.info_hash, &r) {
        Ok(()) => t.saved_have = Some(n),
        Err(e) => tracing::warn!(torrent = %meta.name, "cannot save resume data: {e}"),
    }
}
