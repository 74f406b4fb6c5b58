//! Byte-rate limits as token buckets. A session checks a [`Limiter`] before it requests blocks
//! (download) and before it serves one (upload); a limiter holds the torrent's own bucket and
//! the client's global one, which every torrent shares. Sans-IO: time comes in as `now`, and
//! [`Limiter::ready_at`] tells the event loop when a blocked direction can move again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How much a bucket may save up while idle, as time at its rate: short, so a limit holds
/// over any window a user would measure, but long enough to keep a pipeline of blocks going.
const BURST_TIME: Duration = Duration::from_millis(250);
/// Smallest burst: one 16 KiB block, and a little more, so tiny limits still move data.
const MIN_BURST: f64 = 32.0 * 1024.0;

/// One rate. Tokens may go negative ("debt"): a block is taken whole when any token is left,
/// and the debt is paid back before the next one, so the average rate is exact whatever the
/// block size.
#[derive(Debug)]
pub struct TokenBucket {
    /// Bytes per second; `None` = unlimited.
    rate: Option<f64>,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_bps: Option<u64>, now: Instant) -> Self {
        let mut b = Self {
            rate: None,
            tokens: 0.0,
            last: now,
        };
        b.set_rate(rate_bps, now);
        b
    }

    /// Changes the rate; a new limit starts with a full burst.
    pub fn set_rate(&mut self, rate_bps: Option<u64>, now: Instant) {
        let rate = rate_bps.filter(|&r| r > 0).map(|r| r as f64);
        if rate != self.rate {
            self.rate = rate;
            self.last = now;
            self.tokens = rate.map_or(0.0, burst);
        }
    }

    pub fn rate(&self) -> Option<u64> {
        self.rate.map(|r| r as u64)
    }

    fn refill(&mut self, now: Instant) {
        let Some(rate) = self.rate else { return };
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + rate * dt).min(burst(rate));
    }

    /// Bytes that may go now (`u64::MAX` when unlimited; 0 while in debt).
    fn budget(&mut self, now: Instant) -> u64 {
        if self.rate.is_none() {
            return u64::MAX;
        }
        self.refill(now);
        if self.tokens > 0.0 {
            self.tokens.ceil() as u64
        } else {
            0
        }
    }

    fn take(&mut self, bytes: u64) {
        if self.rate.is_some() {
            self.tokens -= bytes as f64;
        }
    }

    /// In debt as of the last time it was looked at (no clock: refills are not counted).
    fn in_debt(&self) -> bool {
        self.rate.is_some() && self.tokens <= 0.0
    }

    /// When the budget turns positive again (None: it is now, or unlimited).
    fn ready_at(&self, now: Instant) -> Option<Instant> {
        let rate = self.rate?;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = self.tokens + rate * elapsed;
        if tokens > 0.0 {
            return None;
        }
        // A hair past zero, so the wake-up finds a positive budget.
        let wait = (-tokens + 1.0) / rate;
        Some(now + Duration::from_secs_f64(wait))
    }
}

fn burst(rate: f64) -> f64 {
    (rate * BURST_TIME.as_secs_f64()).max(MIN_BURST)
}

/// A bucket shared between sessions (the client's global limit) or owned by one torrent.
#[derive(Debug, Clone)]
pub struct SharedBucket(Arc<Mutex<TokenBucket>>);

impl SharedBucket {
    pub fn new(rate_bps: Option<u64>, now: Instant) -> Self {
        Self(Arc::new(Mutex::new(TokenBucket::new(rate_bps, now))))
    }

    pub fn set_rate(&self, rate_bps: Option<u64>, now: Instant) {
        self.lock().set_rate(rate_bps, now);
    }

