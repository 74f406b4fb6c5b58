//! The announcer against our tracker server and against hostile fake trackers, on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bt_tracker::client::{
    self, AnnouncerConfig, AnnouncerStatus, BoxFuture, PeersNotTaken, TorrentLink, TrackerState,
    TransferStats,
};
use bt_tracker::http::ResponseLimits;
use bt_tracker::server::{self, ServerConfig, TrackerConfig};
use bt_tracker::udp::{self, Retransmit};
use bt_tracker::PeerAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct TestLink {
    peers: Mutex<Vec<PeerAddr>>,
    stats: Mutex<TransferStats>,
}

impl TorrentLink for TestLink {
    fn stats(&self) -> Option<TransferStats> {
        Some(*self.stats.lock().unwrap())
    }
    fn add_peers(&self, peers: Vec<PeerAddr>) -> BoxFuture<'_, Result<usize, PeersNotTaken>> {
        Box::pin(async move {
            let mut p = self.peers.lock().unwrap();
            let before = p.len();
            for x in peers {
                if !p.contains(&x) {
                    p.push(x);
                }
            }
            Ok(p.len() - before)
        })
    }
}

fn config(port: u16, scion: Option<&str>) -> AnnouncerConfig {
    let mut peer_id = *b"-BS0001-test00000000";
    peer_id[19] = port as u8;
    AnnouncerConfig {
        peer_id,
        port,
        scion: scion.map(|s| s.parse().unwrap()),
        http_timeout: Duration::from_secs(2),
        udp_retransmit: Retransmit {
            base: Duration::from_millis(200),
            max_retransmits: 1,
        },
        min_interval: Duration::from_millis(200),
        backoff_base: Duration::from_secs(30),
        stop_timeout: Duration::from_secs(2),
        stats_poll: Duration::from_millis(50),
        ..Default::default()
    }
}

fn our_server(interval: Duration) -> server::RunningServer {
    server::start(ServerConfig {
        tracker: TrackerConfig {
            interval,
            ..Default::default()
        },
        http: Some("127.0.0.1:0".parse().unwrap()),
        udp: Some("127.0.0.1:0".parse().unwrap()),
        udp_threads: 1,
        http_threads: 1,
    })
    .unwrap()
}

async fn wait_status(
    h: &client::AnnouncerHandle,
    what: &str,
    ok: impl Fn(&AnnouncerStatus) -> bool,
) -> AnnouncerStatus {
    let mut rx = h.subscribe();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = rx.borrow_and_update().clone();
            if ok(&s) {
                return s;
            }
            if rx.changed().await.is_err() {
                return s;
            }
        }
    })
    .await;
    r.unwrap_or_else(|_| panic!("timed out waiting for {what}; status: {:#?}", h.status()))
}

async fn wait_peers(link: &TestLink, want: &[PeerAddr]) {
    for _ in 0..200 {
        let p = link.peers.lock().unwrap().clone();
        if want.iter().all(|w| p.contains(w)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "peers {:?} never arrived; have {:?}",
        want,
        link.peers.lock().unwrap()
    );
}

#[tokio::test]
async fn http_and_udp_against_our_server_mix_ip_and_scion() {
    let srv = our_server(Duration::from_secs(2));
    let http = format!("http://{}/announce", srv.http_addr.unwrap());
    let udp = format!("udp://{}", srv.udp_addr.unwrap());
    let ih = [7u8; 20];

    // A: IP-only, over UDP, seeding. B: SCION-capable, over HTTP, leeching.
    let a_link = Arc::new(TestLink::default());
    let a = client::spawn(
        ih,
        vec![vec![udp.clone()]],
        config(1001, None),
        a_link.clone(),
    );
    wait_status(&a, "A working", |s| {
        s.trackers[0].state == TrackerState::Working
    })
    .await;
    let scion_b = "1-ff00:0:112,[127.0.0.1]:43000";
    let b_link = Arc::new(TestLink::default());
    *b_link.stats.lock().unwrap() = TransferStats {
        uploaded: 0,
        downloaded: 0,
        left: 100,
    };
    let b = client::spawn(
        ih,
        vec![vec![http.clone()]],
        config(1002, Some(scion_b)),
        b_link.clone(),
    );
    wait_peers(&b_link, &["127.0.0.1:1001".parse().unwrap()]).await;

    // A (IP-only) learns B by its IP address on the next announce, never by SCION.
    a.announce_now();
    wait_peers(&a_link, &["127.0.0.1:1002".parse().unwrap()]).await;
    assert!(a_link
        .peers
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.as_scion().is_none()));

    // C (SCION-capable, HTTP) gets B as a SCION peer and A by IP.
    let c_link = Arc::new(TestLink::default());
    *c_link.stats.lock().unwrap() = TransferStats {
        left: 5,
        ..Default::default()
    };
    let c = client::spawn(
        ih,
        vec![vec![http]],
        config(1003, Some("1-ff00:0:113,[127.0.0.1]:1")),
        c_link.clone(),
    );
    wait_peers(
        &c_link,
        &[scion_b.parse().unwrap(), "127.0.0.1:1001".parse().unwrap()],
    )
    .await;
    assert!(
        !c_link
            .peers
            .lock()
            .unwrap()
            .contains(&"127.0.0.1:1002".parse().unwrap()),
        "B twice"
    );

    // B completes: `completed` reaches the tracker; stop: B leaves the swarm.
    b_link.stats.lock().unwrap().left = 0;
    wait_status(&b, "completed sent", |s| s.completed_sent).await;
    assert_eq!(srv.tracker().swarms().scrape(&ih).downloaded, 1);
    assert_eq!(srv.tracker().swarms().peers(&ih).len(), 3);
    b.stop().await;
    assert_eq!(srv.tracker().swarms().peers(&ih).len(), 2);
    a.stop().await;
    c.stop().await;
    assert!(srv.tracker().swarms().peers(&ih).is_empty());
    srv.stop();
}

