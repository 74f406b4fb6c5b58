//! `https://` announces against an in-process TLS tracker (tokio-rustls) with certificates
//! from a test CA (rcgen): trusted through an extra CA file it works; without it the status
//! says unknown issuer; an expired certificate says expired — as types, not text.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bt_tracker::client::{
    self, AnnouncerConfig, BoxFuture, PeersNotTaken, TlsError, TorrentLink, TrackerState,
    TrackerTls, TransferStats,
};
use bt_tracker::PeerAddr;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Peers(Mutex<Vec<PeerAddr>>);

impl TorrentLink for Peers {
    fn stats(&self) -> Option<TransferStats> {
        Some(TransferStats {
            left: 1,
            ..Default::default()
        })
    }
    fn add_peers(&self, peers: Vec<PeerAddr>) -> BoxFuture<'_, Result<usize, PeersNotTaken>> {
        Box::pin(async move {
            let n = peers.len();
            self.0.lock().unwrap().extend(peers);
            Ok(n)
        })
    }
}

struct TestCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn test_ca() -> TestCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate for 127.0.0.1 from `ca`; `expired` dates it in 2000.
fn server_cert(ca: &TestCa, expired: bool) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 2, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (
        cert.der().clone(),
        PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    )
}

/// A TLS tracker answering every announce with one peer, 127.0.0.1:6881.
async fn tls_tracker(cert: (CertificateDer<'static>, PrivateKeyDer<'static>)) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.0], cert.1)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = b"d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Announces once to `addr` over https with `tls`; the tracker's status when it settled.
async fn announce(addr: SocketAddr, tls: TrackerTls) -> (client::TrackerStatus, usize) {
    let link = Arc::new(Peers::default());
    let cfg = AnnouncerConfig {
        tls,
        http_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_secs(60),
        ..Default::default()
    };
    let h = client::spawn(
        [4; 20],
        vec![vec![format!("https://{addr}/announce")]],
        cfg,
        link.clone(),
    );
    let mut rx = h.subscribe();
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = rx.borrow_and_update().trackers[0].clone();
            if s.state != TrackerState::NotContacted {
                return s;
            }
            let _ = rx.changed().await;
        }
    })
    .await
    .expect("the announce settles");
    drop(h);
    let n = link.0.lock().unwrap().len();
    (settled, n)
}

#[tokio::test]
async fn https_trackers_are_checked_against_the_roots_and_failures_are_typed() {
    let ca = test_ca();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let with_ca = TrackerTls::with_extra_cas(&[ca_file]).unwrap();

    let good = tls_tracker(server_cert(&ca, false)).await;
    let (s, peers) = announce(good, with_ca.clone()).await;
    assert_eq!(s.state, TrackerState::Working, "{s:#?}");
    assert_eq!(peers, 1);

    let (s, peers) = announce(good, TrackerTls::default()).await;
    assert_eq!(s.state, TrackerState::BackingOff, "{s:#?}");
    assert_eq!(s.tls_error, Some(TlsError::UnknownIssuer), "{s:#?}");
    assert_eq!(peers, 0);

    let expired = tls_tracker(server_cert(&ca, true)).await;
    let (s, _) = announce(expired, with_ca).await;
    assert_eq!(s.tls_error, Some(TlsError::Expired), "{s:#?}");
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("expired")),
        "{s:#?}"
    );
}
