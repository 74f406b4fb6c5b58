//! TLS for `https://` trackers: rustls on ring (the provider quinn already uses here), trusting
//! the system's roots, Mozilla's (webpki-roots) and any CA files the user names
//! (`--tracker-ca`). Handshake failures are classified into [`TlsError`] from rustls' own
//! error types, so the status can say "unknown issuer" rather than echo a string.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};

use crate::client::transport::{AnnounceError, HttpIo};

/// Why a TLS handshake with a tracker failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum TlsError {
    #[error("certificate from an unknown issuer (not in the system's or webpki roots; a private CA needs --tracker-ca)")]
    UnknownIssuer,
    #[error("certificate expired")]
    Expired,
    #[error("certificate not valid yet")]
    NotValidYet,
    #[error("certificate is for another name")]
    NameMismatch,
    #[error("certificate revoked")]
    Revoked,
    #[error("certificate not valid for a TLS server")]
    BadUsage,
    #[error("certificate rejected")]
    BadCertificate,
    #[error("the tracker refused the handshake (TLS alert)")]
    AlertReceived,
    #[error("TLS handshake failed (protocol error)")]
    Protocol,
}

impl TlsError {
    /// Classifies a handshake error (tokio-rustls wraps rustls' error in an `io::Error`);
    /// `None` if it is not a TLS error at all (a reset, a timeout).
    pub fn classify(e: &std::io::Error) -> Option<Self> {
        let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
        use rustls::CertificateError as C;
        Some(match inner {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer => Self::UnknownIssuer,
                C::Expired | C::ExpiredContext { .. } => Self::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => Self::NotValidYet,
                C::NotValidForName | C::NotValidForNameContext { .. } => Self::NameMismatch,
                C::Revoked => Self::Revoked,
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => Self::BadUsage,
                _ => Self::BadCertificate,
            },
            rustls::Error::AlertReceived(_) => Self::AlertReceived,
            _ => Self::Protocol,
        })
    }
}

/// Why the TLS configuration could not be built (a `--tracker-ca` file).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate")]
    Empty { path: PathBuf },
    #[error("CA file {path}: bad PEM: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("CA file {path}: certificate not usable as a root: {source}")]
    Root {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// The client side of TLS for trackers (cheap to clone). `None` inside only if ring offers no
/// TLS version, which does not happen; then `https://` trackers fail with a clear reason.
#[derive(Clone)]
pub struct TrackerTls(Option<Arc<rustls::ClientConfig>>);

impl std::fmt::Debug for TrackerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackerTls")
    }
}

impl Default for TrackerTls {
    /// System and webpki roots, built once per process (reading the system store is slow).
    fn default() -> Self {
        static DEFAULT: OnceLock<TrackerTls> = OnceLock::new();
        DEFAULT
            .get_or_init(|| {
                Self::with_extra_cas(&[]).unwrap_or_else(|e| {
                    tracing::warn!("tracker TLS unavailable: {e}");
                    Self(None)
                })
            })
            .clone()
    }
}

impl TrackerTls {
    /// The system's roots, webpki's, and the certificates in each PEM file of `ca_files`.
    pub fn with_extra_cas(ca_files: &[PathBuf]) -> Result<Self, TlsSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!("system CA store: {e}");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!("tracker TLS: {added} system roots ({ignored} unusable)");
        for path in ca_files {
            for cert in read_pem_certs(path)? {
                roots.add(cert).map_err(|source| TlsSetupError::Root {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self(Some(Arc::new(config))))
    }

    /// Runs the handshake on `io` for `host` (a DNS name or an IP literal); web seeds use it
    /// too.
    pub async fn connect(&self, host: &str, io: impl HttpIo) -> Result<impl HttpIo, AnnounceError> {
        let config = self
            .0
            .clone()
            .ok_or_else(|| AnnounceError::Unsupported(format!("{host}: no TLS in this process")))?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| AnnounceError::Unsupported(format!("{host}: not a TLS server name")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, io)
            .await
            .map_err(|e| match TlsError::classify(&e) {
                Some(t) => AnnounceError::Tls(t),
                None => AnnounceError::Connect(format!("TLS handshake with {host}: {e}")),
            })
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let data = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_errors_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(
            TrackerTls::with_extra_cas(&[missing]),
            Err(TlsSetupError::Read { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"not a certificate\n").unwrap();
        assert!(matches!(
            TrackerTls::with_extra_cas(&[empty]),
            Err(TlsSetupError::Empty { .. })
        ));
    }

    #[test]
    fn classifies_rustls_errors_by_type() {
        let wrap = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        use rustls::CertificateError as C;
        for (e, want) in [
            (C::UnknownIssuer, TlsError::UnknownIssuer),
            (C::Expired, TlsError::Expired),
            (C::NotValidForName, TlsError::NameMismatch),
        ] {
            assert_eq!(
                TlsError::classify(&wrap(rustls::Error::InvalidCertificate(e))),
                Some(want)
            );
        }
        assert_eq!(
            TlsError::classify(&std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
            None
        );
    }
}
