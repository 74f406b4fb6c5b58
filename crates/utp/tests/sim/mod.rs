//! Two uTP connections over a simulated link: a delay, random jitter (which reorders) and
//! random loss, on a simulated clock. Nothing here sleeps or reads the wall clock beyond the
//! starting instant, so the tests are deterministic for a seed.

use std::time::{Duration, Instant};

use bt_utp::{Config, Connection, Packet, PacketType, State};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Link {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss: f64,
    /// Drop everything sent toward A (a peer that never acknowledges) or toward B.
    pub cut_to_a: bool,
    pub cut_to_b: bool,
    /// A bottleneck toward B: bytes per second, served first come first served from a queue
    /// of at most `queue_limit` bytes (tail drop).
    pub rate_to_b: Option<u64>,
    pub queue_limit: usize,
    /// Probability that a datagram is delivered twice.
    pub duplicate: f64,
}

impl Link {
    pub fn clean() -> Self {
        Self {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            cut_to_a: false,
            cut_to_b: false,
            rate_to_b: None,
            queue_limit: 0,
            duplicate: 0.0,
        }
    }

    /// A clean link whose direction toward B is a `rate` bytes/s bottleneck with a queue of
    /// `queue_limit` bytes.
    pub fn bottleneck(rate: u64, queue_limit: usize) -> Self {
        Self {
            rate_to_b: Some(rate),
            queue_limit,
            ..Self::clean()
        }
    }

    pub fn lossy(loss: f64) -> Self {
        Self {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(8),
            loss,
            cut_to_a: false,
            cut_to_b: false,
            rate_to_b: None,
            queue_limit: 0,
            duplicate: 0.0,
        }
    }
}

pub struct Pair {
    pub now: Instant,
    pub epoch: Instant,
    pub a: Connection,
    pub b: Option<Connection>,
    pub link: Link,
    pub config: Config,
    b_seq: u16,
    rng: StdRng,
    /// (deliver at, order, toward B, datagram)
    wire: Vec<(Instant, u64, bool, Vec<u8>)>,
    order: u64,
    pub sent_to_b: u64,
    pub sent_to_a: u64,
    /// When the bottleneck toward B has sent everything queued.
    busy_until: Instant,
    /// Queuing delay each datagram toward B met at the bottleneck, with when it was sent.
    pub queue_delays: Vec<(Instant, Duration)>,
    pub queue_drops: u64,
}

impl Pair {
    /// A connects to B with the given initial sequence numbers (the wrap-around tests pick
    /// them just below 65535).
    pub fn new(a_seq: u16, b_seq: u16, link: Link, config: Config, seed: u64) -> Self {
        let epoch = Instant::now();
        let now = epoch;
        Self {
            now,
            epoch,
            a: Connection::connect(0x1234, a_seq, now, epoch, config.clone()),
            b: None,
            link,
            config,
            b_seq,
            rng: StdRng::seed_from_u64(seed),
            wire: Vec::new(),
            order: 0,
            sent_to_b: 0,
            sent_to_a: 0,
            busy_until: now,
            queue_delays: Vec::new(),
            queue_drops: 0,
        }
    }

    pub fn b(&mut self) -> &mut Connection {
        self.b.as_mut().expect("B not yet accepted")
    }

