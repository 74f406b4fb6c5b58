//! 160-bit node ids and info hashes, and the XOR metric.

use std::fmt;

use rand::Rng;

/// A 160-bit DHT key: a node id or an info hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id(pub [u8; 20]);

/// An info hash is looked up in the same key space as node ids.
pub type InfoHash = Id;

impl Id {
    /// The all-zero id.
    pub const ZERO: Id = Id([0; 20]);

    /// A uniformly random id.
    pub fn random(rng: &mut impl Rng) -> Id {
        let mut b = [0u8; 20];
        rng.fill(&mut b[..]);
        Id(b)
    }

    /// From exactly 20 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Id> {
        <[u8; 20]>::try_from(b).ok().map(Id)
    }

    /// From 40 hex digits.
    pub fn from_hex(s: &str) -> Option<Id> {
        let s = s.as_bytes();
        if s.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Id(out))
    }

    /// The XOR distance to `other` (compare distances with `Ord`).
    pub fn distance(&self, other: &Id) -> Id {
        let mut d = [0u8; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        Id(d)
    }

    /// Number of leading bits `self` and `other` share (160 if equal).
    pub fn common_prefix_len(&self, other: &Id) -> usize {
        for i in 0..20 {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return i * 8 + x.leading_zeros() as usize;
            }
        }
        160
    }

    /// A random id that shares exactly `prefix` leading bits with `self` (for `prefix < 160`):
    /// the first `prefix` bits are copied, bit `prefix` is flipped, the rest are random.
    pub fn random_at_distance(&self, prefix: usize, rng: &mut impl Rng) -> Id {
        let mut out = Id::random(rng);
        for bit in 0..prefix.min(160) {
            out.set_bit(bit, self.bit(bit));
        }
        if prefix < 160 {
            out.set_bit(prefix, !self.bit(prefix));
        }
        out
    }

    fn bit(&self, i: usize) -> bool {
        self.0[i / 8] & (0x80 >> (i % 8)) != 0
    }

    fn set_bit(&mut self, i: usize, v: bool) {
        let mask = 0x80 >> (i % 8);
        if v {
            self.0[i / 8] |= mask;
        } else {
            self.0[i / 8] &= !mask;
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hex_round_trip_and_metric() {
        let a = Id::from_hex("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(a.to_string(), "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(Id::from_hex("xyz"), None);
        assert_eq!(a.distance(&a), Id::ZERO);
        assert_eq!(a.common_prefix_len(&a), 160);
        let mut b = a;
        b.0[0] ^= 0x10;
        assert_eq!(a.common_prefix_len(&b), 3);
    }

    #[test]
    fn random_at_distance_has_the_prefix() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let me = Id::random(&mut rng);
        for prefix in [0, 1, 7, 8, 100, 159] {
            let x = me.random_at_distance(prefix, &mut rng);
            assert_eq!(me.common_prefix_len(&x), prefix);
        }
    }
}