/// A TCP server answering every connection with `body` (after reading the request head).
async fn fake_http(body: Vec<u8>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

/// A TCP server that accepts and never answers.
async fn silent_http() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

async fn first_error(url: String, cfg: AnnouncerConfig) -> String {
    let link = Arc::new(TestLink::default());
    let h = client::spawn([1; 20], vec![vec![url]], cfg, link.clone());
    let s = wait_status(&h, "a failure", |s| s.trackers[0].last_error.is_some()).await;
    let t = &s.trackers[0];
    assert_eq!(t.state, TrackerState::BackingOff);
    assert_eq!(t.consecutive_failures, 1);
    assert!(t.next_attempt_unix_ms.is_some());
    assert!(link.peers.lock().unwrap().is_empty());
    t.last_error.clone().unwrap()
}

#[tokio::test]
async fn hostile_http_trackers_give_clear_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"d8:intervali60e5:peers12:abcdef".to_vec(), "truncated"),
        (
            b"d8:intervali60e5:peers7:abcdefge".to_vec(),
            "not a multiple of the 6-byte",
        ),
        (
            b"d8:intervali60e11:peers_scion15:abcdefghijklmnoe".to_vec(),
            "14-byte",
        ),
        (b"d14:failure reason9:forbiddene".to_vec(), "forbidden"),
        (
            [
                b"d5:peers2000000:".to_vec(),
                vec![1u8; 2_000_000],
                b"e".to_vec(),
            ]
            .concat(),
            "larger than",
        ),
        (b"<html>oops</html>".to_vec(), "not bencode"),
    ];
    for (body, hint) in cases {
        let addr = fake_http(body).await;
        let e = first_error(format!("http://{addr}/announce"), config(1, None)).await;
        assert!(e.contains(hint), "{hint}: {e}");
    }
    let addr = silent_http().await;
    let mut cfg = config(1, None);
    cfg.http_timeout = Duration::from_millis(300);
    let e = first_error(format!("http://{addr}/announce"), cfg).await;
    assert!(e.contains("no answer within"), "{e}");
}

#[tokio::test]
async fn huge_peer_list_is_capped() {
    let mut body = b"d8:intervali60e5:peers60000:".to_vec();
    for i in 0..10_000u32 {
        body.extend_from_slice(&[10, (i >> 8) as u8, i as u8, 1, 0x1a, 0xe1]);
    }
    body.push(b'e');
    let addr = fake_http(body).await;
    let link = Arc::new(TestLink::default());
    let mut cfg = config(1, None);
    cfg.limits = ResponseLimits {
        max_peers: 100,
        max_body: 1 << 20,
    };
    let h = client::spawn(
        [1; 20],
        vec![vec![format!("http://{addr}/announce")]],
        cfg,
        link.clone(),
    );
    let s = wait_status(&h, "working", |s| {
        s.trackers[0].state == TrackerState::Working
    })
    .await;
    assert_eq!(s.trackers[0].last_peers, 100);
    assert_eq!(link.peers.lock().unwrap().len(), 100);
}

