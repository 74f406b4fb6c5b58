//! The streaming peer-message decoder: the input fed in one piece and in fuzzer-chosen chunks
//! must give the same messages and the same errors.
//!
//! Input layout: byte 0 = flags (bit 0: starts with a handshake, bit 1: piece count known),
//! bytes 1..3 = piece count, byte 3 = number of cut points k (mod 16), then k 2-byte cut
//! positions, then the stream.
#![no_main]
use btscion::wire::{DecoderLimits, MessageDecoder};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Out {
    Handshake(String),
    Message(String),
    Error(String),
}

fn drain(dec: &mut MessageDecoder, handshake_pending: &mut bool, out: &mut Vec<Out>) -> bool {
    loop {
        if *handshake_pending {
            match dec.next_handshake() {
                Ok(Some(h)) => {
                    *handshake_pending = false;
                    out.push(Out::Handshake(format!("{h:?}")));
                }
                Ok(None) => return true,
                Err(e) => {
                    out.push(Out::Error(e.to_string()));
                    return false;
                }
            }
            continue;
        }
        match dec.next_message() {
            Ok(Some(m)) => out.push(Out::Message(format!("{m:?}"))),
            Ok(None) => return true,
            Err(e) => {
                let fatal = e.is_fatal();
                out.push(Out::Error(e.to_string()));
                if fatal {
                    return false;
                }
            }
        }
    }
}

fn run(limits: DecoderLimits, handshake: bool, chunks: &[&[u8]]) -> Vec<Out> {
    let mut dec = MessageDecoder::new(limits);
    let mut pending = handshake;
    let mut out = Vec::new();
    for c in chunks {
        dec.push(c);
        if !drain(&mut dec, &mut pending, &mut out) {
            break;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let flags = data[0];
    let pieces = u32::from(u16::from_be_bytes([data[1], data[2]]));
    let k = usize::from(data[3] % 16);
    let rest = &data[4..];
    if rest.len() < 2 * k {
        return;
    }
    let (cuts_raw, stream) = rest.split_at(2 * k);
    let mut cuts: Vec<usize> = cuts_raw
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])) % (stream.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut at = 0;
    for c in cuts {
        chunks.push(&stream[at..c]);
        at = c;
    }
    chunks.push(&stream[at..]);

    let limits = if flags & 2 != 0 {
        DecoderLimits::for_torrent(pieces)
    } else {
        DecoderLimits::default()
    };
    let handshake = flags & 1 != 0;
    let whole = run(limits.clone(), handshake, &[stream]);
    let split = run(limits, handshake, &chunks);
    assert_eq!(whole, split);
});
