//! A torrent's web seeds as the API shows them: the live seeds' status, and the `url-list`
//! entries that were left out.

use std::time::Instant;

use super::control::{WebSeedSnapshot, WebSeedState};
use super::phase::Phase;
use crate::engine::web_seed::SeedState;

pub fn snapshot(phase: &Phase, now: Instant) -> Vec<WebSeedSnapshot> {
    let Some(meta) = phase.meta() else {
        return Vec::new();
    };
    let mut out: Vec<WebSeedSnapshot> = match phase.live() {
        Some(l) => l
            .web
            .status(now)
            .into_iter()
            .map(|s| WebSeedSnapshot {
                url: s.url,
                state: match s.state {
                    SeedState::Idle => WebSeedState::Idle,
                    SeedState::Downloading => WebSeedState::Downloading,
                    SeedState::BackingOff => WebSeedState::BackingOff,
                    SeedState::Dropped => WebSeedState::Dropped,
                },
                last_error: s.last_error,
                bytes_down: s.bytes_down,
                failures: s.failures,
                retry_in_secs: s.retry_in_secs,
            })
            .collect(),
        None => meta
            .web_seeds
            .iter()
            .map(|url| WebSeedSnapshot {
                url: url.clone(),
                state: WebSeedState::Idle,
                last_error: None,
                bytes_down: 0,
                failures: 0,
                retry_in_secs: None,
            })
            .collect(),
    };
    out.extend(meta.web_seeds_ignored.iter().map(|i| WebSeedSnapshot {
        url: i.url.clone(),
        state: WebSeedState::Ignored,
        last_error: Some(i.reason.to_string()),
        bytes_down: 0,
        failures: 0,
        retry_in_secs: None,
    }));
    out
}
