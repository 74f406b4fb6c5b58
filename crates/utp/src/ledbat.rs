//! LEDBAT congestion control (RFC 6817, as uTP uses it): the window grows while the one-way
//! queuing delay our packets see stays under a 100 ms target and shrinks above it, so bulk
//! transfers yield to interactive traffic on the same link. The delay is the peer's measured
//! `timestamp_diff` minus the lowest one seen over the last minutes (the base delay: clock
//! offset plus propagation), which removes the unknown offset between the two clocks.

use std::time::{Duration, Instant};

/// Queuing delay LEDBAT aims for.
pub const TARGET_US: u32 = 100_000;
/// Most the window grows in one round trip once out of slow start (libtorrent's 3000 bytes).
const GAIN_BYTES_PER_RTT: f64 = 3000.0;
/// Base delay history: one minimum per minute over the last ten minutes (RFC 6817's
/// BASE_HISTORY), so a route change raising the base delay is forgotten in ten minutes.
const HISTORY: usize = 10;
const BUCKET: Duration = Duration::from_secs(60);

/// `a` is an earlier (lower) 32-bit microsecond value than `b`, across the wrap.
fn earlier(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000_0000
}

/// The minima of the delay samples, per minute.
#[derive(Debug, Clone)]
pub struct DelayHistory {
    minima: [u32; HISTORY],
    filled: usize,
    current: usize,
    bucket_start: Option<Instant>,
}

impl Default for DelayHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl DelayHistory {
    pub fn new() -> Self {
        Self {
            minima: [0; HISTORY],
            filled: 0,
            current: 0,
            bucket_start: None,
        }
    }

    /// The base delay: the lowest sample of the history, if any.
    pub fn base(&self) -> Option<u32> {
        self.minima[..self.filled]
            .iter()
            .copied()
            .reduce(|a, b| if earlier(b, a) { b } else { a })
    }

    /// Records a sample and returns the queuing delay it shows (sample minus base delay).
    pub fn add(&mut self, sample: u32, now: Instant) -> u32 {
        match self.bucket_start {
            Some(start) if now.saturating_duration_since(start) < BUCKET => {
                let m = &mut self.minima[self.current];
                if earlier(sample, *m) {
                    *m = sample;
                }
            }
            Some(_) => {
                self.current = (self.current + 1) % HISTORY;
                self.minima[self.current] = sample;
                self.filled = (self.filled + 1).min(HISTORY);
                self.bucket_start = Some(now);
            }
            None => {
                self.minima[0] = sample;
                self.filled = 1;
                self.bucket_start = Some(now);
            }
        }
        let base = self.base().unwrap_or(sample);
        if earlier(sample, base) {
            0
        } else {
            sample.wrapping_sub(base)
        }
    }
}

/// The congestion window and how it moves.
#[derive(Debug, Clone)]
pub struct Ledbat {
    cwnd: f64,
    ssthresh: f64,
    min: f64,
    max: f64,
    history: DelayHistory,
    last_delay_us: u32,
}

impl Ledbat {
    /// `mss` is the largest payload; the window never falls below one packet (so a connection
    /// always makes progress) and never grows past `max` bytes.
    pub fn new(mss: usize, max: usize) -> Self {
        let min = mss as f64;
        Self {
            cwnd: 2.0 * min,
            ssthresh: max as f64,
            min,
            max: (max as f64).max(min),
            history: DelayHistory::new(),
            last_delay_us: 0,
        }
    }

    /// The congestion window in bytes.
    pub fn window(&self) -> usize {
        self.cwnd as usize
    }

    /// The last queuing delay measured, in microseconds.
    pub fn queuing_delay_us(&self) -> u32 {
        self.last_delay_us
    }

    /// Records a delay sample (the peer's `timestamp_diff` on an acknowledgement; 0 means it
    /// has none yet).
    pub fn delay_sample(&mut self, timestamp_diff_us: u32, now: Instant) {
        if timestamp_diff_us != 0 {
            self.last_delay_us = self.history.add(timestamp_diff_us, now);
        }
    }

