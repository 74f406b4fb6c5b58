//! How this crate reads bencode: bt-bencode's lenient rules (peers send keys in any order),
//! a depth limit, and a typed error for a payload that is not a dictionary.

use bt_bencode::{Decoder, Dict, Value};

/// Extension payloads: keys in any order (the first of a duplicate key counts), at most 16
/// levels deep (our messages need 2); an integer too large for its field is ignored like
/// any mistyped field.
pub(crate) const DECODER: Decoder = Decoder::LENIENT.with_max_depth(16).with_big_integers(true);

/// A payload that is not a bencoded dictionary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotADict {
    #[error(transparent)]
    Bencode(#[from] bt_bencode::Error),
    #[error("not a dictionary")]
    OtherValue,
}

/// The dictionary at the start of `payload` and the bytes after it.
pub(crate) fn split_dict(payload: &[u8]) -> Result<(Dict<'_>, &[u8]), NotADict> {
    match DECODER.decode_prefix(payload)? {
        (Value::Dict(d), used) => Ok((d, &payload[used..])),
        _ => Err(NotADict::OtherValue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        let (dict, rest) = split_dict(b"d1:a2:xy1:bi-3e1:cleetail").unwrap();
        assert_eq!(dict.raw(), b"d1:a2:xy1:bi-3e1:clee");
        assert_eq!(rest, b"tail");
        let keys: Vec<&[u8]> = dict.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
        // Peers' unsorted keys are read.
        let (dict, _) = split_dict(b"d1:bi1e1:ai2ee").unwrap();
        assert_eq!(dict.get(b"a"), Some(&Value::Int(2)));
        assert_eq!(split_dict(b"i1e").unwrap_err(), NotADict::OtherValue);
        assert!(split_dict(b"").is_err());
        assert!(split_dict(b"d1:a").is_err());
    }
}
