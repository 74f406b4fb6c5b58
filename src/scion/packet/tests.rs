use std::net::IpAddr;

use sciparse::{
    address::{addr::ScionAddr as SpScionAddr, socket_addr::ScionSocketAddr},
    core::{convert::TryFromView, encode::WireEncode, view::View},
    dataplane_path::{model::DpPath, standard::view::StandardPathView, view::ScionDpPathViewRef},
    packet::model::{ScionScmpPacket, ScionUdpPacket},
    payload::scmp::model::{
        ScmpDestinationUnreachable, ScmpEchoReply, ScmpExternalInterfaceDown,
        ScmpInternalConnectivityDown, ScmpMessage as SpScmp, ScmpPacketTooBig,
        ScmpParameterProblem,
    },
};

use super::*;
use crate::scion::addr::parse_ia;

/// Tiny deterministic PRNG (xorshift64*), so the "fuzz" loops are reproducible.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Builds a raw SCION path. Each segment: (construction direction, [(ingress, egress)] in the
/// direction of travel).
pub(crate) fn make_path(segs: &[(bool, &[(u16, u16)])], curr_inf: u8, curr_hf: u8) -> Vec<u8> {
    let lens: Vec<u32> = segs.iter().map(|(_, h)| h.len() as u32).collect();
    let get = |i: usize| lens.get(i).copied().unwrap_or(0);
    let meta = (u32::from(curr_inf) << 30)
        | (u32::from(curr_hf) << 24)
        | (get(0) << 12)
        | (get(1) << 6)
        | get(2);
    let mut out = meta.to_be_bytes().to_vec();
    for (n, (cons_dir, _)) in segs.iter().enumerate() {
        out.push(u8::from(*cons_dir)); // flags: C
        out.push(0);
        out.extend_from_slice(&(0x1000u16 + n as u16).to_be_bytes()); // seg id
        out.extend_from_slice(&1_900_000_000u32.to_be_bytes()); // timestamp
    }
    for (cons_dir, hops) in segs {
        for (n, (ing, eg)) in hops.iter().enumerate() {
            let (cons_ing, cons_eg) = if *cons_dir { (ing, eg) } else { (eg, ing) };
            out.push(0); // flags
            out.push(63); // exp time
            out.extend_from_slice(&cons_ing.to_be_bytes());
            out.extend_from_slice(&cons_eg.to_be_bytes());
            out.extend_from_slice(&[0xa0, 0xa1, 0xa2, 0xa3, 0xa4, n as u8]); // mac
        }
    }
    out
}

/// Up-segment (reversed) + down-segment, like 111 -> 120 (core) -> 112.
pub(crate) fn two_segment_path() -> Vec<u8> {
    make_path(
        &[(false, &[(0, 2), (1, 0)]), (true, &[(0, 3), (1, 0)])],
        0,
        0,
    )
}

fn addr(s: &str) -> ScionAddr {
    s.parse().unwrap()
}

fn src4() -> ScionAddr {
    addr("1-ff00:0:111,[127.0.0.1]:40000")
}

fn dst4() -> ScionAddr {
    addr("1-ff00:0:112,[127.0.0.2]:43000")
}

fn to_sp(a: &ScionAddr) -> ScionSocketAddr {
    ScionSocketAddr::new(a.ia, a.host.into(), a.port)
}

fn sp_host(ia: &str, host: &str) -> SpScionAddr {
    SpScionAddr::new(
        parse_ia(ia).unwrap(),
        host.parse::<IpAddr>().unwrap().into(),
    )
}

fn dp_path(raw: &[u8]) -> DpPath {
    if raw.is_empty() {
        return DpPath::Empty;
    }
    let (v, _) = StandardPathView::try_from_slice(raw).unwrap();
    DpPath::from_view(&ScionDpPathViewRef::Standard(v))
}

