//! Key derivation and the RC4 streams.

use rc4::consts::U20;
use rc4::{KeyInit, Rc4, StreamCipher};
use sha1::{Digest, Sha1};

/// SHA-1 of the concatenation of `parts`.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// One direction's RC4 keystream, `HASH('keyA'|'keyB', S, SKEY)` as the key, its first 1024
/// bytes discarded (as the specification says).
pub struct Rc4Stream(Rc4<U20>);

impl Rc4Stream {
    pub(crate) fn new(key: [u8; 20]) -> Self {
        let mut rc4 = Rc4::new(&key.into());
        let mut discard = [0u8; 1024];
        rc4.apply_keystream(&mut discard);
        Self(rc4)
    }

    /// Encrypts or decrypts `data` in place (XOR with the next bytes of the keystream).
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

impl std::fmt::Debug for Rc4Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rc4Stream")
    }
}
