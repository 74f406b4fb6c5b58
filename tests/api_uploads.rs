//! Large `.torrent` uploads against a real daemon: the memory they take is bounded however
//! many arrive at once, and every upload gets its answer.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::daemons::Daemon;
use common::{make_torrent, write_random};

/// Concurrent uploads, half raw `application/x-bittorrent`, half `multipart/form-data`.
const UPLOADS: usize = 8;
/// Each body: just under the 64 MiB body limit, so each is taken.
const BODY: usize = 60 << 20;
/// The daemon's peak resident set (VmHWM) may not pass this. The uploads are 8 × 60 MiB; before,
/// every body was read whole at once and copied again (VmHWM 487 MiB here with 8 raw uploads).
/// Now at most 128 MiB of bodies (two of these) are in memory at once: that, the parse of one
/// and the idle daemon (~30 MiB) stay well under 300 MiB.
const PEAK_BOUND: u64 = 300 << 20;

/// A bencoded dictionary of `len` bytes with no `info`: read whole, parsed, refused (422).
fn big_bencode(len: usize, seed: u8) -> Vec<u8> {
    let head = b"d7:comment".to_vec();
    // d7:comment<N>:<bytes>e — N chosen so the total is `len`.
    let mut n = len - head.len() - 2;
    loop {
        let prefix = format!("{n}:");
        let total = head.len() + prefix.len() + n + 1;
        if total == len {
            let mut v = Vec::with_capacity(len);
            v.extend_from_slice(&head);
            v.extend_from_slice(prefix.as_bytes());
            v.resize(v.len() + n, b'a' + seed % 26);
            v.push(b'e');
            return v;
        }
        n -= total - len;
    }
}

/// One HTTP/1.1 request on a fresh connection; returns the status line's code and the whole
/// response (headers and body).
fn post(api: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(api).expect("connect to the API");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A refusal before the whole body is read may close the connection under us; the answer
    // is still there to read.
    let _ = s.write_all(body);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn multipart(torrent: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----bts-upload-test-boundary";
    let mut body = Vec::with_capacity(torrent.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"paused\"\r\n\r\ntrue\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"torrent\"; \
             filename=\"big.torrent\"\r\nContent-Type: application/x-bittorrent\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(torrent);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn concurrent_large_uploads_stay_within_a_memory_bound_and_all_get_an_answer() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let d = Daemon::start(
        &work.path().join("state"),
        &[format!("--download-root={}", root.display())],
        &[],
    );
    let pid = d.child.id();
    let before = status_kib(pid, "VmRSS:") << 10;

    // VmRSS sampled while the uploads run (VmHWM, the kernel's own peak, is the bound checked).
    let stop = Arc::new(AtomicBool::new(false));
    let sampled_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), sampled_peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(status_kib(pid, "VmRSS:") << 10, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let uploads: Vec<_> = (0..UPLOADS)
        .map(|i| {
            let api = d.api.clone();
            std::thread::spawn(move || {
                let torrent = big_bencode(BODY, i as u8);
                if i % 2 == 0 {
                    post(
                        &api,
                        "/api/v1/torrents?paused=true",
                        "application/x-bittorrent",
                        &torrent,
                    )
                } else {
                    let (ct, body) = multipart(&torrent);
                    drop(torrent);
                    post(&api, "/api/v1/torrents", &ct, &body)
                }
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = uploads.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let hwm = status_kib(pid, "VmHWM:") << 10;
    eprintln!(
        "RSS before {} MiB, sampled peak {} MiB, VmHWM {} MiB",
        before >> 20,
        sampled_peak.load(Ordering::Relaxed) >> 20,
        hwm >> 20
    );

    for (i, (code, text)) in answers.iter().enumerate() {
        // Read whole and refused as a torrent (no `info`), or told to come back later.
        let busy = *code == 503 && text.to_ascii_lowercase().contains("retry-after:");
        assert!(
            *code == 422 || busy,
            "upload {i} answered {code}: {}",
            text.chars().take(400).collect::<String>()
        );
        if *code == 422 {
            assert!(text.contains("bad_torrent"), "upload {i}: {text}");
        }
    }
    assert!(
        hwm <= PEAK_BOUND,
        "the daemon's peak RSS was {} MiB during {UPLOADS} uploads of {} MiB (bound {} MiB)",
        hwm >> 20,
        BODY >> 20,
        PEAK_BOUND >> 20
    );

    // Still serving: a real torrent uploaded both ways is added.
    add_small(&d, &root);
}

fn add_small(d: &Daemon, root: &Path) {
    write_random(&root.join("small.bin"), 100_000, 3);
    make_torrent(&root.join("small.bin"), &root.join("small.torrent"), None);
    let t = std::fs::read(root.join("small.torrent")).unwrap();
    let (code, text) = post(
        &d.api,
        "/api/v1/torrents?paused=true",
        "application/x-bittorrent",
        &t,
    );
    assert_eq!(code, 201, "{text}");
    let (ct, body) = multipart(&t);
    let (code, text) = post(&d.api, "/api/v1/torrents", &ct, &body);
    assert_eq!(code, 409, "the same torrent again is a duplicate: {text}");
}

#[test]
fn a_body_declared_past_the_limit_is_refused_before_it_is_read() {
    let work = tempfile::tempdir().unwrap();
    let d = Daemon::start(&work.path().join("state"), &[], &[]);
    let mut s = TcpStream::connect(&d.api).unwrap();
    let head = format!(
        "POST /api/v1/torrents HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-bittorrent\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        d.api,
        (64u64 << 20) + 1
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
