//! A torrent's phase transitions (`client::phase`): added from a .torrent (checking) or a
//! magnet link, the metadata fetch started and finished, checked data going live.

use super::*;

impl Client {
    /// Adds a torrent whose data is already checked (single-shot commands check before the
    /// loop starts, as they always did); it goes live at once.
    pub fn add_live(&mut self, t: LiveTorrent, now: Instant) -> InfoHash {
        let buckets = (SharedBucket::new(None, now), SharedBucket::new(None, now));
        let (peers, source) = (t.peers.clone(), t.source);
        let tor = self.insert_live(t, buckets, now);
        for p in &peers {
            tor.book.add(*p, source);
        }
        tor.info_hash
    }

    /// Adds a checked torrent straight into the live phase, with the given own-limit buckets.
    pub(super) fn insert_live(
        &mut self,
        t: LiveTorrent,
        buckets: (SharedBucket, SharedBucket),
        now: Instant,
    ) -> &mut Torrent {
        let ih = t.meta.info_hash;
        let settings = torrent::settings(t.out_dir, false, Limits::default(), &t.peers);
        let data = TorrentData {
            meta: t.meta,
            torrent_bytes: t.torrent_bytes,
            data_path: t.data_path,
            storage: t.storage,
        };
        let live = self.new_live(data, t.have, &buckets, false, t.stop_when, now);
        let mut tor = Torrent::new(ih, Phase::Live(Box::new(live)), settings, now);
        (tor.down_bucket, tor.up_bucket) = buckets;
        self.register_live(ih, &mut tor);
        self.torrents.entry(ih).insert_entry(tor).into_mut()
    }

    /// The data paths (with the torrent's name) of every torrent that has its data, but
    /// `except`'s.
    pub(super) fn data_paths_in_use(&self, except: &InfoHash) -> Vec<(String, PathBuf)> {
        self.torrents
            .iter()
            .filter(|(ih, _)| *ih != except)
            .filter_map(|(_, t)| Some((t.name(), t.phase.data()?.data_path.clone())))
            .collect()
    }

    /// Adds a torrent from its .torrent bytes: it is checked (trusting `resume` where the
    /// files did not change) on the shared pool, then runs (or stays paused).
    pub fn add_torrent(
        &mut self,
        bytes: Vec<u8>,
        settings: resume::SavedTorrentSettings,
        resume: Option<ResumeData>,
        peers: &[(PeerAddr, PeerSource)],
        now: Instant,
    ) -> Result<InfoHash, ControlError> {
        let meta = Metainfo::from_bytes(&bytes)
            .map(Arc::new)
            .map_err(|e| ControlError::BadTorrent(e.to_string()))?;
        let ih = meta.info_hash;
        if self.torrents.contains_key(&ih) {
            return Err(ControlError::Duplicate(info_hash_hex(&ih)));
        }
        let in_use = self.data_paths_in_use(&ih);
        let checking = prepare_data(&settings, meta, bytes, resume.as_ref(), &in_use)?;
        let pieces_checked = checking.checker.progress().1 as u32;
        let mut t = Torrent::new(ih, Phase::Checking(checking), settings, now);
        t.pieces_checked = pieces_checked;
        add_known_peers(&mut t, peers);
        self.torrents.insert(ih, t);
        Ok(ih)
    }

    /// Adds a magnet link: the torrent exists with its info hash only and fetches its
    /// metadata from the peers it learns of (the link's `x.pe`, `peers`, trackers from `tr`),
    /// then is checked and runs like any other.
    pub fn add_magnet(
        &mut self,
        uri: &str,
        mut settings: resume::SavedTorrentSettings,
        peers: &[(PeerAddr, PeerSource)],
        now: Instant,
    ) -> Result<InfoHash, ControlError> {
        let magnet = bt_ext::parse_magnet(uri)
            .map_err(|e| ControlError::BadTorrent(format!("bad magnet link: {e}")))?;
        let ih = magnet.info_hash;
        if self.torrents.contains_key(&ih) {
            return Err(ControlError::Duplicate(info_hash_hex(&ih)));
        }
        settings.magnet = Some(uri.trim().to_string());
        let link_peers = magnet.peers.clone();
        let trackers = magnet.trackers.len();
        let phase = Phase::Magnet(MagnetPhase {
            magnet,
            fetch: None,
            failure: None,
        });
        let mut t = Torrent::new(ih, phase, settings, now);
        for p in &link_peers {
            t.book.add(*p, PeerSource::Magnet);
        }
        add_known_peers(&mut t, peers);
        tracing::info!(
            info_hash = %info_hash_hex(&ih),
            peers = t.book.len(),
            trackers,
            "magnet link: fetching metadata"
        );
        let paused = t.settings.paused;
        self.torrents.insert(ih, t);
        if !paused {
            self.start_fetch(&ih, now);
        }
        Ok(ih)
    }

