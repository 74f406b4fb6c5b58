//! A tolerant bencode reader for torrents from the wild.
//!
//! `bendy` (used by [`super::meta`]) is strict: dictionary keys must be sorted and unique, and
//! it has no switch to relax that. libtorrent accepts such files (it looks keys up and takes
//! the first match), and so do other clients, so real torrents with unsorted keys exist. This
//! module reads them, depth-limited, and re-encodes them canonically (sorted keys, the first of
//! duplicate keys kept) so the strict parser can validate the result; it also reports where the
//! `info` value lies in the *original* bytes, because the info hash is the SHA-1 of those bytes
//! exactly as they appear in the file, whatever their order.

use std::collections::BTreeMap;

/// A bencode value borrowing from the input.
#[derive(Debug)]
pub enum Value<'a> {
    /// The digits of an integer (`-?[0-9]+`).
    Int(&'a [u8]),
    /// A byte string.
    Bytes(&'a [u8]),
    /// A list.
    List(Vec<Value<'a>>),
    /// A dictionary: key → (value, the value's raw bytes in the input). The first of duplicate
    /// keys wins.
    Dict(BTreeMap<&'a [u8], (Value<'a>, &'a [u8])>),
}

/// Why the input is not bencode even by the tolerant rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bencode at byte {at}: {what}")]
pub struct LenientError {
    /// Offset of the problem.
    pub at: usize,
    /// What was wrong.
    pub what: &'static str,
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl<'a> Reader<'a> {
    fn err<T>(&self, what: &'static str) -> Result<T, LenientError> {
        Err(LenientError { at: self.pos, what })
    }

    fn peek(&self) -> Result<u8, LenientError> {
        match self.data.get(self.pos) {
            Some(&b) => Ok(b),
            None => self.err("unexpected end of input"),
        }
    }

    /// Bytes up to (not including) `end`, which is consumed.
    fn until(&mut self, end: u8) -> Result<&'a [u8], LenientError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == end) else {
            return self.err("unterminated token");
        };
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, LenientError> {
        if depth > self.max_depth {
            return self.err("nested too deeply");
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let digits = self.until(b'e')?;
                let body = digits.strip_prefix(b"-").unwrap_or(digits);
                if body.is_empty() || !body.iter().all(u8::is_ascii_digit) {
                    return self.err("bad integer");
                }
                Ok(Value::Int(digits))
            }
            b'0'..=b'9' => {
                let len = self.until(b':')?;
                let len: usize = std::str::from_utf8(len)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|&n| n <= self.data.len() - self.pos)
                    .map_or_else(|| self.err("bad string length"), Ok)?;
                let s = &self.data[self.pos..self.pos + len];
                self.pos += len;
                Ok(Value::Bytes(s))
            }
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek()? != b'e' {
                    let Value::Bytes(key) = self.value(depth + 1)? else {
                        return self.err("dictionary key is not a string");
                    };
                    let start = self.pos;
                    let v = self.value(depth + 1)?;
                    let raw = &self.data[start..self.pos];
                    map.entry(key).or_insert((v, raw));
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            _ => self.err("unexpected byte"),
        }
    }
}

/// Reads the first bencode value of `data`; returns it and the number of bytes it took.
pub fn parse(data: &[u8], max_depth: usize) -> Result<(Value<'_>, usize), LenientError> {
    let mut r = Reader {
        data,
        pos: 0,
        max_depth,
    };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// Appends the canonical encoding of `v` (sorted, unique keys).
pub fn encode(v: &Value<'_>, out: &mut Vec<u8>) {
    match v {
        Value::Int(d) => {
            out.push(b'i');
            out.extend_from_slice(d);
            out.push(b'e');
        }
        Value::Bytes(b) => {
            out.extend_from_slice(b.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            out.push(b'l');
            items.iter().for_each(|i| encode(i, out));
            out.push(b'e');
        }
        Value::Dict(map) => {
            out.push(b'd');
            for (k, (v, _)) in map {
                encode(&Value::Bytes(k), out);
                encode(v, out);
            }
            out.push(b'e');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(data: &[u8]) -> Vec<u8> {
        let (v, _) = parse(data, 8).unwrap();
        let mut out = Vec::new();
        encode(&v, &mut out);
        out
    }

    #[test]
    fn sorts_keys_and_keeps_the_first_duplicate() {
        assert_eq!(canonical(b"d1:bi2e1:ai1e1:bi3ee"), b"d1:ai1e1:bi2ee");
        assert_eq!(canonical(b"l4:spami-7ed0:i1eee"), b"l4:spami-7ed0:i1eee");
    }

    #[test]
    fn raw_value_bytes_are_kept() {
        let data = b"d4:infod1:zi1e1:ai2ee1:ai0ee";
        let (Value::Dict(m), used) = parse(data, 8).unwrap() else {
            panic!("not a dict")
        };
        assert_eq!(used, data.len());
        assert_eq!(m[&b"info"[..]].1, b"d1:zi1e1:ai2ee");
    }

    #[test]
    fn rejects_what_is_not_bencode() {
        for bad in [
            &b"d1:ai1e"[..],
            b"i12",
            b"5:abc",
            b"ixe",
            b"i-e",
            b"di1ei2ee",
            b"x",
            b"",
            b"99999999999999999999999:a",
        ] {
            assert!(parse(bad, 8).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"llllllllllee", 3).is_err());
    }
}