fn reference_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u32::from(w);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn checksum_sum_matches_reference() {
    let mut rng = Rng::new(7);
    for len in (0..80).chain([1199, 1200, 1201, 1400, 9000]) {
        let data = rng.bytes(len);
        for off in 0..2 {
            let d = &data[off.min(data.len())..];
            assert_eq!(
                fold(sum_be_words(d)),
                reference_checksum(d),
                "len {len} off {off}"
            );
        }
    }
    let ones = vec![0xffu8; 70_000];
    assert_eq!(fold(sum_be_words(&ones)), 0xffff);
}

#[test]
fn udp_round_trip_all_address_and_path_kinds() {
    let paths = [
        Vec::new(),
        two_segment_path(),
        make_path(&[(true, &[(0, 5), (7, 0)])], 0, 0),
    ];
    let v6a = addr("1-ff00:0:111,[fd00::1]:1");
    let v6b = addr("2-64512,[::1]:65535");
    let pairs = [(src4(), dst4()), (v6a, dst4()), (src4(), v6b), (v6a, v6b)];
    for path in &paths {
        for (src, dst) in &pairs {
            for payload in [&b""[..], b"x", b"hello scion", &[0xab; 1400][..]] {
                let mut out = vec![0xee; 3]; // encode appends
                encode_udp(src, dst, path, payload, &mut out).unwrap();
                let pkt = &out[3..];
                match decode_checked(pkt).unwrap() {
                    Decoded::Udp {
                        src: s,
                        dst: d,
                        path: p,
                        payload: pl,
                    } => {
                        assert_eq!((&s, &d), (src, dst));
                        assert_eq!(p, &path[..]);
                        assert_eq!(pl, payload);
                    }
                    other => panic!("unexpected {other:?}"),
                }

                // sciparse decodes it the same and re-encodes it byte for byte (incl. checksum).
                let (sp, rest) = ScionUdpPacket::try_from_slice(pkt).unwrap();
                assert!(rest.is_empty());
                assert_eq!(sp.src_socket_addr().unwrap(), to_sp(src));
                assert_eq!(sp.dst_socket_addr().unwrap(), to_sp(dst));
                assert_eq!(sp.header.common.flow_id, FLOW_ID);
                // Byte for byte except the checksum: sciparse 0.8.6 sums only the
                // pseudo-header, not the UDP header and payload (see
                // `checksum_matches_rfc_reference`).
                let re = sp.try_encode_to_vec().unwrap();
                let hl = usize::from(pkt[5]) * 4;
                assert_eq!(re[..hl + 6], pkt[..hl + 6]);
                assert_eq!(re[hl + 8..], pkt[hl + 8..]);

                // The template encoder produces identical bytes.
                let enc = UdpEncoder::new(src, dst, path).unwrap();
                let mut out2 = Vec::new();
                enc.encode(payload, &mut out2).unwrap();
                assert_eq!(out2, pkt);
                let mut buf = [0u8; 2000];
                let n = enc.encode_into(payload, &mut buf).unwrap();
                assert_eq!(&buf[..n], pkt);
                let mut inplace = vec![0u8; enc.overhead()];
                inplace.extend_from_slice(payload);
                enc.encode_in_place(&mut inplace).unwrap();
                assert_eq!(inplace, pkt);
            }
        }
    }
}

#[test]
fn sciparse_encoded_packet_decodes() {
    let path = two_segment_path();
    let pkt = ScionUdpPacket::new(
        to_sp(&src4()),
        to_sp(&dst4()),
        dp_path(&path),
        b"abc".to_vec(),
    )
    .try_encode_to_vec()
    .unwrap();
    let Decoded::Udp {
        src,
        dst,
        path: p,
        payload,
    } = decode(&pkt).unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (src, dst, p, payload),
        (src4(), dst4(), &path[..], &b"abc"[..])
    );
    // sciparse 0.8.6 leaves the UDP header and payload out of the checksum.
    assert_eq!(decode_checked(&pkt), Err(PacketError::BadChecksum));
}

#[test]
fn bad_checksum_is_detected_only_when_asked() {
    let mut out = Vec::new();
    encode_udp(&src4(), &dst4(), &two_segment_path(), b"payload!", &mut out).unwrap();
    let last = out.len() - 1;
    out[last] ^= 1;
    assert_eq!(decode_checked(&out), Err(PacketError::BadChecksum));
    assert!(matches!(decode(&out), Ok(Decoded::Udp { .. })));
}

