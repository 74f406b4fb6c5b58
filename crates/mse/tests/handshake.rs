//! Both sides of the handshake against each other, and against hostile bytes.

use bt_mse::{
    req2_hash, Crypto, CryptoSet, Established, Initiator, MseError, Progress, Responder, MAX_PAD,
    REQ1_WINDOW,
};

const SKEY: [u8; 20] = [7; 20];
const OTHER: [u8; 20] = [9; 20];

/// Our torrents: SKEY and OTHER.
fn ours(req2: &[u8; 20]) -> Option<[u8; 20]> {
    [SKEY, OTHER].into_iter().find(|k| req2_hash(k) == *req2)
}

/// Moves bytes between the two until both are done (at most `chunk` bytes per feed).
fn run(
    mut a: Initiator,
    mut b: Responder,
    chunk: usize,
) -> Result<(Established, Established), MseError> {
    let (mut a_done, mut b_done) = (false, false);
    for _ in 0..100_000 {
        let to_b = a.take_output();
        for c in to_b.chunks(chunk) {
            b_done = b.feed(c, &ours)? == Progress::Done;
        }
        let to_a = b.take_output();
        for c in to_a.chunks(chunk) {
            a_done = a.feed(c)? == Progress::Done;
        }
        if a_done && b_done && to_a.is_empty() && to_b.is_empty() {
            return Ok((a.finish().unwrap(), b.finish().unwrap()));
        }
    }
    panic!("handshake did not end");
}

fn pair(provide: CryptoSet, allowed: CryptoSet, ia: &[u8]) -> (Initiator, Responder) {
    let mut rng = rand::rng();
    (
        Initiator::new(SKEY, provide, ia.to_vec(), &mut rng).unwrap(),
        Responder::new(allowed, &mut rng),
    )
}

/// The payload after the handshake goes through both keystreams intact.
fn assert_streams_carry_data(a: &mut Established, b: &mut Established) {
    let (a_send, a_recv) = a.streams.as_mut().unwrap();
    let (b_send, b_recv) = b.streams.as_mut().unwrap();
    let mut msg = b"\0\0\0\x05\x04\0\0\0\x01".to_vec();
    a_send.apply(&mut msg);
    assert_ne!(&msg[..], b"\0\0\0\x05\x04\0\0\0\x01", "not encrypted");
    b_recv.apply(&mut msg);
    assert_eq!(&msg[..], b"\0\0\0\x05\x04\0\0\0\x01");
    let mut back = b"reply".to_vec();
    b_send.apply(&mut back);
    a_recv.apply(&mut back);
    assert_eq!(back, b"reply");
}

#[test]
fn rc4_with_initial_payload() {
    let (a, b) = pair(CryptoSet::BOTH, CryptoSet::BOTH, b"\x13BitTorrent protocol");
    let (mut ea, mut eb) = run(a, b, usize::MAX).unwrap();
    assert_eq!((ea.crypto, eb.crypto), (Crypto::Rc4, Crypto::Rc4));
    assert_eq!(eb.skey, SKEY);
    assert_eq!(eb.payload, b"\x13BitTorrent protocol");
    assert!(ea.payload.is_empty());
    assert_streams_carry_data(&mut ea, &mut eb);
}

#[test]
fn rc4_without_initial_payload_byte_by_byte() {
    let (a, b) = pair(CryptoSet::RC4, CryptoSet::RC4, b"");
    let (mut ea, mut eb) = run(a, b, 1).unwrap();
    assert_eq!(eb.crypto, Crypto::Rc4);
    assert!(eb.payload.is_empty());
    assert_streams_carry_data(&mut ea, &mut eb);
}

#[test]
fn plaintext_with_and_without_initial_payload() {
    for ia in [&b"hello"[..], b""] {
        let (a, b) = pair(CryptoSet::PLAINTEXT, CryptoSet::BOTH, ia);
        let (ea, eb) = run(a, b, 7).unwrap();
        assert_eq!(
            (ea.crypto, eb.crypto),
            (Crypto::Plaintext, Crypto::Plaintext)
        );
        assert!(ea.streams.is_none() && eb.streams.is_none());
        assert_eq!(eb.payload, ia);
    }
}

#[test]
fn the_other_torrent_is_identified() {
    let mut rng = rand::rng();
    let a = Initiator::new(OTHER, CryptoSet::BOTH, Vec::new(), &mut rng).unwrap();
    let (_, eb) = run(a, Responder::new(CryptoSet::BOTH, &mut rng), 64).unwrap();
    assert_eq!(eb.skey, OTHER);
}