    pub fn rate(&self) -> Option<u64> {
        self.lock().rate()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        // A bucket holds no invariant a panic elsewhere could break.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// All the buckets one direction of a session must pass (torrent and global); empty =
/// unlimited.
#[derive(Debug, Clone, Default)]
pub struct Limiter {
    buckets: Vec<SharedBucket>,
}

impl Limiter {
    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn new(buckets: Vec<SharedBucket>) -> Self {
        Self { buckets }
    }

    /// Bytes that may go now: the smallest budget of the buckets.
    pub fn budget(&self, now: Instant) -> u64 {
        self.buckets
            .iter()
            .map(|b| b.lock().budget(now))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Whether anything may go now.
    pub fn allows(&self, now: Instant) -> bool {
        self.budget(now) > 0
    }

    /// Charges `bytes` to every bucket.
    pub fn take(&self, bytes: u64) {
        for b in &self.buckets {
            b.lock().take(bytes);
        }
    }

    /// Whether a bucket was in debt when last charged or refilled. Reads no clock (for
    /// questions that get no `now`); [`Limiter::ready_at`] says when the debt is paid.
    pub fn in_debt(&self) -> bool {
        self.buckets.iter().any(|b| b.lock().in_debt())
    }

    /// When a blocked direction may move again (None: it may now).
    pub fn ready_at(&self, now: Instant) -> Option<Instant> {
        self.buckets
            .iter()
            .filter_map(|b| b.lock().ready_at(now))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u64 = 16 * 1024;

    /// Sends blocks as fast as the limiter allows over `secs`; returns the bytes sent.
    fn drain(l: &Limiter, start: Instant, secs: u64) -> u64 {
        let end = start + Duration::from_secs(secs);
        let mut now = start;
        let mut sent = 0;
        while now < end {
            if l.allows(now) {
                l.take(BLOCK);
                sent += BLOCK;
            } else {
                now = l.ready_at(now).expect("blocked means a wake-up time");
            }
        }
        sent
    }

    #[test]
    fn the_average_rate_is_the_limit() {
        let now = Instant::now();
        let l = Limiter::new(vec![SharedBucket::new(Some(1_000_000), now)]);
        let sent = drain(&l, now, 20);
        // Burst plus 20 s at 1 MB/s, within one block.
        let expect = 20_000_000 + burst(1e6) as u64;
        assert!(
            sent.abs_diff(expect) <= 2 * BLOCK,
            "sent {sent}, expected about {expect}"
        );
    }

    #[test]
    fn the_tighter_of_two_buckets_wins_and_a_shared_one_is_shared() {
        let now = Instant::now();
        let global = SharedBucket::new(Some(2_000_000), now);
        let a = Limiter::new(vec![
            SharedBucket::new(Some(5_000_000), now),
            global.clone(),
        ]);
        let b = Limiter::new(vec![SharedBucket::new(None, now), global.clone()]);
        // Alternate the two torrents for 10 s: together they get the global 2 MB/s.
        let end = now + Duration::from_secs(10);
        let (mut t, mut sent) = (now, 0u64);
        while t < end {
            let mut moved = false;
            for l in [&a, &b] {
                if l.allows(t) {
                    l.take(BLOCK);
                    sent += BLOCK;
                    moved = true;
                }
            }
            if !moved {
                t = [a.ready_at(t), b.ready_at(t)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap();
            }
        }
        let expect = 20_000_000 + burst(2e6) as u64;
        assert!(
            sent.abs_diff(expect) <= 4 * BLOCK,
            "sent {sent}, expected {expect}"
        );
    }

    #[test]
    fn unlimited_never_blocks_and_a_new_rate_applies_at_once() {
        let now = Instant::now();
        let bucket = SharedBucket::new(None, now);
        let l = Limiter::new(vec![bucket.clone()]);
        for _ in 0..10_000 {
            assert!(l.allows(now));
            l.take(BLOCK);
        }
        assert_eq!(l.ready_at(now), None);
        assert!(!l.in_debt());
        bucket.set_rate(Some(100_000), now);
        l.take(1_000_000);
        assert!(l.in_debt() && l.ready_at(now).is_some());
        bucket.set_rate(None, now);
        bucket.set_rate(Some(100_000), now);
        assert_eq!(bucket.rate(), Some(100_000));
        let sent = drain(&l, now, 10);
        let expect = 1_000_000 + burst(1e5) as u64;
        assert!(
            sent.abs_diff(expect) <= 2 * BLOCK,
            "sent {sent}, expected {expect}"
        );
        // Back to unlimited.
        bucket.set_rate(None, now);
        assert!(l.allows(now));
        // Zero means unlimited too (the API's "no limit").
        bucket.set_rate(Some(0), now);
        assert_eq!(bucket.rate(), None);
    }
}
