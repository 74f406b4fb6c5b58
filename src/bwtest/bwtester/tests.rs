//! Checks against what scion-apps' own bwtester code produced (`testdata/vectors.txt`, whose
//! header says how), and properties of our own.

use std::collections::{BTreeMap, HashMap};

use data_encoding::HEXLOWER;
use proptest::prelude::*;
use sha1::{Digest, Sha1};

use super::*;

const VECTORS: &str = include_str!("testdata/vectors.txt");
const KEY1: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// The vector lines of one kind, split at tabs (without the kind).
fn lines(kind: &str) -> Vec<Vec<&'static str>> {
    let v: Vec<Vec<&str>> = VECTORS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[0] == kind)
        .map(|f| f[1..].to_vec())
        .collect();
    assert!(!v.is_empty(), "no {kind} vectors");
    v
}

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    HEXLOWER.decode(s.as_bytes()).unwrap()
}

fn num(s: &str) -> i64 {
    s.parse().unwrap()
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn params_from(f: &[&str]) -> Parameters {
    Parameters {
        duration_ns: num(f[0]),
        packet_size: num(f[1]),
        num_packets: num(f[2]),
        prg_key: hex(f[3]),
        port: f[4].parse().unwrap(),
    }
}

fn result_from(f: &[&str]) -> TestResult {
    TestResult {
        num_packets_received: num(f[0]),
        correctly_received: num(f[1]),
        ipa_var: num(f[2]),
        ipa_min: num(f[3]),
        ipa_avg: num(f[4]),
        ipa_max: num(f[5]),
        prg_key: hex(f[6]),
    }
}

/// Our verdict in the vectors' form: "err", or "ok", bytes taken and the fields.
fn params_verdict(input: &[u8]) -> Vec<String> {
    match Parameters::decode(input) {
        Err(_) => vec!["err".into()],
        Ok((p, n)) => {
            let key = if p.prg_key.is_empty() {
                "-".into()
            } else {
                HEXLOWER.encode(&p.prg_key)
            };
            let v = [p.duration_ns, p.packet_size, p.num_packets].map(|x| x.to_string());
            let mut out = vec!["ok".into(), n.to_string()];
            out.extend(v);
            out.push(key);
            out.push(p.port.to_string());
            out
        }
    }
}

fn result_verdict(input: &[u8]) -> Vec<String> {
    match TestResult::decode(input) {
        Err(_) => vec!["err".into()],
        Ok((r, n)) => {
            let key = if r.prg_key.is_empty() {
                "-".into()
            } else {
                HEXLOWER.encode(&r.prg_key)
            };
            let mut out = vec!["ok".into(), n.to_string()];
            out.extend(
                [
                    r.num_packets_received,
                    r.correctly_received,
                    r.ipa_var,
                    r.ipa_min,
                    r.ipa_avg,
                    r.ipa_max,
                ]
                .map(|x| x.to_string()),
            );
            out.push(key);
            out
        }
    }
}

#[test]
fn parameters_encode_byte_for_byte_as_go() {
    for f in lines("P") {
        let p = params_from(&f[1..6]);
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(HEXLOWER.encode(&out), f[6], "{}", f[0]);
        assert_eq!(Parameters::decode(&out), Ok((p, out.len())), "{}", f[0]);
    }
}

#[test]
fn results_encode_byte_for_byte_as_go() {
    for f in lines("R") {
        let r = result_from(&f[1..8]);
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(HEXLOWER.encode(&out), f[8], "{}", f[0]);
        assert_eq!(TestResult::decode(&out), Ok((r, out.len())), "{}", f[0]);
    }
}

#[test]
fn decoder_takes_what_go_takes_on_crafted_streams() {
    // Older bwtester's struct names and extra time.Time field, other field orders, unknown
    // fields of every basic type, type mismatches, overflow, Go's leniencies (non-minimal
    // integers, missing terminators, empty messages, int32 type-id truncation), errors.
    for (kind, verdict) in [
        ("DP", params_verdict as fn(&[u8]) -> Vec<String>),
        ("DR", result_verdict),
    ] {
        for f in lines(kind) {
            let want: Vec<String> = f[2..].iter().map(|s| s.to_string()).collect();
            assert_eq!(verdict(&hex(f[1])), want, "{kind} {}", f[0]);
        }
    }
}

#[test]
fn decoder_takes_what_go_takes_on_truncated_and_changed_bytes() {
    let bases: HashMap<&str, Vec<u8>> = lines("P")
        .into_iter()
        .map(|f| (f[0], hex(f[6])))
        .chain(lines("R").into_iter().map(|f| (f[0], hex(f[8]))))
        .collect();
    let mut checked = 0;
    for (kind, verdict) in [
        ("TP", params_verdict as fn(&[u8]) -> Vec<String>),
        ("MP", params_verdict),
        ("TR", result_verdict),
        ("MR", result_verdict),
    ] {
        for f in lines(kind) {
            let base = &bases[f[0]];
            let (input, want) = if kind.starts_with('T') {
                (base[..f[1].parse::<usize>().unwrap()].to_vec(), &f[2..])
            } else {
                let mut m = base.clone();
                m[f[1].parse::<usize>().unwrap()] = hex(f[2])[0];
                (m, &f[3..])
            };
            let want: Vec<String> = if want == ["same"] {
                verdict(base)
            } else {
                want.iter().map(|s| s.to_string()).collect()
            };
            assert_eq!(verdict(&input), want, "{kind} {f:?}");
            checked += 1;
        }
    }
    assert!(checked > 1000);
}

#[test]
fn payloads_match_go_sender() {
    for f in lines("PKT") {
        let prg = Prg::new(&hex(f[0])).unwrap();
        let p = Parameters {
            packet_size: num(f[1]),
            ..Default::default()
        };
        let mut pkt = vec![0xAA; p.packet_size as usize];
        prg.packet(packet_counter(&p, num(f[2])), &mut pkt);
        match f[3].strip_prefix("sha1:") {
            Some(h) => assert_eq!(HEXLOWER.encode(&Sha1::digest(&pkt)), h, "{f:?}"),
            None => assert_eq!(HEXLOWER.encode(&pkt), f[3], "{f:?}"),
        }
    }
}

#[test]
fn fill_matches_go() {
    for f in lines("FILL") {
        let prg = Prg::new(&hex(f[0])).unwrap();
        let mut out = vec![0x55; f[2].parse().unwrap()];
        prg.fill(f[1].parse().unwrap(), &mut out);
        assert_eq!(out, hex(f[3]), "{f:?}");
    }
}

#[test]
fn receiver_counts_as_go() {
    let key2 = hex("2b7e151628aed2a6abf7158809cf4f3c");
    for f in lines("RCV") {
        let p = Parameters {
            duration_ns: 1_000_000_000,
            packet_size: num(f[1]),
            num_packets: num(f[2]),
            prg_key: key2.clone(),
            port: 0,
        };
        let prg = Prg::new(&key2).unwrap();
        let mut rx = Receiver::new(&p).unwrap();
        for (t, step) in f[3].split(',').enumerate() {
            let (i, how) = step.split_once(':').unwrap();
            let mut pkt = vec![0; p.packet_size as usize];
            prg.packet(packet_counter(&p, num(i)), &mut pkt);
            let last = pkt.len() - 1;
            let mid = pkt.len() / 2;
            match how {
                "ok" => {}
                "short" => {
                    pkt.pop();
                }
                "long" => pkt.push(0),
                "flip_last" => pkt[last] ^= 1,
                "flip_mid" => pkt[mid] ^= 1,
                "flip_index" => pkt[0] ^= 1,
                other => panic!("{other}"),
            }
            rx.on_datagram(&pkt, t as i64 * 1000);
        }
        let r = rx.result();
        assert_eq!(
            (r.num_packets_received, r.correctly_received),
            (num(f[4]), num(f[5])),
            "{}",
            f[0]
        );
        assert_eq!(r.prg_key, key2);
    }
    for f in lines("RCVIV") {
        let p = Parameters {
            duration_ns: 1_000_000_000,
            packet_size: num(f[1]),
            num_packets: num(f[2]),
            prg_key: hex(f[0]),
            port: 0,
        };
        let mut rx = Receiver::new(&p).unwrap();
        rx.on_datagram(&hex(f[3]), 0);
        let r = rx.result();
        assert_eq!(
            (r.num_packets_received, r.correctly_received),
            (num(f[4]), num(f[5]))
        );
    }
}

#[test]
fn interarrival_stats_match_go() {
    for f in lines("AGGR") {
        let arrivals: BTreeMap<i64, i64> = if f[0] == "-" {
            BTreeMap::new()
        } else {
            f[0].split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once(':').unwrap();
                    (num(k), num(v))
                })
                .collect()
        };
        let want = (num(f[1]), num(f[2]), num(f[3]), num(f[4]));
        assert_eq!(interarrival_stats(&arrivals), want, "{}", f[0]);
    }
}

