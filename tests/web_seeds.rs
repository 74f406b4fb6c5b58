//! Web seeds (BEP 19) with real components on loopback: Debian's nginx serves the data of a
//! single-file and a multi-file torrent (made by mktorrent with `-w`), and our daemon
//! downloads both with no peer at all, byte-exact, over HTTP Range requests. A hostile web
//! server of our own (wrong bytes, short bodies, 500s, a slow drip) sits beside nginx in a
//! torrent's url-list: the download still completes from nginx, byte-exact, and each bad seed's
//! status names its problem; the liar is dropped.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clients::*;
use common::daemons::{state, Daemon};
use common::*;
use serde_json::Value;

/// nginx serving `www` on 127.0.0.1 (one process, no workers, everything under `dir`).
fn nginx(dir: &Path, www: &Path) -> (Client, u16) {
    let dir = dir.join("nginx");
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  default_type application/octet-stream;\n\
           client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
           fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
           scgi_temp_path {d}/tmp/scgi;\n\
           server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
        www.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut c = Command::new("nginx");
    c.arg("-e")
        .arg(dir.join("startup.log"))
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf_path);
    let p = Client::spawn(c, dir.join("nginx.log"));
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (p, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "nginx did not start (scripts/install-deps.sh installs it); log:\n{}",
        p.log()
    );
}

/// A torrent of `src` by mktorrent with web seeds `urls` (32 KiB pieces).
fn mktorrent(src: &Path, out: &Path, urls: &[String]) {
    let o = Command::new("mktorrent")
        .args(["-l", "15", "-w", &urls.join(",")])
        .arg("-o")
        .arg(out)
        .arg(src)
        .output()
        .expect("mktorrent (Debian package)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn start_daemon(dir: &Path, name: &str) -> Daemon {
    Daemon::start(&dir.join(name), &["--sciond=127.0.0.1:9".to_string()], &[])
}

fn add(d: &Daemon, torrent: &Path) -> String {
    let out = d.cli(&["add", torrent.to_str().unwrap()]);
    assert_eq!(out.0, 0, "{out:?}");
    let ih = info_hash_of(torrent);
    ih.iter().map(|b| format!("{b:02x}")).collect()
}

fn seeds(t: &Value) -> &Vec<Value> {
    t["web_seeds"].as_array().expect("web_seeds")
}

fn seed<'a>(t: &'a Value, url: &str) -> &'a Value {
    seeds(t)
        .iter()
        .find(|s| s["url"] == url)
        .unwrap_or_else(|| panic!("no web seed {url} in {t:#}"))
}

fn error_of(t: &Value, url: &str) -> String {
    seed(t, url)["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// nginx alone: a single-file torrent (its URL the file; an ftp:// entry beside it is ignored
/// with a reason) and a multi-file torrent (its URL a directory; names with spaces and UTF-8
/// percent-encoded) download with no peers, byte-exact, over Range requests (206s in nginx's
/// log); the bytes are counted as the web seed's and the torrent's; `show` lists the seeds. A
/// single-shot download of the single-file torrent, with no peer given, completes from nginx.
#[test]
fn nginx_alone_serves_single_and_multi_file_torrents() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let single = www.join("single.bin");
    write_random(&single, 1_500_001, 31);
    let multi = www.join("multi set");
    multi_file_content(&multi);
    write_random(&multi.join("with space/é & more.bin"), 100_003, 32);
    let (_nginx, port) = nginx(dir.path(), &www);

    let file_url = format!("http://127.0.0.1:{port}/single.bin");
    let ftp = "ftp://127.0.0.1/single.bin".to_string();
    let dir_url = format!("http://127.0.0.1:{port}/");
    let t_single = dir.path().join("single.torrent");
    mktorrent(&single, &t_single, &[file_url.clone(), ftp.clone()]);
    let t_multi = dir.path().join("multi.torrent");
    mktorrent(&multi, &t_multi, std::slice::from_ref(&dir_url));

    let leecher = start_daemon(dir.path(), "leecher");
    let ih_single = add(&leecher, &t_single);
    let ih_multi = add(&leecher, &t_multi);
    for (ih, src, url) in [
        (&ih_single, &single, &file_url),
        (&ih_multi, &multi, &dir_url),
    ] {
        let t = leecher.wait_torrent(ih, Duration::from_secs(120), |t| state(t) == "seeding");
        same_tree(
            src,
            &leecher
                .data_dir
                .join("downloads")
                .join(src.file_name().unwrap()),
        );
        assert!(t["peers"].as_array().unwrap().is_empty(), "{t:#}");
        let size = t["size"].as_u64().unwrap();
        let s = seed(&t, url);
        assert!(s["bytes_down"].as_u64().unwrap() >= size, "{s:#}");
        assert!(t["bytes_down"].as_u64().unwrap() >= size, "{t:#}");
        assert!(s["last_error"].is_null(), "{s:#}");
    }
    let t = leecher.torrent(&ih_single);
    let f = seed(&t, &ftp);
    assert_eq!(f["state"], "ignored", "{f:#}");
    assert!(error_of(&t, &ftp).contains("ftp"), "{f:#}");

    let log = std::fs::read_to_string(dir.path().join("nginx/access.log")).unwrap();
    assert!(
        log.contains("\" 206 "),
        "no range answers in nginx's log:\n{log}"
    );
    assert!(
        log.contains("/multi%20set/with%20space/%C3%A9%20%26%20more.bin"),
        "the multi-file path was not percent-encoded as expected:\n{log}"
    );

    let out = leecher.cli(&["show", &ih_single]);
    assert_eq!(out.0, 0, "{out:?}");
    assert!(
        out.1.contains("WEB SEEDS") && out.1.contains(&file_url) && out.1.contains("ignored"),
        "{}",
        out.1
    );

    // `info` lists the url-list, the unusable entry with its reason.
    let o = Command::new(bin())
        .arg("info")
        .arg(&t_single)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains(&format!("web seed:     {file_url}"))
            && text.contains(&format!("web seed:     {ftp} (ignored: scheme \"ftp\"")),
        "{text}"
    );

    // A single-shot download needs no peer either: the torrent's web seed is its source.
    let dl = dir.path().join("single-shot.bin");
    let o = download_over_ip(&t_single, &dl, &[]);
    same_tree(&single, &dl);
    assert!(
        o.stdout.contains(&format!("web seed {file_url}")),
        "{}",
        o.stdout
    );
}

