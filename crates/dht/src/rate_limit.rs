//! Token-bucket rate limit on the queries we answer, per source host, with a bounded table.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Allows `burst` queries at once and `per_second` on average per key. At most `max_keys` keys
/// are tracked; when the table is full, idle (refilled) keys are dropped, and if none is idle
/// new sources share one overflow bucket.
#[derive(Debug, Clone)]
pub struct RateLimiter<K> {
    buckets: HashMap<K, Bucket>,
    overflow: Option<Bucket>,
    burst: f64,
    per_second: f64,
    max_keys: usize,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(burst: u32, per_second: u32, max_keys: usize) -> Self {
        RateLimiter {
            buckets: HashMap::new(),
            overflow: None,
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second.max(1)),
            max_keys,
        }
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + dt * self.per_second).min(self.burst);
        b.last = now;
    }

    /// Whether a query from `key` may be answered now (takes one token if so).
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_keys {
            let full_after = self.burst / self.per_second;
            self.buckets
                .retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < full_after);
        }
        let fresh = Bucket {
            tokens: self.burst,
            last: now,
        };
        let mut b = if let Some(b) = self.buckets.get(&key) {
            *b
        } else if self.buckets.len() < self.max_keys {
            fresh
        } else {
            self.overflow.unwrap_or(fresh)
        };
        self.refill(&mut b, now);
        let ok = b.tokens >= 1.0;
        if ok {
            b.tokens -= 1.0;
        }
        if self.buckets.contains_key(&key) || self.buckets.len() < self.max_keys {
            self.buckets.insert(key, b);
        } else {
            self.overflow = Some(b);
        }
        ok
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_steady_rate() {
        let now = Instant::now();
        let mut r = RateLimiter::new(5, 2, 10);
        assert_eq!((0..10).filter(|_| r.allow(1u32, now)).count(), 5);
        assert!(r.allow(2, now), "other sources are independent");
        assert!(!r.allow(1, now + Duration::from_millis(400)));
        assert!(r.allow(1, now + Duration::from_millis(600)));
    }

    #[test]
    fn table_stays_bounded_under_many_sources() {
        let now = Instant::now();
        let mut r = RateLimiter::new(2, 1, 100);
        let allowed = (0..10_000u32).filter(|&k| r.allow(k, now)).count();
        assert_eq!(r.len(), 100);
        // 100 tracked sources at burst 2 + the shared overflow bucket's 2.
        assert!(allowed <= 102, "{allowed}");
    }
}
