//! Length-prefixed peer messages: encoding and a streaming decoder.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::bitfield::{byte_len, Bitfield};
use super::handshake::{Handshake, HANDSHAKE_LEN};
use super::WireError;

/// Default cap on `Piece` block data (16 KiB, what we request).
pub const DEFAULT_MAX_BLOCK_LEN: u32 = 16 * 1024;
/// Default cap on any other variable-length message (bitfield before the
/// piece count is known, extended messages, unknown ids), id byte included.
pub const DEFAULT_MAX_MESSAGE_LEN: u32 = 256 * 1024;
/// Length prefix + id + index + begin of a `Piece` message.
pub const PIECE_HEADER_LEN: usize = 13;

/// Message ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageId {
    /// BEP 3.
    Choke = 0,
    /// BEP 3.
    Unchoke = 1,
    /// BEP 3.
    Interested = 2,
    /// BEP 3.
    NotInterested = 3,
    /// BEP 3.
    Have = 4,
    /// BEP 3.
    Bitfield = 5,
    /// BEP 3.
    Request = 6,
    /// BEP 3.
    Piece = 7,
    /// BEP 3.
    Cancel = 8,
    /// BEP 5 DHT port.
    Port = 9,
    /// BEP 6.
    SuggestPiece = 13,
    /// BEP 6.
    HaveAll = 14,
    /// BEP 6.
    HaveNone = 15,
    /// BEP 6.
    RejectRequest = 16,
    /// BEP 6.
    AllowedFast = 17,
    /// BEP 10.
    Extended = 20,
}

/// A peer wire message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Zero-length message.
    KeepAlive,
    /// Peer stops serving us.
    Choke,
    /// Peer serves us.
    Unchoke,
    /// Peer wants our pieces.
    Interested,
    /// Peer does not want our pieces.
    NotInterested,
    /// Peer completed a piece.
    Have {
        /// Piece index.
        index: u32,
    },
    /// Raw wire bitfield; validate with [`Bitfield::from_bytes`] (the decoder
    /// already did if it knows the piece count).
    Bitfield(Bytes),
    /// Block request.
    Request {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// Block data.
    Piece {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Block bytes (split off the receive buffer without copying).
        data: Bytes,
    },
    /// Cancels a request.
    Cancel {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// DHT port (BEP 5).
    Port(u16),
    /// BEP 6: peer suggests a piece.
    SuggestPiece {
        /// Piece index.
        index: u32,
    },
    /// BEP 6: peer has every piece (instead of a bitfield).
    HaveAll,
    /// BEP 6: peer has no piece (instead of a bitfield).
    HaveNone,
    /// BEP 6: peer will not serve this request.
    RejectRequest {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// BEP 6: piece we may request while choked.
    AllowedFast {
        /// Piece index.
        index: u32,
    },
    /// BEP 10 extended message; id 0 is the extension handshake.
    Extended {
        /// Extended message id.
        id: u8,
        /// Bencoded (or extension-defined) payload.
        payload: Bytes,
    },
}

impl Message {
    /// The message id, `None` for keep-alive.
    pub fn id(&self) -> Option<MessageId> {
        use MessageId as I;
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => I::Choke,
            Message::Unchoke => I::Unchoke,
            Message::Interested => I::Interested,
            Message::NotInterested => I::NotInterested,
            Message::Have { .. } => I::Have,
            Message::Bitfield(_) => I::Bitfield,
            Message::Request { .. } => I::Request,
            Message::Piece { .. } => I::Piece,
            Message::Cancel { .. } => I::Cancel,
            Message::Port(_) => I::Port,
            Message::SuggestPiece { .. } => I::SuggestPiece,
            Message::HaveAll => I::HaveAll,
            Message::HaveNone => I::HaveNone,
            Message::RejectRequest { .. } => I::RejectRequest,
            Message::AllowedFast { .. } => I::AllowedFast,
            Message::Extended { .. } => I::Extended,
        })
    }

    /// Value of the 4-byte length prefix (id and payload, not the prefix).
    pub fn payload_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Have { .. } | Message::SuggestPiece { .. } | Message::AllowedFast { .. } => 5,
            Message::Request { .. } | Message::Cancel { .. } | Message::RejectRequest { .. } => 13,
            Message::Port(_) => 3,
            Message::Bitfield(b) => 1 + b.len(),
            Message::Piece { data, .. } => 9 + data.len(),
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }

    /// Total bytes on the wire, length prefix included.
    pub fn wire_len(&self) -> usize {
        4 + self.payload_len()
    }

    /// A `Bitfield` message from a [`Bitfield`].
    pub fn bitfield(b: &Bitfield) -> Message {
        Message::Bitfield(b.to_bytes())
    }
}

