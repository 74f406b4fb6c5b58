//! When each mapping is next asked for, sans-IO: time in, "when I next need time" out. A
//! mapping is renewed at half its granted lease (RFC 6886 §3.3 asks for renewal before
//! expiry; half leaves room for a lost round), and a failed attempt is tried again on a
//! doubling back-off, so a gateway that is down or hostile costs a few datagrams an hour.

use std::time::{Duration, Instant};

/// First wait after a failure; doubled per failure in a row up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// A granted lease shorter than this is renewed no sooner than this after it was granted
/// (a gateway granting 0 or 1 s leases must not make us spin).
pub const MIN_RENEW: Duration = Duration::from_secs(1);
/// How often a permanent mapping (lease 0, UPnP's "until removed") is asked for again, so
/// that a gateway that rebooted and forgot it gets it back.
pub const PERMANENT_REFRESH: Duration = Duration::from_secs(1800);

/// One mapping's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    due: Instant,
    failures: u32,
    /// When the granted lease runs out, while mapped.
    expires: Option<Instant>,
    /// The gateway granted a mapping without a lease (held until removed).
    permanent: bool,
}

impl Schedule {
    /// Due at once.
    pub fn new(now: Instant) -> Self {
        Self {
            due: now,
            failures: 0,
            expires: None,
            permanent: false,
        }
    }

    pub fn due(&self) -> Instant {
        self.due
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.due
    }

    /// When the lease granted last runs out, if the mapping is held.
    pub fn expires(&self) -> Option<Instant> {
        self.expires
    }

    /// Whether a permanent mapping, or a lease that has not run out, is held.
    pub fn is_held(&self, now: Instant) -> bool {
        self.permanent || self.expires.is_some_and(|e| now < e)
    }

    /// The gateway granted `lease` (zero: permanent); renew at half of it.
    pub fn granted(&mut self, now: Instant, lease: Duration) {
        self.failures = 0;
        self.permanent = lease.is_zero();
        if lease.is_zero() {
            self.expires = None;
            self.due = now + PERMANENT_REFRESH;
            return;
        }
        self.expires = Some(now + lease);
        self.due = now + (lease / 2).max(MIN_RENEW);
    }

    /// An attempt failed: wait 5 s, 10 s, 20 s … up to 10 min, but try again before a lease
    /// still held runs out.
    pub fn failed(&mut self, now: Instant) {
        let wait = FIRST_BACKOFF
            .saturating_mul(1u32 << self.failures.min(16))
            .min(MAX_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        self.due = now + wait;
        match self.expires {
            Some(e) if now >= e => self.expires = None,
            Some(e) => {
                // Half the time that is left, so a renewal gets more than one more try.
                let left = e - now;
                self.due = self.due.min(now + (left / 2).max(MIN_RENEW));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_mapping_is_due_at_once() {
        let now = Instant::now();
        assert!(Schedule::new(now).is_due(now));
    }

    #[test]
    fn a_lease_is_renewed_at_half_its_length() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        s.granted(now, Duration::from_secs(3600));
        assert_eq!(s.due(), now + Duration::from_secs(1800));
        assert_eq!(s.expires(), Some(now + Duration::from_secs(3600)));
        assert!(s.is_held(now + Duration::from_secs(3599)));
        assert!(!s.is_held(now + Duration::from_secs(3600)));
    }

    #[test]
    fn a_tiny_lease_does_not_make_us_spin() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        s.granted(now, Duration::from_millis(10));
        assert_eq!(s.due(), now + MIN_RENEW);
    }

    #[test]
    fn a_permanent_mapping_is_refreshed_rarely() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        s.granted(now, Duration::ZERO);
        assert_eq!(s.due(), now + PERMANENT_REFRESH);
        assert_eq!(s.expires(), None);
        assert!(s.is_held(now + PERMANENT_REFRESH * 10));
        s.granted(now, Duration::from_secs(10));
        assert!(!s.is_held(now + Duration::from_secs(10)), "a lease again");
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        let mut waits = vec![];
        for _ in 0..10 {
            s.failed(now);
            waits.push(s.due() - now);
        }
        assert_eq!(waits[0], Duration::from_secs(5));
        assert_eq!(waits[1], Duration::from_secs(10));
        assert_eq!(waits[2], Duration::from_secs(20));
        assert_eq!(*waits.last().unwrap(), MAX_BACKOFF);
        s.granted(now, Duration::from_secs(100));
        s.failed(now + Duration::from_secs(50));
        assert_eq!(
            s.due(),
            now + Duration::from_secs(55),
            "back-off starts over"
        );
    }

    #[test]
    fn a_failed_renewal_is_retried_before_the_lease_runs_out() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        s.granted(now, Duration::from_secs(8));
        let renew = now + Duration::from_secs(4);
        for _ in 0..5 {
            s.failed(renew);
        }
        // 4 s left: the next try comes after 2 s, not after the 80 s back-off.
        assert_eq!(s.due(), renew + Duration::from_secs(2));
        assert!(s.is_held(renew));
    }

    #[test]
    fn a_lease_that_ran_out_is_no_longer_held() {
        let now = Instant::now();
        let mut s = Schedule::new(now);
        s.granted(now, Duration::from_secs(2));
        let late = now + Duration::from_secs(3);
        s.failed(late);
        assert_eq!(s.expires(), None);
        assert!(!s.is_held(late));
        assert_eq!(s.due(), late + FIRST_BACKOFF);
    }
}