#[test]
fn encode_errors() {
    let mut out = vec![1, 2, 3];
    let bad_path = vec![0u8; 4];
    assert!(matches!(
        encode_udp(&src4(), &dst4(), &bad_path, b"x", &mut out),
        Err(PacketError::InvalidPath(_))
    ));
    let mut truncated = two_segment_path();
    truncated.pop();
    assert!(encode_udp(&src4(), &dst4(), &truncated, b"x", &mut out).is_err());
    let big = vec![0u8; 65_528];
    assert!(matches!(
        encode_udp(&src4(), &dst4(), &[], &big, &mut out),
        Err(PacketError::TooLarge(_))
    ));
    // 65 hops in 3 segments (the largest header a valid path allows is 856 bytes < 1020).
    let hops = vec![(1u16, 2u16); 22];
    let long = make_path(&[(true, &hops), (true, &hops), (true, &hops[..21])], 0, 0);
    assert!(matches!(
        encode_udp(&src4(), &dst4(), &long, b"x", &mut out),
        Err(PacketError::InvalidPath(_))
    ));
    let ok = make_path(&[(true, &hops), (true, &hops), (true, &hops[..20])], 0, 0);
    let v6 = addr("1-1,[::1]:1");
    encode_udp(&v6, &v6, &ok, b"x", &mut Vec::new()).unwrap();
    assert_eq!(out, [1, 2, 3], "nothing appended on error");
    let enc = UdpEncoder::new(&src4(), &dst4(), &[]).unwrap();
    assert!(enc.encode_into(b"abc", &mut [0u8; 10]).is_err());
    assert!(enc.encode_in_place(&mut [0u8; 10]).is_err());
}

#[test]
fn reverse_twice_is_identity() {
    let paths = [
        two_segment_path(),
        make_path(&[(true, &[(0, 1), (2, 3), (4, 0)])], 0, 1),
        make_path(
            &[
                (false, &[(0, 1), (2, 0)]),
                (true, &[(0, 3), (4, 5)]),
                (true, &[(0, 6), (7, 0)]),
            ],
            2,
            5,
        ),
    ];
    for p in &paths {
        let r = reverse_path(p).unwrap();
        assert_ne!(&r[..], &p[..]);
        assert_eq!(&reverse_path(&r).unwrap()[..], &p[..]);
        validate_path(&r).unwrap();
    }
    assert!(reverse_path(&[]).unwrap().is_empty());
}

#[test]
fn reversed_path_crosses_the_same_interfaces_backwards() {
    // As received at the destination: current fields at the end.
    let p = make_path(
        &[(false, &[(0, 2), (1, 0)]), (true, &[(0, 3), (1, 0)])],
        1,
        3,
    );
    let fwd = path_interfaces(&p).unwrap();
    // 111 egress 2 -> 120 ingress 1 | 120 egress 3 -> 112 ingress 1
    assert_eq!(fwd, vec![(0, 2), (1, 0), (0, 3), (1, 0)]);
    let rev = reverse_path(&p).unwrap();
    let back = path_interfaces(&rev).unwrap();
    let expect: Vec<(u16, u16)> = fwd.iter().rev().map(|(i, e)| (*e, *i)).collect();
    assert_eq!(back, expect);
    // Current fields point at the start again.
    let meta = u32::from_be_bytes(rev[..4].try_into().unwrap());
    assert_eq!((meta >> 30, (meta >> 24) & 0x3f), (0, 0));
    assert_eq!(path_as_count(&p), Some(3));
    assert_eq!(path_as_count(&[]), Some(1));
    assert!(path_expiry(&p).is_some());
}

