//! The reference for our transport's speed: plain `quinn` (async, tokio, kernel UDP) moving
//! one stream over 127.0.0.1 with the same TLS and window settings as ours.
//!
//!   cargo run --release --example quinn_loopback -- [MiB]      prints "goodput_mbit=<n>"

use std::net::SocketAddr;
use std::time::Instant;

use btscion::quic::config::{client_config, server_config};
use btscion::quic::QuicTuning;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1024);
    let total = mib << 20;
    let tuning = QuicTuning::default();
    let server = quinn::Endpoint::server(server_config(&tuning)?, "127.0.0.1:0".parse()?)?;
    let addr: SocketAddr = server.local_addr()?;
    let receiver = tokio::spawn(async move {
        let conn = server
            .accept()
            .await
            .expect("incoming")
            .await
            .expect("handshake");
        let (_, mut recv) = conn.accept_bi().await.expect("stream");
        let mut n = 0u64;
        while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.expect("read") {
            n += chunk.bytes.len() as u64;
        }
        conn.close(0u32.into(), b"done");
        n
    });
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    client.set_default_client_config(client_config(&tuning)?);
    let conn = client
        .connect(addr, btscion::quic::config::SERVER_NAME)?
        .await?;
    let (mut send, _) = conn.open_bi().await?;
    let block = bytes::Bytes::from(vec![0u8; 64 * 1024]);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        send.write_chunk(block.clone()).await?;
        sent += block.len() as u64;
    }
    send.finish()?;
    let got = receiver.await?;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, sent);
    println!(
        "goodput_mbit={:.1} bytes={got} seconds={secs:.3}",
        got as f64 * 8.0 / secs / 1e6
    );
    Ok(())
}
