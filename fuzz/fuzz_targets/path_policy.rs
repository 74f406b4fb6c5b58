//! scionproto's path-policy languages as we parse them (`btscion::lanes`): sequences, ACLs,
//! hop predicates and preference lists from text, each matched against paths built from the
//! rest of the input. No input may panic or take more than linear time to match; what parses
//! prints as text that parses back to the same value.
#![no_main]
use btscion::lanes::hop::HopPredicate;
use btscion::lanes::{Acl, PathPolicy, Preference, Sequence};
use btscion::scion::{Ia, PathInterface, ScionPath};
use libfuzzer_sys::fuzz_target;

/// A path of up to 16 hops: each byte pair picks an ISD-AS (from a small set, so predicates
/// can match) and an interface id.
fn path(bytes: &[u8]) -> ScionPath {
    let ia =
        |b: u8| Ia::from_u64((u64::from(b % 3 + 1) << 48) | 0xff00_0000_0110 | u64::from(b % 5));
    let mut p = ScionPath::local(ia(0));
    for c in bytes.chunks_exact(2).take(32) {
        p.interfaces.push(PathInterface {
            ia: ia(c[0]),
            id: u16::from(c[1] % 8),
        });
    }
    if let Some(last) = p.interfaces.last() {
        p.dst_ia = last.ia;
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (text, rest) = data.split_at(cut);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let p = path(rest);
    let mut pol = PathPolicy::default();
    if let Ok(s) = text.parse::<Sequence>() {
        assert_eq!(s.to_string().parse::<Sequence>().as_ref(), Ok(&s));
        let _ = s.matches(&p);
        pol = pol.with_sequence(Some(s));
    }
    if let Ok(a) = text.parse::<Acl>() {
        assert_eq!(a.to_string().parse::<Acl>().as_ref(), Ok(&a));
        let _ = a.permits(&p);
        pol = pol.with_acl(Some(a));
    }
    if let Ok(h) = text.parse::<HopPredicate>() {
        assert_eq!(h.to_string().parse::<HopPredicate>(), Ok(h));
    }
    if let Ok(pref) = text.parse::<Preference>() {
        let mut v = vec![p.clone(), path(rest.get(1..).unwrap_or_default())];
        pref.sort(&mut v);
    }
    let _ = pol.permits(&p);
    let _ = pol.to_string();
});