/// Inputs where Go's int64 arithmetic wraps around (their client then runs with a negative
/// duration or zero packets): we refuse them.
const WRAPPING_INPUTS: [(&str, ParamError); 3] = [
    ("3,1000,?,9223372036854775807kbps", ParamError::Overflow),
    (
        "9999999999,1000,30,?",
        ParamError::DurationTooLong(9_999_999_999),
    ),
    ("?,66000,9223372036854775807,1bps", ParamError::Overflow),
];

#[test]
fn parameter_strings_as_go_client() {
    for f in lines("PARSE") {
        let (input, default, outcome) = (f[0], num(f[1]), f[3]);
        let got = parse_parameters(input, default);
        if let Some((_, err)) = WRAPPING_INPUTS.iter().find(|(i, _)| *i == input) {
            assert_eq!(got.as_ref(), Err(err), "{input}");
            continue;
        }
        let (verdict, rest) = outcome.split_once(' ').unwrap_or((outcome, ""));
        match verdict {
            "ok" => {
                let p = got.unwrap_or_else(|e| panic!("{input}: {e}"));
                let v: Vec<i64> = rest.split(' ').map(num).collect();
                assert_eq!(
                    [p.duration_s * 1_000_000_000, p.packet_size, p.num_packets],
                    [v[0], v[1], v[2]],
                    "{input}"
                );
                let notices: Vec<String> = p.notices.iter().map(|n| n.to_string()).collect();
                assert_eq!(notices.join("\n"), unescape(f[4]), "{input}");
                assert_eq!(f[2], "0");
            }
            "err" | "usage" => {
                let e = got.expect_err(input);
                assert_eq!(e.to_string(), rest, "{input}");
                let usage = matches!(
                    e,
                    ParamError::FieldCount(_) | ParamError::DurationTooLong(_)
                );
                assert_eq!(usage, verdict == "usage", "{input}");
            }
            "panic" => assert_eq!(got, Err(ParamError::DivisionByZero), "{input}"),
            other => panic!("{other}"),
        }
    }
}

