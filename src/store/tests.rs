use super::*;

fn entry(byte: u8, added: u64) -> TorrentEntry {
    TorrentEntry {
        info_hash: [byte; 20],
        name: format!("t{byte}"),
        out_dir: PathBuf::from("/downloads/x"),
        paused: byte.is_multiple_of(2),
        limits: Limits {
            download_bps: Some(1000),
            upload_bps: None,
        },
        added_unix: added,
        magnet: None,
        peers: vec!["127.0.0.1:6881".into()],
        // Saved and loaded like the rest (a restart keeps skipped files skipped).
        files: crate::client::control::FileChoice {
            priorities: vec![
                crate::client::control::FilePriority::Skip,
                crate::client::control::FilePriority::High,
            ],
            sequential: byte.is_multiple_of(3),
            first_last_piece: true,
        },
        path_rules: crate::lanes::PathRules {
            sequence: Some(format!("0 1-ff00:0:{byte} 0")),
            preference: Some("hops".into()),
            ..Default::default()
        },
        labels: crate::client::control::Labels {
            category: Some(format!("cat{byte}")),
            tags: ["a".to_string(), format!("t{byte}")].into(),
        },
        // Saved and loaded like the rest (a restart keeps the queue's order).
        queue_position: u32::from(byte),
        force_start: byte.is_multiple_of(2),
    }
}

fn resume(num_pieces: u32) -> ResumeData {
    let mut have = vec![0u8; (num_pieces as usize).div_ceil(8)];
    have[0] = 0b1010_0000;
    ResumeData {
        have,
        num_pieces,
        files: vec![FileStamp {
            path: "dir/a.bin".into(),
            length: 123_456_789_012,
            mtime_ns: 1_700_000_000_123_456_789_i128,
        }],
    }
}

fn settings_path(store: &Store, byte: u8) -> PathBuf {
    store.dir_of(&[byte; 20]).join(SETTINGS)
}

#[test]
fn round_trip_of_torrents_metainfo_and_resume() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let (a, b) = (entry(1, 20), entry(2, 10));
    store.save_torrents(&[a.clone(), b.clone()]).unwrap();
    store.save_metainfo(&a.info_hash, b"d4:infode").unwrap();
    store.save_metainfo(&b.info_hash, b"bytes of b").unwrap();
    store.save_resume(&a.info_hash, &resume(13)).unwrap();

    // A fresh Store, as after a restart.
    drop(store);
    let loaded = Store::open(d.path()).unwrap().load_all().unwrap();
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    assert_eq!(loaded.torrents.len(), 2);
    // Oldest first.
    assert_eq!(loaded.torrents[0].entry, b);
    assert_eq!(loaded.torrents[0].resume, None);
    assert_eq!(
        loaded.torrents[0].metainfo.as_deref(),
        Some(&b"bytes of b"[..])
    );
    assert_eq!(loaded.torrents[1].entry, a);
    assert_eq!(loaded.torrents[1].resume, Some(resume(13)));
}

#[test]
fn save_torrents_makes_the_list_exact() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    store.save_torrents(&[entry(1, 1), entry(2, 2)]).unwrap();
    store.save_metainfo(&[1; 20], b"x").unwrap();
    store.save_metainfo(&[2; 20], b"y").unwrap();
    let mut changed = entry(2, 2);
    changed.paused = false;
    store.save_torrents(std::slice::from_ref(&changed)).unwrap();
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.torrents.len(), 1);
    assert_eq!(loaded.torrents[0].entry, changed);
    assert!(!store.dir_of(&[1; 20]).exists());
}

#[test]
fn unchanged_settings_are_not_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    store.save_torrent(&entry(1, 1)).unwrap();
    // Replace the file behind the store's back: an unchanged save must not touch it.
    fs::write(settings_path(&store, 1), b"sentinel").unwrap();
    store.save_torrent(&entry(1, 1)).unwrap();
    assert_eq!(fs::read(settings_path(&store, 1)).unwrap(), b"sentinel");
    let mut e = entry(1, 1);
    e.name = "renamed".into();
    store.save_torrent(&e).unwrap();
    assert_ne!(fs::read(settings_path(&store, 1)).unwrap(), b"sentinel");
}

#[test]
fn garbage_settings_skip_that_torrent_with_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    store.save_torrents(&[entry(1, 1), entry(3, 3)]).unwrap();
    store.save_metainfo(&[1; 20], b"x").unwrap();
    store.save_metainfo(&[3; 20], b"y").unwrap();
    // A torn write (what a non-atomic writer could leave) and plain garbage.
    let full = fs::read(settings_path(&store, 1)).unwrap();
    fs::write(settings_path(&store, 1), &full[..full.len() / 2]).unwrap();
    drop(store);
    let store = Store::open(d.path()).unwrap();
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.torrents.len(), 1);
    assert_eq!(loaded.torrents[0].entry.info_hash, [3; 20]);
    assert_eq!(loaded.skipped.len(), 1);
    let msg = loaded.skipped[0].to_string();
    assert!(msg.contains(SETTINGS) && msg.contains("damaged"), "{msg}");

    fs::write(settings_path(&store, 3), [0xff, 0x00, 0x13]).unwrap();
    let loaded = store.load_all().unwrap();
    assert!(loaded.torrents.is_empty());
    assert_eq!(loaded.skipped.len(), 2);
}

