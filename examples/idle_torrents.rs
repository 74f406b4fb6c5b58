//! Idle cost of many torrents in one client: loads N tiny generated torrents (seeding, no
//! peers) into one `Client`, lets it idle, and prints memory (RSS) and CPU use.
//!
//! `cargo run --release --example idle_torrents -- [TORRENTS=1000] [SECONDS=30]`
//!
//! Runs without a SCION daemon (TCP only): the point is the per-torrent cost of the engine.

use std::time::{Duration, Instant};

use btscion::client::control::{AddTorrent, Command, TorrentSource, TorrentState};
use btscion::client::{self, ClientConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of the process.
fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let secs: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src");
    std::fs::create_dir(&src)?;
    let mut torrents = Vec::with_capacity(n);
    for i in 0..n {
        let f = src.join(format!("t{i:05}"));
        let data: Vec<u8> = (0..16384u32).map(|k| (k as usize ^ i) as u8).collect();
        std::fs::write(&f, data)?;
        torrents.push(btscion::torrent::meta::create(
            &f,
            Some(16384),
            vec![],
            false,
            None,
        )?);
    }
    let rss_before = rss_kib();
    let (handle, side) = client::channel();
    let mut cfg = ClientConfig::new(dir.path().join("state"));
    // No daemon on this address: TCP only, as on a host without SCION.
    cfg.sciond = Some("127.0.0.1:1".into());
    let runner = std::thread::spawn(move || client::run(cfg, side));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let load_start = Instant::now();
    rt.block_on(async {
        for bytes in torrents {
            handle
                .call(|r| {
                    Command::Add(
                        Box::new(AddTorrent {
                            source: TorrentSource::Metainfo(bytes),
                            // The data is where it was created: seeding.
                            out_dir: src.clone(),
                            paused: false,
                            peers: vec![],
                            limits: Default::default(),
                            files: Default::default(),
                            labels: Default::default(),
                            path_rules: Default::default(),
                        }),
                        r,
                    )
                })
                .await?;
        }
        // Wait until every torrent is checked and seeding.
        let mut rx = handle.subscribe();
        loop {
            let s = rx.borrow_and_update().clone();
            let seeding = s
                .torrents
                .iter()
                .filter(|t| t.state == TorrentState::Seeding)
                .count();
            if seeding == n {
                break;
            }
            rx.changed().await?;
        }
        anyhow::Ok(())
    })?;
    let loaded_in = load_start.elapsed();
    let rss_loaded = rss_kib();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let rss_end = rss_kib();
    rt.block_on(handle.call(Command::Shutdown))?;
    runner
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    let idle_cpu = (cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64() * 100.0;
    println!("torrents:            {n}");
    println!("loaded and checked:  {:.2} s", loaded_in.as_secs_f64());
    println!("RSS before client:   {rss_before} KiB");
    println!("RSS loaded:          {rss_loaded} KiB");
    println!("RSS after {secs} s idle: {rss_end} KiB");
    println!(
        "RSS per torrent:     {:.1} KiB",
        (rss_end.saturating_sub(rss_before)) as f64 / n as f64
    );
    println!("idle CPU:            {idle_cpu:.3} % of one core over {secs} s");
    Ok(())
}
