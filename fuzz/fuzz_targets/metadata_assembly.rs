//! Fetching metadata (BEP 9) from lying peers: `bt_ext::MetadataAssembler` driven by a
//! sequence of fuzzer-chosen peer offers, ut_metadata payloads and clock steps. Oracles: no
//! panic; what completes hashes to the info hash; no more requests in flight per peer than the
//! limit.
#![no_main]
use std::collections::HashMap;
use std::time::{Duration, Instant};

use bt_ext::metadata::MAX_IN_FLIGHT_PER_PEER;
use bt_ext::{decode_metadata_message, MetadataAssembler, MetadataEvent};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    if data.len() < 20 {
        return;
    }
    let info_hash: [u8; 20] = data[..20].try_into().unwrap();
    let mut rest = &data[20..];
    let mut now = Instant::now();
    let mut a: MetadataAssembler<u8> =
        MetadataAssembler::new(info_hash).with_request_timeout(Duration::from_secs(5));
    let mut steps = 0;
    while rest.len() >= 4 && steps < 200 {
        steps += 1;
        let (op, peer) = (rest[0], rest[1] % 8);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        rest = &rest[4..];
        match op % 4 {
            0 => {
                let size = u64::from(u32::from_be_bytes([0, 0, rest.first().copied().unwrap_or(1), peer]))
                    * 97;
                let _ = a.add_peer(peer, size);
            }
            1 => a.remove_peer(&peer),
            2 => {
                now += Duration::from_secs(u64::from(peer));
                a.handle_timeout(now);
            }
            _ => {
                let n = len.min(rest.len());
                if let Ok(msg) = decode_metadata_message(&rest[..n]) {
                    if let MetadataEvent::Complete(info) = a.on_message(&peer, &msg) {
                        let got: [u8; 20] = Sha1::digest(&info).into();
                        assert_eq!(got, info_hash, "completed metadata of another hash");
                    }
                }
                rest = &rest[n..];
            }
        }
        let mut per_peer: HashMap<u8, u32> = HashMap::new();
        for r in a.poll_requests(now) {
            *per_peer.entry(r.peer).or_default() += 1;
        }
        assert!(per_peer.values().all(|&n| n <= MAX_IN_FLIGHT_PER_PEER));
        let _ = a.progress();
        let _ = a.is_stalled();
    }
});
