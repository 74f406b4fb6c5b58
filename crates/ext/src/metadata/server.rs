//! Serving our info dictionary to peers that ask for it: [`serve_piece`] is the one answer,
//! used by the client's session and by [`MetadataServer`] (the honest peer of the tests).

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
        Some(match &self.info {
            Some(info) => serve_piece(info, piece),
            None => MetadataMessage::Reject { piece },
        })
    }
}

/// The answer to a request for piece `piece` of `info` (the raw info dictionary, exactly as
/// hashed): the piece, or a reject if there is no such piece or the metadata is larger than
/// [`MAX_METADATA_SIZE`] (peers could not fetch it from us anyway).
pub fn serve_piece(info: &[u8], piece: u32) -> MetadataMessage {
    if info.len() > MAX_METADATA_SIZE || piece >= piece_count(info.len()) {
        return MetadataMessage::Reject { piece };
    }
    let start = piece as usize * METADATA_PIECE_LEN;
    MetadataMessage::Data {
        piece,
        total_size: info.len() as u64,
        data: info[start..start + piece_len(info.len(), piece)].to_vec(),
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
