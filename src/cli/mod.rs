//! The command line: modern subcommands and the original client's flags.

pub mod args;
pub mod exit;
pub mod legacy;
pub mod report;
pub mod run;
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
        .with_writer(std::io::stderr)
        .try_init();
}
