//! The writer. Dictionaries are collected and their keys sorted when written, so what comes
//! out is canonical bencode whatever order the caller added the keys in.

use std::io::Write;

use crate::value::Value;

/// Appends `<len>:<bytes>`.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "{}:", b.len());
    out.extend_from_slice(b);
}

/// Appends `i<n>e`.
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, "i{n}e");
}

/// A dictionary being written. A key added twice keeps its last value.
#[derive(Debug, Clone, Default)]
pub struct DictWriter {
    /// Key → the value's encoding.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl DictWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// An already bencoded value (exactly one value: a verbatim info dictionary, a value
    /// kept raw from a peer).
    pub fn raw(&mut self, key: impl AsRef<[u8]>, bencoded: impl Into<Vec<u8>>) -> &mut Self {
        self.entries.push((key.as_ref().to_vec(), bencoded.into()));
        self
    }

    pub fn bytes(&mut self, key: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> &mut Self {
        let v = v.as_ref();
        let mut enc = Vec::with_capacity(v.len() + 8);
        put_bytes(&mut enc, v);
        self.raw(key, enc)
    }

    pub fn int(&mut self, key: impl AsRef<[u8]>, v: i64) -> &mut Self {
        let mut enc = Vec::with_capacity(8);
        put_int(&mut enc, v);
        self.raw(key, enc)
    }

    pub fn dict(&mut self, key: impl AsRef<[u8]>, d: DictWriter) -> &mut Self {
        self.raw(key, d.finish())
    }

    pub fn list(&mut self, key: impl AsRef<[u8]>, l: ListWriter) -> &mut Self {
        self.raw(key, l.finish())
    }

    /// A decoded value, written canonically.
    pub fn value(&mut self, key: impl AsRef<[u8]>, v: &Value<'_>) -> &mut Self {
        self.raw(key, v.to_bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `d` … `e` with the keys sorted.
    pub fn write_to(mut self, out: &mut Vec<u8>) {
        // Stable: of a key added twice the later entry comes last and is the one kept.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(b'd');
        let n = self.entries.len();
        for i in 0..n {
            if i + 1 < n && self.entries[i].0 == self.entries[i + 1].0 {
                continue;
            }
            let (k, v) = &self.entries[i];
            put_bytes(out, k);
            out.extend_from_slice(v);
        }
        out.push(b'e');
    }

    /// The encoded dictionary.
    pub fn finish(self) -> Vec<u8> {
        let len = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum();
        let mut out = Vec::with_capacity(len);
        self.write_to(&mut out);
        out
    }
}

/// A list being written, in the order items are added.
#[derive(Debug, Clone)]
pub struct ListWriter {
    out: Vec<u8>,
}

impl Default for ListWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ListWriter {
    pub fn new() -> Self {
        Self { out: vec![b'l'] }
    }

    /// An already bencoded value.
    pub fn raw(&mut self, bencoded: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bencoded);
        self
    }

    pub fn bytes(&mut self, v: impl AsRef<[u8]>) -> &mut Self {
        put_bytes(&mut self.out, v.as_ref());
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        put_int(&mut self.out, v);
        self
    }

    pub fn dict(&mut self, d: DictWriter) -> &mut Self {
        d.write_to(&mut self.out);
        self
    }

    pub fn list(&mut self, l: ListWriter) -> &mut Self {
        self.raw(&l.finish())
    }

    /// The encoded list.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b'e');
        self.out
    }
}
