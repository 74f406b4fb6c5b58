//! Exit codes, decided in one place.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Other = 1,
    Usage = 2,
    BadTorrent = 3,
    Unreachable = 4,
    Storage = 5,
    Daemon = 6,
    /// The bittorrent-over-scion daemon's HTTP API cannot be reached.
    ApiUnreachable = 7,
    /// Stopped by SIGINT/SIGTERM before a download was complete, or by a second signal
    /// (128 + SIGINT, as a shell reports a Ctrl-C).
    Interrupted = 130,
}

/// An error that ends the process with a specific exit code.
#[derive(Debug)]
pub struct CliError {
    pub kind: ExitKind,
    pub message: String,
}

impl CliError {
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn code(&self) -> i32 {
        self.kind as i32
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub fn usage(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Usage, m)
}
pub fn bad_torrent(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::BadTorrent, m)
}
pub fn unreachable(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Unreachable, m)
}
pub fn storage(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Storage, m)
}
pub fn daemon(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Daemon, m)
}
pub fn other(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Other, m)
}
pub fn interrupted(m: impl Into<String>) -> CliError {
    CliError::new(ExitKind::Interrupted, m)
}

/// The daemon commands' exit code for an error the daemon's API answered (one mapping, by
/// the API's error `kind`; see README "The daemon"): no such torrent 4, bad torrent 3, bad
/// request or refused token 2, storage 5, anything else 1.
pub fn from_api(status: u16, kind: &str, message: &str) -> CliError {
    let exit_kind = match kind {
        "unknown_torrent" | "not_found" => ExitKind::Unreachable,
        "bad_torrent" => ExitKind::BadTorrent,
        "bad_request" | "unauthorized" | "forbidden" => ExitKind::Usage,
        "storage" => ExitKind::Storage,
        _ => ExitKind::Other,
    };
    CliError::new(exit_kind, format!("daemon answered {status}: {message}"))
}

/// The daemon's API did not answer at all.
pub fn api_unreachable(api: &str, why: impl fmt::Display) -> CliError {
    CliError::new(
        ExitKind::ApiUnreachable,
        format!(
            "cannot reach the daemon at {api}: {why}\nhint: is the daemon running? Start it with \
             `bittorrent-over-scion daemon`, or point --api (BTS_API) at it."
        ),
    )
}
