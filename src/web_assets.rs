//! The web UI's static files, embedded in the binary (served by the daemon's HTTP API).

/// The file at `path` (e.g. `index.html`, `app.js`) and its content type, if there is one.
pub fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    match path {
        "" | "index.html" => Some((INDEX.as_bytes(), "text/html; charset=utf-8")),
        _ => None,
    }
}

const INDEX: &str =
    "<!doctype html><title>bittorrent-over-scion</title><p>The web UI is not built yet.";
