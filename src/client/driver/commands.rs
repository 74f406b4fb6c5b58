//! The front ends' commands (add, pause, resume, remove, limits, path rules, seeding policy,
//! shutdown), executed on the loop.

use super::*;

impl Client {
    pub(super) fn handle_command(&mut self, net: &mut ScionNet, cmd: Command, now: Instant) {
        if self.shutting_down.is_some() {
            match cmd {
                // Answered when the shutdown is done.
                Command::Shutdown(reply) => self.begin_shutdown(net, Some(reply), now),
                cmd => reject_shutting_down(cmd),
            }
            return;
        }
        match cmd {
            Command::Add(add, reply) => {
                let r = self.add_command(*add, now);
                // A caller that reads the snapshot after the reply sees the command's effect.
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Pause(ih, reply) => {
                let r = self.with_torrent(&ih, |t| {
                    t.settings.paused = true;
                    // As in qBittorrent: resuming later puts it back under the queue.
                    t.settings.force_start = false;
                    Ok(())
                });
                if r.is_ok() {
                    if let Some(t) = self.torrents.get_mut(&ih) {
                        Self::stop_lanes(t, net, CloseReason::Paused, now);
                        if let Some(store) = &mut self.store {
                            save_one(store.as_mut(), t, true);
                        }
                    }
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Resume(ih, reply) => {
                let r = self.with_torrent(&ih, super::queueing::unpause);
                let refetch = self.torrents.get(&ih).is_some_and(|t| {
                    let idle_magnet =
                        matches!(t.phase, Phase::Magnet(MagnetPhase { fetch: None, .. }));
                    idle_magnet && !t.settings.paused
                });
                if refetch {
                    self.start_fetch(&ih, now);
                }
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Remove {
                info_hash,
                delete_data,
                reply,
            } => {
                let r = match self.torrents.remove(&info_hash) {
                    None => Err(ControlError::UnknownTorrent(info_hash_hex(&info_hash))),
                    Some(mut t) => {
                        Self::stop_lanes(&mut t, net, CloseReason::Removed, now);
                        self.router.forget_torrent(&info_hash);
                        if let Some(store) = &mut self.store {
                            if let Err(e) = store.remove(&info_hash) {
                                tracing::warn!("cannot forget the torrent's resume data: {e}");
                            }
                        }
                        let storage = t.phase.data().map(|d| d.storage.clone());
                        drop(t);
                        if let Some(storage) = storage.filter(|_| delete_data) {
                            storage.delete_files();
                        }
                        self.renumber_queue();
                        self.save_torrent_list();
                        Ok(())
                    }
                };
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::AddPeers {
                info_hash,
                peers,
                source,
                reply,
            } => {
                let r = self.with_torrent(&info_hash, |t| Ok(t.add_peers(&peers, source)));
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetLimits {
                info_hash,
                limits,
                reply,
            } => {
                let r = match info_hash {
                    None => {
                        self.set_global_limits(limits, now);
                        self.save_client_settings();
                        Ok(())
                    }
                    Some(ih) => self.with_torrent(&ih, |t| {
                        t.set_limits(limits, now);
                        Ok(())
                    }),
                };
                if r.is_ok() && info_hash.is_some() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetPathRules {
                info_hash,
                rules,
                reply,
            } => {
                let client_pref = self.opts.preference.clone();
                let r = rules.compile().map_err(ControlError::from).and_then(|c| {
                    self.with_torrent(&info_hash, |t| {
                        t.set_path_rules(net, rules.normalized(), c, &client_pref, now);
                        Ok(())
                    })
                });
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetFilePriorities {
                info_hash,
                priorities,
                reply,
            } => {
                let r = self.with_torrent(&info_hash, |t| t.set_file_priorities(&priorities));
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetFileOrder {
                info_hash,
                sequential,
                first_last_piece,
                reply,
            } => {
                let r = self.with_torrent(&info_hash, |t| {
                    t.set_file_order(sequential, first_last_piece);
                    Ok(())
                });
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetSeedPolicy(p, reply) => {
                self.seed_policy = p;
                self.save_client_settings();
                self.publish(now);
                let _ = reply.send(Ok(()));
            }
            Command::SetEncryption(p, reply) => {
                self.tcp.set_encryption(p);
                self.save_client_settings();
                self.publish(now);
                let _ = reply.send(Ok(()));
            }
            Command::PortMapping(status) => {
                self.port_mapping = status;
                self.publish(now);
            }
            Command::TrackerStatus {
                info_hash,
                trackers,
            } => {
                if let Some(t) = self.torrents.get_mut(&info_hash) {
                    t.trackers = trackers;
                }
            }
            Command::Serve(served) => self.serve(*served, now),
            Command::Stream(cmd) => self.stream_command(cmd),
            Command::Recheck(ih, reply) => {
                let r = self.recheck(net, &ih, now);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetCategory {
                name,
                category,
                reply,
            } => {
                let r = self.set_category(name, category);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::RemoveCategory { name, reply } => {
                let r = self.remove_category(&name);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetTorrentCategory {
                info_hash,
                category,
                reply,
            } => {
                let r = self.set_torrent_category(&info_hash, category);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::SetTags {
                info_hash,
                change,
                reply,
            } => {
                let r = self.with_torrent(&info_hash, |t| {
                    crate::client::labels::change_tags(&mut t.settings.labels.tags, &change)
                });
                if r.is_ok() {
                    self.save_torrent_list();
                }
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Move {
                info_hash,
                out_dir,
                reply,
            } => {
                let r = self.move_data(net, &info_hash, out_dir, now);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::ForceStart {
                info_hash,
                force,
                reply,
            } => {
                let r = self.force_start(&info_hash, force);
                self.pump_queue(net, now);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::QueueMove {
                info_hashes,
                to,
                reply,
            } => {
                let r = self.queue_move(&info_hashes, to);
                self.pump_queue(net, now);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::WatchReport(files) => {
                self.watch_files = files;
                self.publish(now);
            }
            Command::SetQueue(update, reply) => {
                let r = self.set_queue(&update);
                self.pump_queue(net, now);
                self.publish(now);
                let _ = reply.send(r);
            }
            Command::Shutdown(reply) => self.begin_shutdown(net, Some(reply), now),
        }
    }

    /// On another runtime: serves a complete torrent runtime 0 handed over,
    /// within runtime 0's rate limits for it.
    pub(super) fn serve(&mut self, s: crate::client::runtimes::ServedTorrent, now: Instant) {
        let ih = s.live.meta.info_hash;
        if self.torrents.contains_key(&ih) {
            return;
        }
        let t = self.insert_live(s.live, (s.down, s.up), now);
        // It only answers peers that come to it: runtime 0 dials.
        if let Some(l) = t.phase.live_mut() {
            l.tcp.dial_enabled = false;
        }
        tracing::info!(torrent = %t.name(), "seeding on this runtime");
    }

    pub(super) fn with_torrent<T>(
        &mut self,
        ih: &InfoHash,
        f: impl FnOnce(&mut Torrent) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        match self.torrents.get_mut(ih) {
            Some(t) => f(t),
            None => Err(ControlError::UnknownTorrent(info_hash_hex(ih))),
        }
    }

    pub(super) fn add_command(
        &mut self,
        add: AddTorrent,
        now: Instant,
    ) -> Result<InfoHash, ControlError> {
        let mut settings = torrent::settings(add.out_dir, add.paused, add.limits, &add.peers);
        settings.path_rules = add.path_rules.normalized();
        settings.labels = self.checked_labels(add.labels)?;
        let peers: Vec<(PeerAddr, PeerSource)> =
            add.peers.iter().map(|p| (*p, PeerSource::Api)).collect();
        settings.files.sequential = add.files.sequential;
        settings.files.first_last_piece = add.files.first_last_piece;
        if !add.files.priorities.is_empty() {
            // Checked against its files before anything is created: skipped files never are.
            let files =
                match &add.source {
                    TorrentSource::Metainfo(bytes) => Metainfo::from_bytes(bytes)
                        .map(|m| crate::client::wanted::visible_count(&m))
                        .map_err(|e| ControlError::BadTorrent(e.to_string()))?,
                    TorrentSource::Magnet(_) => return Err(ControlError::BadRequest(
                        "file priorities of a magnet link can be set once its metadata has arrived"
                            .into(),
                    )),
                };
            settings.files.set(files, &add.files.priorities)?;
        }
        let ih = match add.source {
            TorrentSource::Metainfo(bytes) => {
                self.add_torrent(bytes, settings, None, &peers, now)?
            }
            TorrentSource::Magnet(uri) => self.add_magnet(&uri, settings, &peers, now)?,
        };
        // Last in the queue.
        self.renumber_queue();
        self.save_torrent_list();
        Ok(ih)
    }

    /// Saves state, closes every lane politely, and stops the loop shortly after.
    pub fn begin_shutdown(
        &mut self,
        net: &mut ScionNet,
        reply: Option<crate::client::control::Reply<()>>,
        now: Instant,
    ) {
        if let Some((_, replies)) = &mut self.shutting_down {
            replies.extend(reply);
            return;
        }
        tracing::info!("shutting down");
        self.save_resume(true);
        self.save_torrent_list();
        for t in self.torrents.values_mut() {
            Self::stop_lanes(t, net, CloseReason::ShuttingDown, now);
            if let Some(l) = t.phase.live_mut() {
                l.tcp.close_all();
            }
        }
        if let Some(extra) = &mut self.extra {
            extra.begin_shutdown();
        }
        self.shutting_down = Some((now, reply.into_iter().collect()));
    }

    pub(super) fn set_global_limits(&mut self, limits: Limits, now: Instant) {
        self.limits = limits;
        self.global_down.set_rate(limits.download_bps, now);
        self.global_up.set_rate(limits.upload_bps, now);
    }
}

/// Which torrents a command may change (and so need a poll afterwards).
pub(super) enum Touches {
    None,
    One(InfoHash),
    All,
}

pub(super) fn touched_by(cmd: &Command) -> Touches {
    match cmd {
        // A new torrent starts dirty; a tracker report only changes what is shown.
        Command::Add(..)
        | Command::TrackerStatus { .. }
        | Command::PortMapping(_)
        | Command::Serve(_)
        | Command::SetEncryption(..)
        | Command::SetCategory { .. }
        | Command::RemoveCategory { .. }
        | Command::SetTorrentCategory { .. }
        | Command::SetTags { .. } => Touches::None,
        Command::Move { info_hash, .. } | Command::ForceStart { info_hash, .. } => {
            Touches::One(*info_hash)
        }
        Command::QueueMove { .. } | Command::SetQueue(..) => Touches::All,
        Command::WatchReport(_) => Touches::None,
        Command::Pause(ih, _) | Command::Resume(ih, _) | Command::Recheck(ih, _) => {
            Touches::One(*ih)
        }
        Command::Remove { info_hash, .. }
        | Command::AddPeers { info_hash, .. }
        | Command::SetPathRules { info_hash, .. } => Touches::One(*info_hash),
        Command::SetFilePriorities { info_hash, .. } | Command::SetFileOrder { info_hash, .. } => {
            Touches::One(*info_hash)
        }
        Command::SetLimits {
            info_hash: Some(ih),
            ..
        } => Touches::One(*ih),
        Command::SetLimits {
            info_hash: None, ..
        }
        | Command::SetSeedPolicy(..)
        | Command::Shutdown(_) => Touches::All,
        Command::Stream(cmd) => Touches::One(*cmd.info_hash()),
    }
}

pub(super) fn reject_shutting_down(cmd: Command) {
    let e = ControlError::ShuttingDown;
    match cmd {
        Command::PortMapping(_) => {}
        Command::Add(_, r) => {
            let _ = r.send(Err(e));
        }
        Command::Pause(_, r)
        | Command::Resume(_, r)
        | Command::Recheck(_, r)
        | Command::SetSeedPolicy(_, r)
        | Command::SetQueue(_, r)
        | Command::SetEncryption(_, r) => {
            let _ = r.send(Err(e));
        }
        Command::Remove { reply, .. }
        | Command::SetCategory { reply, .. }
        | Command::RemoveCategory { reply, .. }
        | Command::SetTorrentCategory { reply, .. }
        | Command::SetTags { reply, .. }
        | Command::SetLimits { reply, .. }
        | Command::SetPathRules { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::Stream(cmd) => cmd.reject(e),
        Command::SetFilePriorities { reply, .. } | Command::SetFileOrder { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::AddPeers { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::Move { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::ForceStart { reply, .. } | Command::QueueMove { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Command::WatchReport(_) => {}
        Command::TrackerStatus { .. } | Command::Serve(_) => {}
        Command::Shutdown(_) => unreachable!("handled by begin_shutdown"),
    }
}
