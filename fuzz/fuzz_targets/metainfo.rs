//! .torrent files: parse, and if accepted, every derived value must be computable.
#![no_main]
use btscion::torrent::meta::Metainfo;
use libfuzzer_sys::fuzz_target;

fn exercise(m: &Metainfo) {
    let n = m.num_pieces();
    for i in [0, n / 2, n.saturating_sub(1), n] {
        let _ = m.piece_len(i);
        let _ = m.piece_offset(i);
        let _ = m.piece_hash(i);
    }
    let _ = m.info_hash_hex();
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Metainfo::from_bytes(data) {
        exercise(&m);
    }
    // The same bytes as a bare info dictionary (what ut_metadata delivers).
    if let Ok(m) = Metainfo::from_info_bytes(data) {
        exercise(&m);
    }
});
