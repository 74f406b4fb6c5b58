//! Property tests for the peer wire codecs: decode(encode(x)) == x for every message, handshake,
//! extension handshake and bitfield, whatever the chunking of the bytes on the way; and the
//! decoders never panic on arbitrary input (with and without a known piece count).

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::bitfield::Bitfield;
use super::extension::ExtensionHandshake;
use super::handshake::Handshake;
use super::message::{encode, DecoderLimits, Message, MessageDecoder};

/// Up to `max - 1` bytes.
fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn message() -> impl Strategy<Value = Message> {
    let triple = (any::<u32>(), any::<u32>(), any::<u32>());
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        any::<u32>().prop_map(|index| Message::Have { index }),
        any::<u32>().prop_map(|index| Message::SuggestPiece { index }),
        any::<u32>().prop_map(|index| Message::AllowedFast { index }),
        any::<u16>().prop_map(Message::Port),
        bytes(64).prop_map(Message::Bitfield),
        triple.prop_map(|(index, begin, length)| Message::Request {
            index,
            begin,
            length
        }),
        triple.prop_map(|(index, begin, length)| Message::Cancel {
            index,
            begin,
            length
        }),
        triple.prop_map(|(index, begin, length)| Message::RejectRequest {
            index,
            begin,
            length
        }),
        (any::<u32>(), any::<u32>(), bytes(16_385))
            .prop_map(|(index, begin, data)| Message::Piece { index, begin, data }),
        (any::<u8>(), bytes(300)).prop_map(|(id, payload)| Message::Extended { id, payload }),
    ]
}

/// Feeds `wire` to a decoder in chunks of the given sizes (cycled) and collects what it
/// decodes, or the first error.
fn decode_chunked(
    wire: &[u8],
    chunks: &[usize],
    limits: DecoderLimits,
) -> Result<Vec<Message>, String> {
    let mut d = MessageDecoder::new(limits);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < wire.len() {
        let n = chunks[i % chunks.len()].clamp(1, wire.len() - at);
        i += 1;
        d.push(&wire[at..at + n]);
        at += n;
        while let Some(m) = d.next_message().map_err(|e| e.to_string())? {
            out.push(m);
        }
    }
    Ok(out)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn extension_handshake() -> impl Strategy<Value = ExtensionHandshake> {
    let extra_value = prop_oneof![
        any::<i64>().prop_map(|i| format!("i{i}e").into_bytes()),
        "[a-z0-9]{0,12}".prop_map(|s| format!("{}:{s}", s.len()).into_bytes()),
    ];
    (
        proptest::collection::btree_map("[a-z_]{1,12}", any::<u8>(), 0..6),
        proptest::option::of(".{0,20}"),
        proptest::option::of(1u16..),
        proptest::option::of(any::<u32>()),
        proptest::option::of(ip()),
        proptest::option::of(any::<[u8; 4]>()),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of(0..=i64::MAX as u64),
        // `yourip.scion` (ISD 16 bits, AS 48 bits).
        proptest::option::of(
            (1u64..=0xffff, 0u64..(1 << 48), ip(), any::<u16>()).prop_map(
                |(isd, asn, ip, port)| {
                    scion_addr::ScionAddr::new(
                        scion_addr::Ia::from_u64((isd << 48) | asn),
                        ip,
                        port,
                    )
                },
            ),
        ),
        // Other keys carry an `x_` prefix so they never collide with the known ones.
        proptest::collection::btree_map("x_[a-z]{1,8}", extra_value, 0..4),
    )
        .prop_map(
            |(m, v, p, reqq, yourip, v4, v6, metadata_size, yourip_scion, extra)| {
                ExtensionHandshake {
                    m,
                    v,
                    p,
                    reqq,
                    yourip,
                    yourip_scion,
                    ipv4: v4.map(Into::into),
                    ipv6: v6.map(Into::into),
                    metadata_size,
                    extra: extra
                        .into_iter()
                        .map(|(k, v)| (k.into_bytes(), v))
                        .collect(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn messages_round_trip_in_any_chunking(
        msgs in proptest::collection::vec(message(), 1..12),
        chunks in proptest::collection::vec(1usize..3000, 1..8),
    ) {
        let mut wire = BytesMut::new();
        for m in &msgs {
            encode(m, &mut wire);
        }
        let back = decode_chunked(&wire, &chunks, DecoderLimits::default());
        prop_assert_eq!(back, Ok(msgs));
    }

    #[test]
    fn the_decoder_never_panics_and_chunking_does_not_matter(
        wire in proptest::collection::vec(any::<u8>(), 0..2000),
        chunks in proptest::collection::vec(1usize..64, 1..8),
        pieces in proptest::option::of(0u32..5000),
    ) {
        let limits = DecoderLimits { num_pieces: pieces, ..Default::default() };
        let whole = decode_chunked(&wire, &[wire.len().max(1)], limits);
        let chunked = decode_chunked(&wire, &chunks, limits);
        // Byte by byte or in pieces: the same messages, or an error at the same message.
        prop_assert_eq!(whole.is_ok(), chunked.is_ok());
        if let (Ok(a), Ok(b)) = (&whole, &chunked) {
            prop_assert_eq!(a, b);
        }
        let mut d = MessageDecoder::new(limits);
        d.push(&wire);
        let _ = d.next_handshake();
    }

    #[test]
    fn handshakes_round_trip(reserved in any::<[u8; 8]>(), ih in any::<[u8; 20]>(), id in any::<[u8; 20]>()) {
        let h = Handshake { reserved, info_hash: ih, peer_id: id };
        prop_assert_eq!(Handshake::decode(&h.to_bytes()), Ok(Some(h)));
        prop_assert_eq!(Handshake::peek_info_hash(&h.to_bytes()), Ok(Some(ih)));
    }

    #[test]
    fn extension_handshakes_round_trip(h in extension_handshake()) {
        let wire = h.encode().unwrap();
        prop_assert_eq!(ExtensionHandshake::decode(&wire).unwrap(), h);
    }

    #[test]
    fn extension_decoding_never_panics(data in proptest::collection::vec(any::<u8>(), 0..500)) {
        let _ = ExtensionHandshake::decode(&data);
    }

    /// Mutations of valid handshakes reach deeper into the decoder than random bytes (moved
    /// here from bt-ext's duplicate codec).
    #[test]
    fn mutated_extension_handshakes_round_trip(
        h in extension_handshake(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut v = h.encode().unwrap().to_vec();
        for (i, x) in &edits {
            let len = v.len();
            v[i % len] = *x;
        }
        if let Ok(h) = ExtensionHandshake::decode(&v) {
            prop_assert_eq!(ExtensionHandshake::decode(&h.encode().unwrap()).map(|x| x.m), Ok(h.m));
        }
    }

    #[test]
    fn bitfields_round_trip(len in 0u32..5000, set in proptest::collection::vec(any::<u32>(), 0..64)) {
        let mut b = Bitfield::new(len);
        for i in set {
            if len > 0 {
                b.set(i % len);
            }
        }
        let back = Bitfield::from_bytes(b.as_bytes(), len).unwrap();
        prop_assert_eq!(back, b);
    }
}