#[test]
fn report_prints_as_go_client() {
    for f in lines("PRINT") {
        let p = Parameters {
            duration_ns: num(f[0]),
            packet_size: num(f[1]),
            num_packets: num(f[2]),
            ..Default::default()
        };
        let r = TestResult {
            num_packets_received: num(f[3]),
            correctly_received: num(f[4]),
            ipa_var: num(f[5]),
            ipa_min: num(f[6]),
            ipa_avg: num(f[7]),
            ipa_max: num(f[8]),
            prg_key: Vec::new(),
        };
        assert_eq!(Report::new(&p, &r).to_string(), unescape(f[9]), "{f:?}");
    }
}

#[test]
fn requests_as_go_client_sends_them() {
    let f = &lines("NREQ")[0];
    let (cs, sc) = f[1].split_once(';').unwrap();
    let cs = params_from(&cs.split(',').collect::<Vec<_>>());
    let sc = params_from(&sc.split(',').collect::<Vec<_>>());
    let req = Request::New {
        client_to_server: cs,
        server_to_client: sc,
    };
    assert_eq!(HEXLOWER.encode(&req.encode()), f[0]);
    assert_eq!(Request::decode(&hex(f[0])), Ok(req));

    let r = Request::Result {
        prg_key: KEY1.to_vec(),
    };
    assert_eq!(HEXLOWER.encode(&r.encode()), lines("RREQ")[0][0]);
    assert_eq!(Request::decode(&r.encode()), Ok(r));
}