/// How the hostile server answers a path's first segment.
#[derive(Clone, Copy)]
enum Mode {
    /// The right headers, every byte flipped.
    Lies,
    /// The right headers, half the body, then the connection closes.
    Short,
    /// 500 Internal Server Error.
    Err,
    /// The right headers, then one byte every 100 ms.
    Slow,
}

/// A web server of our own that answers Range requests for the files under `www` as `Mode`
/// says (`/lies/…`, `/short/…`, `/err/…`, `/slow/…`).
fn hostile(www: PathBuf) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let www = www.clone();
            std::thread::spawn(move || {
                let _ = answer(conn, &www);
            });
        }
    });
    port
}

fn answer(conn: TcpStream, www: &Path) -> std::io::Result<()> {
    let mut r = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    r.read_line(&mut first)?;
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap();
            range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
        }
    }
    let path = first.split(' ').nth(1).unwrap_or("/");
    let (mode, rest) = path[1..].split_once('/').unwrap_or(("", ""));
    let mode = match mode {
        "lies" => Mode::Lies,
        "short" => Mode::Short,
        "err" => Mode::Err,
        _ => Mode::Slow,
    };
    let mut conn = conn;
    let data = std::fs::read(www.join(rest))?;
    let (a, b) = range.unwrap_or((0, data.len() as u64 - 1));
    let body = &data[a as usize..=b as usize];
    if let Mode::Err = mode {
        return conn.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let head = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len(),
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    match mode {
        Mode::Lies => {
            let flipped: Vec<u8> = body.iter().map(|x| !x).collect();
            conn.write_all(&flipped)
        }
        Mode::Short => conn.write_all(&body[..body.len() / 2]),
        Mode::Slow => {
            for x in body {
                conn.write_all(&[*x])?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
        Mode::Err => Ok(()),
    }
}

/// A torrent whose url-list holds a liar, a short-body server, a 500 server and a slow drip
/// before nginx: it completes byte-exact from nginx; the liar is dropped for failing the hash
/// check, the others back off and their status names the problem.
#[test]
fn bad_web_seeds_are_backed_off_or_dropped_and_never_spoil_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let single = www.join("data.bin");
    write_random(&single, 1_200_007, 41);
    let (_nginx, port) = nginx(dir.path(), &www);
    let bad = hostile(www.clone());
    let url = |mode: &str| format!("http://127.0.0.1:{bad}/{mode}/data.bin");
    let (lies, short, err, slow) = (url("lies"), url("short"), url("err"), url("slow"));
    let good = format!("http://127.0.0.1:{port}/data.bin");
    let torrent = dir.path().join("d.torrent");
    let all = [
        lies.clone(),
        short.clone(),
        err.clone(),
        slow.clone(),
        good.clone(),
    ];
    mktorrent(&single, &torrent, &all);

    let leecher = start_daemon(dir.path(), "leecher");
    let ih = add(&leecher, &torrent);
    leecher.wait_torrent(&ih, Duration::from_secs(180), |t| state(t) == "seeding");
    same_tree(&single, &leecher.data_dir.join("downloads/data.bin"));
    // Every bad seed's status says what went wrong (the slow one after its drip times out).
    let t = leecher.wait_torrent(&ih, Duration::from_secs(90), |t| {
        seed(t, &lies)["state"] == "dropped"
            && error_of(t, &short).contains("body ended")
            && error_of(t, &err).contains("500")
            && error_of(t, &slow).contains("too slow")
    });
    assert!(error_of(&t, &lies).contains("hash check"), "{t:#}");
    for u in [&short, &err, &slow] {
        let s = seed(&t, u);
        assert!(s["failures"].as_u64().unwrap() >= 1, "{s:#}");
    }
    let g = seed(&t, &good);
    assert!(g["last_error"].is_null(), "{g:#}");
    assert!(g["bytes_down"].as_u64().unwrap() > 0, "{g:#}");
    // The data on disk is the original, after all of it.
    same_tree(&single, &leecher.data_dir.join("downloads/data.bin"));
}
