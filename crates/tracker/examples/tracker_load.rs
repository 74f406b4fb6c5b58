//! Load generator for trackers (ours and opentracker alike), loopback only.
//!
//! ```text
//! tracker_load udp  ADDR [--requests N] [--window W] [--torrents T]
//! tracker_load http ADDR [--requests N] [--conns C] [--torrents T]
//! tracker_load hashes T      # the info hashes used, hex, one per line (for allow-lists)
//! ```
//! Sends exactly N announces (then stops) spread over T torrents and prints one line:
//! `proto=udp announces=N secs=S rate=R/s p50_us=.. p99_us=.. errors=E lost=L`.
//! UDP: one socket, W announces in flight (connect once; lost packets time out after 1 s
//! and count as lost). HTTP: C connections, one request each (Connection: close), so both
//! servers do the same work per announce.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use bt_tracker::udp;

fn info_hash(i: u32) -> [u8; 20] {
    let mut h = [0x5au8; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    h[19] = (i % 251) as u8;
    h
}

fn peer_port(n: u64) -> u16 {
    1024 + (n % 60_000) as u16
}

struct Opts {
    requests: u64,
    window: usize,
    conns: usize,
    torrents: u32,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn report(proto: &str, lat_us: &mut [u32], secs: f64, errors: u64, lost: u64) {
    lat_us.sort_unstable();
    println!(
        "proto={proto} announces={} secs={secs:.3} rate={:.0}/s p50_us={} p99_us={} errors={errors} lost={lost}",
        lat_us.len(),
        lat_us.len() as f64 / secs,
        percentile(lat_us, 0.5),
        percentile(lat_us, 0.99),
    );
}

fn run_udp(addr: SocketAddr, o: &Opts) -> std::io::Result<()> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut buf = [0u8; 4096];
    // Connect.
    let mut p = Vec::new();
    udp::encode_connect(&mut p, 1);
    sock.send(&p)?;
    let n = sock.recv(&mut buf)?;
    let conn = match udp::decode_response(&buf[..n], false, 0) {
        Ok(udp::Response::Connect { connection_id, .. }) => connection_id,
        other => return Err(std::io::Error::other(format!("connect failed: {other:?}"))),
    };
    // Slot k of the window holds the send time of transaction k (ids are slot + round·W).
    let w = o.window.max(1);
    let mut sent_at: Vec<Option<Instant>> = vec![None; w];
    let (mut sent, mut done, mut errors, mut lost) = (0u64, 0u64, 0u64, 0u64);
    let mut lat = Vec::with_capacity(o.requests as usize);
    let mut pkt = Vec::with_capacity(udp::ANNOUNCE_LEN);
    let mut send =
        |slot: usize, n: u64, sent_at: &mut Vec<Option<Instant>>| -> std::io::Result<()> {
            pkt.clear();
            udp::encode_announce(
                &mut pkt,
                &udp::AnnounceRequest {
                    connection_id: conn,
                    transaction_id: slot as u32,
                    info_hash: info_hash((n % u64::from(o.torrents)) as u32),
                    peer_id: [(n % 200) as u8; 20],
                    downloaded: 0,
                    left: if n.is_multiple_of(3) { 0 } else { 1000 },
                    uploaded: 0,
                    event: bt_tracker::http::Event::None,
                    ip: std::net::Ipv4Addr::UNSPECIFIED,
                    key: n as u32,
                    num_want: 50,
                    port: peer_port(n),
                },
            );
            sent_at[slot] = Some(Instant::now());
            sock.send(&pkt).map(drop)
        };
    let start = Instant::now();
    for slot in 0..w.min(o.requests as usize) {
        send(slot, sent, &mut sent_at)?;
        sent += 1;
    }
    while done < sent {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let Ok(r) = udp::decode_response(&buf[..n], false, 200) else {
                    errors += 1;
                    continue;
                };
                let slot = r.transaction_id() as usize;
                let Some(t0) = sent_at.get_mut(slot).and_then(Option::take) else {
                    continue;
                };
                if matches!(r, udp::Response::Announce { .. }) {
                    lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                } else {
                    errors += 1;
                }
                done += 1;
                if sent < o.requests {
                    send(slot, sent, &mut sent_at)?;
                    sent += 1;
                }
            }
            Err(_) => {
                // Timeout: everything still in flight is lost; refill the window.
                for slot in 0..w {
                    if sent_at[slot].take().is_some() {
                        lost += 1;
                        done += 1;
                        if sent < o.requests {
                            send(slot, sent, &mut sent_at)?;
                            sent += 1;
                        }
                    }
                }
            }
        }
    }
    report("udp", &mut lat, start.elapsed().as_secs_f64(), errors, lost);
    Ok(())
}

fn pct(b: &[u8]) -> String {
    b.iter().map(|x| format!("%{x:02X}")).collect()
}

fn http_once(addr: SocketAddr, n: u64, torrents: u32, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = format!(
        "GET /announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={}&compact=1&numwant=50 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        pct(&info_hash((n % u64::from(torrents)) as u32)),
        pct(&[(n % 200) as u8; 20]),
        peer_port(n),
        if n.is_multiple_of(3) { 0 } else { 1000 },
    );
    s.write_all(req.as_bytes())?;
    buf.clear();
    s.read_to_end(buf)?;
    Ok(buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200"))
}

fn run_http(addr: SocketAddr, o: &Opts) -> std::io::Result<()> {
    let start = Instant::now();
    let per = o.requests / o.conns.max(1) as u64;
    let results: Vec<(Vec<u32>, u64)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..o.conns.max(1) as u64)
            .map(|c| {
                sc.spawn(move || {
                    let (mut lat, mut errors, mut buf) = (Vec::new(), 0u64, Vec::new());
                    for k in 0..per {
                        let n = c * per + k;
                        let t0 = Instant::now();
                        match http_once(addr, n, o.torrents, &mut buf) {
                            Ok(true) => lat.push(t0.elapsed().as_micros() as u32),
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut lat: Vec<u32> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let errors = results.iter().map(|r| r.1).sum();
    report("http", &mut lat, secs, errors, 0);
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: tracker_load udp|http ADDR [--requests N] [--window W] [--conns C] [--torrents T] | tracker_load hashes T";
    let mut o = Opts {
        requests: 100_000,
        window: 64,
        conns: 8,
        torrents: 1000,
    };
    if args.get(1).map(String::as_str) == Some("hashes") {
        let t: u32 = args
            .get(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(o.torrents);
        for i in 0..t {
            println!(
                "{}",
                info_hash(i)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
        }
        return;
    }
    let (Some(proto), Some(addr)) = (
        args.get(1),
        args.get(2).and_then(|a| a.parse::<SocketAddr>().ok()),
    ) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if !addr.ip().is_loopback() {
        eprintln!("tracker_load only targets loopback addresses");
        std::process::exit(2);
    }
    let mut i = 3;
    while i + 1 < args.len() {
        let v = &args[i + 1];
        match args[i].as_str() {
            "--requests" => o.requests = v.parse().unwrap_or(o.requests),
            "--window" => o.window = v.parse().unwrap_or(o.window),
            "--conns" => o.conns = v.parse().unwrap_or(o.conns),
            "--torrents" => o.torrents = v.parse().unwrap_or(o.torrents).max(1),
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let r = match proto.as_str() {
        "udp" => run_udp(addr, &o),
        "http" => run_http(addr, &o),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("tracker_load: {e}");
        std::process::exit(1);
    }
}
