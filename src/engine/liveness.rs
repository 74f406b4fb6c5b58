//! Keep-alives and silent-peer timeouts of a BitTorrent connection (BEP 3: peers drop a
//! connection that stayed silent for about two minutes, so send something more often).
//! Sans-IO: the driver reports what it sent and received and asks what is due.

use std::time::{Duration, Instant};

/// When to send a keep-alive and when to give up on a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LivenessRules {
    /// A keep-alive goes out on a connection that sent nothing for this long.
    pub keepalive_every: Duration,
    /// A connection whose peer sent nothing (not even a keep-alive) for this long is closed.
    pub silent_timeout: Duration,
}

impl Default for LivenessRules {
    fn default() -> Self {
        Self {
            keepalive_every: Duration::from_secs(90),
            silent_timeout: Duration::from_secs(180),
        }
    }
}

/// Why user-given liveness rules cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LivenessError {
    #[error("keep-alive interval and peer timeout must be positive")]
    NotPositive,
    #[error(
        "the keep-alive interval ({keepalive_every:?}) must be shorter than the peer timeout ({silent_timeout:?})"
    )]
    KeepAliveNotShorter {
        keepalive_every: Duration,
        silent_timeout: Duration,
    },
}

impl LivenessRules {
    /// Rules from user-given seconds; the keep-alive must come well before the timeout
    /// (our own keep-alives are what keeps the *other* side from timing us out).
    pub fn new(keepalive_every: Duration, silent_timeout: Duration) -> Result<Self, LivenessError> {
        if keepalive_every.is_zero() || silent_timeout.is_zero() {
            return Err(LivenessError::NotPositive);
        }
        if keepalive_every >= silent_timeout {
            return Err(LivenessError::KeepAliveNotShorter {
                keepalive_every,
                silent_timeout,
            });
        }
        Ok(Self {
            keepalive_every,
            silent_timeout,
        })
    }
}

/// One connection's clocks.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    last_rx: Instant,
    last_tx: Instant,
}

impl Liveness {
    pub fn new(now: Instant) -> Self {
        Self {
            last_rx: now,
            last_tx: now,
        }
    }

    pub fn received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    pub fn sent(&mut self, now: Instant) {
        self.last_tx = now;
    }

    /// Whether a keep-alive is due (the caller sends one only between whole messages).
    pub fn keepalive_due(&self, rules: &LivenessRules, now: Instant) -> bool {
        now.saturating_duration_since(self.last_tx) >= rules.keepalive_every
    }

    /// When this connection next needs attention: a keep-alive or the silence timeout.
    pub fn next_deadline(&self, rules: &LivenessRules) -> Instant {
        (self.last_tx + rules.keepalive_every).min(self.last_rx + rules.silent_timeout)
    }

    /// Whether the peer has been silent for too long.
    pub fn is_silent(&self, rules: &LivenessRules, now: Instant) -> bool {
        now.saturating_duration_since(self.last_rx) > rules.silent_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_after_quiet_sending_and_timeout_after_silent_peer() {
        let rules = LivenessRules::default();
        let t0 = Instant::now();
        let mut l = Liveness::new(t0);
        assert!(!l.keepalive_due(&rules, t0 + Duration::from_secs(89)));
        assert!(l.keepalive_due(&rules, t0 + Duration::from_secs(90)));
        l.sent(t0 + Duration::from_secs(90));
        assert!(!l.keepalive_due(&rules, t0 + Duration::from_secs(179)));
        assert!(l.keepalive_due(&rules, t0 + Duration::from_secs(180)));
        // Our keep-alives do not keep a silent peer alive; its own bytes do.
        assert!(!l.is_silent(&rules, t0 + Duration::from_secs(180)));
        assert!(l.is_silent(&rules, t0 + Duration::from_secs(181)));
        l.received(t0 + Duration::from_secs(170));
        assert!(!l.is_silent(&rules, t0 + Duration::from_secs(349)));
        assert!(l.is_silent(&rules, t0 + Duration::from_secs(351)));
    }

    #[test]
    fn rules_reject_a_keepalive_slower_than_the_timeout() {
        let s = Duration::from_secs;
        assert!(LivenessRules::new(s(10), s(30)).is_ok());
        assert!(matches!(
            LivenessRules::new(s(30), s(30)),
            Err(LivenessError::KeepAliveNotShorter { .. })
        ));
        assert_eq!(
            LivenessRules::new(s(0), s(30)),
            Err(LivenessError::NotPositive)
        );
    }
}
