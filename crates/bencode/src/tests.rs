use proptest::prelude::*;

use crate::*;

const STRICT: Decoder = Decoder::STRICT;
const LENIENT: Decoder = Decoder::LENIENT;

fn nested_lists(n: usize) -> Vec<u8> {
    [vec![b'l'; n], vec![b'e'; n]].concat()
}

#[test]
fn depth_limit_counts_containers() {
    for d in [STRICT, LENIENT] {
        let d = d.with_max_depth(4);
        assert!(d.decode(&nested_lists(4)).is_ok());
        assert_eq!(d.decode(&nested_lists(5)), Err(Error::TooDeep));
        // Dictionaries count too, and a deep value under a key is refused the same way.
        assert_eq!(d.decode(b"d1:ad1:bd1:cd1:dleeeee"), Err(Error::TooDeep));
        assert!(d.decode(b"d1:ad1:bd1:cd1:di1eeeee").is_ok());
    }
    // Far past the limit: an error, not a stack overflow.
    assert_eq!(
        LENIENT.decode(&nested_lists(1_000_000)),
        Err(Error::TooDeep)
    );
}

#[test]
fn item_limit_counts_every_value() {
    let d = LENIENT.with_max_items(4);
    assert!(d.decode(b"li1ei2ei3ee").is_ok());
    assert_eq!(d.decode(b"li1ei2ei3ei4ee"), Err(Error::TooManyItems));
    // Keys are not values; their values are.
    assert!(d.decode(b"d1:ai1e1:bi2e1:ci3ee").is_ok());
    assert_eq!(
        d.decode(b"d1:ai1e1:bi2e1:cli1eee"),
        Err(Error::TooManyItems)
    );
}

#[test]
fn string_lengths_past_the_input_are_truncation() {
    for d in [STRICT, LENIENT] {
        assert_eq!(d.decode(b"5:abc"), Err(Error::Truncated { at: 5 }));
        assert_eq!(d.decode(b"4:abcd"), Ok(Value::Bytes(b"abcd")));
        // A length that does not even fit a usize.
        assert_eq!(
            d.decode(b"99999999999999999999999:a"),
            Err(Error::Truncated { at: 25 })
        );
        assert_eq!(d.decode(b"0:"), Ok(Value::Bytes(b"")));
    }
}