/// A UDP "tracker" that answers every packet through `reply(packet) -> datagram`.
async fn fake_udp(reply: impl Fn(&[u8]) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let r = reply(&buf[..n]);
            if !r.is_empty() {
                let _ = s.send_to(&r, from).await;
            }
        }
    });
    addr
}

fn tx_of(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[12], p[13], p[14], p[15]])
}

#[tokio::test]
async fn hostile_udp_trackers_give_clear_errors() {
    // Wrong transaction id: ignored, then a timeout that says so.
    let addr = fake_udp(|p| {
        let mut b = [0u8; 16];
        udp::write_connect_response(&mut b, tx_of(p).wrapping_add(1), 5);
        b.to_vec()
    })
    .await;
    let e = first_error(format!("udp://{addr}"), config(1, None)).await;
    assert!(
        e.contains("wrong transaction id ignored") && e.contains("2 attempts"),
        "{e}"
    );

    // Wrong action: an announce reply to a connect.
    let addr = fake_udp(|p| {
        let mut b = Vec::new();
        udp::encode_announce_header(&mut b, tx_of(p), 60, 0, 0);
        b
    })
    .await;
    let e = first_error(format!("udp://{addr}"), config(1, None)).await;
    assert!(e.contains("action announce to a connect request"), "{e}");

    // Short packet.
    let addr = fake_udp(|_| vec![0, 0, 0]).await;
    let e = first_error(format!("udp://{addr}"), config(1, None)).await;
    assert!(e.contains("too short"), "{e}");

    // Error action.
    let addr = fake_udp(|p| {
        let mut b = Vec::new();
        udp::encode_error(&mut b, tx_of(p), "not today");
        b
    })
    .await;
    let e = first_error(format!("udp://{addr}"), config(1, None)).await;
    assert!(e.contains("not today"), "{e}");

    // Silence.
    let addr = fake_udp(|_| Vec::new()).await;
    let e = first_error(format!("udp://{addr}"), config(1, None)).await;
    assert!(e.contains("no answer after 2 attempts"), "{e}");
}

#[tokio::test]
async fn tiers_fail_over_and_promote() {
    let srv = our_server(Duration::from_secs(1));
    let good = format!("udp://{}", srv.udp_addr.unwrap());
    let dead = silent_http().await;
    let dead = format!("http://{dead}/announce");
    let scion = "http://[1-ff00:0:112,127.0.0.1]:6969/announce".to_string();
    let mut cfg = config(2000, None);
    cfg.http_timeout = Duration::from_millis(300);
    let link = Arc::new(TestLink::default());
    // Tier 0: a SCION tracker (unsupported: no SCION connector here) and a dead one; tier 1:
    // the good one.
    let h = client::spawn(
        [3; 20],
        vec![vec![scion.clone(), dead.clone()], vec![good.clone()]],
        cfg,
        link,
    );
    let s = wait_status(&h, "tier 1 working", |s| {
        s.trackers[2].state == TrackerState::Working
    })
    .await;
    assert_eq!(s.trackers[0].state, TrackerState::Unsupported);
    assert!(s.trackers[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("SCION"));
    assert_eq!(s.trackers[1].state, TrackerState::BackingOff);
    assert!(s.trackers[1]
        .last_error
        .as_deref()
        .unwrap()
        .contains("no answer"));
    assert_eq!(srv.tracker().swarms().peers(&[3; 20]).len(), 1);
    // Status is JSON for the API.
    let j = serde_json::to_string(&s).unwrap();
    assert!(j.contains("\"state\":\"backing_off\""), "{j}");
    h.stop().await;
    srv.stop();
}

/// An HTTP tracker answering every request with `body`, counting the announces it gets.
async fn counting_http(body: &'static [u8]) -> (SocketAddr, Arc<Mutex<u32>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                if buf[..n].starts_with(b"GET /announce") {
                    *c.lock().unwrap() += 1;
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
            });
        }
    });
    (addr, count)
}

/// Announces for `run` to a tracker answering `body`; how many announces it got.
async fn announces_in(body: &'static [u8], left: u64, run: Duration) -> u32 {
    let (addr, count) = counting_http(body).await;
    let link = Arc::new(TestLink::default());
    link.stats.lock().unwrap().left = left;
    let cfg = AnnouncerConfig {
        empty_retry_base: Duration::from_millis(300),
        ..config(7001, None)
    };
    let h = client::spawn(
        [3; 20],
        vec![vec![format!("http://{addr}/announce")]],
        cfg,
        link,
    );
    tokio::time::sleep(run).await;
    let status = h.status();
    drop(h);
    let n = *count.lock().unwrap();
    if left > 0 && n > 1 {
        assert!(status.trackers[0].empty_answers >= 1, "{status:#?}");
    }
    n
}

