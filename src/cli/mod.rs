//! The command line: modern subcommands and the original client's flags.

pub mod args;
pub mod bwtester;
pub mod exit;
pub mod export;
pub mod legacy;
pub mod live;
pub mod magnet;
pub mod path_select;
pub mod pathinfo;
pub mod remote;
pub mod report;
pub mod run;
pub mod signals;
pub mod single;
pub mod tracker;

/// Logs go to stderr; `level` is the original client's DEBUG|INFO|WARN|ERROR (or RUST_LOG).
pub fn init_logging(level: &str) {
    let level = match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        "TRACE" => "trace",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "btscion={level},bittorrent_over_scion={level},warn"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| BarSafeStderr)
        .try_init();
}

/// The live progress bar, while one is drawn: log lines are written around it.
pub static PROGRESS_BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> =
    std::sync::Mutex::new(None);

/// stderr that hides the progress bar while a log line is written, so lines never tear it.
struct BarSafeStderr;

impl std::io::Write for BarSafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = PROGRESS_BAR.lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf).map(|_| buf.len())),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