#[test]
fn integer_overflow() {
    for d in [STRICT, LENIENT] {
        assert_eq!(d.decode(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
        assert_eq!(
            d.decode(b"i-9223372036854775808e"),
            Ok(Value::Int(i64::MIN))
        );
        assert_eq!(
            d.decode(b"i9223372036854775808e"),
            Err(Error::IntegerOverflow { at: 0 })
        );
        assert_eq!(
            d.decode(b"i-9223372036854775809e"),
            Err(Error::IntegerOverflow { at: 0 })
        );
        // Allowed on request, the digits are kept and write back unchanged.
        let big = d.with_big_integers(true);
        let v = big.decode(b"i-99999999999999999999e").unwrap();
        assert_eq!(v, Value::BigInt(b"-99999999999999999999"));
        assert_eq!(v.as_int(), None);
        assert_eq!(v.to_bytes(), b"i-99999999999999999999e");
    }
}

#[test]
fn truncated_input_anywhere() {
    let whole = b"d1:ali1ei-2e3:xyze1:bd1:ci7eee";
    for d in [STRICT, LENIENT] {
        assert!(d.decode(whole).is_ok());
        for cut in 0..whole.len() {
            assert!(
                matches!(d.decode(&whole[..cut]), Err(Error::Truncated { .. })),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn raw_span_of_a_nested_dict() {
    let data = b"d4:infod5:filesld6:lengthi1e4:pathl1:aeee4:name1:ne1:zi0ee";
    for d in [STRICT, LENIENT] {
        let v = d.decode(data).unwrap();
        let Some(Value::Dict(info)) = v.get(b"info") else {
            panic!("no info dict")
        };
        assert_eq!(
            info.raw(),
            &b"d5:filesld6:lengthi1e4:pathl1:aeee4:name1:ne"[..]
        );
        let Some(Value::List(files)) = info.get(b"files") else {
            panic!("no files list")
        };
        assert_eq!(files.raw(), &b"ld6:lengthi1e4:pathl1:aeee"[..]);
        assert_eq!(v.as_dict().unwrap().raw(), &data[..]);
    }
    // Unsorted keys inside: the span is the bytes as they came, not a sorted copy.
    let data = b"d4:infod1:zi1e1:ai2ee1:ai0ee";
    let v = LENIENT.decode(data).unwrap();
    assert_eq!(
        v.get(b"info").and_then(Value::as_dict).unwrap().raw(),
        &b"d1:zi1e1:ai2ee"[..]
    );
}

#[test]
fn unsorted_keys_strict_vs_lenient() {
    let data = b"d1:bi2e1:ai1ee";
    assert_eq!(STRICT.decode(data), Err(Error::UnsortedKey { at: 7 }));
    let v = LENIENT.decode(data).unwrap();
    assert_eq!(v.get(b"a"), Some(&Value::Int(1)));
    assert_eq!(v.get(b"b"), Some(&Value::Int(2)));
    let keys: Vec<&[u8]> = v.as_dict().unwrap().iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [&b"b"[..], b"a"], "input order kept");
    // Written back canonically.
    assert_eq!(v.to_bytes(), b"d1:ai1e1:bi2ee");
}

#[test]
fn duplicate_keys_strict_vs_lenient() {
    let data = b"d1:ai1e1:bi2e1:ai3ee";
    assert_eq!(STRICT.decode(data), Err(Error::UnsortedKey { at: 13 }));
    assert_eq!(
        STRICT.decode(b"d1:ai1e1:ai2ee"),
        Err(Error::DuplicateKey { at: 7 })
    );
    let v = LENIENT.decode(data).unwrap();
    assert_eq!(v.get(b"a"), Some(&Value::Int(1)), "the first wins");
    assert_eq!(v.as_dict().unwrap().len(), 2, "later duplicates dropped");
    assert_eq!(v.to_bytes(), b"d1:ai1e1:bi2ee");
    // Adjacent duplicates too.
    let v = LENIENT.decode(b"d1:ai1e1:ai2ee").unwrap();
    assert_eq!(v.to_bytes(), b"d1:ai1ee");
}

#[test]
fn canonical_numbers_strict_vs_lenient() {
    for (data, value) in [
        (&b"i-0e"[..], Value::Int(0)),
        (b"i007e", Value::Int(7)),
        (b"03:abc", Value::Bytes(b"abc")),
    ] {
        assert!(
            matches!(STRICT.decode(data), Err(Error::NonCanonicalNumber { .. })),
            "{data:?}"
        );
        assert_eq!(LENIENT.decode(data), Ok(value));
        // Each switch on its own.
        assert!(LENIENT.with_canonical_numbers(true).decode(data).is_err());
    }
    assert_eq!(STRICT.decode(b"i0e"), Ok(Value::Int(0)));
    assert_eq!(STRICT.decode(b"0:"), Ok(Value::Bytes(b"")));
}

#[test]
fn what_is_never_bencode() {
    for d in [STRICT, LENIENT] {
        for bad in [
            &b""[..],
            b"i",
            b"ie",
            b"i-e",
            b"i1x2e",
            b"i--1e",
            b"-1:a",
            b"1x:a",
            b"x",
            b"di1ei2ee",
            b"dlei1ee",
            b"le1",
            b"i1ei2e",
        ] {
            assert!(d.decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

#[test]
fn prefix_leaves_what_follows() {
    let (v, used) = STRICT.decode_prefix(b"d1:ai1eexyz").unwrap();
    assert_eq!((v.get(b"a"), used), (Some(&Value::Int(1)), 8));
    assert_eq!(
        STRICT.decode(b"d1:ai1eexyz"),
        Err(Error::Trailing { at: 8 })
    );
}

#[test]
fn writer_sorts_keys_and_keeps_the_last_of_a_key() {
    let mut inner = DictWriter::new();
    inner.int("z", 1).bytes("a", "x");
    let mut list = ListWriter::new();
    list.int(-3)
        .bytes(b"q")
        .dict(DictWriter::new())
        .list(ListWriter::new());
    let mut d = DictWriter::new();
    d.bytes("b", b"2")
        .raw("c", b"le".to_vec())
        .dict("a", inner)
        .list("l", list)
        .int("b", 7);
    let out = d.finish();
    assert_eq!(out, b"d1:ad1:a1:x1:zi1ee1:bi7e1:cle1:lli-3e1:qdeleee");
    assert_eq!(STRICT.decode(&out).unwrap().to_bytes(), out);
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = LENIENT.decode(&data);
        let _ = STRICT.decode(&data);
    }

    /// Strictly valid input writes back byte for byte; lenient input writes back as the
    /// strict reader accepts it, and that is a fixed point.
    #[test]
    fn round_trips(data in "[dlie0-9:a-]{0,64}") {
        let data = data.as_bytes();
        if let Ok(v) = STRICT.decode(data) {
            prop_assert_eq!(v.to_bytes(), data);
        }
        if let Ok(v) = LENIENT.decode(data) {
            let canonical = v.to_bytes();
            let again = STRICT.decode(&canonical).unwrap();
            prop_assert_eq!(again.to_bytes(), canonical);
        }
    }
}

/// What the metainfo's own tolerant reader (src/torrent/lenient.rs, which this crate
/// replaced) accepted and refused, with its assertions.
mod lenient_rs {
    use super::*;

    fn canonical(data: &[u8]) -> Vec<u8> {
        LENIENT.with_max_depth(8).decode(data).unwrap().to_bytes()
    }

    #[test]
    fn sorts_keys_and_keeps_the_first_duplicate() {
        assert_eq!(canonical(b"d1:bi2e1:ai1e1:bi3ee"), b"d1:ai1e1:bi2ee");
        assert_eq!(canonical(b"l4:spami-7ed0:i1eee"), b"l4:spami-7ed0:i1eee");
    }

    #[test]
    fn raw_value_bytes_are_kept() {
        let data = b"d4:infod1:zi1e1:ai2ee1:ai0ee";
        let (Value::Dict(m), used) = LENIENT.with_max_depth(8).decode_prefix(data).unwrap() else {
            panic!("not a dict")
        };
        assert_eq!(used, data.len());
        assert_eq!(
            m.get(b"info").and_then(Value::as_dict).unwrap().raw(),
            b"d1:zi1e1:ai2ee"
        );
    }

    #[test]
    fn rejects_what_is_not_bencode() {
        fn parse(data: &[u8], depth: usize) -> Result<(Value<'_>, usize), Error> {
            LENIENT.with_max_depth(depth).decode_prefix(data)
        }
        for bad in [
            &b"d1:ai1e"[..],
            b"i12",
            b"5:abc",
            b"ixe",
            b"i-e",
            b"di1ei2ee",
            b"x",
            b"",
            b"99999999999999999999999:a",
        ] {
            assert!(parse(bad, 8).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"llllllllllee", 3).is_err());
    }
}