#[tokio::test]
async fn a_tracker_with_no_peers_is_asked_again_soon_not_after_its_interval() {
    // interval 1800 s, no peers: the leecher asks again at 0.3 s, 0.9 s, 2.1 s …
    let n = announces_in(
        b"d8:intervali1800e5:peers0:e",
        100,
        Duration::from_millis(2500),
    )
    .await;
    assert!(n >= 3, "only {n} announces in 2.5 s");
}

#[tokio::test]
async fn the_short_schedule_keeps_the_min_interval_and_spares_seeders_and_answered_leechers() {
    // A seeder needs no peers: one announce, then the interval.
    let n = announces_in(
        b"d8:intervali1800e5:peers0:e",
        0,
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(n, 1, "a seeder re-announced");
    // `min interval` 2 s holds even on the short schedule.
    let body = b"d8:intervali1800e12:min intervali2e5:peers0:e";
    let n = announces_in(body, 100, Duration::from_millis(1500)).await;
    assert_eq!(n, 1, "min interval not honoured");
    // A tracker that gave peers is asked after its interval.
    let body = b"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
    let n = announces_in(body, 100, Duration::from_millis(1500)).await;
    assert_eq!(n, 1, "re-announced although peers came");
}

/// Scrape counters from our server, over HTTP and UDP, match the swarm (one seeder, one
/// leecher).
#[tokio::test]
async fn scrape_counts_from_our_server_match_the_swarm() {
    let srv = our_server(Duration::from_secs(1800));
    let http = format!("http://{}/announce", srv.http_addr.unwrap());
    let udp = format!("udp://{}", srv.udp_addr.unwrap());
    let ih = [9; 20];
    let seeder = Arc::new(TestLink::default());
    let s = client::spawn(ih, vec![vec![http.clone()]], config(7101, None), seeder);
    wait_status(&s, "seeder announced", |s| {
        s.trackers[0].state == TrackerState::Working
    })
    .await;
    for url in [http, udp] {
        let leecher = Arc::new(TestLink::default());
        leecher.stats.lock().unwrap().left = 1000;
        let port = if url.starts_with("udp") { 7103 } else { 7102 };
        let cfg = AnnouncerConfig {
            scrape_interval: Duration::from_millis(100),
            empty_retry_base: Duration::from_millis(100),
            ..config(port, None)
        };
        let h = client::spawn(ih, vec![vec![url.clone()]], cfg, leecher);
        let st = wait_status(&h, "a scrape", |s| s.trackers[0].scrape.is_some()).await;
        let c = st.trackers[0].scrape.unwrap();
        assert_eq!((c.seeders, c.leechers), (1, 1), "{url}: {st:#?}");
        assert_eq!(st.trackers[0].scrape_error, None);
        h.stop().await;
    }
    s.stop().await;
    srv.stop();
}

/// An HTTP server answering every request with a redirect to `location(path)`.
async fn redirecting_http(location: impl Fn(&str) -> String + Send + Sync + 'static) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let location = Arc::new(location);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let target = head.split(' ').nth(1).unwrap_or("/").to_string();
                let reply = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
                    location(&target)
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

/// A redirect to our server is followed (the announce and the scrape arrive there); a
/// redirect loop ends after 5 with a clear error; https never leads to plain http (unit test
/// in transport.rs).
#[tokio::test]
async fn redirects_are_followed_a_bounded_number_of_times() {
    let srv = our_server(Duration::from_secs(1800));
    let real = format!("http://{}", srv.http_addr.unwrap());
    let front = redirecting_http(move |target| format!("{real}{target}")).await;
    let link = Arc::new(TestLink::default());
    let cfg = AnnouncerConfig {
        scrape_interval: Duration::ZERO,
        ..config(7201, None)
    };
    let h = client::spawn(
        [5; 20],
        vec![vec![format!("http://{front}/announce")]],
        cfg,
        link,
    );
    let st = wait_status(&h, "a scrape via the redirect", |s| {
        s.trackers[0].scrape.is_some()
    })
    .await;
    assert_eq!(st.trackers[0].state, TrackerState::Working, "{st:#?}");
    assert_eq!(srv.tracker().swarms().peers(&[5; 20]).len(), 1);
    h.stop().await;

    let looping = redirecting_http(|target| target.to_string()).await;
    let err = first_error(format!("http://{looping}/announce"), config(7202, None)).await;
    assert!(err.contains("more than 5 redirects"), "{err}");
    srv.stop();
}
