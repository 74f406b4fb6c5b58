//! scionproto's binaries and the processes started from them.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

/// The scionproto release the backend is written for (configs and behaviour).
pub const SCIONPROTO_VERSION: &str = "v0.14.0";

/// The environment variable naming the directory of scionproto's binaries.
pub const SCIONPROTO_BIN_ENV: &str = "SCIONPROTO_BIN";

/// The binaries the backend runs.
pub(crate) const NEEDED: &[&str] = &["router", "control", "daemon", "dispatcher", "scion-pki"];

/// Finds one of scionproto's binaries (`router`, `control`, `daemon`, `dispatcher`,
/// `scion-pki`, `scion`): in the directory `$SCIONPROTO_BIN` if that is set, else on `PATH`.
/// A missing binary is an error that says how to install it.
pub fn scionproto_binary(name: &str) -> anyhow::Result<PathBuf> {
    let install = format!(
        "scionproto {SCIONPROTO_VERSION}'s binaries are installed by scripts/install-deps.sh \
         (go install of router, control, daemon, dispatcher, scion-pki and scion from \
         github.com/scionproto/scion {SCIONPROTO_VERSION})"
    );
    if let Some(dir) = std::env::var_os(SCIONPROTO_BIN_ENV).filter(|d| !d.is_empty()) {
        let path = Path::new(&dir).join(name);
        if is_executable(&path) {
            return Ok(path);
        }
        bail!(
            "scionproto's `{name}` is not in {SCIONPROTO_BIN_ENV}={} (no executable {}); {install}",
            Path::new(&dir).display(),
            path.display()
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    bail!(
        "scionproto's `{name}` is not on PATH and {SCIONPROTO_BIN_ENV} is not set (set it to the \
         directory holding router, control, daemon, dispatcher, scion-pki); {install}"
    )
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a short command to completion; its output goes into the error if it fails.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A running service (router, control service, daemon, dispatcher). Killed when dropped.
pub(crate) struct Service {
    pub(crate) name: String,
    child: Child,
    log: PathBuf,
    binary: PathBuf,
    config: PathBuf,
}

impl Service {
    /// Starts `binary --config config`, output to `log`. The process gets SIGKILL if the
    /// thread that started it dies (setpriv --pdeathsig), so a killed testnet leaves no
    /// services behind.
    pub(crate) fn start(
        name: String,
        binary: &Path,
        config: &Path,
        log: PathBuf,
    ) -> anyhow::Result<Service> {
        let child = spawn(&name, binary, config, &log, false)?;
        Ok(Service {
            name,
            child,
            log,
            binary: binary.to_path_buf(),
            config: config.to_path_buf(),
        })
    }

    /// Starts the process again, as before, its output appended to the same log. Call it
    /// from a thread that outlives the process (the testnet runtime's workers): the process
    /// gets SIGKILL when that thread dies.
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.child = spawn(&self.name, &self.binary, &self.config, &self.log, true)?;
        Ok(())
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// An error if the process has exited, with the end of its log.
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); the end of its log ({}):\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the service's log.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log, 4096)
    }

    /// SIGKILL and reap. The services keep no state worth a graceful stop: their databases
    /// live in the testnet's temporary directory, which goes too.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        tracing::warn!(service = %self.name, "did not exit after SIGKILL");
    }
}

/// `binary --config config` under `setpriv --pdeathsig KILL`, output to `log` (appended to
/// with `append`).
fn spawn(
    name: &str,
    binary: &Path,
    config: &Path,
    log: &Path,
    append: bool,
) -> anyhow::Result<Child> {
    let out = File::options()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone()?;
    Command::new("setpriv")
        .arg("--pdeathsig")
        .arg("KILL")
        .arg("--")
        .arg(binary)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {name} ({} via setpriv from util-linux)",
                binary.display()
            )
        })
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `max` bytes of a file, from a line start.
pub(crate) fn log_tail(path: &Path, max: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::from("(no log)");
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    if len > max {
        if let Some(n) = s.find('\n') {
            s.drain(..=n);
        }
    }
    s
}
