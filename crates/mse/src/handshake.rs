//! The two sides of the handshake. A (the [`Initiator`], who dials) and B (the
//! [`Responder`]) exchange:
//!
//! ```text
//! 1 A->B: Ya, PadA
//! 2 B->A: Yb, PadB
//! 3 A->B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!         ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4 B->A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
//! 5 A->B: ENCRYPT2(payload)
//! ```
//!
//! A encrypts with `HASH('keyA', S, SKEY)`, B with `HASH('keyB', S, SKEY)`; ENCRYPT2 is RC4 or
//! nothing, as `crypto_select` says.

use rand::{Rng, RngCore};

use crate::crypt::{hash, Rc4Stream};
use crate::dh::KeyPair;
use crate::{MseError, KEY_LEN, MAX_IA, MAX_PAD, REQ1_WINDOW, VC_WINDOW};

const VC: [u8; 8] = [0; 8];

/// A set of crypto methods, as in `crypto_provide` (bit 0x01 plaintext, 0x02 RC4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoSet(pub u32);

impl CryptoSet {
    pub const PLAINTEXT: CryptoSet = CryptoSet(0x01);
    pub const RC4: CryptoSet = CryptoSet(0x02);
    pub const BOTH: CryptoSet = CryptoSet(0x03);

    fn has(self, c: Crypto) -> bool {
        self.0 & c.bit() != 0
    }
}

/// The method both sides agreed on for the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypto {
    Plaintext,
    Rc4,
}

impl Crypto {
    fn bit(self) -> u32 {
        match self {
            Crypto::Plaintext => 0x01,
            Crypto::Rc4 => 0x02,
        }
    }
}

/// Whether the handshake is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep reading (and write what [`Initiator::take_output`] or
    /// [`Responder::take_output`] has).
    NeedMore,
    /// Write the last output, then call `finish`.
    Done,
}

/// A finished handshake: how the rest of the stream is carried.
#[derive(Debug)]
pub struct Established {
    pub crypto: Crypto,
    /// For RC4: the keystream for what we send, and the one for what we receive, each at the
    /// position where the payload starts. None for plaintext.
    pub streams: Option<(Rc4Stream, Rc4Stream)>,
    /// Payload already received, decrypted: the responder's IA first, then whatever followed.
    pub payload: Vec<u8>,
    /// The SKEY (info hash) the initiator asked for.
    pub skey: [u8; 20],
}

/// The responder's view of the torrents it serves.
pub trait StreamKeys {
    /// The SKEY whose [`req2_hash`] is `req2`, if it is one of ours.
    fn find(&self, req2: &[u8; 20]) -> Option<[u8; 20]>;
}

impl<F: Fn(&[u8; 20]) -> Option<[u8; 20]>> StreamKeys for F {
    fn find(&self, req2: &[u8; 20]) -> Option<[u8; 20]> {
        self(req2)
    }
}

/// `HASH('req2', SKEY)`: what a responder keeps per torrent to recognise it.
pub fn req2_hash(skey: &[u8; 20]) -> [u8; 20] {
    hash(&[b"req2", skey])
}