#[test]
fn damaged_resume_data_costs_only_a_recheck() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let e = entry(1, 1);
    store.save_torrents(std::slice::from_ref(&e)).unwrap();
    store.save_metainfo(&e.info_hash, b"x").unwrap();
    let resume_path = store.dir_of(&e.info_hash).join(RESUME);

    for garbage in [
        &b"{\"format\":1,\"data\":{\"have\":\"zz\""[..],
        &b"not json at all"[..],
        &b"{\"format\":99,\"data\":{}}"[..],
        &b""[..],
    ] {
        fs::write(&resume_path, garbage).unwrap();
        let err = store.load_resume(&e.info_hash).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        let loaded = store.load_all().unwrap();
        assert_eq!(loaded.torrents.len(), 1, "the torrent itself stays");
        assert_eq!(loaded.torrents[0].resume, None);
        assert_eq!(loaded.skipped.len(), 1);
    }
}

#[test]
fn resume_bitfield_must_fit_the_piece_count() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let ih = [7; 20];
    let mut r = resume(13);
    r.have.push(0);
    store.save_resume(&ih, &r).unwrap();
    assert!(store.load_resume(&ih).is_err(), "too many bytes");
    let mut r = resume(13);
    r.have[1] = 0b0000_0001; // piece 15 of 13
    store.save_resume(&ih, &r).unwrap();
    let err = store.load_resume(&ih).unwrap_err().to_string();
    assert!(err.contains("past the last piece"), "{err}");
}

#[test]
fn missing_metainfo_without_magnet_is_skipped() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    store.save_torrent(&entry(1, 1)).unwrap();
    let mut magnet = entry(2, 2);
    magnet.magnet = Some("magnet:?xt=urn:btih:0202020202020202020202020202020202020202".into());
    store.save_torrent(&magnet).unwrap();
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.torrents.len(), 1);
    assert_eq!(loaded.torrents[0].entry, magnet);
    assert_eq!(loaded.torrents[0].metainfo, None);
    assert_eq!(loaded.skipped.len(), 1);
}

#[test]
fn settings_in_the_wrong_directory_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    store.save_torrent(&entry(1, 1)).unwrap();
    let other = store.dir_of(&[9; 20]);
    fs::create_dir_all(&other).unwrap();
    fs::copy(settings_path(&store, 1), other.join(SETTINGS)).unwrap();
    store.save_metainfo(&[1; 20], b"x").unwrap();
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.torrents.len(), 1);
    assert!(loaded.skipped[0].to_string().contains("does not match"));
}

#[test]
fn remove_forgets_and_open_cleans_temp_files() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let e = entry(1, 1);
    store.save_torrent(&e).unwrap();
    store.save_metainfo(&e.info_hash, b"x").unwrap();
    store.save_resume(&e.info_hash, &resume(8)).unwrap();
    let leftover = store
        .dir_of(&e.info_hash)
        .join(format!("{TEMP_PREFIX}resume.json-1-1"));
    fs::write(&leftover, b"half").unwrap();
    drop(store);
    let store = Store::open(d.path()).unwrap();
    assert!(!leftover.exists());

    store.remove(&e.info_hash).unwrap();
    store.remove(&e.info_hash).unwrap(); // twice is fine
    assert!(store.load_all().unwrap().torrents.is_empty());
    assert!(!store.dir_of(&e.info_hash).exists());
}

#[test]
fn resume_file_is_readable_json() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    store.save_resume(&[1; 20], &resume(13)).unwrap();
    let text = fs::read_to_string(store.dir_of(&[1; 20]).join(RESUME)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], 1);
    assert_eq!(v["data"]["have"], "a000");
    assert_eq!(
        v["data"]["files"][0]["mtime_ns"].to_string(),
        "1700000000123456789"
    );
}

#[test]
fn a_second_store_on_the_same_data_dir_is_refused_until_the_first_is_gone() {
    let d = tempfile::tempdir().unwrap();
    let first = Store::open(d.path()).unwrap();
    let second = Store::open(d.path());
    assert!(
        matches!(&second, Err(e) if e.to_string().contains("in use by another daemon")),
        "{:?}",
        second.err()
    );
    drop(first);
    Store::open(d.path()).expect("the lock is released with the store");
}

/// Rules edited by hand into something that does not parse would let the torrent use paths
/// its user excluded: it is left out, with the rule's problem named.
#[test]
fn path_rules_that_do_not_parse_skip_that_torrent() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let mut bad = entry(5, 5);
    bad.path_rules.acl = Some("+ 1".into());
    store.save_torrents(&[bad, entry(7, 7)]).unwrap();
    store.save_metainfo(&[5; 20], b"x").unwrap();
    store.save_metainfo(&[7; 20], b"y").unwrap();
    let loaded = store.load_all().unwrap();
    assert_eq!(loaded.torrents.len(), 1);
    assert_eq!(loaded.torrents[0].entry.info_hash, [7; 20]);
    let msg = loaded.skipped[0].to_string();
    assert!(msg.contains("acl: ") && msg.contains("damaged"), "{msg}");
}
