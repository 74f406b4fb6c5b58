//! The little bencode KRPC needs: a bounded, borrowing parser and a few writers.
//!
//! Written here rather than taken from `bendy` (used by the client for .torrent files): bendy
//! rejects dictionaries whose keys are not sorted, which some DHT implementations send, and KRPC
//! wants hard caps on nesting and on the number of items a datagram may allocate.

/// Deepest nesting accepted (KRPC needs 3: message → `r` → `values` list).
pub const MAX_DEPTH: usize = 8;
/// Most values (of any kind) one input may contain; bounds allocations per datagram.
pub const MAX_ITEMS: usize = 2048;

/// A parsed bencode value borrowing from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in input order; lookups take the first occurrence.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// The value under `key` if this is a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

/// Why an input is not acceptable bencode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("input ends inside a value")]
    Truncated,
    #[error("unexpected byte {byte:#04x} at offset {at}")]
    Unexpected { byte: u8, at: usize },
    #[error("malformed integer at offset {at}")]
    BadInt { at: usize },
    #[error("malformed string length at offset {at}")]
    BadLength { at: usize },
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_ITEMS} values")]
    TooManyItems,
    #[error("dictionary key is not a string at offset {at}")]
    KeyNotString { at: usize },
    #[error("{extra} trailing bytes after the value")]
    Trailing { extra: usize },
}

/// Parses exactly one value spanning all of `input`.
pub fn parse(input: &[u8]) -> Result<Value<'_>, BencodeError> {
    let mut p = Parser {
        b: input,
        pos: 0,
        items: 0,
    };
    let v = p.value(0)?;
    if p.pos != input.len() {
        return Err(BencodeError::Trailing {
            extra: input.len() - p.pos,
        });
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
    items: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.b.get(self.pos).copied().ok_or(BencodeError::Truncated)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        self.items += 1;
        if self.items > MAX_ITEMS {
            return Err(BencodeError::TooManyItems);
        }
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                let depth = self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                let depth = self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::KeyNotString { at });
                    }
                    let k = self.bytes()?;
                    items.push((k, self.value(depth)?));
                }
                self.pos += 1;
                Ok(Value::Dict(items))
            }
            byte => Err(BencodeError::Unexpected { byte, at: self.pos }),
        }
    }

    fn enter(&mut self, depth: usize) -> Result<usize, BencodeError> {
        if depth >= MAX_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        self.pos += 1;
        Ok(depth + 1)
    }

    /// `i<digits>e`, no leading zeros, no `-0`.
    fn int(&mut self) -> Result<i64, BencodeError> {
        let at = self.pos;
        self.pos += 1;
        let rest = &self.b[self.pos..];
        let end = rest
            .iter()
            .position(|&c| c == b'e')
            .ok_or(BencodeError::Truncated)?;
        let digits = &rest[..end];
        let bad = BencodeError::BadInt { at };
        let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
        if unsigned.is_empty()
            || !unsigned.iter().all(u8::is_ascii_digit)
            || (unsigned.len() > 1 && unsigned[0] == b'0')
            || (digits.len() != unsigned.len() && unsigned == b"0")
        {
            return Err(bad);
        }
        let s = std::str::from_utf8(digits).map_err(|_| bad)?;
        let v = s.parse::<i64>().map_err(|_| bad)?;
        self.pos += end + 1;
        Ok(v)
    }

    /// `<len>:<bytes>`.
    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        let rest = &self.b[self.pos..];
        let colon = rest
            .iter()
            .take(8)
            .position(|&c| c == b':')
            .ok_or(if rest.len() < 8 {
                BencodeError::Truncated
            } else {
                BencodeError::BadLength { at }
            })?;
        let digits = &rest[..colon];
        if digits.is_empty()
            || !digits.iter().all(u8::is_ascii_digit)
            || (digits.len() > 1 && digits[0] == b'0')
        {
            return Err(BencodeError::BadLength { at });
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(BencodeError::BadLength { at })?;
        let start = self.pos + colon + 1;
        let end = start.checked_add(len).ok_or(BencodeError::Truncated)?;
        let out = self.b.get(start..end).ok_or(BencodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }
}

/// Appends a byte string.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Appends an integer.
pub fn put_int(out: &mut Vec<u8>, i: i64) {
    out.push(b'i');
    out.extend_from_slice(i.to_string().as_bytes());
    out.push(b'e');
}

/// Appends a dictionary key (callers emit keys in sorted order).
pub fn put_key(out: &mut Vec<u8>, k: &str) {
    put_bytes(out, k.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_values() {
        let v = parse(b"d1:ad2:id3:abce1:lli-3ei0ee1:y1:qe").unwrap();
        assert_eq!(
            v.get(b"a").and_then(|a| a.get(b"id")),
            Some(&Value::Bytes(b"abc"))
        );
        assert_eq!(
            v.get(b"l").and_then(Value::as_list).map(|l| l.len()),
            Some(2)
        );
        assert_eq!(v.get(b"y").and_then(Value::as_bytes), Some(&b"q"[..]));
    }

    #[test]
    fn unsorted_keys_are_accepted() {
        let v = parse(b"d1:y1:q1:t2:aae").unwrap();
        assert_eq!(v.get(b"t").and_then(Value::as_bytes), Some(&b"aa"[..]));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b""[..],
            b"i",
            b"i-0e",
            b"i01e",
            b"ie",
            b"i1",
            b"5:abc",
            b"01:a",
            b"d1:a",
            b"di1ei2ee",
            b"le1",
            b"x",
            b"99999999999:a",
            b"i99999999999999999999e",
            b"-1:a",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn depth_and_item_limits() {
        let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(parse(&deep), Err(BencodeError::TooDeep));
        let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
        assert!(parse(&ok).is_ok());
        let mut many = b"l".to_vec();
        many.extend(std::iter::repeat_n(&b"i1e"[..], MAX_ITEMS).flatten());
        many.push(b'e');
        assert_eq!(parse(&many), Err(BencodeError::TooManyItems));
    }

    #[test]
    fn writers_round_trip() {
        let mut out = Vec::new();
        out.push(b'd');
        put_key(&mut out, "a");
        put_int(&mut out, -42);
        put_key(&mut out, "b");
        put_bytes(&mut out, b"xyz");
        out.push(b'e');
        assert_eq!(out, b"d1:ai-42e1:b3:xyze");
        assert!(parse(&out).is_ok());
    }
}