fn xor20(a: [u8; 20], b: [u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn random_pad(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
    let mut pad = vec![0u8; len];
    rng.fill_bytes(&mut pad);
    pad
}

/// Removes and returns the first `n` bytes, if there are that many.
fn take(buf: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
    (buf.len() >= n).then(|| buf.drain(..n).collect())
}

/// Where `mark` starts within the first `window` bytes of `buf` (the mark wholly inside).
fn find_mark(buf: &[u8], mark: &[u8], window: usize) -> Option<usize> {
    buf[..buf.len().min(window)]
        .windows(mark.len())
        .position(|w| w == mark)
}

/// Runs `data` through a stream's keystream, if the stream exists (it does once keys are set).
fn apply(stream: &mut Option<Rc4Stream>, data: &mut [u8]) {
    if let Some(s) = stream {
        s.apply(data);
    }
}

/// A finished handshake's RC4 streams when RC4 was selected, with the bytes already received
/// after the handshake (`rest`) decrypted in place; None for plaintext.
fn rc4_streams(
    crypto: Crypto,
    send: Option<Rc4Stream>,
    recv: Option<Rc4Stream>,
    rest: &mut [u8],
) -> Option<(Rc4Stream, Rc4Stream)> {
    match (crypto, send, recv) {
        (Crypto::Rc4, Some(send), Some(mut recv)) => {
            recv.apply(rest);
            Some((send, recv))
        }
        _ => None,
    }
}

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

enum InitiatorState {
    AwaitKey,
    SyncVc { mark: [u8; 8] },
    AwaitSelect,
    PadD(usize),
    Done,
    Failed,
}

/// The dialling side.
pub struct Initiator {
    state: InitiatorState,
    keys: KeyPair,
    skey: [u8; 20],
    provide: CryptoSet,
    ia: Vec<u8>,
    pad_c: usize,
    out: Vec<u8>,
    input: Vec<u8>,
    send: Option<Rc4Stream>,
    recv: Option<Rc4Stream>,
    selected: Option<Crypto>,
}

impl Initiator {
    /// Starts a handshake for the torrent `skey`, offering `provide`, with `ia` (e.g. the
    /// BitTorrent handshake, or nothing) sent encrypted in message 3. Random PadA, no PadC.
    pub fn new(
        skey: [u8; 20],
        provide: CryptoSet,
        ia: Vec<u8>,
        rng: &mut impl RngCore,
    ) -> Result<Self, MseError> {
        let pad_a = rng.random_range(0..=MAX_PAD);
        Self::with_pads(skey, provide, ia, pad_a, 0, rng)
    }

    /// As [`Initiator::new`] with the pad lengths given. Nothing caps them: a compliant peer
    /// keeps both at most [`MAX_PAD`]; tests use longer ones to play a hostile peer.
    pub fn with_pads(
        skey: [u8; 20],
        provide: CryptoSet,
        ia: Vec<u8>,
        pad_a: usize,
        pad_c: usize,
        rng: &mut impl RngCore,
    ) -> Result<Self, MseError> {
        if ia.len() > MAX_IA {
            return Err(MseError::PayloadTooLong(ia.len()));
        }
        let keys = KeyPair::generate(rng);
        let mut out = keys.public.to_vec();
        out.extend(random_pad(rng, pad_a));
        Ok(Self {
            state: InitiatorState::AwaitKey,
            keys,
            skey,
            provide,
            ia,
            pad_c,
            out,
            input: Vec::new(),
            send: None,
            recv: None,
            selected: None,
        })
    }

    /// Bytes to write to the peer (empties the buffer).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Takes bytes read from the peer. After an error the handshake is dead: close.
    pub fn feed(&mut self, data: &[u8]) -> Result<Progress, MseError> {
        if matches!(self.state, InitiatorState::Failed) {
            return Err(MseError::Failed);
        }
        self.input.extend_from_slice(data);
        let r = self.step();
        if r.is_err() {
            self.state = InitiatorState::Failed;
            self.input = Vec::new();
        }
        r
    }

    fn step(&mut self) -> Result<Progress, MseError> {
        loop {
            match &self.state {
                InitiatorState::AwaitKey => {
                    let Some(yb) = take(&mut self.input, KEY_LEN) else {
                        return Ok(Progress::NeedMore);
                    };
                    let mut peer = [0u8; KEY_LEN];
                    peer.copy_from_slice(&yb);
                    let s = self.keys.shared_secret(&peer)?;
                    let mut send = Rc4Stream::new(hash(&[b"keyA", &s, &self.skey]));
                    let mut recv = Rc4Stream::new(hash(&[b"keyB", &s, &self.skey]));
                    self.out.extend(hash(&[b"req1", &s]));
                    self.out
                        .extend(xor20(req2_hash(&self.skey), hash(&[b"req3", &s])));
                    let mut msg = VC.to_vec();
                    msg.extend(self.provide.0.to_be_bytes());
                    msg.extend((self.pad_c as u16).to_be_bytes());
                    msg.resize(msg.len() + self.pad_c, 0);
                    msg.extend((self.ia.len() as u16).to_be_bytes());
                    msg.append(&mut self.ia);
                    send.apply(&mut msg);
                    self.out.extend(msg);
                    // B's encrypted VC is the first 8 bytes of its keystream.
                    let mut mark = VC;
                    recv.apply(&mut mark);
                    self.send = Some(send);
                    self.recv = Some(recv);
                    self.state = InitiatorState::SyncVc { mark };
                }
                InitiatorState::SyncVc { mark } => match find_mark(&self.input, mark, VC_WINDOW) {
                    Some(at) => {
                        self.input.drain(..at + mark.len());
                        self.state = InitiatorState::AwaitSelect;
                    }
                    None if self.input.len() >= VC_WINDOW => {
                        return Err(MseError::NoSyncMark {
                            mark: "encrypted VC",
                            window: VC_WINDOW,
                        })
                    }
                    None => return Ok(Progress::NeedMore),
                },
                InitiatorState::AwaitSelect => {
                    let Some(mut head) = take(&mut self.input, 6) else {
                        return Ok(Progress::NeedMore);
                    };
                    self.recv_apply(&mut head);
                    let select = be_u32(&head);
                    let crypto = [Crypto::Plaintext, Crypto::Rc4]
                        .into_iter()
                        .find(|c| c.bit() == select && self.provide.has(*c))
                        .ok_or(MseError::BadSelect(select))?;
                    let pad_d = be_u16(&head[4..]);
                    if usize::from(pad_d) > MAX_PAD {
                        return Err(MseError::PadTooLong(pad_d));
                    }
                    self.selected = Some(crypto);
                    self.state = InitiatorState::PadD(pad_d.into());
                }
                InitiatorState::PadD(n) => {
                    let Some(mut pad) = take(&mut self.input, *n) else {
                        return Ok(Progress::NeedMore);
                    };
                    self.recv_apply(&mut pad);
                    self.state = InitiatorState::Done;
                }
                InitiatorState::Done => return Ok(Progress::Done),
                InitiatorState::Failed => return Err(MseError::Failed),
            }
        }
    }

    fn recv_apply(&mut self, data: &mut [u8]) {
        apply(&mut self.recv, data);
    }

    /// The stream after a [`Progress::Done`]; None before.
    pub fn finish(self) -> Option<Established> {
        if !matches!(self.state, InitiatorState::Done) {
            return None;
        }
        let crypto = self.selected?;
        let mut payload = self.input;
        let streams = rc4_streams(crypto, self.send, self.recv, &mut payload);
        Some(Established {
            crypto,
            streams,
            payload,
            skey: self.skey,
        })
    }
}

enum ResponderState {
    AwaitKey,
    SyncReq1 {
        req1: [u8; 20],
        s: Box<[u8; KEY_LEN]>,
    },
    AwaitSkey {
        s: Box<[u8; KEY_LEN]>,
    },
    AwaitProvide,
    PadC(usize),
    AwaitIaLen,
    Ia(usize),
    Done,
    Failed,
}

/// The answering side (an incoming connection whose first bytes were not a plain handshake).
pub struct Responder {
    state: ResponderState,
    keys: KeyPair,
    allowed: CryptoSet,
    pad_b: Vec<u8>,
    out: Vec<u8>,
    input: Vec<u8>,
    skey: [u8; 20],
    provide: u32,
    ia: Vec<u8>,
    send: Option<Rc4Stream>,
    recv: Option<Rc4Stream>,
    selected: Option<Crypto>,
}

impl Responder {
    /// A responder accepting the methods in `allowed` (RC4 is chosen when both sides allow it).
    pub fn new(allowed: CryptoSet, rng: &mut impl RngCore) -> Self {
        let keys = KeyPair::generate(rng);
        let pad_len = rng.random_range(0..=MAX_PAD);
        Self {
            state: ResponderState::AwaitKey,
            keys,
            allowed,
            pad_b: random_pad(rng, pad_len),
            out: Vec::new(),
            input: Vec::new(),
            skey: [0; 20],
            provide: 0,
            ia: Vec::new(),
            send: None,
            recv: None,
            selected: None,
        }
    }

    /// Bytes to write to the peer (empties the buffer).
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Takes bytes read from the peer; `torrents` identifies the stream. After an error the
    /// handshake is dead: close.
    pub fn feed(&mut self, data: &[u8], torrents: &impl StreamKeys) -> Result<Progress, MseError> {
        if matches!(self.state, ResponderState::Failed) {
            return Err(MseError::Failed);
        }
        self.input.extend_from_slice(data);
        let r = self.step(torrents);
        if r.is_err() {
            self.state = ResponderState::Failed;
            self.input = Vec::new();
        }
        r
    }

    fn step(&mut self, torrents: &impl StreamKeys) -> Result<Progress, MseError> {
        loop {
            match &self.state {
                ResponderState::AwaitKey => {
                    let Some(ya) = take(&mut self.input, KEY_LEN) else {
                        return Ok(Progress::NeedMore);
                    };
                    let mut peer = [0u8; KEY_LEN];
                    peer.copy_from_slice(&ya);
                    let s = self.keys.shared_secret(&peer)?;
                    self.out.extend(self.keys.public);
                    self.out.append(&mut self.pad_b);
                    self.state = ResponderState::SyncReq1 {
                        req1: hash(&[b"req1", &s]),
                        s: Box::new(s),
                    };
                }
                ResponderState::SyncReq1 { req1, s } => {
                    match find_mark(&self.input, req1, REQ1_WINDOW) {
                        Some(at) => {
                            self.input.drain(..at + req1.len());
                            self.state = ResponderState::AwaitSkey { s: s.clone() };
                        }
                        None if self.input.len() >= REQ1_WINDOW => {
                            return Err(MseError::NoSyncMark {
                                mark: "HASH('req1', S)",
                                window: REQ1_WINDOW,
                            })
                        }
                        None => return Ok(Progress::NeedMore),
                    }
                }
                ResponderState::AwaitSkey { s } => {
                    let Some(obfuscated) = take(&mut self.input, 20) else {
                        return Ok(Progress::NeedMore);
                    };
                    let mut x = [0u8; 20];
                    x.copy_from_slice(&obfuscated);
                    let req2 = xor20(x, hash(&[b"req3", &s[..]]));
                    let skey = torrents.find(&req2).ok_or(MseError::UnknownTorrent)?;
                    self.recv = Some(Rc4Stream::new(hash(&[b"keyA", &s[..], &skey])));
                    self.send = Some(Rc4Stream::new(hash(&[b"keyB", &s[..], &skey])));
                    self.skey = skey;
                    self.state = ResponderState::AwaitProvide;
                }
                ResponderState::AwaitProvide => {
                    let Some(mut head) = take(&mut self.input, 14) else {
                        return Ok(Progress::NeedMore);
                    };
                    self.recv_apply(&mut head);
                    if head[..8] != VC {
                        return Err(MseError::BadVerification);
                    }
                    self.provide = be_u32(&head[8..]);
                    let pad_c = be_u16(&head[12..]);
                    if usize::from(pad_c) > MAX_PAD {
                        return Err(MseError::PadTooLong(pad_c));
                    }
                    self.state = ResponderState::PadC(pad_c.into());
                }
                ResponderState::PadC(n) => {
                    let Some(mut pad) = take(&mut self.input, *n) else {
                        return Ok(Progress::NeedMore);
                    };
                    self.recv_apply(&mut pad);
                    self.state = ResponderState::AwaitIaLen;
                }
                ResponderState::AwaitIaLen => {
                    let Some(mut len) = take(&mut self.input, 2) else {
                        return Ok(Progress::NeedMore);
                    };
                    self.recv_apply(&mut len);
                    self.state = ResponderState::Ia(be_u16(&len).into());
                }
                ResponderState::Ia(n) => {
                    let Some(mut ia) = take(&mut self.input, *n) else {
                        return Ok(Progress::NeedMore);
                    };
                    self.recv_apply(&mut ia);
                    self.ia = ia;
                    let offered = CryptoSet(self.provide);
                    let crypto = [Crypto::Rc4, Crypto::Plaintext]
                        .into_iter()
                        .find(|c| offered.has(*c) && self.allowed.has(*c))
                        .ok_or(MseError::NoCommonCrypto {
                            provided: self.provide,
                            allowed: self.allowed.0,
                        })?;
                    self.selected = Some(crypto);
                    let mut reply = VC.to_vec();
                    reply.extend(crypto.bit().to_be_bytes());
                    reply.extend(0u16.to_be_bytes());
                    apply(&mut self.send, &mut reply);
                    self.out.extend(reply);
                    self.state = ResponderState::Done;
                }
                ResponderState::Done => return Ok(Progress::Done),
                ResponderState::Failed => return Err(MseError::Failed),
            }
        }
    }

    fn recv_apply(&mut self, data: &mut [u8]) {
        apply(&mut self.recv, data);
    }

    /// The stream after a [`Progress::Done`]; None before.
    pub fn finish(self) -> Option<Established> {
        if !matches!(self.state, ResponderState::Done) {
            return None;
        }
        let crypto = self.selected?;
        let mut rest = self.input;
        let streams = rc4_streams(crypto, self.send, self.recv, &mut rest);
        let mut payload = self.ia;
        payload.extend(rest);
        Some(Established {
            crypto,
            streams,
            payload,
            skey: self.skey,
        })
    }
}
