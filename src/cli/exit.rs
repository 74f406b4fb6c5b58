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
