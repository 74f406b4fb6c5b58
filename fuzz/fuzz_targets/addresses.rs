//! Address parsing: ISD-AS, SCION and peer addresses from text (what parses must print and
//! parse back to the same value), and the compact binary forms (what reads must write back to
//! the same bytes). Tracker URLs, SCION's mangled host form (`http://[ISD-AS,IP]:port/…`)
//! included: a SCION tracker URL rebuilt from what was read reads back the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scion_addr::compact;
use bt_tracker::client::{parse_tracker_url, TrackerUrl};
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
        let _ = parse_tracker_url(s);
        if let Ok(TrackerUrl::ScionHttp { addr, target, .. }) =
            parse_tracker_url(&format!("http://{s}"))
        {
            let host = match addr.host {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            };
            let again = format!("http://[{},{host}]:{}{target}", addr.ia, addr.port);
            match parse_tracker_url(&again) {
                Ok(TrackerUrl::ScionHttp {
                    addr: a,
                    target: t,
                    ..
                }) => assert_eq!((a, &t), (addr, &target), "{again}"),
                other => panic!("{again}: {other:?}"),
            }
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