/// Appends `msg` to `buf` (copies `Piece` data; see [`encode_zero_copy`]).
/// One message as its own buffer (control messages; piece data goes by [`encode_zero_copy`]).
pub fn encode_bytes(msg: &Message) -> Bytes {
    let mut buf = BytesMut::with_capacity(msg.wire_len());
    encode(msg, &mut buf);
    buf.freeze()
}

pub fn encode(msg: &Message, buf: &mut BytesMut) {
    if let Some(data) = encode_zero_copy(msg, buf) {
        buf.put_slice(&data);
    }
}

/// Appends `msg` to `buf`, except a `Piece`'s data: for `Piece` only the
/// 13-byte header is written and the data is returned (a refcount bump, no
/// copy) to be sent right after the header, e.g. a slice of the storage mmap.
pub fn encode_zero_copy(msg: &Message, buf: &mut BytesMut) -> Option<Bytes> {
    buf.reserve(match msg {
        Message::Piece { .. } => PIECE_HEADER_LEN,
        m => m.wire_len(),
    });
    let len = msg.payload_len() as u32;
    if let Message::Piece { index, begin, data } = msg {
        encode_piece_header(*index, *begin, data.len() as u32, buf);
        return Some(data.clone());
    }
    buf.put_u32(len);
    if let Some(id) = msg.id() {
        buf.put_u8(id as u8);
    }
    match msg {
        Message::Have { index }
        | Message::SuggestPiece { index }
        | Message::AllowedFast { index } => buf.put_u32(*index),
        Message::Request {
            index,
            begin,
            length,
        }
        | Message::Cancel {
            index,
            begin,
            length,
        }
        | Message::RejectRequest {
            index,
            begin,
            length,
        } => {
            buf.put_u32(*index);
            buf.put_u32(*begin);
            buf.put_u32(*length);
        }
        Message::Port(p) => buf.put_u16(*p),
        Message::Bitfield(b) => buf.put_slice(b),
        Message::Extended { id, payload } => {
            buf.put_u8(*id);
            buf.put_slice(payload);
        }
        _ => {}
    }
    None
}

/// Writes the 13-byte header of a `Piece` message carrying `data_len` bytes;
/// the caller sends the block bytes right after it.
pub fn encode_piece_header(index: u32, begin: u32, data_len: u32, buf: &mut BytesMut) {
    buf.reserve(PIECE_HEADER_LEN);
    buf.put_u32(9u32.saturating_add(data_len));
    buf.put_u8(MessageId::Piece as u8);
    buf.put_u32(index);
    buf.put_u32(begin);
}

/// What the decoder accepts. Set `num_pieces` as soon as the torrent's piece
/// count is known, so bitfields are checked exactly (size and spare bits)
/// and piece indexes are range-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest `Piece` block accepted (data bytes, header excluded).
    pub max_block_len: u32,
    /// Largest length prefix of any other variable-length message.
    pub max_message_len: u32,
    /// Piece count of the torrent, if known.
    pub num_pieces: Option<u32>,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_block_len: DEFAULT_MAX_BLOCK_LEN,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            num_pieces: None,
        }
    }
}

