//! Streaming end to end (issue 26): a real daemon downloads a multi-file torrent from a real
//! seeder (our single-shot client over TCP, under a download limit so the order of pieces
//! shows) and serves a file's bytes over HTTP range requests while it downloads — a range in
//! the middle of a skipped file comes back byte-exact and long before the file is complete
//! (its pieces were fetched first, nearly nothing else was), a seek to the end works, the
//! whole of a small file comes back, and bad ranges, bad indexes and missing or forged play
//! links are refused with their status.

mod common;

use std::path::Path;
use std::time::Duration;

use common::clients::{free_port, our_tcp_seeder, NO_DAEMON};
use common::daemons::{state, Daemon};
use common::{make_torrent, write_random};
use serde_json::{json, Value};

const PIECE: u32 = 256 * 1024;
const TOKEN: &str = "stream-test-token";
/// The torrent's download limit while streaming: the "movie" takes ~25 s at it.
const LIMIT: u64 = 1 << 20;

/// What a raw HTTP request got back.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// `method` on `path` of the daemon, with the token (or not) and a `Range` header (or not).
fn request(d: &Daemon, method: &str, path: &str, token: bool, range: Option<&str>) -> Answer {
    let mut b = ureq::http::Request::builder()
        .method(method)
        .uri(d.url(path));
    if token {
        b = b.header("authorization", format!("Bearer {TOKEN}"));
    }
    if let Some(r) = range {
        b = b.header("range", r);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut r = agent
        .run(b.body(()).unwrap())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}; log:\n{}", d.log_text()));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

#[test]
fn a_file_streams_while_it_downloads_its_range_first() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src/show");
    // Sizes off the piece grid: the movie starts inside a's last piece, ends inside c's first.
    let movie_len = (24 << 20) + 12_345;
    write_random(&src.join("a.bin"), 1_000_003, 1);
    write_random(&src.join("movie.mkv"), movie_len, 2);
    write_random(&src.join("z.txt"), 777_777, 3);
    let movie = std::fs::read(src.join("movie.mkv")).unwrap();
    let small = std::fs::read(src.join("z.txt")).unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    make_torrent(&src, &root.join("show.torrent"), Some(PIECE));
    let (_seeder, seeder_addr) =
        our_tcp_seeder(&root.join("show.torrent"), &src, None, work.path());

    let args = vec![
        format!("--download-root={}", root.display()),
        format!("--tcp-listen=127.0.0.1:{}", free_port()),
    ];
    let envs = [
        ("SCION_DAEMON_ADDRESS", NO_DAEMON.to_string()),
        ("BTS_HTTP_TOKEN", TOKEN.to_string()),
    ];
    let d = Daemon::start(&work.path().join("state"), &args, &envs);
    let added = d.ok(
        "POST",
        "/api/v1/torrents",
        Some(json!({
            "torrent_path": "show.torrent",
            "out_dir": "dl",
            "paused": true,
            "peers": [seeder_addr],
        })),
    );
    let ih = added["info_hash"].as_str().unwrap().to_string();
    d.wait_torrent(&ih, Duration::from_secs(60), |t| state(t) == "paused");
    let names: Vec<String> = d
        .files(&ih)
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.bin", "movie.mkv", "z.txt"]);
    let (a, m, z) = (0, 1, 2);

    // Only a is wanted: it arrives, the movie and z are skipped (not on disk).
    d.ok(
        "PUT",
        &format!("/api/v1/torrents/{ih}/files"),
        Some(json!({"priorities": {"1": "skip", "2": "skip"}})),
    );
    d.ok("POST", &format!("/api/v1/torrents/{ih}/resume"), None);
    d.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    assert_eq!(d.files(&ih)[a]["progress"], 1.0);
    let data = root.join("dl/show");
    assert!(!data.join("movie.mkv").exists());
    d.ok(
        "PUT",
        &format!("/api/v1/torrents/{ih}/limits"),
        Some(json!({"download_bps": LIMIT, "upload_bps": null})),
    );

    let stream = |i: usize| format!("/api/v1/torrents/{ih}/files/{i}/stream");

    // HEAD answers what a player needs to know, without waiting for any piece.
    let head = request(&d, "HEAD", &stream(m), true, None);
    assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&head.body));
    assert_eq!(head.header("content-length"), movie_len.to_string());
    assert_eq!(head.header("accept-ranges"), "bytes");
    assert_eq!(head.header("content-type"), "video/x-matroska");
    assert!(head.body.is_empty());
    assert_eq!(d.files(&ih)[m]["priority"], "skip", "HEAD changes nothing");

    // A range in the middle of the (skipped) movie: it is wanted again, and that range comes
    // back byte-exact before nearly anything else of the movie was fetched.
    let (from, to) = (12 << 20, (13 << 20) - 1);
    let mid = request(
        &d,
        "GET",
        &stream(m),
        true,
        Some(&format!("bytes={from}-{to}")),
    );
    assert_eq!(mid.status, 206, "{}", String::from_utf8_lossy(&mid.body));
    assert_eq!(
        mid.header("content-range"),
        format!("bytes {from}-{to}/{movie_len}")
    );
    assert!(mid.body == movie[from..=to], "the middle range differs");
    let list = d.files(&ih);
    assert_eq!(list[m]["priority"], "normal", "streaming wants the file");
    let done = list[m]["done"].as_u64().unwrap();
    // The range is 4 pieces; with the pieces in flight and a snapshot up to a second old at
    // the limit, a few more. Rarest-first without deadlines would have most of the movie.
    assert!(
        done < 8 << 20,
        "{done} bytes of the movie were verified when its middle range was served"
    );
    assert_eq!(list[z]["priority"], "skip");
    assert_eq!(list[z]["done"], 0);
    assert!(
        !data.join("z.txt").exists(),
        "a skipped file stays uncreated"
    );

    // A seek to the end, both ways of asking for it.
    let tail = request(&d, "GET", &stream(m), true, Some("bytes=-1000"));
    assert_eq!(tail.status, 206);
    assert_eq!(
        tail.header("content-range"),
        format!("bytes {}-{}/{movie_len}", movie_len - 1000, movie_len - 1)
    );
    assert!(tail.body == movie[movie_len - 1000..]);
    let last = request(
        &d,
        "GET",
        &stream(m),
        true,
        Some(&format!("bytes={}-", movie_len - 10)),
    );
    assert_eq!(last.status, 206);
    assert!(last.body == movie[movie_len - 10..]);

    // The whole of a small file, no Range: 200.
    let whole = request(&d, "GET", &stream(z), true, None);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), "text/plain; charset=utf-8");
    assert!(whole.body == small, "z.txt differs");

    // Past the end: 416 with the length; bad ranges and indexes: 400/404 with a reason.
    let past = request(
        &d,
        "GET",
        &stream(m),
        true,
        Some(&format!("bytes={movie_len}-")),
    );
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), format!("bytes */{movie_len}"));
    assert_eq!(past.json()["kind"], "bad_range");
    for bad in ["bytes=5-1", "bytes=0-1,4-5", "lines=1-2", "bytes=x-"] {
        let a = request(&d, "GET", &stream(m), true, Some(bad));
        assert_eq!(a.status, 400, "{bad}");
        assert!(
            a.json()["error"].as_str().unwrap().contains("Range"),
            "{bad}"
        );
    }
    let a = request(&d, "GET", &stream(3), true, None);
    assert_eq!(a.status, 404);
    assert!(a.json()["error"].as_str().unwrap().contains("has 3 files"));
    assert_eq!(
        request(
            &d,
            "GET",
            &format!("/api/v1/torrents/{ih}/files/one/stream"),
            true,
            None
        )
        .status,
        400
    );
    let unknown = format!("/api/v1/torrents/{}/files/0/stream", "0".repeat(40));
    assert_eq!(request(&d, "GET", &unknown, true, None).status, 404);

    // Without the token: 401; a play link's signature opens this torrent's streams only.
    assert_eq!(request(&d, "GET", &stream(z), false, None).status, 401);
    let access = d.ok("GET", &format!("/api/v1/torrents/{ih}/stream_access"), None);
    let sig = access["sig"].as_str().unwrap();
    assert!(!sig.contains(TOKEN));
    let signed = request(
        &d,
        "GET",
        &format!("{}?sig={sig}", stream(z)),
        false,
        Some("bytes=0-99"),
    );
    assert_eq!(signed.status, 206);
    assert!(signed.body == small[..100]);
    let flipped = if sig.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}?sig={}{flipped}", stream(z), &sig[..sig.len() - 1]);
    assert_eq!(request(&d, "GET", &forged, false, None).status, 401);
    let elsewhere = format!(
        "/api/v1/torrents/{}/files/0/stream?sig={sig}",
        "0".repeat(40)
    );
    assert_eq!(request(&d, "GET", &elsewhere, false, None).status, 401);
    assert!(!d.log_text().contains(TOKEN), "the token is never logged");

    // The movie still completes, byte for byte.
    d.ok(
        "PUT",
        &format!("/api/v1/torrents/{ih}/limits"),
        Some(json!({"download_bps": null, "upload_bps": null})),
    );
    d.wait_torrent(&ih, Duration::from_secs(120), |t| state(t) == "seeding");
    same(&src.join("movie.mkv"), &data.join("movie.mkv"));
}

fn same(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{} differs from {}", b.display(), a.display());
}
