//! From a torrent's file choice (per-file priorities, first/last-piece priority) to what the
//! picker and storage need: a priority per piece, which files are skipped, and how many of
//! the wanted bytes are verified.
//!
//! File indexes are those the API shows: the torrent's files without its BEP 47 padding files.

use super::control::{FileChoice, FilePriority};
use crate::torrent::meta::{FileEntry, Metainfo};
use crate::wire::Bitfield;

/// The picker's priority of a file priority (0: not wanted).
fn level(p: FilePriority) -> u8 {
    match p {
        FilePriority::Skip => 0,
        FilePriority::Low => 1,
        FilePriority::Normal => 2,
        FilePriority::High => 3,
    }
}

/// Above `high`: a wanted file's first and last piece with first/last-piece priority on.
const FIRST_LAST: u8 = 4;

/// The files the API lists (padding left out), each with its index in `meta.files`.
pub fn visible_files(meta: &Metainfo) -> impl Iterator<Item = (usize, &FileEntry)> {
    meta.files.iter().enumerate().filter(|(_, f)| !f.pad)
}

/// How many files the API lists.
pub fn visible_count(meta: &Metainfo) -> usize {
    visible_files(meta).count()
}

/// Per file of `meta.files` (padding included): skipped or not. Padding is never "skipped":
/// it has no data on disk either way.
pub fn skipped_files(meta: &Metainfo, choice: &FileChoice) -> Vec<bool> {
    let mut out = vec![false; meta.files.len()];
    for (k, (i, _)) in visible_files(meta).enumerate() {
        out[i] = choice.priority(k) == FilePriority::Skip;
    }
    out
}

/// The first and last piece of a file (None for an empty one).
fn piece_span(meta: &Metainfo, f: &FileEntry) -> Option<(u32, u32)> {
    let pl = u64::from(meta.piece_length);
    (f.length > 0 && pl > 0).then(|| {
        (
            (f.offset / pl) as u32,
            ((f.offset + f.length - 1) / pl) as u32,
        )
    })
}

/// The picker's priority of every piece: the highest of the files it touches (a piece shared
/// by a skipped and a wanted file is wanted), raised above all for a wanted file's first and
/// last piece when `choice.first_last_piece` is on. Pieces touching only padding: not wanted.
pub fn piece_priorities(meta: &Metainfo, choice: &FileChoice) -> Vec<u8> {
    if choice.priorities.is_empty() && !choice.first_last_piece {
        // Every piece, padding-only ones too: as the torrent was fetched before priorities.
        return vec![level(FilePriority::Normal); meta.num_pieces() as usize];
    }
    let mut out = vec![0u8; meta.num_pieces() as usize];
    for (k, (_, f)) in visible_files(meta).enumerate() {
        let Some((first, last)) = piece_span(meta, f) else {
            continue;
        };
        let lvl = level(choice.priority(k));
        if lvl == 0 {
            continue;
        }
        for p in out.iter_mut().take(last as usize + 1).skip(first as usize) {
            *p = (*p).max(lvl);
        }
        if choice.first_last_piece {
            for p in [first, last] {
                if let Some(x) = out.get_mut(p as usize) {
                    *x = FIRST_LAST;
                }
            }
        }
    }
    out
}

/// Verified bytes of a file given the verified pieces.
pub fn file_done(meta: &Metainfo, f: &FileEntry, have: &Bitfield) -> u64 {
    let Some((first, last)) = piece_span(meta, f) else {
        return 0;
    };
    let pl = u64::from(meta.piece_length);
    (first..=last)
        .filter(|&p| have.get(p))
        .map(|p| {
            let ps = u64::from(p) * pl;
            let pe = ps + u64::from(meta.piece_len(p));
            pe.min(f.offset + f.length) - ps.max(f.offset)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::meta::create;

    /// Files of 40, 24 and 16 KiB with 16 KiB pieces: pieces 0-1 in a, 2 in a and b, 3 in b,
    /// 4 in c.
    fn three_files() -> Metainfo {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a"), vec![1u8; 40 << 10]).unwrap();
        std::fs::write(root.join("b"), vec![2u8; 24 << 10]).unwrap();
        std::fs::write(root.join("c"), vec![3u8; 16 << 10]).unwrap();
        let m = Metainfo::from_bytes(&create(&root, Some(16 << 10), vec![], false, None).unwrap())
            .unwrap();
        assert_eq!(m.num_pieces(), 5);
        m
    }

    fn choice(p: &[FilePriority]) -> FileChoice {
        FileChoice {
            priorities: p.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_shared_piece_takes_the_higher_priority_and_skipped_pieces_are_zero() {
        use FilePriority::*;
        let m = three_files();
        assert_eq!(piece_priorities(&m, &FileChoice::default()), vec![2; 5]);
        let c = choice(&[Skip, High, Low]);
        assert_eq!(piece_priorities(&m, &c), vec![0, 0, 3, 3, 1]);
        assert_eq!(skipped_files(&m, &c), vec![true, false, false]);
        let c = choice(&[Low, Skip, Skip]);
        assert_eq!(piece_priorities(&m, &c), vec![1, 1, 1, 0, 0]);
    }

    #[test]
    fn first_and_last_pieces_of_wanted_files_come_first() {
        use FilePriority::*;
        let m = three_files();
        let mut c = choice(&[Normal, Skip, Normal]);
        c.first_last_piece = true;
        assert_eq!(piece_priorities(&m, &c), vec![4, 2, 4, 0, 4]);
    }

    #[test]
    fn done_bytes_count_only_the_files_part_of_each_piece() {
        let m = three_files();
        let mut have = Bitfield::new(5);
        have.set(2);
        let files: Vec<&FileEntry> = m.files.iter().collect();
        assert_eq!(file_done(&m, files[0], &have), 8 << 10);
        assert_eq!(file_done(&m, files[1], &have), 8 << 10);
        assert_eq!(file_done(&m, files[2], &have), 0);
    }
}
