//! Local Service Discovery datagrams (BEP 14, `btscion::discovery::lsd`) as any host on the
//! LAN may send them. No input may panic; what parses re-encodes to a datagram that parses
//! back to the same announce.
#![no_main]
use btscion::discovery::lsd::{Announce, GROUP_V4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = Announce::parse(data) {
        assert!(a.port != 0 && !a.info_hashes.is_empty());
        // A cookie is read as the rest of its line, trimmed: re-encoding keeps it only when
        // it has no line break of its own (it cannot, coming from one line).
        let again = Announce::parse(&a.encode(GROUP_V4)).expect("our own encoding parses");
        assert_eq!(again, a);
    }
});
