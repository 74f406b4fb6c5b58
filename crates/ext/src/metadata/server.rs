//! Serving our info dictionary to peers that ask for it.

use super::{piece_count, piece_len, MetadataMessage, MAX_METADATA_SIZE, METADATA_PIECE_LEN};

/// Answers ut_metadata requests from the raw info dictionary (or rejects them all while we
/// have no metadata ourselves).
#[derive(Debug, Clone, Default)]
pub struct MetadataServer {
    info: Option<Vec<u8>>,
}

impl MetadataServer {
    /// A server for `info` (the raw info dictionary, exactly as hashed). Metadata larger than
    /// [`MAX_METADATA_SIZE`] is not served (peers could not fetch it from us anyway).
    pub fn new(info: Option<Vec<u8>>) -> Self {
        Self {
            info: info.filter(|i| !i.is_empty() && i.len() <= MAX_METADATA_SIZE),
        }
    }

    /// `metadata_size` for our extension handshake (None while we have no metadata).
    pub fn metadata_size(&self) -> Option<u64> {
        self.info.as_ref().map(|i| i.len() as u64)
    }

    /// The answer to a peer's message: data or reject for a request, nothing otherwise.
    pub fn answer(&self, msg: &MetadataMessage) -> Option<MetadataMessage> {
        let MetadataMessage::Request { piece } = *msg else {
            return None;
        };
        let reject = MetadataMessage::Reject { piece };
        let Some(info) = &self.info else {
            return Some(reject);
        };
        if piece >= piece_count(info.len()) {
            return Some(reject);
        }
        let start = piece as usize * METADATA_PIECE_LEN;
        let data = info[start..start + piece_len(info.len(), piece)].to_vec();
        Some(MetadataMessage::Data {
            piece,
            total_size: info.len() as u64,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_rejects() {
        let info: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let s = MetadataServer::new(Some(info.clone()));
        assert_eq!(s.metadata_size(), Some(40_000));
        let mut joined = Vec::new();
        for piece in 0..3 {
            match s.answer(&MetadataMessage::Request { piece }) {
                Some(MetadataMessage::Data {
                    piece: p,
                    total_size: 40_000,
                    data,
                }) if p == piece => joined.extend(data),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(joined, info);
        for piece in [3, u32::MAX] {
            assert_eq!(
                s.answer(&MetadataMessage::Request { piece }),
                Some(MetadataMessage::Reject { piece })
            );
        }
        assert_eq!(s.answer(&MetadataMessage::Reject { piece: 0 }), None);
        let none = MetadataServer::new(None);
        assert_eq!(none.metadata_size(), None);
        assert_eq!(
            none.answer(&MetadataMessage::Request { piece: 0 }),
            Some(MetadataMessage::Reject { piece: 0 })
        );
        assert_eq!(MetadataServer::new(Some(Vec::new())).metadata_size(), None);
    }
}