#[test]
fn invalid_paths_are_rejected() {
    for (raw, why) in [
        (vec![0u8; 3], "short"),
        (vec![0u8; 4], "no segments"),
        (make_path(&[(true, &[(0, 1)])], 1, 0), "curr inf"),
        (make_path(&[(true, &[(0, 1)])], 0, 1), "curr hf"),
        (
            {
                let mut p = make_path(&[(true, &[(0, 1)])], 0, 0);
                p.push(0);
                p
            },
            "trailing",
        ),
        (
            {
                // seg0=1, seg1=0, seg2=1
                let mut p = make_path(&[(true, &[(0, 1)]), (true, &[(1, 0)])], 0, 0);
                p[..4].copy_from_slice(&((1u32 << 12) | 1).to_be_bytes());
                p
            },
            "gap",
        ),
    ] {
        assert!(reverse_path(&raw).is_err(), "{why}");
        assert!(path_interfaces(&raw).is_err(), "{why}");
        assert!(validate_path(&raw).is_err(), "{why}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let mut pkt = Vec::new();
    encode_udp(
        &src4(),
        &dst4(),
        &two_segment_path(),
        b"0123456789",
        &mut pkt,
    )
    .unwrap();
    for n in 0..pkt.len() {
        assert!(decode(&pkt[..n]).is_err(), "prefix of {n} bytes decoded");
    }
    assert!(decode(&pkt).is_ok());
}

#[test]
fn unsupported_things_are_errors() {
    let mut pkt = Vec::new();
    encode_udp(&src4(), &dst4(), &[], b"x", &mut pkt).unwrap();
    let mut p = pkt.clone();
    p[0] = 0x10;
    assert_eq!(decode(&p), Err(PacketError::UnsupportedVersion(1)));
    let mut p = pkt.clone();
    p[8] = 2;
    assert_eq!(decode(&p), Err(PacketError::UnsupportedPathType(2)));
    let mut p = pkt.clone();
    p[4] = 6;
    assert_eq!(decode(&p), Err(PacketError::UnsupportedProtocol(6)));
    let mut p = pkt.clone();
    p[9] = 0x44; // SVC addresses (4 bytes each)
    assert_eq!(decode(&p), Err(PacketError::UnsupportedHostAddress(4)));
}

fn scmp_packet(msg: SpScmp, path: &[u8]) -> Vec<u8> {
    ScionScmpPacket::new(
        sp_host("1-ff00:0:120", "10.0.0.9"),
        sp_host("1-ff00:0:111", "127.0.0.1"),
        dp_path(path),
        msg,
    )
    .try_encode_to_vec()
    .unwrap()
}

#[test]
fn scmp_errors_decode() {
    let path = two_segment_path();
    let mut offending = Vec::new();
    encode_udp(&src4(), &dst4(), &path, &[7; 100], &mut offending).unwrap();
    let ia120 = parse_ia("1-ff00:0:120").unwrap();
    type Check = Box<dyn Fn(&ScmpMessage) -> bool>;
    let cases: Vec<(SpScmp, Check)> = vec![
        (
            ScmpDestinationUnreachable::new(
                ScmpDestinationUnreachableCode::PortUnreachable,
                offending.clone(),
            )
            .into(),
            Box::new(|m| {
                matches!(
                    m,
                    ScmpMessage::DestinationUnreachable {
                        code: ScmpDestinationUnreachableCode::PortUnreachable,
                        ..
                    }
                )
            }),
        ),
        (
            ScmpPacketTooBig::new(1280, offending.clone()).into(),
            Box::new(|m| matches!(m, ScmpMessage::PacketTooBig { mtu: 1280, .. })),
        ),
        (
            ScmpParameterProblem::new(ScmpParameterProblemCode::PathExpired, 42, offending.clone())
                .into(),
            Box::new(|m| {
                matches!(
                    m,
                    ScmpMessage::ParameterProblem {
                        code: ScmpParameterProblemCode::PathExpired,
                        pointer: 42,
                        ..
                    }
                )
            }),
        ),
        (
            ScmpExternalInterfaceDown::new(ia120, 3, offending.clone()).into(),
            Box::new(
                move |m| matches!(m, ScmpMessage::ExternalInterfaceDown { ia, interface: 3, .. } if *ia == ia120),
            ),
        ),
        (
            ScmpInternalConnectivityDown::new(ia120, 1, 3, offending.clone()).into(),
            Box::new(
                move |m| matches!(m, ScmpMessage::InternalConnectivityDown { ia, ingress: 1, egress: 3, .. } if *ia == ia120),
            ),
        ),
    ];
    for (msg, check) in cases {
        let pkt = scmp_packet(msg, &reverse_path(&path).unwrap());
        let Decoded::Scmp {
            src,
            dst,
            path: p,
            message,
        } = decode_checked(&pkt).unwrap()
        else {
            panic!("not SCMP")
        };
        assert!(check(&message), "{message:?}");
        assert!(message.is_error());
        assert_eq!(src.to_string(), "1-ff00:0:120,10.0.0.9");
        assert_eq!(dst.host, src4().host);
        assert_eq!(p, &reverse_path(&path).unwrap()[..]);
        let q = message.quoted().expect("quote");
        assert_eq!(
            q.dst,
            ScionHost {
                ia: dst4().ia,
                host: dst4().host
            }
        );
        assert_eq!(q.src_port, Some(src4().port));
        assert_eq!(q.dst_port, Some(dst4().port));
        assert_eq!(q.path, &path[..]);
    }
}

#[test]
fn scmp_affects_path() {
    use crate::scion::path::{PathInterface, ScionPath};
    let ia = |s| parse_ia(s).unwrap();
    let mut p = ScionPath::from_raw(
        ia("1-ff00:0:111"),
        ia("1-ff00:0:112"),
        two_segment_path().into(),
        None,
    );
    p.interfaces = vec![
        PathInterface {
            ia: ia("1-ff00:0:111"),
            id: 2,
        },
        PathInterface {
            ia: ia("1-ff00:0:120"),
            id: 1,
        },
        PathInterface {
            ia: ia("1-ff00:0:120"),
            id: 3,
        },
        PathInterface {
            ia: ia("1-ff00:0:112"),
            id: 1,
        },
    ];
    let down = |id| ScmpMessage::ExternalInterfaceDown {
        ia: ia("1-ff00:0:120"),
        interface: id,
        quote: &[],
    };
    assert!(down(3).affects_path(&p));
    assert!(!down(4).affects_path(&p));
    let internal = ScmpMessage::InternalConnectivityDown {
        ia: ia("1-ff00:0:120"),
        ingress: 1,
        egress: 3,
        quote: &[],
    };
    assert!(internal.affects_path(&p));
}

#[test]
fn scmp_informational_is_flagged() {
    let pkt = scmp_packet(ScmpEchoReply::new(1, 2, b"ping".to_vec()).into(), &[]);
    let Decoded::Scmp { message, .. } = decode(&pkt).unwrap() else {
        panic!()
    };
    assert_eq!(
        message,
        ScmpMessage::Informational {
            msg_type: 129,
            code: 0
        }
    );
    assert!(!message.is_error());
    assert_eq!(message.quote(), None);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0xdead_beef);
    for _ in 0..200_000 {
        let len = rng.below(200);
        let mut buf = rng.bytes(len);
        // Make it look like a SCION header often enough to get past the first checks.
        if len > 12 && rng.below(2) == 0 {
            buf[0] = 0;
            buf[8] = rng.below(3) as u8;
            buf[5] = (len / 4) as u8;
        }
        let _ = decode(&buf);
        let _ = decode_checked(&buf);
        let _ = reverse_path(&buf);
        let _ = path_interfaces(&buf);
        let _ = path_expiry(&buf);
        let _ = decode_quote(&buf);
    }
}

#[test]
fn mutated_packets_never_panic() {
    let mut rng = Rng::new(42);
    let mut seeds = Vec::new();
    let path = two_segment_path();
    let mut p = Vec::new();
    encode_udp(&src4(), &dst4(), &path, b"hello", &mut p).unwrap();
    seeds.push(p);
    let mut p = Vec::new();
    encode_udp(&addr("1-1,[::1]:1"), &dst4(), &[], b"", &mut p).unwrap();
    seeds.push(p);
    let mut offending = Vec::new();
    encode_udp(&src4(), &dst4(), &path, &[1; 40], &mut offending).unwrap();
    for m in [
        SpScmp::from(ScmpExternalInterfaceDown::new(
            parse_ia("1-1").unwrap(),
            3,
            offending.clone(),
        )),
        ScmpInternalConnectivityDown::new(parse_ia("1-1").unwrap(), 1, 2, offending.clone()).into(),
        ScmpPacketTooBig::new(1000, offending.clone()).into(),
        ScmpParameterProblem::new(ScmpParameterProblemCode::InvalidPath, 1, offending.clone())
            .into(),
    ] {
        seeds.push(scmp_packet(m, &path));
    }
    for _ in 0..100_000 {
        let mut buf = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(buf.len());
            match rng.below(3) {
                0 => buf[i] ^= 1 << rng.below(8),
                1 => buf[i] = rng.next() as u8,
                _ => buf.truncate(i),
            }
            if buf.is_empty() {
                break;
            }
        }
        if let Ok(d) = decode_checked(&buf) {
            match d {
                Decoded::Udp { path, .. } => {
                    let _ = reverse_path(path).unwrap();
                    let _ = path_interfaces(path).unwrap();
                }
                Decoded::Scmp { message, path, .. } => {
                    let _ = message.quoted();
                    let _ = reverse_path(path).unwrap();
                }
            }
        }
        let _ = decode(&buf);
    }
}

