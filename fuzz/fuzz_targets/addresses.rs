//! Address parsing: ISD-AS, SCION and peer addresses from text (what parses must print and
//! parse back to the same value), and the compact binary forms (what reads must write back to
//! the same bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use scion_addr::compact;
use scion_addr::{parse_ia, PeerAddr, ScionAddr};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(ia) = parse_ia(s) {
            assert_eq!(parse_ia(&ia.to_string()), Ok(ia));
        }
        if let Ok(a) = s.parse::<ScionAddr>() {
            assert_eq!(a.to_string().parse::<ScionAddr>(), Ok(a));
        }
        if let Ok(p) = s.parse::<PeerAddr>() {
            assert_eq!(p.to_string().parse::<PeerAddr>(), Ok(p));
        }
    }
    if let Some(a) = compact::read_ip(data) {
        let mut out = Vec::new();
        compact::write_ip(a, &mut out);
        assert_eq!(out, data);
    }
    if let Some(a) = compact::read_scion(data) {
        let mut out = Vec::new();
        compact::write_scion(&a, &mut out);
        assert_eq!(out, data);
    }
    for entry in [0, 6, 14, 18, 26] {
        let _ = compact::read_list(data, entry, compact::read_ip);
        let _ = compact::read_list(data, entry, compact::read_scion);
    }
});
