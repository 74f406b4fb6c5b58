//! MSE/PE handshakes (`bt-mse`) fed hostile bytes. First byte: 0 feeds the rest to a responder
//! as they are; 1 plays an honest initiator (keys from a seed in the input) and XORs the rest
//! into its messages, so the fuzzer reaches the fields behind the sync mark (a flipped
//! ciphertext bit is a flipped plaintext bit); 2 gives an initiator an honest responder's key
//! followed by the rest.
#![no_main]
use bt_mse::{req2_hash, CryptoSet, Initiator, Progress, Responder};
use libfuzzer_sys::fuzz_target;
use rand::{rngs::StdRng, SeedableRng};

const SKEY: [u8; 20] = [0x42; 20];

fn ours(req2: &[u8; 20]) -> Option<[u8; 20]> {
    (*req2 == req2_hash(&SKEY)).then_some(SKEY)
}

/// Feeds `input` to a responder in chunks whose sizes come from `cuts`; the handshake must
/// end in an error, wait, or finish with its output bounded.
fn respond(responder: &mut Responder, input: &[u8], cuts: &[u8]) -> Option<Progress> {
    let mut rest = input;
    let mut cut = cuts.iter().cycle();
    let mut last = Some(Progress::NeedMore);
    while !rest.is_empty() {
        let n = (usize::from(*cut.next().unwrap_or(&255)) + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        last = responder.feed(chunk, &ours).ok();
        let out = responder.take_output();
        // Yb + PadB, then the 14-byte reply: never more.
        assert!(out.len() <= 96 + 512 + 14);
        if last != Some(Progress::NeedMore) {
            break;
        }
    }
    last
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let mut b = Responder::new(CryptoSet::BOTH, &mut StdRng::seed_from_u64(1));
            if respond(&mut b, data, &[]) == Some(Progress::Done) {
                assert!(b.finish().is_some());
            }
        }
        1 => {
            if data.len() < 9 {
                return;
            }
            let (seed, flips) = data.split_at(9);
            let mut rng = StdRng::seed_from_u64(u64::from_le_bytes(seed[..8].try_into().unwrap()));
            let provide = CryptoSet(u32::from(seed[8] & 3));
            let Ok(mut a) = Initiator::new(SKEY, provide, flips.to_vec(), &mut rng) else {
                return;
            };
            let mut b = Responder::new(CryptoSet::BOTH, &mut rng);
            let mut first = a.take_output();
            for (x, f) in first.iter_mut().zip(flips) {
                *x ^= f;
            }
            if respond(&mut b, &first, flips) != Some(Progress::NeedMore) {
                return;
            }
            let _ = a.feed(&b.take_output());
            let mut third = a.take_output();
            for (x, f) in third.iter_mut().zip(flips.iter().rev()) {
                *x ^= f;
            }
            if respond(&mut b, &third, flips) == Some(Progress::Done) {
                let done = b.finish().expect("done but no stream");
                assert_eq!(done.skey, SKEY);
            }
        }
        _ => {
            let mut rng = StdRng::seed_from_u64(2);
            let mut a = Initiator::new(SKEY, CryptoSet::BOTH, Vec::new(), &mut rng).unwrap();
            let mut b = Responder::new(CryptoSet::BOTH, &mut rng);
            let _ = b.feed(&a.take_output(), &ours);
            let mut reply = b.take_output();
            reply.truncate(96);
            reply.extend_from_slice(data);
            if a.feed(&reply) == Ok(Progress::Done) {
                assert!(a.finish().is_some());
            }
        }
    }
});
