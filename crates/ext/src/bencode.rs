//! The little bencode this crate needs: a writer for flat dictionaries whose keys we choose
//! (written in sorted order, so the output is canonical) and decoding helpers over `bendy`'s
//! strict, depth-limited decoder.

use bendy::decoding::{Decoder, Object};

/// Nesting limit for anything decoded here (our messages need 2).
pub(crate) const MAX_DEPTH: usize = 16;

/// Writes a bencoded dictionary; keys must be added in ascending byte order.
pub(crate) struct DictWriter {
    out: Vec<u8>,
    #[cfg(debug_assertions)]
    last_key: Option<Vec<u8>>,
}

impl DictWriter {
    pub(crate) fn new() -> Self {
        Self {
            out: vec![b'd'],
            #[cfg(debug_assertions)]
            last_key: None,
        }
    }

    fn key(&mut self, k: &[u8]) {
        #[cfg(debug_assertions)]
        {
            debug_assert!(
                self.last_key.as_deref().is_none_or(|last| last < k),
                "bencode keys out of order"
            );
            self.last_key = Some(k.to_vec());
        }
        write_bytes(&mut self.out, k);
    }

    pub(crate) fn int(&mut self, k: &[u8], v: i64) -> &mut Self {
        self.key(k);
        write_int(&mut self.out, v);
        self
    }

    pub(crate) fn bytes(&mut self, k: &[u8], v: &[u8]) -> &mut Self {
        self.key(k);
        write_bytes(&mut self.out, v);
        self
    }

    /// A value that is already bencoded (a nested dictionary or list).
    pub(crate) fn raw(&mut self, k: &[u8], bencoded: &[u8]) -> &mut Self {
        self.key(k);
        self.out.extend_from_slice(bencoded);
        self
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.push(b'e');
        self.out
    }
}

pub(crate) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

pub(crate) fn write_int(out: &mut Vec<u8>, v: i64) {
    out.push(b'i');
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'e');
}

/// An integer object's value, if it is an integer that fits an `i64`.
pub(crate) fn int_of(o: &Object<'_, '_>) -> Option<i64> {
    match o {
        Object::Integer(s) => s.parse().ok(),
        _ => None,
    }
}

/// A decoding failure, as text (bendy's errors are not `Clone`/`Eq`).
pub(crate) fn err_text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Decodes the bencoded dictionary at the start of `payload` and returns its raw bytes
/// (the caller walks them again) and the bytes after it.
pub(crate) fn split_dict(payload: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let mut dec = Decoder::new(payload).with_max_depth(MAX_DEPTH);
    let raw = match dec.next_object().map_err(err_text)? {
        Some(Object::Dict(d)) => d.into_raw().map_err(err_text)?,
        Some(_) => return Err("not a dictionary".into()),
        None => return Err("empty payload".into()),
    };
    Ok((raw, &payload[raw.len()..]))
}

/// Calls `f` with every (key, value) pair of the bencoded dictionary `raw`.
pub(crate) fn for_each_pair(
    raw: &[u8],
    mut f: impl FnMut(&[u8], Object<'_, '_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut dec = Decoder::new(raw).with_max_depth(MAX_DEPTH);
    let mut d = match dec.next_object().map_err(err_text)? {
        Some(Object::Dict(d)) => d,
        _ => return Err("not a dictionary".into()),
    };
    while let Some((k, v)) = d.next_pair().map_err(err_text)? {
        f(k, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_split() {
        let mut w = DictWriter::new();
        w.bytes(b"a", b"xy").int(b"b", -3).raw(b"c", b"le");
        let mut v = w.finish();
        assert_eq!(v, b"d1:a2:xy1:bi-3e1:clee");
        v.extend_from_slice(b"tail");
        let (dict, rest) = split_dict(&v).unwrap();
        assert_eq!(dict, b"d1:a2:xy1:bi-3e1:clee");
        assert_eq!(rest, b"tail");
        let mut keys = Vec::new();
        for_each_pair(dict, |k, _| {
            keys.push(k.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(keys, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(split_dict(b"i1e").is_err());
        assert!(split_dict(b"").is_err());
        assert!(split_dict(b"d1:a").is_err());
    }
}
