//! Hostile QUIC/SCION load for `perf/load_peers.sh --quic`: N lanes to one seeder (the lanes'
//! ALPN, quinn over SCION), each after the BitTorrent handshake either idle or flooding
//! requests, cancels and haves without ever reading. Runs until killed; prints every few
//! seconds how many lanes are open and how many flooding ones the seeder has closed.
//!
//!   quic_load --sciond ADDR --target ISD-AS,[IP]:PORT --info-hash HEX --pieces P --peers N

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use btscion::discovery::scion_http::ScionQuicEndpoint;
use btscion::quic::config::ALPN;
use btscion::scion::ScionAddr;

fn arg(args: &[String], name: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("missing {name}"))
        .clone()
}

fn msg(id: u8, body: &[u8]) -> Vec<u8> {
    let mut m = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(body);
    m
}

fn block(id: u8, index: u32, begin: u32) -> Vec<u8> {
    let mut b = index.to_be_bytes().to_vec();
    b.extend(begin.to_be_bytes());
    b.extend(16384u32.to_be_bytes());
    msg(id, &b)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sciond = arg(&args, "--sciond");
    let target: ScionAddr = arg(&args, "--target").parse().expect("a SCION address");
    let info_hash = btscion::client::control::parse_info_hash(&arg(&args, "--info-hash"))
        .expect("40 hex digits");
    let pieces: u32 = arg(&args, "--pieces").parse().unwrap();
    let peers: usize = arg(&args, "--peers").parse().unwrap();

    let endpoint = Arc::new(
        ScionQuicEndpoint::bind_alpn(&sciond, None, 0, ALPN, false)
            .await
            .expect("a SCION socket"),
    );
    let mut flood = msg(2, &[]);
    for r in 0..20_000u32 {
        let (index, begin) = (r % pieces, (r % 16) * 16384);
        flood.extend(block(6, index, begin));
        flood.extend(block(8, index, begin));
        flood.extend(msg(4, &index.to_be_bytes()));
    }
    let flood = Arc::new(flood);
    let open = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    // Connections are opened 32 at a time; each task then floods or idles until closed.
    let slots = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..peers {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (endpoint, flood, open, closed) = (
            endpoint.clone(),
            flood.clone(),
            open.clone(),
            closed.clone(),
        );
        tokio::spawn(async move {
            let conn = match endpoint.connect(target).await {
                Ok(c) => c,
                Err(e) => return eprintln!("load: connection {i} failed: {e}"),
            };
            let (mut send, recv) = match conn.open_bi().await {
                Ok(s) => s,
                Err(e) => return eprintln!("load: stream {i} failed: {e}"),
            };
            let mut hs = vec![19u8];
            hs.extend_from_slice(b"BitTorrent protocol");
            hs.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 4]);
            hs.extend_from_slice(&info_hash);
            hs.extend_from_slice(format!("-LQ0001-{i:012}").as_bytes());
            let _ = send.write_all(&hs).await;
            open.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            let floods = i % 2 == 1;
            if floods {
                // Never reads `recv`: the seeder's replies pile up on its side.
                while send.write_all(&flood).await.is_ok() {}
            }
            conn.closed().await;
            closed.fetch_add(floods as usize, Ordering::Relaxed);
            drop((send, recv));
        });
    }
    println!("load: {peers} connections started ({} flooding)", peers / 2);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!(
            "load: {} lanes open, {} flooding lanes closed by the seeder",
            open.load(Ordering::Relaxed),
            closed.load(Ordering::Relaxed)
        );
    }
}
