//! The extension registry: which BEP 10 extensions we speak, the ids we receive them on, the
//! ids each peer receives them on, and the one place that routes an extended message.

use std::collections::BTreeMap;

use scion_addr::PeerAddr;

use crate::handshake::{decode_handshake, ExtHandshake, HandshakeError};
use crate::metadata::{decode_metadata_message, MetadataMessage, MetadataMessageError};
use crate::pex::{decode_pex_message, PexError, PexMessage};

/// Extended message id of the extension handshake (BEP 10).
pub const HANDSHAKE_ID: u8 = 0;

/// An extension we implement. Adding one: a variant, its name and id here, a decoder arm in
/// [`Registry::route`] and an [`Incoming`]/[`Outgoing`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Extension {
    /// BEP 9 `ut_metadata`.
    Metadata,
    /// BEP 11 `ut_pex`.
    Pex,
}

impl Extension {
    pub const ALL: [Extension; 2] = [Extension::Metadata, Extension::Pex];

    /// The name in `m`.
    pub const fn name(self) -> &'static str {
        match self {
            Extension::Metadata => "ut_metadata",
            Extension::Pex => "ut_pex",
        }
    }

    /// The id peers send this extension to us with (our `m`). Fixed (libtorrent's choice too)
    /// so captures and logs read the same everywhere.
    pub const fn our_id(self) -> u8 {
        match self {
            Extension::Pex => 1,
            Extension::Metadata => 2,
        }
    }

    fn from_name(name: &str) -> Option<Extension> {
        Extension::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// What we tell a peer about ourselves in our handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalInfo {
    /// `v`
    pub client: Option<String>,
    /// `p`: our listen port (IP); None on SCION, where the connection's port is the one.
    pub listen_port: Option<u16>,
    /// `reqq`
    pub reqq: Option<u32>,
    /// `metadata_size`: None while we have no metadata ourselves.
    pub metadata_size: Option<u64>,
    /// `yourip` / `yourip.scion`: the peer's address as we see it.
    pub peer_seen_at: Option<PeerAddr>,
}

/// An extended message, decoded and routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Handshake(ExtHandshake),
    Metadata(MetadataMessage),
    Pex(PexMessage),
    /// An id we did not hand out (or an extension we disabled): ignore.
    Unknown(u8),
}

/// An extended message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Metadata(MetadataMessage),
    Pex(PexMessage),
}

impl Outgoing {
    pub fn extension(&self) -> Extension {
        match self {
            Outgoing::Metadata(_) => Extension::Metadata,
            Outgoing::Pex(_) => Extension::Pex,
        }
    }
}

/// A routed message whose payload is malformed. Not a reason to drop the connection (the
/// caller may count such errors and give up on a peer that keeps sending them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Metadata(#[from] MetadataMessageError),
    #[error(transparent)]
    Pex(#[from] PexError),
}

/// The extensions we offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    enabled: Vec<Extension>,
}

impl Default for Registry {
    /// Everything enabled.
    fn default() -> Self {
        Self::new(Extension::ALL)
    }
}

impl Registry {
    pub fn new(enabled: impl IntoIterator<Item = Extension>) -> Self {
        let mut enabled: Vec<Extension> = enabled.into_iter().collect();
        enabled.sort();
        enabled.dedup();
        Self { enabled }
    }

    pub fn is_enabled(&self, ext: Extension) -> bool {
        self.enabled.contains(&ext)
    }

    /// Our `m` dictionary.
    pub fn our_m(&self) -> BTreeMap<String, u8> {
        self.enabled
            .iter()
            .map(|e| (e.name().to_owned(), e.our_id()))
            .collect()
    }

    /// Our extension handshake.
    pub fn our_handshake(&self, info: &LocalInfo) -> ExtHandshake {
        ExtHandshake {
            m: self.our_m(),
            v: info.client.clone(),
            p: info.listen_port,
            reqq: info.reqq,
            yourip: info.peer_seen_at,
            metadata_size: info
                .metadata_size
                .filter(|_| self.is_enabled(Extension::Metadata)),
            ..ExtHandshake::default()
        }
    }

    /// Decodes an extended message (id + payload) received from a peer.
    pub fn route(&self, id: u8, payload: &[u8]) -> Result<Incoming, RouteError> {
        if id == HANDSHAKE_ID {
            return Ok(Incoming::Handshake(decode_handshake(payload)?));
        }
        let Some(ext) = self.enabled.iter().find(|e| e.our_id() == id) else {
            return Ok(Incoming::Unknown(id));
        };
        Ok(match ext {
            Extension::Metadata => Incoming::Metadata(decode_metadata_message(payload)?),
            Extension::Pex => Incoming::Pex(decode_pex_message(payload)?),
        })
    }
}

