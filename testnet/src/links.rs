//! Live link state: the one place that flips links in the backend (pocketscion's simulator,
//! or tc for scionproto) and keeps our view (the shaper's and the state file's, if any) in
//! step with it.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use anyhow::Context;
use pocketscion::state::PocketScionState;

use crate::{scionproto, shaper::Shaper, state::TestnetState, topology::parse_ia};

/// What actually cuts a link.
pub(crate) enum Driver {
    /// pocketscion's link flags, and our shaper in front of it (if any link is shaped).
    Pocket {
        pocket: PocketScionState,
        shaper: Option<Arc<Shaper>>,
    },
    /// tc on loopback (see `scionproto::tc`).
    Scionproto(Arc<scionproto::Network>),
}

pub(crate) struct LinkTable {
    driver: Driver,
    current: Mutex<TestnetState>,
    state_file: Option<PathBuf>,
}

impl LinkTable {
    pub(crate) fn new(driver: Driver, state: TestnetState, state_file: Option<PathBuf>) -> Self {
        Self {
            driver,
            current: Mutex::new(state),
            state_file,
        }
    }

    /// Takes the link with an end at `ia#interface` down or up (the whole link, both
    /// directions: pocketscion keeps one up flag per link, tc cuts both).
    pub(crate) fn set(&self, ia: &str, interface: u16, up: bool) -> anyhow::Result<()> {
        let ia = parse_ia(ia)?;
        let end = format!("{ia}#{interface}");
        let mut current = self.lock();
        let link = current
            .links
            .iter_mut()
            .find(|l| l.a == end || l.b == end)
            .with_context(|| format!("no link has an end at {end}"))?;
        match &self.driver {
            Driver::Pocket { pocket, shaper } => {
                pocket
                    .set_link_state(ia, interface, up)
                    .with_context(|| format!("pocketscion has no link at {end}"))?;
                if let Some(shaper) = shaper {
                    shaper.set_up(ia, interface, up);
                }
            }
            Driver::Scionproto(net) => net.set_link(ia, interface, up)?,
        }
        link.up = up;
        tracing::info!(%end, up, "link state changed");
        self.write_state_file(&current)
    }

    /// Stops the SCION daemon of `ia`, or starts it again on the same address (scionproto
    /// only: pocketscion's daemons live in its process).
    pub(crate) async fn set_daemon(&self, ia: &str, running: bool) -> anyhow::Result<()> {
        let ia = parse_ia(ia)?;
        match &self.driver {
            Driver::Pocket { .. } => anyhow::bail!(
                "stopping and starting a SCION daemon needs the scionproto backend \
                 (pocketscion's daemons run inside its process)"
            ),
            Driver::Scionproto(net) => net.set_daemon(ia, running).await,
        }
    }

    /// Packets the shaper dropped (full queue or random loss) on the link direction leaving
    /// `ia#interface`; `None` if the testnet does not shape or has no such link.
    pub(crate) fn dropped(&self, ia: &str, interface: u16) -> Option<u64> {
        let ia = parse_ia(ia).ok()?;
        match &self.driver {
            Driver::Pocket { shaper, .. } => shaper.as_ref()?.dropped(ia, interface),
            Driver::Scionproto(net) => net.dropped(ia, interface),
        }
    }

    /// The current state, including link up/down flags.
    pub(crate) fn snapshot(&self) -> TestnetState {
        self.lock().clone()
    }

    pub(crate) fn write_state_file(&self, state: &TestnetState) -> anyhow::Result<()> {
        match &self.state_file {
            Some(path) => state.write(path),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TestnetState> {
        // A panic elsewhere must not make the link table unusable: the data is plain values.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}
