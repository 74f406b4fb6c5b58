//! The user's encryption policy and the first look at an incoming connection.

use serde::{Deserialize, Serialize};

use crate::CryptoSet;

/// Whether and how connections are encrypted (one setting for the whole client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Plain BitTorrent only: an MSE handshake is refused, dials are plain.
    Disabled,
    /// Accept both; dial with MSE (RC4 preferred, plaintext offered) and, if the MSE
    /// handshake fails, dial again in plain BitTorrent (libtorrent's default).
    #[default]
    Enabled,
    /// MSE with RC4 only, both ways: a plain handshake is refused, and so is a peer that
    /// offers only plaintext inside MSE.
    Required,
}

impl Policy {
    /// The crypto methods offered (dialling) and accepted (answering) inside MSE.
    pub fn allowed(self) -> CryptoSet {
        match self {
            Policy::Disabled => CryptoSet::PLAINTEXT,
            Policy::Enabled => CryptoSet::BOTH,
            Policy::Required => CryptoSet::RC4,
        }
    }

    /// Whether an incoming plain BitTorrent handshake is taken.
    pub fn accepts_plaintext(self) -> bool {
        self != Policy::Required
    }

    /// Whether an incoming MSE handshake is taken.
    pub fn accepts_encrypted(self) -> bool {
        self != Policy::Disabled
    }

    /// Whether dials start with an MSE handshake.
    pub fn dials_encrypted(self) -> bool {
        self != Policy::Disabled
    }

    /// Whether a dial whose MSE handshake failed is tried again in plain BitTorrent.
    pub fn falls_back_to_plaintext(self) -> bool {
        self == Policy::Enabled
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Disabled => "disabled",
            Policy::Enabled => "enabled",
            Policy::Required => "required",
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("encryption policy must be disabled, enabled or required, not {0:?}")]
pub struct PolicyParseError(pub String);

impl std::str::FromStr for Policy {
    type Err = PolicyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disabled" => Ok(Policy::Disabled),
            "enabled" => Ok(Policy::Enabled),
            "required" => Ok(Policy::Required),
            other => Err(PolicyParseError(other.to_string())),
        }
    }
}

/// What the first bytes of an incoming connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes {
    /// A plain BitTorrent handshake (`\x13BitTorrent protocol`).
    Plaintext,
    /// Anything else: an MSE public key, if it is BitTorrent at all.
    Encrypted,
    /// Too few bytes to tell.
    NeedMore,
}

const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// Tells a plain handshake from MSE. A public key may start with byte 19 by chance, so the
/// whole 20-byte protocol string decides, but any other first byte does at once.
pub fn classify_incoming(prefix: &[u8]) -> FirstBytes {
    let n = prefix.len().min(PROTOCOL.len());
    if prefix[..n] != PROTOCOL[..n] {
        FirstBytes::Encrypted
    } else if n < PROTOCOL.len() {
        FirstBytes::NeedMore
    } else {
        FirstBytes::Plaintext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        assert_eq!(classify_incoming(b""), FirstBytes::NeedMore);
        assert_eq!(classify_incoming(b"\x13Bit"), FirstBytes::NeedMore);
        assert_eq!(classify_incoming(b"\x13Bix"), FirstBytes::Encrypted);
        assert_eq!(classify_incoming(b"\x42"), FirstBytes::Encrypted);
        assert_eq!(
            classify_incoming(b"\x13BitTorrent protocol\0\0"),
            FirstBytes::Plaintext
        );
    }

    #[test]
    fn policy_text_round_trips() {
        for p in [Policy::Disabled, Policy::Enabled, Policy::Required] {
            assert_eq!(p.to_string().parse::<Policy>(), Ok(p));
        }
        assert!("forced".parse::<Policy>().is_err());
    }
}
