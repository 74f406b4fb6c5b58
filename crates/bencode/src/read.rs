//! The reader: one pass over the input, recursion bounded by the depth limit.

use std::collections::BTreeSet;

use crate::value::{Dict, List, Value};

/// How to read: which deviations from BEP 3 to accept, and the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    /// Dictionary keys must be sorted and unique. Off: any order, the first of duplicate
    /// keys wins (as libtorrent looks keys up) and later ones are dropped.
    pub sorted_keys: bool,
    /// Integers and string lengths without leading zeros, and no `-0`.
    pub canonical_numbers: bool,
    /// Integers that do not fit an `i64` are read as [`Value::BigInt`] (so the caller can
    /// name the field); off, they are an error.
    pub big_integers: bool,
    /// Most lists and dictionaries nested in one another (the root counts).
    pub max_depth: usize,
    /// Most values in one input (every value counts, dictionary keys do not): bounds what
    /// one input can make us allocate.
    pub max_items: usize,
}

impl Decoder {
    /// BEP 3 as written.
    pub const STRICT: Decoder = Decoder {
        sorted_keys: true,
        canonical_numbers: true,
        big_integers: false,
        max_depth: 32,
        max_items: 1 << 20,
    };

    /// What real clients, trackers and files send.
    pub const LENIENT: Decoder = Decoder {
        sorted_keys: false,
        canonical_numbers: false,
        ..Decoder::STRICT
    };

    pub const fn with_max_depth(self, max_depth: usize) -> Self {
        Decoder { max_depth, ..self }
    }

    pub const fn with_max_items(self, max_items: usize) -> Self {
        Decoder { max_items, ..self }
    }

    pub const fn with_canonical_numbers(self, canonical_numbers: bool) -> Self {
        Decoder {
            canonical_numbers,
            ..self
        }
    }

    pub const fn with_big_integers(self, big_integers: bool) -> Self {
        Decoder {
            big_integers,
            ..self
        }
    }

    /// Reads exactly one value spanning all of `input`.
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Value<'a>, Error> {
        let (v, used) = self.decode_prefix(input)?;
        if used != input.len() {
            return Err(Error::Trailing { at: used });
        }
        Ok(v)
    }

    /// Reads the value at the start of `input`; returns it and how many bytes it took (what
    /// follows is the caller's: a ut_metadata piece, say).
    pub fn decode_prefix<'a>(&self, input: &'a [u8]) -> Result<(Value<'a>, usize), Error> {
        let mut r = Reader {
            buf: input,
            pos: 0,
            items: 0,
            opts: *self,
        };
        let v = r.value(0)?;
        Ok((v, r.pos))
    }
}

/// Why an input is not bencode under the decoder's rules, or exceeds its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated bencode (input ends inside a value at byte {at})")]
    Truncated { at: usize },
    #[error("invalid bencode at byte {at}: expected i, l, d or a digit, found {byte:#04x}")]
    Unexpected { byte: u8, at: usize },
    #[error("invalid bencode at byte {at}: non-digit in a number")]
    NonDigit { at: usize },
    #[error("invalid bencode at byte {at}: empty number")]
    EmptyNumber { at: usize },
    #[error("invalid bencode at byte {at}: number out of range")]
    IntegerOverflow { at: usize },
    #[error("invalid bencode at byte {at}: leading zero or -0 in a number")]
    NonCanonicalNumber { at: usize },
    #[error("invalid bencode at byte {at}: dictionary key is not a string")]
    KeyNotString { at: usize },
    #[error("invalid bencode at byte {at}: dictionary keys not sorted")]
    UnsortedKey { at: usize },
    #[error("invalid bencode at byte {at}: duplicate dictionary key")]
    DuplicateKey { at: usize },
    #[error("bencode nested too deeply")]
    TooDeep,
    #[error("bencode has too many values")]
    TooManyItems,
    #[error("trailing bytes after the bencode value at byte {at}")]
    Trailing { at: usize },
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    items: usize,
    opts: Decoder,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, Error> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(Error::Truncated { at: self.pos })
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, Error> {
        self.items += 1;
        if self.items > self.opts.max_items {
            return Err(Error::TooManyItems);
        }
        match self.peek()? {
            b'i' => self.int(),
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                let start = self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                let raw = &self.buf[start..self.pos];
                Ok(Value::List(List { items, raw }))
            }
            b'd' => {
                let start = self.enter(depth)?;
                let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
                let mut sorted = true;
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(Error::KeyNotString { at });
                    }
                    let key = self.bytes()?;
                    if let Some((last, _)) = entries.last() {
                        if key <= *last {
                            sorted = false;
                            if self.opts.sorted_keys {
                                return Err(if key == *last {
                                    Error::DuplicateKey { at }
                                } else {
                                    Error::UnsortedKey { at }
                                });
                            }
                        }
                    }
                    entries.push((key, self.value(depth + 1)?));
                }
                self.pos += 1;
                if !sorted {
                    // Lenient: the first of duplicate keys wins.
                    let mut seen = BTreeSet::new();
                    entries.retain(|(k, _)| seen.insert(*k));
                }
                let raw = &self.buf[start..self.pos];
                Ok(Value::Dict(Dict { entries, raw }))
            }
            byte => Err(Error::Unexpected { byte, at: self.pos }),
        }
    }

    /// Steps into a list or dictionary; returns where it starts.
    fn enter(&mut self, depth: usize) -> Result<usize, Error> {
        if depth >= self.opts.max_depth {
            return Err(Error::TooDeep);
        }
        self.pos += 1;
        Ok(self.pos - 1)
    }

    /// The digits up to `end` (consumed), checked to be digits and, if asked, canonical.
    fn digits(&mut self, end: u8) -> Result<&'a [u8], Error> {
        let start = self.pos;
        loop {
            let c = self.peek()?;
            if c == end {
                break;
            }
            if !c.is_ascii_digit() {
                return Err(Error::NonDigit { at: self.pos });
            }
            self.pos += 1;
        }
        let digits = &self.buf[start..self.pos];
        self.pos += 1;
        if digits.is_empty() {
            return Err(Error::EmptyNumber { at: start });
        }
        if self.opts.canonical_numbers && digits.len() > 1 && digits[0] == b'0' {
            return Err(Error::NonCanonicalNumber { at: start });
        }
        Ok(digits)
    }

    /// `i<digits>e`.
    fn int(&mut self) -> Result<Value<'a>, Error> {
        let at = self.pos;
        self.pos += 1;
        let neg = self.peek()? == b'-';
        if neg {
            self.pos += 1;
        }
        let digits = self.digits(b'e')?;
        if neg && self.opts.canonical_numbers && digits == b"0" {
            return Err(Error::NonCanonicalNumber { at });
        }
        // Accumulated negative so that i64::MIN fits.
        let magnitude = digits.iter().try_fold(0i64, |n, &c| {
            n.checked_mul(10)?.checked_sub(i64::from(c - b'0'))
        });
        match magnitude.and_then(|m| if neg { Some(m) } else { m.checked_neg() }) {
            Some(n) => Ok(Value::Int(n)),
            None if self.opts.big_integers => Ok(Value::BigInt(&self.buf[at + 1..self.pos - 1])),
            None => Err(Error::IntegerOverflow { at }),
        }
    }

    /// `<length>:<bytes>`.
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let digits = self.digits(b':')?;
        let past_input = Error::Truncated { at: self.buf.len() };
        let len = digits
            .iter()
            .try_fold(0usize, |n, &c| {
                n.checked_mul(10)?.checked_add(usize::from(c - b'0'))
            })
            .ok_or(past_input)?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or(past_input)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}
