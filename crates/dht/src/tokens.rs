//! announce_peer tokens: SHA-1 of a secret and the querier's host (IP, and ISD-AS over SCION,
//! without the port), truncated to 8 bytes. The secret rotates every 5 minutes and the previous
//! one is still accepted, so a token is valid for 5 to 10 minutes (BEP 5).

use std::time::{Duration, Instant};

use rand::Rng;
use sha1::{Digest, Sha1};

use crate::addr::DhtAddr;

/// How often the secret changes.
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
const TOKEN_LEN: usize = 8;

#[derive(Debug, Clone)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    next_rotation: Instant,
}

impl Tokens {
    pub fn new(rng: &mut impl Rng, now: Instant) -> Self {
        Tokens {
            current: rng.random(),
            previous: rng.random(),
            next_rotation: now + ROTATE_EVERY,
        }
    }

    pub fn next_rotation(&self) -> Instant {
        self.next_rotation
    }

    /// Rotates the secret if it is due.
    pub fn tick(&mut self, rng: &mut impl Rng, now: Instant) {
        if now >= self.next_rotation {
            self.previous = self.current;
            self.current = rng.random();
            self.next_rotation = now + ROTATE_EVERY;
        }
    }

    fn make<A: DhtAddr>(secret: &[u8; 16], addr: &A) -> [u8; TOKEN_LEN] {
        let mut host = Vec::with_capacity(32);
        addr.with_port(0).write_compact(&mut host);
        let digest = Sha1::new()
            .chain_update(secret)
            .chain_update(&host)
            .finalize();
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&digest[..TOKEN_LEN]);
        out
    }

    /// The token we hand to `addr` in a get_peers response.
    pub fn issue<A: DhtAddr>(&self, addr: &A) -> Vec<u8> {
        Self::make(&self.current, addr).to_vec()
    }

    /// Whether `token` is one we issued to `addr`'s host within the last two periods.
    pub fn check<A: DhtAddr>(&self, addr: &A, token: &[u8]) -> bool {
        token == Self::make(&self.current, addr) || token == Self::make(&self.previous, addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use scion_addr::ScionAddr;
    use std::net::SocketAddr;

    #[test]
    fn valid_for_two_periods_and_bound_to_the_host() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let now = Instant::now();
        let mut t = Tokens::new(&mut rng, now);
        let a: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let tok = t.issue(&a);
        assert!(t.check(&a.with_port(9), &tok), "port does not matter");
        assert!(!t.check(&"10.0.0.2:6881".parse::<SocketAddr>().unwrap(), &tok));
        t.tick(&mut rng, now + ROTATE_EVERY);
        assert!(t.check(&a, &tok));
        t.tick(&mut rng, now + ROTATE_EVERY * 2);
        assert!(!t.check(&a, &tok));
    }

    #[test]
    fn scion_tokens_include_the_isd_as() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let t = Tokens::new(&mut rng, Instant::now());
        let a: ScionAddr = "1-ff00:0:110,[10.0.0.1]:1".parse().unwrap();
        let b: ScionAddr = "1-ff00:0:111,[10.0.0.1]:1".parse().unwrap();
        assert!(t.check(&a, &t.issue(&a)));
        assert!(!t.check(&b, &t.issue(&a)));
    }
}
