//! ut_metadata messages: a bencoded dictionary `{msg_type, piece[, total_size]}`; a data
//! message is followed by the piece's raw bytes.

use bt_bencode::{DictWriter, Value};

use crate::bencode::{split_dict, NotADict};

use super::METADATA_PIECE_LEN;

/// A ut_metadata message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: send me piece `piece`.
    Request { piece: u32 },
    /// `msg_type` 1: piece `piece` of metadata of `total_size` bytes.
    Data {
        piece: u32,
        total_size: u64,
        data: Vec<u8>,
    },
    /// `msg_type` 2: I will not send piece `piece`.
    Reject { piece: u32 },
}

/// A ut_metadata payload we cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataMessageError {
    #[error("ut_metadata message is not a bencoded dictionary: {0}")]
    NotDict(#[from] NotADict),
    #[error("ut_metadata message lacks a valid '{0}'")]
    Missing(&'static str),
    #[error("unknown ut_metadata msg_type {0}")]
    UnknownType(i64),
    #[error("ut_metadata data of {0} bytes is larger than a piece")]
    OversizeData(usize),
    #[error("{0} bytes after a ut_metadata request/reject")]
    TrailingBytes(usize),
}

/// Decodes a ut_metadata payload (the bytes after the extended message id). Pure; the fuzz
/// target calls it.
pub fn decode_metadata_message(payload: &[u8]) -> Result<MetadataMessage, MetadataMessageError> {
    let (dict, rest) = split_dict(payload)?;
    let int = |key: &[u8]| dict.get(key).and_then(Value::as_int);
    let msg_type = int(b"msg_type").ok_or(MetadataMessageError::Missing("msg_type"))?;
    let piece = int(b"piece")
        .and_then(|i| u32::try_from(i).ok())
        .ok_or(MetadataMessageError::Missing("piece"))?;
    let total_size = int(b"total_size").and_then(|i| u64::try_from(i).ok());
    let no_trailer = || {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(MetadataMessageError::TrailingBytes(rest.len()))
        }
    };
    match msg_type {
        0 => no_trailer().map(|()| MetadataMessage::Request { piece }),
        1 => {
            let total_size = total_size.ok_or(MetadataMessageError::Missing("total_size"))?;
            if rest.len() > METADATA_PIECE_LEN {
                return Err(MetadataMessageError::OversizeData(rest.len()));
            }
            Ok(MetadataMessage::Data {
                piece,
                total_size,
                data: rest.to_vec(),
            })
        }
        2 => no_trailer().map(|()| MetadataMessage::Reject { piece }),
        t => Err(MetadataMessageError::UnknownType(t)),
    }
}

impl MetadataMessage {
    /// The payload to send after the peer's ut_metadata extended message id.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = DictWriter::new();
        match self {
            MetadataMessage::Request { piece } => {
                w.int("msg_type", 0).int("piece", i64::from(*piece));
                w.finish()
            }
            MetadataMessage::Reject { piece } => {
                w.int("msg_type", 2).int("piece", i64::from(*piece));
                w.finish()
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                w.int("msg_type", 1)
                    .int("piece", i64::from(*piece))
                    .int("total_size", i64::try_from(*total_size).unwrap_or(i64::MAX));
                let mut out = w.finish();
                out.extend_from_slice(data);
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep9_examples() {
        let req = MetadataMessage::Request { piece: 0 };
        assert_eq!(req.encode(), b"d8:msg_typei0e5:piecei0ee");
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 3425,
            data: b"xxxx".to_vec(),
        };
        assert_eq!(
            data.encode(),
            b"d8:msg_typei1e5:piecei0e10:total_sizei3425eexxxx"
        );
        let rej = MetadataMessage::Reject { piece: 7 };
        assert_eq!(rej.encode(), b"d8:msg_typei2e5:piecei7ee");
        for m in [req, data, rej] {
            assert_eq!(decode_metadata_message(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn data_may_look_like_bencode() {
        let m = MetadataMessage::Data {
            piece: 1,
            total_size: 20000,
            data: b"d4:name3:abce".to_vec(),
        };
        assert_eq!(decode_metadata_message(&m.encode()), Ok(m));
    }

    #[test]
    fn errors() {
        use MetadataMessageError as E;
        let cases: [(&[u8], E); 6] = [
            (b"d5:piecei0ee", E::Missing("msg_type")),
            (b"d8:msg_typei0ee", E::Missing("piece")),
            (b"d8:msg_typei0e5:piecei-1ee", E::Missing("piece")),
            (b"d8:msg_typei1e5:piecei0ee", E::Missing("total_size")),
            (b"d8:msg_typei9e5:piecei0ee", E::UnknownType(9)),
            (b"d8:msg_typei0e5:piecei0eeX", E::TrailingBytes(1)),
        ];
        for (bad, want) in cases {
            assert_eq!(decode_metadata_message(bad), Err(want));
        }
        assert!(matches!(decode_metadata_message(b"le"), Err(E::NotDict(_))));
        let mut big = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        big.extend(std::iter::repeat_n(0, METADATA_PIECE_LEN + 1));
        assert_eq!(
            decode_metadata_message(&big),
            Err(E::OversizeData(METADATA_PIECE_LEN + 1))
        );
    }
}