    fn put(&mut self, to_b: bool, bytes: Vec<u8>) {
        if to_b {
            self.sent_to_b += 1;
        } else {
            self.sent_to_a += 1;
        }
        let cut = if to_b {
            self.link.cut_to_b
        } else {
            self.link.cut_to_a
        };
        if cut || (self.link.loss > 0.0 && self.rng.random_bool(self.link.loss)) {
            return;
        }
        let jitter = if self.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.rng.random_range(Duration::ZERO..self.link.jitter)
        };
        let mut depart = self.now;
        if let (true, Some(rate)) = (to_b, self.link.rate_to_b) {
            let start = self.busy_until.max(self.now);
            let waiting = start - self.now;
            // Bytes ahead of this one in the queue.
            let queued = waiting.as_secs_f64() * rate as f64;
            if queued + bytes.len() as f64 > self.link.queue_limit as f64 {
                self.queue_drops += 1;
                return;
            }
            self.queue_delays.push((self.now, waiting));
            depart = start + Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
            self.busy_until = depart;
        }
        if self.link.duplicate > 0.0 && self.rng.random_bool(self.link.duplicate) {
            let later = self.rng.random_range(Duration::ZERO..self.link.delay * 4);
            self.order += 1;
            self.wire.push((
                depart + self.link.delay + later,
                self.order,
                to_b,
                bytes.clone(),
            ));
        }
        self.order += 1;
        self.wire
            .push((depart + self.link.delay + jitter, self.order, to_b, bytes));
    }

    /// Sends everything both sides have to send now.
    pub fn flush(&mut self) {
        let mut buf = Vec::new();
        while self.a.poll_transmit(self.now, &mut buf) {
            self.put(true, buf.clone());
        }
        if let Some(mut b) = self.b.take() {
            while b.poll_transmit(self.now, &mut buf) {
                self.put(false, buf.clone());
            }
            self.b = Some(b);
        }
    }

    /// Injects a datagram toward B as if from A's address.
    pub fn inject_to_b(&mut self, bytes: &[u8]) {
        let p = Packet::decode(bytes).expect("test packet decodes");
        let now = self.now;
        self.b().handle_packet(&p, now);
    }

    /// Flushes, then moves the clock to the next event (a delivery or a timer) and runs it.
    /// False when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.flush();
        let mut next = self.wire.iter().map(|w| (w.0, w.1)).min().map(|w| w.0);
        for t in [
            self.a.poll_timeout(),
            self.b.as_ref().and_then(|b| b.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
        let Some(next) = next else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let mut due: Vec<_> = Vec::new();
        self.wire.retain(|w| {
            if w.0 <= now {
                due.push(w.clone());
                false
            } else {
                true
            }
        });
        due.sort_by_key(|w| (w.0, w.1));
        for (_, _, to_b, bytes) in due {
            let p = Packet::decode(&bytes).expect("our own packets decode");
            if to_b {
                // A SYN after B gave up on a half-open connection opens a new one, as the
                // endpoint does.
                let fresh_syn = p.header.ty == PacketType::Syn
                    && self.b.as_ref().is_none_or(|b| b.state() == State::Closed);
                if fresh_syn {
                    self.b = Some(Connection::accept(
                        &p,
                        self.b_seq,
                        now,
                        self.epoch,
                        self.config.clone(),
                    ));
                } else if let Some(b) = self.b.as_mut() {
                    b.handle_packet(&p, now);
                }
            } else {
                self.a.handle_packet(&p, now);
            }
        }
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        if let Some(b) = self.b.as_mut() {
            if b.poll_timeout().is_some_and(|t| t <= now) {
                b.handle_timeout(now);
            }
        }
        true
    }
}

/// Deterministic test data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random()).collect()
}

/// Moves `src` from A to B and `back` from B to A at once, reading as it arrives; returns
/// what each side read. Panics if the transfer does not finish within `max_steps` events.
pub fn transfer(p: &mut Pair, src: &[u8], back: &[u8], max_steps: usize) -> (Vec<u8>, Vec<u8>) {
    let (mut at_b, mut at_a) = (Vec::new(), Vec::new());
    let (mut sent_ab, mut sent_ba) = (0, 0);
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..max_steps {
        sent_ab += p.a.write(&src[sent_ab..]);
        loop {
            let n = p.a.read(&mut buf);
            if n == 0 {
                break;
            }
            at_a.extend_from_slice(&buf[..n]);
        }
        // The application sees B once it is established, as with the endpoint (a half-open
        // B may be given up and replaced when the SYN comes again).
        if p.b.as_ref().is_some_and(|b| b.is_established()) {
            sent_ba += p.b().write(&back[sent_ba..]);
            loop {
                let n = p.b().read(&mut buf);
                if n == 0 {
                    break;
                }
                at_b.extend_from_slice(&buf[..n]);
            }
        }
        if at_b.len() == src.len() && at_a.len() == back.len() {
            return (at_b, at_a);
        }
        assert!(
            !p.a.is_closed(),
            "A closed: {:?} (B has {} of {}, A has {} of {}); A {:#?} B {:#?}",
            p.a.error(),
            at_b.len(),
            src.len(),
            at_a.len(),
            back.len(),
            p.a,
            p.b
        );
        assert!(p.step(), "nothing left to happen");
    }
    panic!(
        "transfer unfinished after {max_steps} events: B has {} of {}, A has {} of {}",
        at_b.len(),
        src.len(),
        at_a.len(),
        back.len()
    );
}
