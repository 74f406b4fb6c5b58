//! Decoding cost of the BitTorrent peer wire: a received byte stream of `Piece` messages
//! (16 KiB blocks), `Request`s and `Have`s pushed through `btscion::wire::MessageDecoder`
//! in receive-sized chunks, as the QUIC stream reader does.
//!
//!   cargo bench --bench wire

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use btscion::wire::{encode, DecoderLimits, Message, MessageDecoder};

const BLOCK: usize = 16 * 1024;
const NUM_PIECES: u32 = 4096;

/// A stream as a leecher receives it: every block followed by a `Have` (what a seeder's
/// other peers would announce) and, every 4th block, a `Request` (the other direction of a
/// bidirectional session multiplexed in the same benchmark).
fn stream(blocks: usize) -> (Vec<u8>, usize) {
    let data = Bytes::from(vec![0xa5u8; BLOCK]);
    let mut buf = BytesMut::new();
    let mut msgs = 0;
    for i in 0..blocks {
        let index = (i / 16) as u32 % NUM_PIECES;
        let begin = ((i % 16) * BLOCK) as u32;
        encode(
            &Message::Piece {
                index,
                begin,
                data: data.clone(),
            },
            &mut buf,
        );
        encode(&Message::Have { index }, &mut buf);
        msgs += 2;
        if i % 4 == 0 {
            encode(
                &Message::Request {
                    index,
                    begin,
                    length: BLOCK as u32,
                },
                &mut buf,
            );
            msgs += 1;
        }
    }
    (buf.to_vec(), msgs)
}

fn decode_all(bytes: &[u8], chunk: usize) -> usize {
    let mut d = MessageDecoder::new(DecoderLimits::for_torrent(NUM_PIECES));
    let mut n = 0;
    for c in bytes.chunks(chunk) {
        d.push(c);
        while let Some(m) = d.next_message().expect("valid stream") {
            black_box(&m);
            n += 1;
        }
    }
    n
}

fn bench_decode(c: &mut Criterion) {
    let blocks = 256; // 4 MiB of block data per iteration
    let (bytes, msgs) = stream(blocks);
    let mut g = c.benchmark_group("wire_decode");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    // 1200: one QUIC packet's worth; 64 KiB: a large stream read.
    for chunk in [1200usize, 16 * 1024, 64 * 1024] {
        g.bench_with_input(
            BenchmarkId::new("mixed_stream", chunk),
            &chunk,
            |b, &chunk| {
                b.iter(|| {
                    let n = decode_all(black_box(&bytes), chunk);
                    assert_eq!(n, msgs);
                    n
                })
            },
        );
    }
    g.finish();

    // Control messages only: per-message overhead without the block copy.
    let mut small = BytesMut::new();
    let count = 100_000;
    for i in 0..count {
        if i % 2 == 0 {
            encode(
                &Message::Have {
                    index: i % NUM_PIECES,
                },
                &mut small,
            );
        } else {
            encode(
                &Message::Request {
                    index: i % NUM_PIECES,
                    begin: 0,
                    length: BLOCK as u32,
                },
                &mut small,
            );
        }
    }
    let small = small.to_vec();
    let mut g = c.benchmark_group("wire_decode_control");
    g.throughput(Throughput::Elements(count as u64));
    g.bench_function("have_request_64KiB_chunks", |b| {
        b.iter(|| {
            let n = decode_all(black_box(&small), 64 * 1024);
            assert_eq!(n, count as usize);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
