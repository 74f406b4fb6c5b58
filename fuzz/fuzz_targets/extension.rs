//! BEP 10 extension handshake payloads (bencode): decode; what decodes must re-encode and
//! decode to the same value.
#![no_main]
use btscion::wire::ExtensionHandshake;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = ExtensionHandshake::decode(data) else {
        return;
    };
    let encoded = h.encode().expect("a decoded handshake re-encodes");
    let again = ExtensionHandshake::decode(&encoded).expect("our encoding decodes");
    assert_eq!(h, again);
    let _ = h.to_message();
});
