//! The tracker server alone (the same `bt_tracker::server` the `tracker` subcommand runs),
//! for perf/tracker_bench.sh: builds in seconds, without the client's dependencies.
//!
//! tracker_server --http ADDR --udp ADDR [--udp-threads N] [--interval SECS] [--allow FILE]

use std::time::Duration;

use bt_tracker::server::{self, parse_allow_list, ServerConfig};

fn usage(flag: &str, v: &str) -> ! {
    eprintln!("bad value {v:?} for {flag}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut c = ServerConfig::default();
    let mut i = 1;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        let flag = args[i].clone();
        match args[i].as_str() {
            "--http" => c.http = Some(v.parse().unwrap_or_else(|_| usage(&flag, v))),
            "--udp" => c.udp = Some(v.parse().unwrap_or_else(|_| usage(&flag, v))),
            "--udp-threads" => c.udp_threads = v.parse().unwrap_or_else(|_| usage(&flag, v)),
            "--interval" => {
                c.tracker.interval =
                    Duration::from_secs(v.parse().unwrap_or_else(|_| usage(&flag, v)))
            }
            "--max-peers-per-host" => {
                c.tracker.max_peers_per_host = v.parse().unwrap_or_else(|_| usage(&flag, v))
            }
            "--allow" => {
                let text = std::fs::read_to_string(v).unwrap_or_else(|_| usage(&flag, v));
                c.tracker.allow = Some(parse_allow_list(&text).unwrap_or_else(|_| usage(&flag, v)));
            }
            other => usage(other, v),
        }
        i += 2;
    }
    let s = server::start(c).unwrap_or_else(|e| {
        eprintln!("cannot start: {e}");
        std::process::exit(1)
    });
    println!("tracker http {:?} udp {:?}", s.http_addr, s.udp_addr);
    loop {
        std::thread::park();
    }
}