/// The checksum agrees with a plain RFC 1071 sum over the SCION pseudo-header (dst IA, src IA,
/// dst host, src host, upper-layer length, zeros, next header) and the UDP datagram.
#[test]
fn checksum_matches_rfc_reference() {
    let mut pkt = Vec::new();
    encode_udp(&src4(), &dst4(), &[], b"", &mut pkt).unwrap();
    let hl = pkt[5] as usize * 4;
    let mut pseudo = pkt[12..hl].to_vec(); // dst ia, src ia, dst host, src host (empty path)
    let udp_len = (pkt.len() - hl) as u32;
    pseudo.extend_from_slice(&udp_len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 17]);
    let mut udp = pkt[hl..].to_vec();
    udp[6] = 0;
    udp[7] = 0;
    pseudo.extend_from_slice(&udp);
    let want = !reference_checksum(&pseudo);
    assert_eq!(want, u16::from_be_bytes([pkt[hl + 6], pkt[hl + 7]]));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn scion_addr() -> impl Strategy<Value = ScionAddr> {
        let host = prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ];
        (1u16..4096, 1u32.., host, any::<u16>()).prop_map(|(isd, asn, host, port)| {
            ScionAddr::new(parse_ia(&format!("{isd}-{asn}")).unwrap(), host, port)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// decode(encode(x)) == x for any addresses, the paths we build and any payload.
        #[test]
        fn udp_packets_round_trip(
            src in scion_addr(),
            dst in scion_addr(),
            two_segments in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let path = if two_segments { two_segment_path() } else { Vec::new() };
            let mut out = Vec::new();
            encode_udp(&src, &dst, &path, &payload, &mut out).unwrap();
            match decode_checked(&out).unwrap() {
                Decoded::Udp { src: s, dst: d, path: p, payload: pl } => {
                    prop_assert_eq!((s, d), (src, dst));
                    prop_assert_eq!(p, &path[..]);
                    prop_assert_eq!(pl, &payload[..]);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            // The reusable encoder writes the same bytes.
            let enc = UdpEncoder::new(&src, &dst, &path).unwrap();
            let mut again = Vec::new();
            enc.encode(&payload, &mut again).unwrap();
            prop_assert_eq!(again, out);
        }

        /// The decoders and path helpers never panic, whatever arrives.
        #[test]
        fn decoding_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode(&data);
            let _ = decode_checked(&data);
            let _ = first_packet_len(&data);
            let _ = reverse_path(&data);
            let _ = path_interfaces(&data);
            let _ = validate_path(&data);
        }
    }
}