impl DecoderLimits {
    /// Defaults for a torrent with `num_pieces` pieces.
    pub fn for_torrent(num_pieces: u32) -> Self {
        DecoderLimits {
            num_pieces: Some(num_pieces),
            ..Default::default()
        }
    }
}

/// Streaming decoder: push received bytes in, pull messages out.
///
/// Fatal errors (see [`WireError::is_fatal`]) are sticky: every later call
/// returns the same error.
#[derive(Debug, Default)]
pub struct MessageDecoder {
    buf: BytesMut,
    limits: DecoderLimits,
    failed: Option<WireError>,
}

impl MessageDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: DecoderLimits) -> Self {
        MessageDecoder {
            buf: BytesMut::with_capacity(64 * 1024),
            limits,
            failed: None,
        }
    }

    /// Current limits.
    pub fn limits(&self) -> &DecoderLimits {
        &self.limits
    }

    /// Replaces the limits (e.g. once the piece count is known).
    pub fn set_limits(&mut self, limits: DecoderLimits) {
        self.limits = limits;
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The receive buffer, to read into directly (append at the end).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes still missing to complete the message at the head of the buffer
    /// (0 when a complete message is buffered or nothing is known yet beyond
    /// the 4-byte length prefix). Lets the driver size its next read.
    pub fn missing(&self) -> usize {
        if self.buf.len() < 4 {
            return 4 - self.buf.len();
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        (4 + len as usize).saturating_sub(self.buf.len())
    }

    /// Decodes and consumes the 68-byte handshake at the head of the stream.
    /// `Ok(None)` until all of it has arrived.
    pub fn next_handshake(&mut self) -> Result<Option<Handshake>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match Handshake::decode(&self.buf) {
            Ok(Some(h)) => {
                self.buf.advance(HANDSHAKE_LEN);
                Ok(Some(h))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, e: WireError) -> WireError {
        if e.is_fatal() {
            self.failed = Some(e.clone());
        }
        e
    }

    /// Decodes the next complete message; `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.decode() {
            Ok(m) => Ok(m),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn check_index(&self, index: u32) -> Result<(), WireError> {
        match self.limits.num_pieces {
            Some(n) if index >= n => Err(WireError::PieceIndex {
                index,
                num_pieces: n,
            }),
            _ => Ok(()),
        }
    }

    fn decode(&mut self) -> Result<Option<Message>, WireError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if len == 0 {
            self.buf.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let id = self.buf[4];
        let bad_len = Err(WireError::BadLength { id, len });
        let lim = &self.limits;
        // Validate the length prefix before waiting for (and buffering) the body.
        match id {
            0..=3 | 14 | 15 => {
                if len != 1 {
                    return bad_len;
                }
            }
            4 | 13 | 17 => {
                if len != 5 {
                    return bad_len;
                }
            }
            6 | 8 | 16 => {
                if len != 13 {
                    return bad_len;
                }
            }
            9 => {
                if len != 3 {
                    return bad_len;
                }
            }
            7 => {
                if len < 9 {
                    return bad_len;
                }
                let max = lim.max_block_len.saturating_add(9);
                if len > max {
                    return Err(WireError::TooLong { len, max });
                }
            }
            5 => match lim.num_pieces {
                Some(n) => {
                    let expected = byte_len(n);
                    if len as usize - 1 != expected {
                        return Err(WireError::BitfieldLength {
                            got: len as usize - 1,
                            expected,
                        });
                    }
                }
                None => {
                    if len > lim.max_message_len {
                        return Err(WireError::TooLong {
                            len,
                            max: lim.max_message_len,
                        });
                    }
                }
            },
            20 => {
                if len < 2 {
                    return bad_len;
                }
                if len > lim.max_message_len {
                    return Err(WireError::TooLong {
                        len,
                        max: lim.max_message_len,
                    });
                }
            }
            _ => {
                if len > lim.max_message_len {
                    return Err(WireError::TooLong {
                        len,
                        max: lim.max_message_len,
                    });
                }
            }
        }
        let total = 4 + len as usize;
        if self.buf.len() < total {
            // Make room for the whole message once, so a 16 KiB block lands
            // in one contiguous region.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(5);
        let body = len as usize - 1;
        let msg = match id {
            0 => Message::Choke,
            1 => Message::Unchoke,
            2 => Message::Interested,
            3 => Message::NotInterested,
            14 => Message::HaveAll,
            15 => Message::HaveNone,
            4 | 13 | 17 => {
                let index = self.buf.get_u32();
                self.check_index(index)?;
                match id {
                    4 => Message::Have { index },
                    13 => Message::SuggestPiece { index },
                    _ => Message::AllowedFast { index },
                }
            }
            6 | 8 | 16 => {
                let index = self.buf.get_u32();
                let begin = self.buf.get_u32();
                let length = self.buf.get_u32();
                self.check_index(index)?;
                match id {
                    6 => Message::Request {
                        index,
                        begin,
                        length,
                    },
                    8 => Message::Cancel {
                        index,
                        begin,
                        length,
                    },
                    _ => Message::RejectRequest {
                        index,
                        begin,
                        length,
                    },
                }
            }
            9 => Message::Port(self.buf.get_u16()),
            7 => {
                let index = self.buf.get_u32();
                let begin = self.buf.get_u32();
                let data = self.buf.split_to(body - 8).freeze();
                self.check_index(index)?;
                Message::Piece { index, begin, data }
            }
            5 => {
                let bits = self.buf.split_to(body).freeze();
                if let Some(n) = self.limits.num_pieces {
                    // Length already checked; this checks the spare bits.
                    Bitfield::from_bytes(&bits, n)?;
                }
                Message::Bitfield(bits)
            }
            20 => {
                let ext = self.buf.get_u8();
                Message::Extended {
                    id: ext,
                    payload: self.buf.split_to(body - 1).freeze(),
                }
            }
            _ => {
                self.buf.advance(body);
                return Err(WireError::UnknownMessage { id, len });
            }
        };
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_messages() -> Vec<Message> {
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have { index: 7 },
            Message::Bitfield(Bytes::from_static(&[0xff, 0xc0])),
            Message::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            Message::Piece {
                index: 2,
                begin: 0,
                data: Bytes::from(vec![9u8; 16384]),
            },
            Message::Cancel {
                index: 1,
                begin: 0,
                length: 16384,
            },
            Message::Port(6881),
            Message::SuggestPiece { index: 3 },
            Message::HaveAll,
            Message::HaveNone,
            Message::RejectRequest {
                index: 4,
                begin: 32768,
                length: 100,
            },
            Message::AllowedFast { index: 9 },
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"d1:md11:ut_metadatai3eee"),
            },
            Message::Extended {
                id: 3,
                payload: Bytes::new(),
            },
        ]
    }

    #[test]
    fn roundtrip_all() {
        let mut buf = BytesMut::new();
        for m in all_messages() {
            let before = buf.len();
            encode(&m, &mut buf);
            assert_eq!(buf.len() - before, m.wire_len(), "{m:?}");
        }
        let mut d = MessageDecoder::new(DecoderLimits::for_torrent(10));
        d.push(&buf);
        for m in all_messages() {
            assert_eq!(d.next_message().unwrap(), Some(m));
        }
        assert_eq!(d.next_message().unwrap(), None);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn known_encodings() {
        let mut b = BytesMut::new();
        encode(&Message::Have { index: 0x01020304 }, &mut b);
        assert_eq!(&b[..], &[0, 0, 0, 5, 4, 1, 2, 3, 4]);
        b.clear();
        encode(&Message::HaveAll, &mut b);
        assert_eq!(&b[..], &[0, 0, 0, 1, 14]);
        b.clear();
        encode(&Message::Port(0x1ae1), &mut b);
        assert_eq!(&b[..], &[0, 0, 0, 3, 9, 0x1a, 0xe1]);
        b.clear();
        encode(&Message::KeepAlive, &mut b);
        assert_eq!(&b[..], &[0, 0, 0, 0]);
    }

    #[test]
    fn byte_by_byte_and_handshake_prefix() {
        let mut wire = BytesMut::new();
        Handshake::new([5; 20], [6; 20]).encode(&mut wire);
        for m in all_messages() {
            encode(&m, &mut wire);
        }
        let mut d = MessageDecoder::default();
        let mut hs = None;
        let mut got = Vec::new();
        for &byte in wire.iter() {
            d.push(&[byte]);
            if hs.is_none() {
                hs = d.next_handshake().unwrap();
                continue;
            }
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(hs.unwrap().info_hash, [5; 20]);
        assert_eq!(got, all_messages());
    }

    #[test]
    fn piece_is_zero_copy() {
        let mut wire = BytesMut::new();
        let data = Bytes::from(vec![7u8; 16384]);
        let m = Message::Piece {
            index: 1,
            begin: 0,
            data: data.clone(),
        };
        // Zero-copy encode: header only, data handed back as the same buffer.
        let out = encode_zero_copy(&m, &mut wire).unwrap();
        assert_eq!(wire.len(), PIECE_HEADER_LEN);
        assert_eq!(out.as_ptr(), data.as_ptr());
        assert_eq!(&wire[..], &[0, 0, 64, 9, 7, 0, 0, 0, 1, 0, 0, 0, 0]);
        let mut hdr = BytesMut::new();
        encode_piece_header(1, 0, 16384, &mut hdr);
        assert_eq!(hdr, wire);

        // Decode: the block points into the decoder's buffer.
        let mut d = MessageDecoder::default();
        d.push(&wire);
        d.push(&out);
        let base = d.buffer_mut().as_ptr() as usize;
        let range = base..base + d.buffered();
        match d.next_message().unwrap() {
            Some(Message::Piece { data: got, .. }) => {
                assert!(range.contains(&(got.as_ptr() as usize)));
                assert_eq!(got, data);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn length_errors() {
        let cases: Vec<(&[u8], WireError)> = vec![
            (&[0, 0, 0, 2, 0, 0], WireError::BadLength { id: 0, len: 2 }),
            (
                &[0, 0, 0, 4, 4, 0, 0, 0],
                WireError::BadLength { id: 4, len: 4 },
            ),
            (&[0, 0, 0, 12, 6], WireError::BadLength { id: 6, len: 12 }),
            (&[0, 0, 0, 8, 7], WireError::BadLength { id: 7, len: 8 }),
            (&[0, 0, 0, 2, 9], WireError::BadLength { id: 9, len: 2 }),
            (&[0, 0, 0, 1, 20], WireError::BadLength { id: 20, len: 1 }),
            (&[0, 0, 0, 2, 15], WireError::BadLength { id: 15, len: 2 }),
            (
                &[0, 0, 0x40, 0x0a, 7],
                WireError::TooLong {
                    len: 16394,
                    max: 16393,
                },
            ),
            (
                &[0xff, 0xff, 0xff, 0xff, 20],
                WireError::TooLong {
                    len: u32::MAX,
                    max: DEFAULT_MAX_MESSAGE_LEN,
                },
            ),
            (
                &[0, 0, 0, 4, 5],
                WireError::BitfieldLength {
                    got: 3,
                    expected: 2,
                },
            ),
            (&[0, 0, 0, 3, 5, 0xff, 0xe0], WireError::BitfieldSpareBits),
        ];
        for (bytes, e) in cases {
            let mut d = MessageDecoder::new(DecoderLimits::for_torrent(10));
            d.push(bytes);
            assert_eq!(d.next_message(), Err(e.clone()), "{bytes:?}");
            assert!(e.is_fatal());
            // Sticky.
            assert_eq!(d.next_message(), Err(e));
        }
        // Exactly at the block limit is fine.
        let mut d = MessageDecoder::default();
        let mut w = BytesMut::new();
        encode_piece_header(0, 0, DEFAULT_MAX_BLOCK_LEN, &mut w);
        w.put_bytes(1, DEFAULT_MAX_BLOCK_LEN as usize);
        d.push(&w);
        assert!(matches!(d.next_message(), Ok(Some(Message::Piece { .. }))));
        // Larger blocks when the caller raises the limit.
        let mut d = MessageDecoder::new(DecoderLimits {
            max_block_len: 128 * 1024,
            ..Default::default()
        });
        let m = Message::Piece {
            index: 0,
            begin: 0,
            data: Bytes::from(vec![0; 128 * 1024]),
        };
        let mut w = BytesMut::new();
        encode(&m, &mut w);
        d.push(&w);
        assert_eq!(d.next_message().unwrap(), Some(m));
    }

    #[test]
    fn non_fatal_errors_keep_stream_in_sync() {
        let mut d = MessageDecoder::new(DecoderLimits::for_torrent(4));
        let mut w = BytesMut::new();
        w.put_slice(&[0, 0, 0, 3, 99, 1, 2]); // unknown id 99
        encode(&Message::Have { index: 4 }, &mut w); // out of range
        encode(
            &Message::Piece {
                index: 9,
                begin: 0,
                data: Bytes::from_static(b"abc"),
            },
            &mut w,
        );
        encode(&Message::Unchoke, &mut w);
        d.push(&w);
        let e = d.next_message().unwrap_err();
        assert_eq!(e, WireError::UnknownMessage { id: 99, len: 3 });
        assert!(!e.is_fatal());
        assert_eq!(
            d.next_message(),
            Err(WireError::PieceIndex {
                index: 4,
                num_pieces: 4
            })
        );
        assert!(matches!(
            d.next_message(),
            Err(WireError::PieceIndex { index: 9, .. })
        ));
        assert_eq!(d.next_message().unwrap(), Some(Message::Unchoke));
        assert_eq!(d.next_message().unwrap(), None);
    }

    #[test]
    fn unknown_piece_count_accepts_any_bitfield() {
        let mut d = MessageDecoder::default();
        let mut w = BytesMut::new();
        encode(&Message::Bitfield(Bytes::from_static(&[0xff; 3])), &mut w);
        d.push(&w);
        assert!(matches!(d.next_message(), Ok(Some(Message::Bitfield(b))) if b.len() == 3));
        assert_eq!(d.missing(), 4);
    }

    #[test]
    fn missing_hint() {
        let mut d = MessageDecoder::default();
        d.push(&[0, 0]);
        assert_eq!(d.missing(), 2);
        d.push(&[0x40, 0x09, 7]);
        assert_eq!(d.missing(), 16393 + 4 - 5);
    }

    #[test]
    fn random_streams_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut valid = BytesMut::new();
        for m in all_messages() {
            encode(&m, &mut valid);
        }
        for round in 0..3000 {
            let limits = if round % 2 == 0 {
                DecoderLimits::for_torrent((next() % 40) as u32)
            } else {
                DecoderLimits::default()
            };
            let mut d = MessageDecoder::new(limits);
            if round % 3 == 0 {
                let _ = d.next_handshake();
            }
            let stream: Vec<u8> = if round % 2 == 0 {
                // Mutated valid stream.
                let mut v = valid.to_vec();
                for _ in 0..(next() % 8 + 1) {
                    let i = (next() as usize) % v.len();
                    v[i] = next() as u8;
                }
                v
            } else {
                // Random bytes with small lengths so messages complete.
                (0..(next() % 512))
                    .map(|i| if i % 5 < 3 { 0 } else { next() as u8 % 24 })
                    .collect()
            };
            let mut pos = 0;
            while pos < stream.len() {
                let n = ((next() % 64) as usize + 1).min(stream.len() - pos);
                d.push(&stream[pos..pos + n]);
                pos += n;
                loop {
                    match d.next_message() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) if e.is_fatal() => break,
                        Err(_) => {}
                    }
                }
            }
        }
    }
}