    /// Starts (again) fetching a magnet torrent's metadata.
    pub(super) fn start_fetch(&mut self, ih: &InfoHash, now: Instant) {
        let client_name = self.session_config().client_name;
        let Some(t) = self.torrents.get_mut(ih) else {
            return;
        };
        let Phase::Magnet(m) = &mut t.phase else {
            return;
        };
        let fetch = crate::client::magnet::Fetch::new(
            *ih,
            self.peer_id,
            client_name,
            &self.tcp,
            self.opts.liveness,
            now,
        );
        self.router.add_dialer(fetch.tcp.owner(), *ih);
        m.fetch = Some(Box::new(fetch));
        m.failure = None;
        t.book.reset_active();
        t.dirty = true;
    }

    /// A magnet torrent's metadata arrived: its fetch lanes close, its .torrent is written
    /// from the info dictionary, and it is checked, then runs, dialling its peers again.
    pub(super) fn finish_fetch(
        &mut self,
        net: &mut ScionNet,
        ih: &InfoHash,
        info: &[u8],
        now: Instant,
    ) {
        let in_use = self.data_paths_in_use(ih);
        let Some(t) = self.torrents.get_mut(ih) else {
            return;
        };
        let Phase::Magnet(m) = &mut t.phase else {
            return;
        };
        if let Some(mut f) = m.fetch.take() {
            f.close(net, CloseReason::MetadataComplete, now);
            self.router.remove_dialer(f.tcp.owner());
        }
        self.router.forget_lanes_of(ih);
        t.book.reset_active();
        let trackers: Vec<String> = t.announce().into_iter().flatten().collect();
        let metadata_only = self.opts.metadata_only;
        let web_seeds = match &t.phase {
            Phase::Magnet(m) => m.magnet.web_seeds.clone(),
            _ => Vec::new(),
        };
        let next = bt_ext::torrent_file_with_web_seeds(info, &trackers, &web_seeds)
            .map_err(|e| ControlError::BadTorrent(e.to_string()))
            .and_then(|bytes| {
                let meta = Metainfo::from_bytes(&bytes)
                    .map(Arc::new)
                    .map_err(|e| ControlError::BadTorrent(e.to_string()))?;
                if meta.info_hash != *ih {
                    return Err(ControlError::BadTorrent(
                        "the fetched metadata names another info hash".into(),
                    ));
                }
                if metadata_only {
                    // The caller takes the .torrent and goes on with it.
                    return Ok(Phase::Fetched(FetchedPhase {
                        meta,
                        torrent_bytes: bytes,
                    }));
                }
                let checking = prepare_data(&t.settings, meta, bytes, None, &in_use)?;
                t.pieces_checked = checking.checker.progress().1 as u32;
                Ok(Phase::Checking(checking))
            });
        match next {
            Ok(phase) => {
                t.phase = phase;
                tracing::info!(torrent = %t.name(), "metadata fetched");
            }
            Err(e) => {
                let failure = crate::client::magnet::FetchFailure::Unusable(e.to_string());
                tracing::warn!(info_hash = %info_hash_hex(ih), "{failure}");
                if let Phase::Magnet(m) = &mut t.phase {
                    m.failure = Some(failure);
                }
            }
        }
        t.dirty = true;
        self.publish_due = true;
        self.save_torrent_list();
        if metadata_only {
            self.done = self
                .torrents
                .values()
                .all(|t| matches!(t.phase, Phase::Fetched(_)) || t.phase.failure().is_some());
        }
    }

