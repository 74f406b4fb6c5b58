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
pub mod portmap;
pub mod remote;
pub mod report;
pub mod run;
pub mod signals;
pub mod single;
pub mod tracker;

/// The tracing level of the original client's `-logLevel` (TRACE, DEBUG, INFO, WARN, ERROR,
/// FATAL; any case): FATAL, which has no level of its own here, is ERROR; anything else INFO.
pub fn tracing_level(level: &str) -> &'static str {
    match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" => "error",
        "TRACE" => "trace",
        _ => "info",
    }
}

/// Logs go to stderr at [`tracing_level`]`(level)` (or as RUST_LOG says).
pub fn init_logging(level: &str) {
    let level = tracing_level(level);
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_go_clients_log_levels() {
        let got: Vec<&str> = ["TRACE", "debug", "INFO", "WARN", "ERROR", "FATAL", "loud"]
            .into_iter()
            .map(super::tracing_level)
            .collect();
        assert_eq!(
            got,
            ["trace", "debug", "info", "warn", "error", "error", "info"]
        );
    }
}