    /// `acked` bytes left the network; `flight` bytes were in flight before. An application
    /// that did not fill the window learns nothing about the path, so the window only grows
    /// when it was (nearly) full.
    pub fn on_ack(&mut self, acked: usize, flight: usize) {
        if acked == 0 || (flight as f64) + self.min < self.cwnd {
            return;
        }
        let acked = acked as f64;
        let delay = f64::from(self.last_delay_us.min(4 * TARGET_US));
        let off_target = (f64::from(TARGET_US) - delay) / f64::from(TARGET_US);
        if self.cwnd < self.ssthresh && off_target > 0.0 {
            // Slow start while the queue is short: double per round trip.
            self.cwnd += acked;
            if delay > f64::from(TARGET_US) / 2.0 {
                self.ssthresh = self.cwnd;
            }
        } else {
            let window_factor = acked.min(self.cwnd) / self.cwnd;
            self.cwnd += GAIN_BYTES_PER_RTT * window_factor * off_target;
            if off_target < 0.0 {
                self.ssthresh = self.ssthresh.min(self.cwnd);
            }
        }
        self.cwnd = self.cwnd.clamp(self.min, self.max);
    }

    /// A packet was lost (three duplicate ACKs or selective ACKs past it): halve.
    pub fn on_loss(&mut self) {
        self.cwnd = (self.cwnd / 2.0).max(self.min);
        self.ssthresh = self.cwnd;
    }

    /// The retransmission timer fired: back to one packet.
    pub fn on_timeout(&mut self) {
        self.ssthresh = (self.cwnd / 2.0).max(self.min);
        self.cwnd = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_delay_is_the_minimum_and_forgets_after_ten_minutes() {
        let t0 = Instant::now();
        let mut h = DelayHistory::new();
        assert_eq!(h.add(50_000, t0), 0);
        assert_eq!(h.add(70_000, t0 + Duration::from_secs(1)), 20_000);
        assert_eq!(h.add(40_000, t0 + Duration::from_secs(2)), 0);
        assert_eq!(h.base(), Some(40_000));
        // Ten more minutes of higher samples push the 40 ms one out.
        for m in 1..=10 {
            h.add(60_000, t0 + Duration::from_secs(60 * m + 5));
        }
        assert_eq!(h.base(), Some(60_000));
    }

    #[test]
    fn base_delay_across_the_32_bit_wrap() {
        let t0 = Instant::now();
        let mut h = DelayHistory::new();
        h.add(u32::MAX - 10, t0);
        // 30 µs later on a clock that wrapped.
        assert_eq!(h.add(19, t0), 30);
        assert_eq!(h.add(u32::MAX - 20, t0), 0);
        assert_eq!(h.base(), Some(u32::MAX - 20));
    }

    #[test]
    fn window_grows_under_target_and_shrinks_above() {
        let t0 = Instant::now();
        let mut c = Ledbat::new(1000, 1 << 20);
        c.delay_sample(10_000, t0);
        let before = c.window();
        c.on_ack(1000, before);
        assert!(c.window() > before, "slow start grows");
        // Out of slow start, a queuing delay of 300 ms over base shrinks the window.
        c.on_loss();
        let w = c.window();
        c.delay_sample(310_000, t0);
        assert_eq!(c.queuing_delay_us(), 300_000);
        c.on_ack(1000, w);
        assert!(c.window() < w);
        // Never below one packet.
        for _ in 0..1000 {
            c.on_ack(1000, c.window());
        }
        assert_eq!(c.window(), 1000);
        c.on_timeout();
        assert_eq!(c.window(), 1000);
    }

    #[test]
    fn application_limited_senders_do_not_grow() {
        let t0 = Instant::now();
        let mut c = Ledbat::new(1000, 1 << 20);
        c.delay_sample(1, t0);
        let w = c.window();
        c.on_ack(1000, 0);
        assert_eq!(c.window(), w);
    }
}
