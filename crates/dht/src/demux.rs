//! Telling DHT datagrams from QUIC ones on a shared UDP (or SCION/UDP) socket.
//!
//! A KRPC message is a bencoded dictionary whose first key is a short string, so it starts with
//! `d`, a non-zero digit and, within a few bytes, `:`. QUIC (RFC 9000 §17) packets start with a
//! long header (`0b1xxx_xxxx`: never `d` = `0x64`) or a short header (`0b01xx_xxxx`), and `0x64`
//! *is* a possible short-header first byte (spin bit set, the five protected bits happen to be
//! `00100`). So the first byte alone is not enough. We also require the whole datagram to be one
//! well-formed bencode value ending exactly at its last byte; the QUIC packet that passes would
//! need a random connection id and AEAD ciphertext to spell out consistent bencode lengths and
//! an `e` in exactly the right place, which does not happen in practice. The check costs one
//! bounded parse and allocates only for dictionaries (KRPC datagrams are small).

use bt_bencode::Value;

use crate::krpc::DECODER;

/// Whether `payload` should go to the DHT rather than to QUIC.
pub fn looks_like_krpc(payload: &[u8]) -> bool {
    if payload.len() < 4 || payload[0] != b'd' || !matches!(payload[1], b'1'..=b'9') {
        return false;
    }
    matches!(DECODER.decode(payload), Ok(Value::Dict(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn krpc_messages_are_recognised() {
        for m in [
            &b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"[..],
            b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
            b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
            b"d2:ip6:\x01\x02\x03\x04\x05\x061:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        ] {
            assert!(looks_like_krpc(m));
        }
        assert!(
            !looks_like_krpc(b"d1:ad2:id20:abcdefghij0123456789e"),
            "truncated"
        );
        assert!(!looks_like_krpc(b"de"));
    }

    /// Every first byte a QUIC packet can have (long headers 0x80..=0xff, short headers
    /// 0x40..=0x7f, and 0x00..=0x3f when a peer greases the fixed bit, RFC 9287), followed by
    /// random connection ids and payload as on the wire: never taken for KRPC, including 0x64.
    #[test]
    fn quic_packets_are_not_krpc() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for first in 0..=255u8 {
            for _ in 0..200 {
                let len = rng.random_range(21..1400);
                let mut p = vec![0u8; len];
                rng.fill(&mut p[..]);
                p[0] = first;
                assert!(!looks_like_krpc(&p), "first byte {first:#04x}");
            }
        }
        // A short header whose connection id starts like a bencode string length.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let mut p = vec![0u8; 60];
            rng.fill(&mut p[..]);
            p[..4].copy_from_slice(b"d1:a");
            assert!(!looks_like_krpc(&p));
        }
    }

    /// A QUIC v1 Initial packet as quinn sends it (long header, type Initial, version 1).
    #[test]
    fn quic_initial_header_is_not_krpc() {
        let mut p = vec![0xc3, 0x00, 0x00, 0x00, 0x01, 0x08];
        p.extend_from_slice(&[0x5a; 8]);
        p.push(0x08);
        p.extend_from_slice(&[0xa5; 8]);
        p.extend_from_slice(&[0u8; 1200]);
        assert!(!looks_like_krpc(&p));
    }
}
