//! QUIC endpoint, client and server configuration.
//!
//! Peers present self-signed certificates: BitTorrent content is authenticated by the piece
//! hashes of the torrent, so TLS only has to provide confidentiality and integrity of the
//! transport. The client therefore accepts any certificate but still checks that the handshake
//! is signed by the key in it.

use std::sync::Arc;
use std::time::Duration;

use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{
    ClientConfig, EndpointConfig, IdleTimeout, MtuDiscoveryConfig, ServerConfig, TransportConfig,
    VarInt,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// ALPN of BitTorrent over QUIC/SCION. Every lane speaks the BT wire protocol on one
/// bidirectional stream.
pub const ALPN: &[u8] = b"bt-scion/1";

/// Server name used in the TLS handshake; certificates are self-signed, the name is not checked.
pub const SERVER_NAME: &str = "bt-scion";

/// Bytes of SCION common + address header + UDP header that a datagram has to leave room for,
/// plus the largest path we expect (a few hop fields). Used to derive the QUIC payload size
/// from a path's MTU.
pub const SCION_OVERHEAD_ESTIMATE: u16 = 200;

/// Tunables of the QUIC transport that matter for bulk transfers.
#[derive(Clone, Debug)]
pub struct QuicTuning {
    /// Largest UDP payload QUIC may use (path MTU minus SCION overhead).
    pub max_udp_payload: u16,
    /// Per-stream and per-connection receive window: must cover the bandwidth-delay product.
    pub receive_window: u64,
    pub idle_timeout: Duration,
    pub keep_alive: Duration,
    /// Set when several runtimes share the port: connection ids name this runtime.
    pub steering: Option<crate::net::steering::Steering>,
}

impl Default for QuicTuning {
    fn default() -> Self {
        Self {
            max_udp_payload: 1400,
            receive_window: 16 << 20,
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            steering: None,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// QUIC's smallest UDP payload (RFC 9000, 14.1): every connection starts with it, and MTU
/// discovery only ever climbs from there.
pub const QUIC_MIN_UDP_PAYLOAD: u16 = 1200;

fn transport(t: &QuicTuning) -> Arc<TransportConfig> {
    transport_within(t, t.max_udp_payload)
}

/// The transport of a connection whose UDP payloads must stay within `max_payload` bytes (a
/// path MTU less the SCION headers): MTU discovery never probes beyond it, nor beyond
/// `t.max_udp_payload`. Below [`QUIC_MIN_UDP_PAYLOAD`] QUIC cannot go: such a connection
/// stays at that minimum and never probes.
pub fn transport_within(t: &QuicTuning, max_payload: u16) -> Arc<TransportConfig> {
    let mut cfg = TransportConfig::default();
    let window = VarInt::from_u64(t.receive_window).unwrap_or(VarInt::MAX);
    cfg.stream_receive_window(window)
        .receive_window(window)
        .send_window(t.receive_window)
        .max_concurrent_uni_streams(0u32.into())
        .max_concurrent_bidi_streams(4u32.into())
        .initial_mtu(QUIC_MIN_UDP_PAYLOAD)
        .keep_alive_interval(Some(t.keep_alive))
        .max_idle_timeout(IdleTimeout::try_from(t.idle_timeout).ok());
    let upper = max_payload.min(t.max_udp_payload).max(QUIC_MIN_UDP_PAYLOAD);
    if upper > QUIC_MIN_UDP_PAYLOAD {
        let mut mtud = MtuDiscoveryConfig::default();
        mtud.upper_bound(upper);
        cfg.mtu_discovery_config(Some(mtud));
    } else {
        cfg.mtu_discovery_config(None);
    }
    Arc::new(cfg)
}

/// Endpoint-wide configuration (connection ids, reset keys, max datagram size).
pub fn endpoint_config(t: &QuicTuning) -> EndpointConfig {
    let mut cfg = EndpointConfig::default();
    // Clamp to what the endpoint accepts; the path MTU bounds it further per connection.
    let _ = cfg.max_udp_payload_size(t.max_udp_payload.max(QUIC_MIN_UDP_PAYLOAD));
    if let Some(s) = t.steering {
        cfg.cid_generator(move || Box::new(s.cids()));
    }
    cfg
}

/// A server configuration with a fresh self-signed certificate.
pub fn server_config(t: &QuicTuning) -> anyhow::Result<ServerConfig> {
    server_config_alpn(t, ALPN)
}

/// The same for another application protocol (HTTP over QUIC/SCION).
pub fn server_config_alpn(t: &QuicTuning, alpn: &[u8]) -> anyhow::Result<ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut cfg = ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(transport(t));
    // A lane is pinned to its path: the server must never migrate it to another one.
    cfg.migration(false);
    Ok(cfg)
}

/// A client configuration that accepts any (self-signed) server certificate.
pub fn client_config(t: &QuicTuning) -> anyhow::Result<ClientConfig> {
    client_config_alpn(t, ALPN)
}

/// The same for another application protocol (HTTP over QUIC/SCION).
pub fn client_config_alpn(t: &QuicTuning, alpn: &[u8]) -> anyhow::Result<ClientConfig> {
    let provider = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = QuicClientConfig::try_from(tls)?;
    let mut cfg = ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(transport(t));
    Ok(cfg)
}

/// Accepts any certificate, but verifies handshake signatures against it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
