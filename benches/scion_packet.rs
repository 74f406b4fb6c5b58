//! SCION/UDP codec on the hot path: QUIC datagrams of 1200-1400 bytes over a three-AS path.
//!
//! `cargo bench --bench scion_packet`

use std::hint::black_box;

use btscion::scion::{
    packet::{decode, decode_checked, encode_udp, reverse_path, Decoded, UdpEncoder},
    ScionAddr,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sciparse::{
    address::socket_addr::ScionSocketAddr,
    core::{encode::WireEncode, view::View},
    dataplane_path::{model::DpPath, standard::view::StandardPathView, view::ScionDpPathViewRef},
    packet::model::ScionUdpPacket,
};

/// A two-segment path (up to a core AS, down to the destination): 4 hop fields, as on the
/// three-paths test topology.
fn path() -> Vec<u8> {
    let hops: [(bool, u16, u16); 4] = [(false, 2, 0), (false, 0, 1), (true, 0, 3), (true, 1, 0)];
    let meta: u32 = (2 << 12) | (2 << 6);
    let mut out = meta.to_be_bytes().to_vec();
    for cons_dir in [false, true] {
        out.extend_from_slice(&[u8::from(cons_dir), 0, 0x12, 0x34]);
        out.extend_from_slice(&1_900_000_000u32.to_be_bytes());
    }
    for (_, ing, eg) in hops {
        out.extend_from_slice(&[0, 63]);
        out.extend_from_slice(&ing.to_be_bytes());
        out.extend_from_slice(&eg.to_be_bytes());
        out.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    }
    out
}

fn bench(c: &mut Criterion) {
    let src: ScionAddr = "1-ff00:0:111,[127.0.0.1]:40000".parse().unwrap();
    let dst: ScionAddr = "1-ff00:0:112,[127.0.0.2]:43000".parse().unwrap();
    let path = path();
    let encoder = UdpEncoder::new(&src, &dst, &path).unwrap();

    let mut g = c.benchmark_group("scion_packet");
    for size in [1200usize, 1400] {
        let payload = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));

        let mut out = Vec::with_capacity(2048);
        g.bench_with_input(BenchmarkId::new("encode_udp", size), &payload, |b, p| {
            b.iter(|| {
                out.clear();
                encode_udp(&src, &dst, black_box(&path), black_box(p), &mut out).unwrap();
                black_box(&out);
            })
        });
        g.bench_with_input(
            BenchmarkId::new("encoder_encode", size),
            &payload,
            |b, p| {
                b.iter(|| {
                    out.clear();
                    encoder.encode(black_box(p), &mut out).unwrap();
                    black_box(&out);
                })
            },
        );
        // Baseline: sciparse's model encoder (allocates the packet and copies the payload twice).
        let (sp_path, _) = StandardPathView::try_from_slice(&path).unwrap();
        let sp_path = DpPath::from_view(&ScionDpPathViewRef::Standard(sp_path));
        let (sp_src, sp_dst) = (
            ScionSocketAddr::new(src.ia, src.host.into(), src.port),
            ScionSocketAddr::new(dst.ia, dst.host.into(), dst.port),
        );
        g.bench_with_input(
            BenchmarkId::new("sciparse_model_encode", size),
            &payload,
            |b, p| {
                b.iter(|| {
                    let pkt =
                        ScionUdpPacket::new(sp_src, sp_dst, sp_path.clone(), black_box(p).to_vec());
                    black_box(pkt.try_encode_to_vec().unwrap())
                })
            },
        );
        let mut buf = vec![0u8; 2048];
        g.bench_with_input(
            BenchmarkId::new("encoder_encode_into", size),
            &payload,
            |b, p| b.iter(|| black_box(encoder.encode_into(black_box(p), &mut buf).unwrap())),
        );
        let mut inplace = vec![0u8; encoder.overhead() + size];
        g.bench_function(BenchmarkId::new("encoder_encode_in_place", size), |b| {
            b.iter(|| encoder.encode_in_place(black_box(&mut inplace)).unwrap())
        });

        let mut pkt = Vec::new();
        encode_udp(&src, &dst, &path, &payload, &mut pkt).unwrap();
        g.bench_with_input(BenchmarkId::new("decode", size), &pkt, |b, pkt| {
            b.iter(|| match decode(black_box(pkt)).unwrap() {
                Decoded::Udp { payload, .. } => black_box(payload.len()),
                Decoded::Scmp { .. } => unreachable!(),
            })
        });
        g.bench_with_input(BenchmarkId::new("decode_checked", size), &pkt, |b, pkt| {
            b.iter(|| match decode_checked(black_box(pkt)).unwrap() {
                Decoded::Udp { payload, .. } => black_box(payload.len()),
                Decoded::Scmp { .. } => unreachable!(),
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("reverse_path", |b| {
        b.iter(|| black_box(reverse_path(black_box(&path)).unwrap()))
    });
    g.bench_function("encoder_new", |b| {
        b.iter(|| black_box(UdpEncoder::new(&src, &dst, black_box(&path)).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
