//! The 768-bit Diffie-Hellman group of MSE (generator 2).

use num_bigint::BigUint;
use rand::RngCore;

use crate::{MseError, KEY_LEN};

/// MSE's prime P (the specification's, big-endian).
const PRIME: [u8; KEY_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x3A, 0x36, 0x21, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x05, 0x63,
];

/// Random bytes of a private exponent: 160 bits, as the specification recommends.
const PRIVATE_LEN: usize = 20;

/// One side's key pair.
pub(crate) struct KeyPair {
    private: BigUint,
    pub public: [u8; KEY_LEN],
}

impl KeyPair {
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut x = [0u8; PRIVATE_LEN];
        rng.fill_bytes(&mut x);
        // Never 0: an all-zero draw would give the public key 1.
        x[0] |= 0x80;
        let private = BigUint::from_bytes_be(&x);
        let public = to_wire(&BigUint::from(2u8).modpow(&private, &prime()));
        Self { private, public }
    }

    /// S = Y^x mod P, refusing a degenerate peer key (one that fixes S for any x).
    pub fn shared_secret(&self, peer_public: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], MseError> {
        let p = prime();
        let y = BigUint::from_bytes_be(peer_public);
        let one = BigUint::from(1u8);
        if y <= one || y >= &p - &one {
            return Err(MseError::BadPublicKey);
        }
        Ok(to_wire(&y.modpow(&self.private, &p)))
    }
}

fn prime() -> BigUint {
    BigUint::from_bytes_be(&PRIME)
}

/// A number below P as 96 big-endian bytes (leading zeros kept).
fn to_wire(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // Below P, so never longer than 96 bytes.
    let skip = KEY_LEN.saturating_sub(bytes.len());
    out[skip..].copy_from_slice(&bytes[bytes.len().saturating_sub(KEY_LEN)..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_derive_the_same_secret() {
        let mut rng = rand::rng();
        let a = KeyPair::generate(&mut rng);
        let b = KeyPair::generate(&mut rng);
        assert_ne!(a.public, b.public);
        assert_eq!(
            a.shared_secret(&b.public).unwrap(),
            b.shared_secret(&a.public).unwrap()
        );
    }

    #[test]
    fn degenerate_keys_are_refused() {
        let a = KeyPair::generate(&mut rand::rng());
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        let mut p_minus_one = PRIME;
        p_minus_one[KEY_LEN - 1] -= 1;
        for bad in [[0u8; KEY_LEN], one, p_minus_one, PRIME, [0xff; KEY_LEN]] {
            assert_eq!(a.shared_secret(&bad), Err(MseError::BadPublicKey));
        }
    }

    #[test]
    fn leading_zeros_are_kept() {
        let mut n = [0u8; KEY_LEN];
        n[KEY_LEN - 1] = 7;
        assert_eq!(to_wire(&BigUint::from(7u8)), n);
    }
}
