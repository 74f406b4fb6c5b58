//! SCION packets from the underlay: the GRO splitter (several packets glued together), the
//! decoder with and without checksum, SCMP quotes, and the path helpers on whatever path a
//! packet carries.
#![no_main]
use btscion::scion::packet::{self, Decoded};
use libfuzzer_sys::fuzz_target;

fn exercise(pkt: &[u8]) {
    let _ = packet::decode_checked(pkt);
    match packet::decode(pkt) {
        Ok(Decoded::Udp { path, .. }) => {
            let _ = packet::validate_path(path);
            let _ = packet::path_interfaces(path);
            let _ = packet::path_as_count(path);
            let _ = packet::path_expiry(path);
            if let Ok(rev) = packet::reverse_path(path) {
                let _ = packet::path_interfaces(&rev);
            }
        }
        Ok(Decoded::Scmp { message, .. }) => {
            let _ = message.is_error();
            let _ = message.quoted();
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // The same loop as ScionNet::on_datagram: split at each packet's stated length.
    let mut rest = data;
    while !rest.is_empty() {
        let n = packet::first_packet_len(rest).unwrap_or(rest.len());
        assert!(n > 0 && n <= rest.len());
        let (pkt, tail) = rest.split_at(n);
        exercise(pkt);
        rest = tail;
    }
    let _ = packet::decode_quote(data);
});