/// What a peer told us in its extension handshake(s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerExtensions {
    ids: BTreeMap<Extension, u8>,
    pub client: Option<String>,
    pub listen_port: Option<u16>,
    pub reqq: Option<u32>,
    pub metadata_size: Option<u64>,
    /// Where the peer sees us (our external address, as far as it knows).
    pub sees_us_at: Option<PeerAddr>,
}

impl PeerExtensions {
    /// Applies a handshake. BEP 10: later handshakes update earlier ones; an id of 0 turns an
    /// extension off; names missing from `m` keep their id.
    pub fn update(&mut self, h: &ExtHandshake) {
        for (name, id) in &h.m {
            if let Some(ext) = Extension::from_name(name) {
                if *id == 0 {
                    self.ids.remove(&ext);
                } else {
                    self.ids.insert(ext, *id);
                }
            }
        }
        self.client = h.v.clone().or(self.client.take());
        self.listen_port = h.p.or(self.listen_port);
        self.reqq = h.reqq.or(self.reqq);
        self.metadata_size = h.metadata_size.or(self.metadata_size);
        self.sees_us_at = h.yourip.or(self.sees_us_at);
    }

    pub fn from_handshake(h: &ExtHandshake) -> Self {
        let mut p = Self::default();
        p.update(h);
        p
    }

    /// The id to send `ext` to this peer with, if it supports it.
    pub fn id_for(&self, ext: Extension) -> Option<u8> {
        self.ids.get(&ext).copied()
    }

    /// The extended message (id, payload) for `msg`, if the peer supports its extension.
    pub fn encode(&self, msg: &Outgoing) -> Option<(u8, Vec<u8>)> {
        let id = self.id_for(msg.extension())?;
        let payload = match msg {
            Outgoing::Metadata(m) => m.encode(),
            Outgoing::Pex(m) => m.encode(),
        };
        Some((id, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::decode_handshake;

    #[test]
    fn our_handshake_and_routing() {
        let reg = Registry::default();
        let h = reg.our_handshake(&LocalInfo {
            client: Some("bt 1".into()),
            reqq: Some(250),
            metadata_size: Some(1234),
            peer_seen_at: Some("1-ff00:0:110,[10.0.0.9]:443".parse().unwrap()),
            ..LocalInfo::default()
        });
        let enc = h.encode();
        assert!(enc.starts_with(b"d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei1234e"));
        assert_eq!(reg.route(0, &enc), Ok(Incoming::Handshake(h)));
        let req = MetadataMessage::Request { piece: 3 };
        assert_eq!(reg.route(2, &req.encode()), Ok(Incoming::Metadata(req)));
        let pex = PexMessage::default();
        assert_eq!(reg.route(1, &pex.encode()), Ok(Incoming::Pex(pex)));
        assert_eq!(reg.route(9, b"whatever"), Ok(Incoming::Unknown(9)));
        assert!(matches!(reg.route(2, b"x"), Err(RouteError::Metadata(_))));

        let only_meta = Registry::new([Extension::Metadata]);
        assert_eq!(only_meta.route(1, b"de"), Ok(Incoming::Unknown(1)));
        assert_eq!(only_meta.our_m().len(), 1);
        let no_meta = Registry::new([Extension::Pex]);
        let h = no_meta.our_handshake(&LocalInfo {
            metadata_size: Some(5),
            ..LocalInfo::default()
        });
        assert_eq!(h.metadata_size, None);
    }

    #[test]
    fn peer_ids_follow_its_handshakes() {
        let h =
            decode_handshake(b"d1:md5:otheri9e11:ut_metadatai3e6:ut_pexi7ee13:metadata_sizei99ee")
                .unwrap();
        let mut p = PeerExtensions::from_handshake(&h);
        assert_eq!(p.id_for(Extension::Metadata), Some(3));
        assert_eq!(p.metadata_size, Some(99));
        let (id, payload) = p
            .encode(&Outgoing::Metadata(MetadataMessage::Reject { piece: 1 }))
            .unwrap();
        assert_eq!((id, &payload[..]), (3, &b"d8:msg_typei2e5:piecei1ee"[..]));
        // A later handshake turns ut_pex off and keeps ut_metadata.
        p.update(&decode_handshake(b"d1:md6:ut_pexi0eee").unwrap());
        assert_eq!(p.id_for(Extension::Pex), None);
        assert_eq!(p.id_for(Extension::Metadata), Some(3));
        assert_eq!(p.encode(&Outgoing::Pex(PexMessage::default())), None);
        assert_eq!(p.metadata_size, Some(99));
    }
}