#[test]
fn the_responder_keeps_what_follows_in_the_same_read() {
    let (mut a, mut b) = pair(CryptoSet::PLAINTEXT, CryptoSet::BOTH, b"ia");
    b.feed(&a.take_output(), &ours).unwrap();
    a.feed(&b.take_output()).unwrap();
    let mut step3 = a.take_output();
    step3.extend(b"plain payload");
    assert_eq!(b.feed(&step3, &ours).unwrap(), Progress::Done);
    assert_eq!(b.finish().unwrap().payload, b"iaplain payload");
}

#[test]
fn unknown_torrent_is_refused() {
    let mut rng = rand::rng();
    let a = Initiator::new([1; 20], CryptoSet::BOTH, Vec::new(), &mut rng).unwrap();
    let err = run(a, Responder::new(CryptoSet::BOTH, &mut rng), 100).unwrap_err();
    assert_eq!(err, MseError::UnknownTorrent);
}

#[test]
fn a_wrong_key_fails_verification() {
    let (mut a, mut b) = pair(CryptoSet::BOTH, CryptoSet::BOTH, b"");
    let liar = |_: &[u8; 20]| Some(OTHER);
    b.feed(&a.take_output(), &liar).unwrap();
    a.feed(&b.take_output()).unwrap();
    assert_eq!(
        b.feed(&a.take_output(), &liar),
        Err(MseError::BadVerification)
    );
    // Dead afterwards.
    assert_eq!(b.feed(b"x", &liar), Err(MseError::Failed));
}

#[test]
fn no_common_crypto_is_refused() {
    let (a, b) = pair(CryptoSet::PLAINTEXT, CryptoSet::RC4, b"");
    assert_eq!(
        run(a, b, 1000).unwrap_err(),
        MseError::NoCommonCrypto {
            provided: 1,
            allowed: 2
        }
    );
}

#[test]
fn oversized_pad_c_is_refused() {
    let mut rng = rand::rng();
    let a =
        Initiator::with_pads(SKEY, CryptoSet::BOTH, Vec::new(), 0, MAX_PAD + 1, &mut rng).unwrap();
    let err = run(a, Responder::new(CryptoSet::BOTH, &mut rng), 1000).unwrap_err();
    assert_eq!(err, MseError::PadTooLong(MAX_PAD as u16 + 1));
}

/// PadA past 512 bytes puts HASH('req1', S) out of the window: refused once 532 bytes
/// followed the key, not before.
#[test]
fn oversized_pad_a_loses_sync_within_the_window() {
    let mut rng = rand::rng();
    let mut a = Initiator::with_pads(SKEY, CryptoSet::BOTH, Vec::new(), 600, 0, &mut rng).unwrap();
    let mut b = Responder::new(CryptoSet::BOTH, &mut rng);
    let hello = a.take_output();
    assert_eq!(hello.len(), 96 + 600);
    assert_eq!(
        b.feed(&hello[..96 + REQ1_WINDOW - 1], &ours),
        Ok(Progress::NeedMore)
    );
    assert!(matches!(
        b.feed(&hello[96 + REQ1_WINDOW - 1..], &ours),
        Err(MseError::NoSyncMark { window: 532, .. })
    ));
}

/// Garbage after the responder's key: the initiator gives up after PadB's window.
#[test]
fn garbage_after_the_key_is_refused_by_the_initiator() {
    let (mut a, mut b) = pair(CryptoSet::BOTH, CryptoSet::BOTH, b"");
    b.feed(&a.take_output(), &ours).unwrap();
    let mut reply = b.take_output();
    reply.truncate(96);
    reply.extend([0x5a; 1000]);
    assert!(matches!(
        a.feed(&reply),
        Err(MseError::NoSyncMark { window: 520, .. })
    ));
}

#[test]
fn degenerate_keys_are_refused_on_both_sides() {
    let (mut a, mut b) = pair(CryptoSet::BOTH, CryptoSet::BOTH, b"");
    assert_eq!(b.feed(&[0; 96], &ours), Err(MseError::BadPublicKey));
    let _ = a.take_output();
    let mut one = [0; 96];
    one[95] = 1;
    assert_eq!(a.feed(&one), Err(MseError::BadPublicKey));
}

#[test]
fn initial_payload_is_bounded() {
    let mut rng = rand::rng();
    assert!(matches!(
        Initiator::new(SKEY, CryptoSet::BOTH, vec![0; 70_000], &mut rng),
        Err(MseError::PayloadTooLong(70_000))
    ));
}
