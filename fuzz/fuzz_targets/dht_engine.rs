//! The DHT engine (`bt-dht`) driven by strangers: a sequence of datagrams from fuzzer-chosen
//! senders and clock steps, over IP and over SCION. Oracles: no panic; every datagram the
//! engine sends fits a UDP payload; its queues stay within its limits.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bt_dht::{Config, Dht, DhtAddr};
use libfuzzer_sys::fuzz_target;
use scion_addr::{Ia, ScionAddr};

/// Splits the input into steps: [kind, sender byte, len, payload...].
fn drive<A: DhtAddr>(data: &[u8], addr_of: impl Fn(u8) -> A) {
    let start = Instant::now();
    let mut now = start;
    let config = Config {
        bootstrap: vec![addr_of(0)],
        seed: Some(1),
        ..Config::default()
    };
    let mut dht = Dht::new(config, now);
    let _ = dht.bootstrap(now);
    let _ = dht.get_peers(bt_dht::Id([7; 20]), now);
    let _ = dht.announce(bt_dht::Id([9; 20]), Some(6881), now);
    let mut rest = data;
    let mut steps = 0;
    while rest.len() >= 3 && steps < 64 {
        steps += 1;
        let (kind, who, len) = (rest[0], rest[1], usize::from(rest[2]));
        rest = &rest[3..];
        match kind % 4 {
            0 => now += Duration::from_millis(u64::from(who) * 100),
            _ => {
                let n = len.min(rest.len());
                dht.handle_datagram(addr_of(who), &rest[..n], now);
                rest = &rest[n..];
            }
        }
        dht.handle_timeout(now);
        let mut sent = 0;
        while let Some((_, bytes)) = dht.poll_transmit() {
            assert!(bytes.len() <= 65_507, "a datagram of {} bytes", bytes.len());
            sent += 1;
            assert!(sent <= 100_000, "an endless transmit queue");
        }
        while dht.poll_event().is_some() {}
    }
}

fuzz_target!(|data: &[u8]| {
    drive(data, |b| {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, b >> 4, b)), 6881 + u16::from(b))
    });
    drive(data, |b| {
        let ia: Ia = format!("1-ff00:0:{}", 110 + u16::from(b % 4)).parse().unwrap();
        ScionAddr::new(ia, IpAddr::V4(Ipv4Addr::new(127, 0, 0, b)), 30000 + u16::from(b))
    });
});
