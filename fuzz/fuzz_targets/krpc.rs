//! DHT KRPC messages as they arrive on the IP and on the SCION socket.
#![no_main]
use libfuzzer_sys::fuzz_target;
use scion_addr::ScionAddr;
use std::net::SocketAddr;

fuzz_target!(|data: &[u8]| {
    let _ = bt_dht::decode::<SocketAddr>(data);
    let _ = bt_dht::decode::<ScionAddr>(data);
    let _ = bt_dht::looks_like_krpc(data);
});
