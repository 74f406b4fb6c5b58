//! SHA-1 throughput on BitTorrent-sized pieces (256 KiB).
//!
//! Compares the implementations we could use for piece verification:
//! the `sha1` crate (RustCrypto; runtime SHA-NI detection via `cpufeatures`,
//! `asm` feature as enabled in Cargo.toml), `ring`'s legacy SHA-1, and the
//! one the storage hash pool actually calls (`btscion::storage::hash::sha1`).
//! Reference for comparison, run by hand: `openssl speed -bytes 262144 sha1`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

const PIECE: usize = 256 * 1024;

fn piece() -> Vec<u8> {
    // Deterministic, non-trivial content.
    let mut x: u32 = 0x1234_5678;
    (0..PIECE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn bench_sha1(c: &mut Criterion) {
    let data = piece();
    let mut g = c.benchmark_group("sha1_256KiB");
    g.throughput(Throughput::Bytes(PIECE as u64));

    g.bench_with_input(BenchmarkId::new("sha1_crate", PIECE), &data, |b, d| {
        use sha1::Digest;
        b.iter(|| {
            let out: [u8; 20] = sha1::Sha1::digest(black_box(d)).into();
            out
        })
    });

    g.bench_with_input(BenchmarkId::new("ring", PIECE), &data, |b, d| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, black_box(d)))
    });

    g.bench_with_input(BenchmarkId::new("btscion_pool_fn", PIECE), &data, |b, d| {
        b.iter(|| btscion::storage::hash::sha1(black_box(d)))
    });

    g.finish();
}

criterion_group!(benches, bench_sha1);
criterion_main!(benches);
