//! Extension-protocol input: magnet URIs, BEP 10 handshakes (`wire::extension`, the one codec),
//! ut_metadata and ut_pex messages.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(m) = bt_ext::parse_magnet(s) {
            // What parses prints as a link with the same info hash (when that link is within
            // the parser's size limit: percent-encoding may make it longer than the input).
            if let Ok(again) = bt_ext::parse_magnet(&m.to_string()) {
                assert_eq!(again.info_hash, m.info_hash);
            }
        }
    }
    let _ = btscion::wire::ExtensionHandshake::decode(data);
    let _ = bt_ext::decode_metadata_message(data);
    let _ = bt_ext::decode_pex_message(data);
});