#[test]
fn replies_as_go_client_takes_them() {
    // Go's client with one scripted reply, then silence: 1 write = taken (started, result, or
    // "not found"); 5 = refused (tried again until MaxTries); 6 = waited 1 s, then 5 tries.
    for f in lines("NREP") {
        let got = NewReply::decode(&hex(f[0]));
        match f[1] {
            "1" => assert_eq!(got, Ok(NewReply::Started), "{f:?}"),
            "5" => assert!(got.is_err(), "{f:?}"),
            "6" => assert_eq!(got, Ok(NewReply::RetryIn(1)), "{f:?}"),
            other => panic!("{other}"),
        }
    }
    let mut deviations = 0;
    for f in lines("RREP") {
        let reply = hex(f[0]);
        let got = ResultReply::decode(&reply, &KEY1);
        match (f[1], f[2]) {
            ("1", o) if o.starts_with("ok") => match got {
                Ok(ResultReply::Ready(r)) => assert_eq!(o, format!("ok {}", r.correctly_received)),
                // Go decodes from its 2000-byte receive buffer, not the datagram: a reply
                // missing its last byte (a zero) reads a stale zero there and passes. We
                // take the datagram only.
                Err(ReplyError::Decode(GobError::UnexpectedEnd)) => deviations += 1,
                other => panic!("{f:?}: {other:?}"),
            },
            ("1", _) => assert_eq!(got, Ok(ResultReply::NotFound), "{f:?}"),
            ("5", _) => assert!(got.is_err(), "{f:?}: {got:?}"),
            ("6", _) => assert_eq!(got, Ok(ResultReply::RetryIn(1)), "{f:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(deviations, 1);
}

fn request_verdict(input: &[u8]) -> Vec<String> {
    use InvalidParameters as I;
    let kind = |e: &InvalidParameters| match e {
        I::DurationTooLong(_) => "duration",
        I::PacketTooSmall(_) => "size_small",
        I::PacketTooLarge(_) => "size_big",
        I::Port(_) => "port",
        I::KeyLength(_) => "key",
    };
    let p = |p: &Parameters| {
        format!(
            "{},{},{},{},{}",
            p.duration_ns,
            p.packet_size,
            p.num_packets,
            HEXLOWER.encode(&p.prg_key),
            p.port
        )
    };
    let (a, b) = match Request::decode(input) {
        Ok(Request::New {
            client_to_server,
            server_to_client,
        }) => (
            "ok",
            format!("{};{}", p(&client_to_server), p(&server_to_client)),
        ),
        Ok(other) => panic!("{other:?}"),
        Err(RequestError::DecodeClientToServer(_)) => ("err", "decode_cs".into()),
        Err(RequestError::DecodeServerToClient(_)) => ("err", "decode_sc".into()),
        Err(RequestError::InvalidClientToServer(e)) => ("err", format!("invalid_cs:{}", kind(&e))),
        Err(RequestError::InvalidServerToClient(e)) => ("err", format!("invalid_sc:{}", kind(&e))),
        Err(RequestError::TrailingBytes(_)) => ("err", "length".into()),
        Err(e) => panic!("{e}"),
    };
    vec![a.into(), b]
}

#[test]
fn server_takes_requests_as_go_server() {
    let sreq = lines("SREQ");
    let valid = hex(sreq.iter().find(|f| f[0] == "valid").unwrap()[1]);
    for f in &sreq {
        assert_eq!(request_verdict(&hex(f[1])), f[2..4], "{}", f[0]);
    }
    for f in lines("STRUNC") {
        assert_eq!(
            request_verdict(&valid[..f[0].parse::<usize>().unwrap()]),
            f[1..3],
            "{f:?}"
        );
    }
    for f in lines("SMUT") {
        let mut m = valid.clone();
        m[f[0].parse::<usize>().unwrap()] = hex(f[1])[0];
        let want = if f[2] == "same" {
            request_verdict(&valid)
        } else {
            f[2..4].iter().map(|s| s.to_string()).collect()
        };
        assert_eq!(request_verdict(&m), want, "{f:?}");
    }
    assert_eq!(Request::decode(b""), Err(RequestError::Empty));
    assert_eq!(Request::decode(b"X"), Err(RequestError::UnknownKind(b'X')));
}

#[test]
fn pacing_schedule() {
    let p = Parameters {
        duration_ns: 3_000_000_000,
        num_packets: 31,
        packet_size: 1000,
        ..Default::default()
    };
    assert_eq!(packet_interval_ns(&p), 100_000_000);
    assert_eq!(send_offset(&p, 0), Duration::ZERO);
    assert_eq!(send_offset(&p, 30), Duration::from_secs(3));
    // Go's truncating division: 3 s / 29.
    let q = Parameters {
        num_packets: 30,
        ..p.clone()
    };
    assert_eq!(packet_interval_ns(&q), 103_448_275);
    assert_eq!(send_offset(&q, 29), Duration::from_nanos(2_999_999_975));
    let one = Parameters {
        num_packets: 1,
        ..p.clone()
    };
    assert_eq!(send_offset(&one, 0), Duration::ZERO);
    assert_eq!(packet_interval_ns(&one), 3_000_000_000);
    let negative = Parameters {
        duration_ns: -5,
        ..p.clone()
    };
    assert_eq!(send_offset(&negative, 7), Duration::ZERO);
    assert_eq!(packet_counter(&p, 4_294_968), 704); // 4_294_968_000 mod 2^32
    assert_eq!(send_deadline(&p), Duration::from_millis(3010));
    assert_eq!(receive_deadline(&p), Duration::from_secs(4));
    let long = Parameters {
        duration_ns: 10_000_000_000,
        ..p.clone()
    };
    assert_eq!(server_finish(&p, &long), Duration::from_millis(10_010));
    assert_eq!(server_finish(&long, &p), Duration::from_secs(11));
}

#[test]
fn retry_waits_stay_clear_of_not_found() {
    assert_eq!(retry_wait(Duration::ZERO), 1);
    assert_eq!(retry_wait(Duration::from_millis(2999)), 3);
    assert_eq!(retry_wait(Duration::from_secs(125)), 126);
    assert_eq!(retry_wait(Duration::from_secs(301)), 126);
    assert_eq!(
        ResultReply::decode(&ResultReply::RetryIn(126).encode(), &KEY1),
        Ok(ResultReply::RetryIn(126))
    );
}

#[test]
fn direction_strings_as_go_client() {
    assert_eq!(
        direction_strings(None, None),
        (DEFAULT_PARAMETERS, DEFAULT_PARAMETERS)
    );
    assert_eq!(direction_strings(Some("1Mbps"), None), ("1Mbps", "1Mbps"));
    assert_eq!(direction_strings(None, Some("2Mbps")), ("2Mbps", "2Mbps"));
    assert_eq!(direction_strings(Some("a"), Some("b")), ("a", "b"));
}

#[test]
fn receiver_end_to_end_with_our_sender() {
    let p = Parameters {
        duration_ns: 1_000_000_000,
        packet_size: 1200,
        num_packets: 5,
        prg_key: KEY1.to_vec(),
        port: 40002,
    };
    let prg = Prg::new(&p.prg_key).unwrap();
    let mut rx = Receiver::new(&p).unwrap();
    let mut pkt = vec![0; 1200];
    // Packets 0, 1, 3, 2, 4 arrive at 0, 10, 30, 35, 50 µs. In arrival order the sequence
    // numbers go 0→1 (consecutive: 10 µs), 1→3, 3→2, 2→4 (not): only the 10 µs gap counts.
    for (i, t) in [(0, 0), (1, 10_000), (3, 30_000), (2, 35_000), (4, 50_000)] {
        prg.packet(packet_counter(&p, i), &mut pkt);
        let done = rx.on_datagram(&pkt, t);
        assert_eq!(done, i == 4);
    }
    assert!(rx.is_done());
    assert!(rx.on_datagram(&pkt, 60_000)); // not looked at
    let r = rx.result();
    assert_eq!((r.num_packets_received, r.correctly_received), (5, 5));
    assert_eq!(
        (r.ipa_var, r.ipa_min, r.ipa_avg, r.ipa_max),
        (0, 10_000, 10_000, 10_000)
    );
    let report = Report::new(&p, &r);
    assert_eq!(report.attempted_bps, 48_000);
    assert_eq!(report.loss_percent, 0.0);

    assert!(matches!(
        Receiver::new(&Parameters {
            packet_size: 3,
            ..p.clone()
        }),
        Err(ReceiverError::Invalid(InvalidParameters::PacketTooSmall(3)))
    ));
    assert!(Receiver::new(&Parameters {
        prg_key: vec![1; 24],
        ..p.clone()
    })
    .is_err());
    assert_eq!(Prg::new(&[0; 15]).err(), Some(KeyLengthError(15)));
    for n in 0..4 {
        let mut short = vec![0; n];
        prg.packet(0x0403_0201, &mut short);
        assert_eq!(short, [1, 2, 3, 4][..n]);
    }
}

#[test]
fn equal_arrival_times_are_resolved_one_way() {
    // Go picks by map order; we take the higher sequence number for a shared time.
    let a: BTreeMap<i64, i64> = [(0, 0), (1, 10), (2, 10), (3, 20)].into();
    // Times 0 (seq 0), 10 (→ 2), 10 (→ 2), 20 (seq 3): only 10→20 (2→3) counts.
    assert_eq!(interarrival_stats(&a), (0, 10, 10, 10));
}

fn arb_params() -> impl Strategy<Value = Parameters> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<u16>(),
    )
        .prop_map(|(d, s, n, k, p)| Parameters {
            duration_ns: d,
            packet_size: s,
            num_packets: n,
            prg_key: k,
            port: p,
        })
}

fn arb_result() -> impl Strategy<Value = TestResult> {
    (
        proptest::array::uniform6(any::<i64>()),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(v, k)| TestResult {
            num_packets_received: v[0],
            correctly_received: v[1],
            ipa_var: v[2],
            ipa_min: v[3],
            ipa_avg: v[4],
            ipa_max: v[5],
            prg_key: k,
        })
}

proptest! {
    #[test]
    fn messages_round_trip(cs in arb_params(), sc in arb_params(), r in arb_result()) {
        let mut buf = Vec::new();
        cs.encode(&mut buf);
        prop_assert_eq!(Parameters::decode(&buf), Ok((cs.clone(), buf.len())));
        let mut rb = Vec::new();
        r.encode(&mut rb);
        prop_assert_eq!(TestResult::decode(&rb), Ok((r.clone(), rb.len())));
        let reply = ResultReply::Ready(r.clone());
        prop_assert_eq!(ResultReply::decode(&reply.encode(), &r.prg_key), Ok(reply));
        let req = Request::New { client_to_server: cs.clone(), server_to_client: sc.clone() };
        match Request::decode(&req.encode()) {
            Ok(back) => prop_assert_eq!(back, req),
            Err(RequestError::InvalidClientToServer(_)) => prop_assert!(cs.validate().is_err()),
            Err(RequestError::InvalidServerToClient(_)) => prop_assert!(sc.validate().is_err()),
            Err(e) => prop_assert!(false, "{}", e),
        }
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), key in proptest::collection::vec(any::<u8>(), 0..20)) {
        let _ = Parameters::decode(&data);
        let _ = TestResult::decode(&data);
        let _ = Request::decode(&data);
        let _ = NewReply::decode(&data);
        let _ = ResultReply::decode(&data, &key);
    }

    #[test]
    fn parser_never_panics(s in "[0-9?,kMGTbps+\\- .x]{0,30}", d in -10i64..70_000) {
        let _ = parse_parameters(&s, d);
    }

    #[test]
    fn receiver_never_panics(sizes in proptest::collection::vec(0usize..80, 0..40), n in -3i64..10) {
        let p = Parameters { duration_ns: 1, packet_size: 40, num_packets: n, prg_key: KEY1.to_vec(), port: 0 };
        let mut rx = Receiver::new(&p).unwrap();
        for (i, s) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*s).map(|b| (b * 7 + i) as u8).collect();
            rx.on_datagram(&data, i as i64);
        }
        let r = rx.result();
        prop_assert!(r.correctly_received <= r.num_packets_received);
    }
}
