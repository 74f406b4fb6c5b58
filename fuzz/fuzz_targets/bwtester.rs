//! scion-apps' bwtester protocol (`btscion::bwtest::bwtester`): the control-port requests a
//! server reads, the replies a client reads, the gob-encoded parameters and results inside
//! them, and test packets through the receiver's accounting. Whatever decodes re-encodes to
//! bytes that decode to the same value, and that re-encoding is a fixed point; the fixed-layout
//! messages re-encode to exactly the bytes read (gob itself has many spellings of one value:
//! type ids, struct names, field order, integer lengths).
#![no_main]
use btscion::bwtest::bwtester::{
    parse_parameters, NewReply, Parameters, Receiver, Request, ResultReply, TestResult,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((p, n)) = Parameters::decode(data) {
        assert!(n <= data.len());
        let mut e = Vec::new();
        p.encode(&mut e);
        assert_eq!(Parameters::decode(&e), Ok((p.clone(), e.len())));
        // Receiving with whatever parameters the peer sent: never panics, counts sensibly.
        if let Ok(mut rx) = Receiver::new(&Parameters {
            num_packets: p.num_packets.min(64),
            ..p.clone()
        }) {
            let size = p.packet_size as usize;
            for (t, chunk) in data[n..].chunks(size.max(1)).enumerate() {
                rx.on_datagram(chunk, t as i64);
            }
            let r = rx.result();
            assert!(r.correctly_received <= r.num_packets_received);
        }
    }
    if let Ok((r, _)) = TestResult::decode(data) {
        let mut e = Vec::new();
        r.encode(&mut e);
        assert_eq!(TestResult::decode(&e), Ok((r, e.len())));
    }
    if let Ok(req) = Request::decode(data) {
        let e = req.encode();
        match &req {
            Request::Result { .. } => assert_eq!(e, data),
            Request::New { .. } => {
                assert_eq!(Request::decode(&e).as_ref(), Ok(&req));
                assert_eq!(Request::decode(&e).map(|r| r.encode()), Ok(e));
            }
        }
    }
    if let Ok(reply) = NewReply::decode(data) {
        assert_eq!(reply.encode(), data);
    }
    let key = data.get(..16).unwrap_or(data);
    if let Ok(reply) = ResultReply::decode(data, key) {
        let e = reply.encode();
        match reply {
            ResultReply::Ready(_) => {
                assert_eq!(ResultReply::decode(&e, key), Ok(reply));
            }
            _ => assert_eq!(e, data[..2]),
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_parameters(s, 1000);
    }
});
