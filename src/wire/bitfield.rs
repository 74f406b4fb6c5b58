//! Piece bitfield in wire order (bit 7 of byte 0 is piece 0), with a cached
//! count of set bits.

use bytes::Bytes;

use super::WireError;

/// A fixed-length set of pieces. Out-of-range indexes read as `false` and are
/// ignored by setters (never panics).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

/// Bytes needed for `len` bits.
pub fn byte_len(len: u32) -> usize {
    (len as usize).div_ceil(8)
}

impl Bitfield {
    /// All-zero bitfield of `len` pieces.
    pub fn new(len: u32) -> Self {
        Bitfield {
            bytes: vec![0; byte_len(len)],
            len,
            ones: 0,
        }
    }

    /// All-one bitfield of `len` pieces (spare bits stay clear).
    pub fn full(len: u32) -> Self {
        let mut b = Bitfield {
            bytes: vec![0xff; byte_len(len)],
            len,
            ones: len,
        };
        b.clear_spare();
        b
    }

    /// Validates a peer's bitfield: exactly `byte_len(len)` bytes and no
    /// spare bit set.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Result<Self, WireError> {
        let expected = byte_len(len);
        if bytes.len() != expected {
            return Err(WireError::BitfieldLength {
                got: bytes.len(),
                expected,
            });
        }
        if spare_bits_set(bytes, len) {
            return Err(WireError::BitfieldSpareBits);
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    fn clear_spare(&mut self) {
        let rem = self.len % 8;
        if rem != 0 {
            if let Some(last) = self.bytes.last_mut() {
                *last &= 0xffu8 << (8 - rem);
            }
        }
    }

    /// Number of pieces.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when the bitfield covers zero pieces.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `i` is set.
    #[inline]
    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Sets piece `i`; returns true if it was not set before.
    #[inline]
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let (byte, mask) = ((i / 8) as usize, 0x80u8 >> (i % 8));
        if self.bytes[byte] & mask == 0 {
            self.bytes[byte] |= mask;
            self.ones += 1;
            true
        } else {
            false
        }
    }

    /// Clears piece `i`; returns true if it was set before.
    #[inline]
    pub fn clear(&mut self, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        let (byte, mask) = ((i / 8) as usize, 0x80u8 >> (i % 8));
        if self.bytes[byte] & mask != 0 {
            self.bytes[byte] &= !mask;
            self.ones -= 1;
            true
        } else {
            false
        }
    }

    /// Sets every piece.
    pub fn set_all(&mut self) {
        *self = Bitfield::full(self.len);
    }

    /// Number of set pieces.
    pub fn count_ones(&self) -> u32 {
        self.ones
    }

    /// Every piece set.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// No piece set.
    pub fn is_clear(&self) -> bool {
        self.ones == 0
    }

    /// Wire bytes (spare bits always clear).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Wire bytes as `Bytes`, for a `Message::Bitfield`.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.bytes)
    }

    /// Indexes of set pieces, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b != 0)
            .flat_map(|(i, &b)| {
                (0..8u32)
                    .filter(move |k| b & (0x80 >> k) != 0)
                    .map(move |k| i as u32 * 8 + k)
            })
    }

    /// Indexes of clear pieces, ascending.
    pub fn iter_zeros(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(|&i| !self.get(i))
    }

    /// True if `self` has a piece that `other` lacks (e.g. `peer.has_any_not_in(&ours)`
    /// decides interest). Bitfields of different lengths compare over the shorter.
    pub fn has_any_not_in(&self, other: &Bitfield) -> bool {
        self.bytes
            .iter()
            .zip(other.bytes.iter().chain(std::iter::repeat(&0)))
            .any(|(a, b)| a & !b != 0)
    }
}

fn spare_bits_set(bytes: &[u8], len: u32) -> bool {
    let rem = len % 8;
    match bytes.last() {
        Some(&last) if rem != 0 => last & (0xffu8 >> rem) != 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let mut b = Bitfield::new(10);
        assert_eq!(b.as_bytes(), &[0, 0]);
        assert!(b.set(0) && b.set(9) && !b.set(9) && !b.set(10) && !b.set(u32::MAX));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert!(b.get(0) && b.get(9) && !b.get(1) && !b.get(10) && !b.get(u32::MAX));
        assert_eq!(b.count_ones(), 2);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0, 9]);
        assert_eq!(b.iter_zeros().count(), 8);
        assert!(b.clear(0) && !b.clear(0) && !b.clear(99));
        assert_eq!(b.count_ones(), 1);
        let f = Bitfield::full(10);
        assert_eq!(f.as_bytes(), &[0xff, 0xc0]);
        assert!(f.is_full() && !f.is_clear());
        assert!(f.has_any_not_in(&b) && !b.has_any_not_in(&f));
        let mut c = b.clone();
        c.set_all();
        assert_eq!(c, f);
        assert_eq!(Bitfield::full(16).as_bytes(), &[0xff, 0xff]);
        assert!(Bitfield::new(0).is_empty() && Bitfield::full(0).is_full());
    }

    #[test]
    fn validation() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xc0], 10).unwrap(),
            Bitfield::full(10)
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(WireError::BitfieldSpareBits)
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0x01], 10),
            Err(WireError::BitfieldSpareBits)
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(WireError::BitfieldLength {
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0, 0, 0], 10),
            Err(WireError::BitfieldLength {
                got: 3,
                expected: 2
            })
        );
        let b = Bitfield::from_bytes(&[0x81, 0xff], 16).unwrap();
        assert_eq!(b.count_ones(), 10);
        assert!(Bitfield::from_bytes(&[], 0).is_ok());
    }
}
