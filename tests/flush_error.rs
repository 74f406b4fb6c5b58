//! A single-shot download whose final flush fails on a real filesystem: a FUSE filesystem
//! (tests/fuse/failing_sync.py, fusepy over Debian's libfuse2, installed by
//! scripts/install-deps.sh) that passes everything through to a backing directory but fails
//! fsync/fdatasync with EIO while a control file exists.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{our_tcp_seeder, NO_DAEMON};
use common::{make_torrent, run, same_tree, write_random};

const LEN: usize = 4 << 20;

/// The venv's python with fusepy (`FUSEPY_PYTHON`, exported by scripts/scionproto-env.sh).
fn fusepy_python() -> PathBuf {
    let p = std::env::var_os("FUSEPY_PYTHON").map(PathBuf::from).expect(
        "FUSEPY_PYTHON is not set: run scripts/install-deps.sh, then `. scripts/scionproto-env.sh`",
    );
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-deps.sh",
        p.display()
    );
    p
}

/// The mounted filesystem; unmounted when dropped.
struct FailingSyncFs {
    mountpoint: PathBuf,
    server: Child,
}

impl FailingSyncFs {
    fn mount(backing: &Path, mountpoint: &Path, control: &Path, log: &Path) -> Self {
        std::fs::create_dir_all(backing).unwrap();
        std::fs::create_dir_all(mountpoint).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuse/failing_sync.py");
        let server = Command::new(fusepy_python())
            .arg(script)
            .args([backing, mountpoint, control])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start the FUSE filesystem");
        let fs = FailingSyncFs {
            mountpoint: mountpoint.to_path_buf(),
            server,
        };
        // Mounted once /proc/self/mounts lists it (the server's first act).
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = mountpoint.display().to_string();
        loop {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
            if mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(want.as_str()))
            {
                return fs;
            }
            assert!(
                Instant::now() < deadline,
                "the FUSE filesystem did not mount (needs /dev/fuse and root): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FailingSyncFs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount")
            .arg("-u")
            .arg(&self.mountpoint)
            .status();
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The download writes every piece, but fdatasync at completion fails: exit code 5 with a
/// message naming the flush, never success. Nothing verified is lost: the bytes written are
/// in the file, and a second run (the filesystem syncing again) finds the file complete and
/// finishes without a peer.
#[test]
fn a_flush_error_at_completion_ends_with_exit_code_5_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let src = work.join("data.bin");
    write_random(&src, LEN, 41);
    let torrent = work.join("x.torrent");
    make_torrent(&src, &torrent, Some(65536));
    let (_seeder, addr) = our_tcp_seeder(&torrent, &src, None, work);

    let control = work.join("fail-sync");
    std::fs::write(&control, b"").unwrap();
    let backing = work.join("backing");
    let fs = FailingSyncFs::mount(
        &backing,
        &work.join("mnt"),
        &control,
        &work.join("fuse.log"),
    );
    let out = fs.mountpoint.join("out.bin");
    let download = |peer: &str| {
        run(
            &[
                format!("-inPath={}", torrent.display()),
                format!("-outPath={}", out.display()),
                format!("-peer={peer}"),
                "-seed=false".into(),
            ],
            &[("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string())],
            Duration::from_secs(180),
        )
    };

    let r = download(&addr);
    let failed_syncs = std::fs::read_to_string(control.with_extension("count")).unwrap_or_default();
    assert_eq!(
        r.status.code(),
        Some(5),
        "a failed flush must end with the storage exit code (fdatasync failed {failed_syncs:?} \
         times):\nstdout:\n{}\nstderr:\n{}",
        r.stdout,
        r.stderr
    );
    assert!(
        !failed_syncs.is_empty(),
        "the filesystem was never asked to sync"
    );
    let err = r.stderr.to_lowercase();
    assert!(
        err.contains("flush") && err.contains("input/output error"),
        "the message says the flush failed and why: {}",
        r.stderr
    );
    // Every byte is in the file behind the mount, as written.
    same_tree(&src, &backing.join("out.bin"));

    // The filesystem syncs again: a run with no reachable peer finds every piece verified.
    std::fs::remove_file(&control).unwrap();
    let again = download("127.0.0.1:9");
    assert!(
        again.status.success(),
        "the second run found the data incomplete:\nstdout:\n{}\nstderr:\n{}",
        again.stdout,
        again.stderr
    );
    same_tree(&src, &out);
}
