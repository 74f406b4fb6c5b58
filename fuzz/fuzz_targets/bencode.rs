//! bt-bencode's reader on anything: strictly valid input writes back byte for byte; lenient
//! reading never panics, holds its depth limit, gives raw spans that read back to the same
//! value, and writes back a canonical form the strict reader accepts unchanged.
#![no_main]
use bt_bencode::{Decoder, Value};
use libfuzzer_sys::fuzz_target;

const MAX_DEPTH: usize = 8;

fn depth(v: &Value<'_>) -> usize {
    match v {
        Value::List(l) => 1 + l.iter().map(depth).max().unwrap_or(0),
        Value::Dict(d) => 1 + d.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Decoder::STRICT.decode(data) {
        assert_eq!(v.to_bytes(), data, "strict input re-encodes to itself");
    }
    let lenient = Decoder::LENIENT
        .with_max_depth(MAX_DEPTH)
        .with_max_items(4096);
    let Ok((v, used)) = lenient.decode_prefix(data) else {
        return;
    };
    assert!(depth(&v) <= MAX_DEPTH, "depth limit");
    let raw = match &v {
        Value::List(l) => Some(l.raw()),
        Value::Dict(d) => Some(d.raw()),
        _ => None,
    };
    if let Some(raw) = raw {
        assert_eq!(raw, &data[..used], "the root's raw span is what was read");
        assert_eq!(lenient.decode(raw).as_ref(), Ok(&v), "a raw span reads back");
    }
    let canonical = v.to_bytes();
    let again = Decoder::STRICT
        .with_max_depth(MAX_DEPTH)
        .with_max_items(4096)
        .decode(&canonical)
        .expect("the canonical form reads strictly");
    assert_eq!(again.to_bytes(), canonical, "canonical form is a fixed point");
});
