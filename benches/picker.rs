//! Per-block cost of the piece picker: `Picker::pick` + `Picker::block_received` for every
//! block of a 4096-piece torrent (256 KiB pieces, 16 KiB blocks: 65 536 blocks, 1 GiB),
//! downloaded from one seeder with a request pipeline of `depth` blocks, as a lane does.
//!
//!   cargo bench --bench picker

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::collections::VecDeque;
use std::hint::black_box;

use btscion::torrent::picker::{BlockOutcome, BlockRef, Picker};
use btscion::wire::Bitfield;

const PIECES: u32 = 4096;
const PIECE_LEN: u32 = 256 * 1024;
const BLOCKS: u64 = (PIECES as u64 * PIECE_LEN as u64) / (16 * 1024);

fn fresh() -> (Picker, Bitfield) {
    let seeder = Bitfield::full(PIECES);
    let mut p = Picker::new(
        PIECE_LEN,
        u64::from(PIECES) * u64::from(PIECE_LEN),
        Bitfield::new(PIECES),
    );
    p.peer_added(&seeder);
    (p, seeder)
}

/// Downloads the whole torrent: keep `depth` requests outstanding, refill after each block.
fn download(mut p: Picker, seeder: &Bitfield, depth: usize) -> u64 {
    let mut outstanding: VecDeque<BlockRef> = VecDeque::with_capacity(depth);
    let mut out = Vec::with_capacity(depth);
    let mut received = 0u64;
    loop {
        let want = depth - outstanding.len();
        if want > 0 {
            out.clear();
            p.pick(seeder, want, |b| outstanding.contains(b), &mut out);
            outstanding.extend(out.iter().copied());
        }
        let Some(b) = outstanding.pop_front() else {
            break;
        };
        if let BlockOutcome::Accepted {
            piece_complete: true,
        } = p.block_received(&b)
        {
            p.piece_verified(b.piece, true);
        }
        received += 1;
        if p.is_complete() {
            break;
        }
    }
    black_box(received)
}

fn bench_picker(c: &mut Criterion) {
    let mut g = c.benchmark_group("picker_4096_pieces");
    g.throughput(Throughput::Elements(BLOCKS));
    g.sample_size(10);
    for depth in [16usize, 256] {
        g.bench_with_input(
            BenchmarkId::new("pick+received_per_block", depth),
            &depth,
            |b, &d| {
                b.iter_batched(
                    fresh,
                    |(p, seeder)| {
                        let n = download(p, &seeder, d);
                        assert_eq!(n, BLOCKS);
                        n
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench_picker);
criterion_main!(benches);
