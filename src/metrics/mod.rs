//! Transfer metrics: per-lane counters and latency histograms, and the end summary.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Microsecond latency histogram, 2 significant digits (1 %: plenty for p50/p99 of block and
/// verification times). It grows to the largest latency recorded instead of preallocating a
/// fixed range: every lane and every torrent holds one (at 3 digits over 10 min, 160 KiB each).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant digits are valid")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// Percentiles of a histogram in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.count
        )
    }
}

/// Exponentially weighted rate estimate in bytes/s, updated at most every `window`.
#[derive(Debug, Clone)]
pub struct RateEstimator {
    bytes: u64,
    since: Instant,
    rate: f64,
}

impl RateEstimator {
    pub fn new(now: Instant) -> Self {
        Self {
            bytes: 0,
            since: now,
            rate: 0.0,
        }
    }

    pub fn add(&mut self, n: u64, now: Instant) {
        self.bytes += n;
        let dt = now.saturating_duration_since(self.since);
        if dt >= Duration::from_millis(250) {
            let sample = self.bytes as f64 / dt.as_secs_f64();
            self.rate = if self.rate == 0.0 {
                sample
            } else {
                0.6 * sample + 0.4 * self.rate
            };
            self.bytes = 0;
            self.since = now;
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

pub fn mbit(bytes: u64, d: Duration) -> f64 {
    if d.is_zero() {
        return 0.0;
    }
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lane and every torrent holds one of these: its memory must follow the latencies
    /// actually seen (kilobytes), not the 10-minute range preallocated at 3 digits (160 KiB).
    #[test]
    fn a_latency_histogram_is_small_and_within_one_percent() {
        let mut h = latency_histogram();
        for ms in [1u64, 7, 30, 120, 900, 4_000] {
            record(&mut h, Duration::from_millis(ms));
        }
        let bytes = h.distinct_values() * std::mem::size_of::<u64>();
        assert!(bytes <= 24 * 1024, "{bytes} bytes of counts");
        let max = h.max() as f64;
        assert!(
            (max - 4_000_000.0).abs() / 4_000_000.0 <= 0.01,
            "max {max} µs"
        );
        record(&mut h, Duration::from_secs(3_600));
        assert!(h.max() >= 3_500_000_000, "an hour still fits: {}", h.max());
    }
}
