//! A decoded value borrowing its strings (and the raw bytes of its lists and dictionaries)
//! from the input.

use crate::write::{put_bytes, put_int};

/// A bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    /// An integer that does not fit an `i64` (its digits, sign included); only read when the
    /// decoder allows it ([`crate::Decoder::with_big_integers`]).
    BigInt(&'a [u8]),
    Bytes(&'a [u8]),
    List(List<'a>),
    Dict(Dict<'a>),
}

/// A list and the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<'a> {
    pub(crate) items: Vec<Value<'a>>,
    pub(crate) raw: &'a [u8],
}

/// A dictionary and the bytes it was read from. Keys are unique: strict reading refuses
/// duplicates, lenient reading keeps the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dict<'a> {
    /// In input order (sorted when read strictly).
    pub(crate) entries: Vec<(&'a [u8], Value<'a>)>,
    pub(crate) raw: &'a [u8],
}

impl<'a> Value<'a> {
    /// The value under `key` if this is a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.as_dict().and_then(|d| d.get(key))
    }

    /// The integer, if this is one that fits an `i64`.
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
            Value::List(l) => Some(&l.items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Appends the canonical encoding (dictionary keys sorted). For strictly read input that
    /// is exactly the bytes read.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => put_int(out, *i),
            Value::BigInt(digits) => {
                out.push(b'i');
                out.extend_from_slice(digits);
                out.push(b'e');
            }
            Value::Bytes(b) => put_bytes(out, b),
            Value::List(l) => {
                out.push(b'l');
                l.items.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(d) => {
                let mut entries: Vec<&(&[u8], Value<'_>)> = d.entries.iter().collect();
                entries.sort_by_key(|(k, _)| *k);
                out.push(b'd');
                for (k, v) in entries {
                    put_bytes(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// [`Value::encode`] into a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A list reads as the slice of its items.
impl<'a> std::ops::Deref for List<'a> {
    type Target = [Value<'a>];

    fn deref(&self) -> &[Value<'a>] {
        &self.items
    }
}

impl<'a> List<'a> {
    pub fn items(&self) -> &[Value<'a>] {
        &self.items
    }

    /// The list's bytes exactly as they appear in the input, `l` … `e`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a> Dict<'a> {
    /// The value under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries, in input order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &Value<'a>)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The dictionary's bytes exactly as they appear in the input, `d` … `e` (what an info
    /// hash is taken over).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
}

impl<'a, 'b> IntoIterator for &'b List<'a> {
    type Item = &'b Value<'a>;
    type IntoIter = std::slice::Iter<'b, Value<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
