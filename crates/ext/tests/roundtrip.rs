//! Property tests: every codec round-trips, and every decoder survives arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

// The extension handshake's round trips are the main crate's (src/wire/proptests.rs), where
// its one codec lives.
use bt_ext::{
    decode_metadata_message, decode_pex_message, parse_magnet, Magnet, MetadataMessage, PexFlags,
    PexMessage,
};
use proptest::prelude::*;
use scion_addr::{Ia, PeerAddr, ScionAddr};

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

fn ia() -> impl Strategy<Value = Ia> {
    // ISD 16 bits, AS 48 bits.
    (1u64..=0xffff, 0u64..(1 << 48)).prop_map(|(isd, asn)| Ia::from_u64((isd << 48) | asn))
}

/// Peers as they appear on the wire: any family, port ≥ 1.
fn peer() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        (ip(), 1u16..).prop_map(|(ip, port)| PeerAddr::Ip(SocketAddr::new(ip, port))),
        (ia(), ip(), 1u16..)
            .prop_map(|(ia, ip, port)| PeerAddr::Scion(ScionAddr::new(ia, ip, port))),
    ]
}

fn magnet() -> impl Strategy<Value = Magnet> {
    (
        any::<[u8; 20]>(),
        proptest::option::of(".{0,40}"),
        proptest::collection::btree_set("[a-z]{1,8}://[ -~]{1,30}", 0..4),
        proptest::collection::btree_set(peer(), 0..6),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(h, dn, tr, pe, xl)| Magnet {
            info_hash: h,
            display_name: dn,
            trackers: tr.into_iter().map(|t| t.trim().to_owned()).collect(),
            peers: pe.into_iter().collect(),
            exact_length: xl,
            skipped_peers: vec![],
            web_seeds: vec![],
        })
        .prop_filter("trimmed trackers stay unique and non-empty", |m| {
            let set: std::collections::BTreeSet<_> = m.trackers.iter().collect();
            set.len() == m.trackers.len() && m.trackers.iter().all(|t| !t.is_empty())
        })
}

fn metadata_message() -> impl Strategy<Value = MetadataMessage> {
    prop_oneof![
        any::<u32>().prop_map(|piece| MetadataMessage::Request { piece }),
        any::<u32>().prop_map(|piece| MetadataMessage::Reject { piece }),
        (
            any::<u32>(),
            0u64..=i64::MAX as u64,
            proptest::collection::vec(any::<u8>(), 0..=16384)
        )
            .prop_map(|(piece, total_size, data)| MetadataMessage::Data {
                piece,
                total_size,
                data
            }),
    ]
}

fn pex_message() -> impl Strategy<Value = PexMessage> {
    (
        proptest::collection::vec((peer(), any::<u8>().prop_map(PexFlags)), 0..60),
        proptest::collection::vec(peer(), 0..60),
    )
        .prop_map(|(added, dropped)| PexMessage { added, dropped })
}

proptest! {
    #[test]
    fn magnet_round_trips(m in magnet()) {
        prop_assert_eq!(parse_magnet(&m.to_string()), Ok(m));
    }

    #[test]
    fn magnet_parser_never_panics(s in ".{0,300}") {
        let _ = parse_magnet(&s);
        let _ = parse_magnet(&format!("magnet:?{s}"));
        let _ = parse_magnet(&format!("magnet:?xt=urn:btih:{s}"));
    }

    #[test]
    fn metadata_message_round_trips(m in metadata_message()) {
        prop_assert_eq!(decode_metadata_message(&m.encode()), Ok(m));
    }

    #[test]
    fn pex_round_trips(m in pex_message()) {
        prop_assert_eq!(decode_pex_message(&m.encode()), Ok(m.canonical()));
    }

    #[test]
    fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_metadata_message(&b);
        let _ = decode_pex_message(&b);
    }

    /// Mutations of valid messages reach deeper into the decoders than random bytes.
    #[test]
    fn mutated_messages_never_panic(
        m in pex_message(),
        md in metadata_message(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        for mut v in [m.encode(), md.encode()] {
            for (i, x) in &edits {
                let len = v.len();
                v[i % len] = *x;
            }
            let _ = decode_metadata_message(&v);
            if let Ok(p) = decode_pex_message(&v) {
                prop_assert_eq!(decode_pex_message(&p.encode()), Ok(p.canonical()));
            }
        }
    }
}
