//! A small, bounded, borrowing bencode reader and the few writers the tracker needs.
//!
//! Why not bendy (which the main crate uses for metainfo): bendy rejects dictionaries whose keys
//! are not sorted, and real trackers send such responses — netsys-lab/scionbttracker writes
//! `interval` before `complete`. A tracker response is a small, flat structure, so a tolerant
//! reader with hard limits (depth, element count) is simpler than working around a strict one.

use std::io::Write;

/// Deepest nesting accepted (tracker responses need 4).
const MAX_DEPTH: usize = 16;
/// Most list/dict elements accepted in one document.
const MAX_ELEMENTS: usize = 200_000;

/// A decoded value borrowing its strings from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in input order (duplicates kept; lookups take the first).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// Why a document is not valid bencode (or exceeds the limits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("truncated bencode (input ends inside a value at byte {0})")]
    Truncated(usize),
    #[error("invalid bencode at byte {at}: {what}")]
    Invalid { at: usize, what: &'static str },
    #[error("bencode nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("bencode has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("trailing bytes after the bencode value at byte {0}")]
    Trailing(usize),
}

impl<'a> Value<'a> {
    /// The value under `key` of a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
}

/// Decodes one complete bencode document (no trailing bytes).
pub fn decode(input: &[u8]) -> Result<Value<'_>, BencodeError> {
    let mut r = Reader {
        buf: input,
        pos: 0,
        elements: 0,
    };
    let v = r.value(0)?;
    if r.pos != input.len() {
        return Err(BencodeError::Trailing(r.pos));
    }
    Ok(v)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    elements: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated(self.pos))
    }

    fn invalid(&self, what: &'static str) -> BencodeError {
        BencodeError::Invalid { at: self.pos, what }
    }

    fn count(&mut self) -> Result<(), BencodeError> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(BencodeError::TooManyElements);
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    self.count()?;
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    self.count()?;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(self.invalid("dictionary key is not a string"));
                    }
                    let k = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    items.push((k, v));
                }
                self.pos += 1;
                Ok(Value::Dict(items))
            }
            _ => Err(self.invalid("expected i, l, d or a digit")),
        }
    }

    /// A decimal integer up to `end` (consumed).
    fn number(&mut self, end: u8) -> Result<i64, BencodeError> {
        let start = self.pos;
        let neg = self.peek()? == b'-';
        if neg {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut n: i64 = 0;
        loop {
            let c = self.peek()?;
            if c == end {
                break;
            }
            if !c.is_ascii_digit() {
                return Err(self.invalid("non-digit in a number"));
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i64::from(c - b'0')))
                .ok_or(BencodeError::Invalid {
                    at: start,
                    what: "number out of range",
                })?;
            self.pos += 1;
        }
        if self.pos == digits_start {
            return Err(self.invalid("empty number"));
        }
        self.pos += 1;
        Ok(if neg { -n } else { n })
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let len = self.number(b':')?;
        let len = usize::try_from(len).map_err(|_| self.invalid("negative string length"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or(BencodeError::Truncated(self.buf.len()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// Appends `<len>:<bytes>`.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "{}:", b.len());
    out.extend_from_slice(b);
}

/// Appends `i<n>e`.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, "i{n}e");
}

/// Appends a dictionary entry `key` → integer.
pub fn put_key_int(out: &mut Vec<u8>, key: &str, n: i64) {
    put_bytes(out, key.as_bytes());
    put_int(out, n);
}

/// Appends a dictionary entry `key` → string.
pub fn put_key_bytes(out: &mut Vec<u8>, key: &str, b: &[u8]) {
    put_bytes(out, key.as_bytes());
    put_bytes(out, b);
}

/// A complete `d14:failure reason<len>:<msg>e` document.
pub fn failure(msg: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 24);
    out.push(b'd');
    put_key_bytes(&mut out, "failure reason", msg.as_bytes());
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_unsorted_dicts_and_nesting() {
        let v =
            decode(b"d8:intervali60e8:completei1e5:peersld2:ip9:127.0.0.14:porti80eeee").unwrap();
        assert_eq!(v.get(b"interval").and_then(Value::as_int), Some(60));
        let peers = v.get(b"peers").and_then(Value::as_list).unwrap();
        assert_eq!(peers[0].get(b"port").and_then(Value::as_int), Some(80));
    }

    #[test]
    fn rejects_bad_input_clearly() {
        for (bad, hint) in [
            (&b"d8:interval"[..], "truncated"),
            (b"i12", "truncated"),
            (b"5:abc", "truncated"),
            (b"i1x2e", "non-digit"),
            (b"ie", "empty number"),
            (b"i99999999999999999999e", "out of range"),
            (b"di1ei2ee", "key is not a string"),
            (b"i1ei2e", "trailing"),
            (b"x", "expected"),
        ] {
            let e = decode(bad).unwrap_err().to_string();
            assert!(e.contains(hint), "{:?}: {e}", String::from_utf8_lossy(bad));
        }
        let deep = [b"l".repeat(100), b"e".repeat(100)].concat();
        assert_eq!(decode(&deep), Err(BencodeError::TooDeep));
    }

    #[test]
    fn failure_document() {
        let f = failure("nope");
        assert_eq!(f, b"d14:failure reason4:nopee");
        assert_eq!(
            decode(&f).unwrap().get(b"failure reason"),
            Some(&Value::Bytes(b"nope"))
        );
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&data);
        }

        #[test]
        fn never_panics_on_bencode_alphabet(data in "[dlie0-9:-]{0,64}") {
            let _ = decode(data.as_bytes());
        }
    }
}
