//! Tracker input from strangers: HTTP announce/scrape response bodies, UDP responses (IPv4 and
//! IPv6 announce layouts), and on the server side UDP requests and announce/scrape queries.
#![no_main]
use bt_tracker::{http, udp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = http::ResponseLimits::default();
    let _ = http::parse_announce_response(data, &limits);
    let _ = http::parse_scrape_response(data, &limits);
    let _ = http::parse_announce_query(data);
    let _ = http::parse_scrape_query(data, 100);
    let _ = udp::decode_request(data);
    let _ = udp::decode_response(data, false, 1000);
    let _ = udp::decode_response(data, true, 1000);
});