    /// The session and lanes of a checked torrent (`buckets`: its own rate limits).
    pub(super) fn new_live(
        &mut self,
        data: TorrentData,
        have: Bitfield,
        buckets: &(SharedBucket, SharedBucket),
        paused: bool,
        stop_when: StopWhen,
        now: Instant,
    ) -> LivePhase {
        let verifier =
            PoolVerifier::new(self.pool.clone(), data.storage.clone(), data.meta.clone());
        let mut session = Session::new(
            data.meta.clone(),
            Box::new(data.storage.clone()) as Box<dyn Storage>,
            Box::new(verifier),
            have,
            self.session_config(),
            now,
        );
        session.set_rate_limits(
            Limiter::new(vec![buckets.0.clone(), self.global_down.clone()]),
            Limiter::new(vec![buckets.1.clone(), self.global_up.clone()]),
        );
        let mut tcp = TcpLanes::new(&self.tcp, data.meta.info_hash);
        tcp.liveness = self.opts.liveness;
        tcp.dial_enabled = !paused;
        let web = crate::engine::web_seed::WebSeedLanes::new(&data.meta, self.wake.clone(), now);
        LivePhase {
            data,
            app: QuicBtApp::new(session, Vec::new(), stop_when, now),
            tcp,
            web,
        }
    }

    /// Registers a torrent that just went live (its TCP lanes' owner tag).
    pub(super) fn register_live(&mut self, ih: InfoHash, t: &mut Torrent) {
        if let Some(l) = t.phase.live() {
            self.router.add_dialer(l.tcp.owner(), ih);
        }
        t.went_live();
    }

    pub(super) fn stop_lanes(
        t: &mut Torrent,
        net: &mut ScionNet,
        reason: CloseReason,
        now: Instant,
    ) {
        match &mut t.phase {
            Phase::Live(l) => {
                l.app.close_all(net, reason.clone(), now);
                l.web.close_lanes(&mut l.app.session, reason.clone(), now);
                l.tcp.close_lanes(&mut l.app.session, reason, now);
            }
            Phase::Magnet(m) => {
                if let Some(mut f) = m.fetch.take() {
                    f.close(net, reason, now);
                }
            }
            Phase::Fetched(_) | Phase::Checking(_) => {}
        }
        t.book.reset_active();
    }
}

/// Puts peers into a new torrent's book: the given ones, then those saved with its settings.
pub(super) fn add_known_peers(t: &mut Torrent, peers: &[(PeerAddr, PeerSource)]) {
    for (p, s) in peers {
        t.book.add(*p, *s);
    }
    for p in t.settings.peers.clone() {
        if let Ok(a) = p.parse::<PeerAddr>() {
            t.book.add(a, PeerSource::Resume);
        }
    }
}

/// A torrent's data place and storage, and the check that starts its life with metadata
/// (trusting `resume` where the files did not change).
pub(super) fn prepare_data(
    settings: &resume::SavedTorrentSettings,
    meta: Arc<Metainfo>,
    bytes: Vec<u8>,
    resume: Option<&ResumeData>,
    in_use: &[(String, PathBuf)],
) -> Result<CheckingPhase, ControlError> {
    // One data path per torrent: two torrents sharing files would write into each other's
    // pieces, and removing one with its data would delete the other's.
    let wanted = settings.out_dir.join(&meta.name);
    if let Some((name, _)) = in_use
        .iter()
        .find(|(_, p)| p.starts_with(&wanted) || wanted.starts_with(p))
    {
        return Err(ControlError::DataConflict(format!(
            "{} would share files with torrent {name:?}; add it in another directory",
            wanted.display()
        )));
    }
    // Everything of the torrent lives below its out_dir, never through a link out of it.
    let place = DataPlace::below(&settings.out_dir, &meta.name)?;
    let data_path = place.data_path();
    // Stamped before the storage opens the files: reserving space may touch their mtime.
    let paths = meta
        .files
        .iter()
        .map(|f| Ok(place.display(&place.relative(&meta, f)?)))
        .collect::<Result<Vec<_>, StorageError>>()?;
    let stamps = resume::stamp_files(&meta, &data_path, paths.iter().map(|p| p.as_path()));
    // A paused torrent takes no disk space until it is resumed.
    let allocation = match settings.paused {
        true => Allocation::Sparse,
        false => Allocation::Full,
    };
    // Skipped files are not created (their shared pieces' bytes go to the parts file).
    let skipped = crate::client::wanted::skipped_files(&meta, &settings.files);
    let storage =
        MmapStorage::create_in_skipping(&meta, place, allocation, &skipped).map(Arc::new)?;
    let plan = plan_check(&meta, resume, &stamps, |p| storage.may_hold(p));
    tracing::info!(
        torrent = %meta.name,
        resumed = plan.resumed,
        trusted = plan.trusted.count_ones(),
        recheck = plan.recheck.len(),
        "checking"
    );
    Ok(CheckingPhase {
        data: TorrentData {
            meta,
            torrent_bytes: bytes,
            data_path,
            storage,
        },
        checker: Checker::new(plan.trusted, plan.recheck),
    })
}
