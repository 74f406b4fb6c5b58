//! The reference for our transport's speed: plain `quinn` (async, tokio, kernel UDP with its
//! GSO/GRO) moving one stream over 127.0.0.1 with the same TLS and window settings as ours.
//!
//!   quinn_loopback server [ADDR]       prints "listening <addr>", takes one stream, exits
//!   quinn_loopback client ADDR [MiB]   sends, waits until the server has it all, prints
//!                                      "goodput_mbit=<n> bytes=<n> seconds=<s>"
//!   quinn_loopback [MiB]               both in one process (the old reference)
//!
//! The two-process form is the fair reference (our own bwtest also runs as two processes).

use std::net::SocketAddr;
use std::time::Instant;

use btscion::quic::config::{client_config, server_config, SERVER_NAME};
use btscion::quic::QuicTuning;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib = |i: usize| -> anyhow::Result<u64> {
        Ok(args.get(i).map(|s| s.parse()).transpose()?.unwrap_or(1024))
    };
    match args.first().map(String::as_str) {
        Some("server") => {
            let addr = args.get(1).map_or("127.0.0.1:0", String::as_str).parse()?;
            let server = quinn::Endpoint::server(server_config(&QuicTuning::default())?, addr)?;
            println!("listening {}", server.local_addr()?);
            let got = receive_one(&server).await?;
            server.wait_idle().await;
            eprintln!("received {got} bytes");
        }
        Some("client") => {
            let addr: SocketAddr = args.get(1).expect("client ADDR [MiB]").parse()?;
            report(send(addr, mib(2)? << 20).await?);
        }
        _ => {
            let server = quinn::Endpoint::server(
                server_config(&QuicTuning::default())?,
                "127.0.0.1:0".parse()?,
            )?;
            let addr = server.local_addr()?;
            let receiver = tokio::spawn(async move { receive_one(&server).await });
            let sent = send(addr, mib(0)? << 20).await?;
            assert_eq!(receiver.await??, sent.0);
            report(sent);
        }
    }
    Ok(())
}

/// Accepts one connection, reads its first stream to the end, closes; returns the bytes read.
async fn receive_one(server: &quinn::Endpoint) -> anyhow::Result<u64> {
    let conn = server
        .accept()
        .await
        .ok_or_else(|| anyhow::anyhow!("endpoint closed"))?
        .await?;
    let (_, mut recv) = conn.accept_bi().await?;
    let mut n = 0u64;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        n += chunk.bytes.len() as u64;
    }
    conn.close(0u32.into(), b"done");
    Ok(n)
}

/// Sends `total` bytes on one stream and waits for the receiver's close (so the time covers
/// delivery, not just queueing); returns (bytes, seconds).
async fn send(addr: SocketAddr, total: u64) -> anyhow::Result<(u64, f64)> {
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    client.set_default_client_config(client_config(&QuicTuning::default())?);
    let conn = client.connect(addr, SERVER_NAME)?.await?;
    let (mut send, _) = conn.open_bi().await?;
    let block = bytes::Bytes::from(vec![0u8; 64 * 1024]);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        send.write_chunk(block.clone()).await?;
        sent += block.len() as u64;
    }
    send.finish()?;
    conn.closed().await;
    Ok((sent, start.elapsed().as_secs_f64()))
}

fn report((bytes, secs): (u64, f64)) {
    println!(
        "goodput_mbit={:.1} bytes={bytes} seconds={secs:.3}",
        bytes as f64 * 8.0 / secs / 1e6
    );
}
