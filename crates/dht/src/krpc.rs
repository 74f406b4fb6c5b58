//! KRPC messages (BEP 5) with BEP 32 (`want`, `nodes6`) and BEP 43 (`ro`), generic over the
//! address kind: `nodes` holds node infos whose host is IPv4, `nodes6` those whose host is IPv6
//! (20-byte id + the address's compact form: 26/38 bytes over IP, 34/46 over SCION, as
//! netsys-lab/dht does), `values` is a list of compact peer strings, `ip` a compact address.
//!
//! [`decode`] is pure, bounded and never panics; unknown keys are ignored, missing or mistyped
//! required keys are typed errors.

use crate::addr::{DhtAddr, Family};
use bt_bencode::{Decoder, DictWriter, Error as BencodeError, ListWriter, Value};

use crate::id::Id;

/// Deepest nesting of lists and dictionaries accepted (KRPC needs 3: message → `r` → `values`).
pub const MAX_DEPTH: usize = 8;
/// Most values (of any kind) one input may contain; bounds allocations per datagram.
pub const MAX_ITEMS: usize = 2048;
/// How the DHT reads bencode: keys in any order (some DHT implementations send them unsorted),
/// canonical numbers, and hard caps on nesting and on what one datagram may allocate.
pub const DECODER: Decoder = Decoder::LENIENT
    .with_canonical_numbers(true)
    .with_max_depth(MAX_DEPTH)
    .with_max_items(MAX_ITEMS);

/// Datagrams longer than this are not KRPC we accept (real ones stay below the path MTU).
pub const MAX_MESSAGE_LEN: usize = 8192;
/// Longest transaction id kept (implementations use 2 to 4 bytes).
pub const MAX_TID_LEN: usize = 32;
/// Longest `v` (client version) or `token` kept.
pub const MAX_SHORT_STRING: usize = 64;
/// Most node infos decoded per family from one response.
pub const MAX_NODES: usize = 64;
/// Most peers decoded from one `values` list.
pub const MAX_VALUES: usize = 256;

/// Error codes of BEP 5.
pub mod error_code {
    pub const GENERIC: i64 = 201;
    pub const SERVER: i64 = 202;
    pub const PROTOCOL: i64 = 203;
    pub const METHOD_UNKNOWN: i64 = 204;
}

/// A node's id and address, as in `nodes`/`nodes6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeInfo<A> {
    pub id: Id,
    pub addr: A,
}

/// BEP 32 `want`: which node families the querier asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    pub n4: bool,
    pub n6: bool,
}

/// A query method and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Ping,
    FindNode {
        target: Id,
    },
    GetPeers {
        info_hash: Id,
    },
    AnnouncePeer {
        info_hash: Id,
        /// The peer's port (ignored by receivers when `implied_port` is set).
        port: u16,
        implied_port: bool,
        token: Vec<u8>,
    },
    /// A method we do not implement (answered with error 204).
    Other(Vec<u8>),
}

/// A query: the sender's id, the method, and BEP 32 `want`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: Id,
    pub method: Method,
    pub want: Option<Want>,
}

/// A response; which fields are set depends on the query it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<A> {
    pub id: Id,
    /// `nodes` and `nodes6` together (split by family when encoded).
    pub nodes: Vec<NodeInfo<A>>,
    pub values: Vec<A>,
    pub token: Option<Vec<u8>>,
}

impl<A> Response<A> {
    /// A response carrying only the responder's id (ping, announce_peer).
    pub fn id_only(id: Id) -> Self {
        Response {
            id,
            nodes: Vec::new(),
            values: Vec::new(),
            token: None,
        }
    }
}

/// The three kinds of KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<A> {
    Query(Query),
    Response(Response<A>),
    Error { code: i64, message: String },
}

/// A KRPC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<A> {
    /// Transaction id, echoed by the responder.
    pub t: Vec<u8>,
    /// Client version (`v`).
    pub v: Option<Vec<u8>>,
    /// BEP 43 read-only: the sender does not answer queries.
    pub ro: bool,
    /// BEP 42 `ip`: the receiver's address as the sender sees it.
    pub ip: Option<A>,
    pub body: Body<A>,
}

/// Why a datagram is not a KRPC message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrpcError {
    #[error("datagram of {0} bytes is longer than {MAX_MESSAGE_LEN}")]
    TooLong(usize),
    #[error("not bencode: {0}")]
    Bencode(#[from] BencodeError),
    #[error("not a dictionary")]
    NotADict,
    #[error("missing or invalid '{0}'")]
    Missing(&'static str),
    #[error("'{0}' has the wrong type or length")]
    Invalid(&'static str),
    #[error("unknown message type 'y'")]
    UnknownType,
}

/// Decodes one KRPC datagram whose addresses are of kind `A`.
pub fn decode<A: DhtAddr>(bytes: &[u8]) -> Result<Message<A>, KrpcError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(KrpcError::TooLong(bytes.len()));
    }
    let root = DECODER.decode(bytes)?;
    if !matches!(root, Value::Dict(_)) {
        return Err(KrpcError::NotADict);
    }
    let t = short_bytes(root.get(b"t"), MAX_TID_LEN).ok_or(KrpcError::Missing("t"))?;
    let v = root
        .get(b"v")
        .and_then(|v| short_bytes(Some(v), MAX_SHORT_STRING));
    let ro = root.get(b"ro").and_then(Value::as_int) == Some(1);
    let ip = root
        .get(b"ip")
        .and_then(Value::as_bytes)
        .and_then(A::read_compact);
    let y = root
        .get(b"y")
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::Missing("y"))?;
    let body = match y {
        b"q" => Body::Query(decode_query(&root)?),
        b"r" => Body::Response(decode_response(
            root.get(b"r").ok_or(KrpcError::Missing("r"))?,
        )?),
        b"e" => decode_error(root.get(b"e").ok_or(KrpcError::Missing("e"))?)?,
        _ => return Err(KrpcError::UnknownType),
    };
    Ok(Message {
        t: t.to_vec(),
        v: v.map(<[u8]>::to_vec),
        ro,
        ip,
        body,
    })
}

fn short_bytes<'a>(v: Option<&Value<'a>>, max: usize) -> Option<&'a [u8]> {
    v.and_then(Value::as_bytes).filter(|b| b.len() <= max)
}

fn id_of(v: Option<&Value<'_>>, key: &'static str) -> Result<Id, KrpcError> {
    let b = v.and_then(Value::as_bytes).ok_or(KrpcError::Missing(key))?;
    Id::from_slice(b).ok_or(KrpcError::Invalid(key))
}

fn decode_query(root: &Value<'_>) -> Result<Query, KrpcError> {
    let q = root
        .get(b"q")
        .and_then(Value::as_bytes)
        .ok_or(KrpcError::Missing("q"))?;
    let a = root.get(b"a").ok_or(KrpcError::Missing("a"))?;
    if !matches!(a, Value::Dict(_)) {
        return Err(KrpcError::Invalid("a"));
    }
    let id = id_of(a.get(b"id"), "id")?;
    let want = a.get(b"want").and_then(Value::as_list).map(|l| {
        let mut w = Want::default();
        for item in l {
            match item.as_bytes() {
                Some(b"n4") => w.n4 = true,
                Some(b"n6") => w.n6 = true,
                _ => {}
            }
        }
        w
    });
    let method = match q {
        b"ping" => Method::Ping,
        b"find_node" => Method::FindNode {
            target: id_of(a.get(b"target"), "target")?,
        },
        b"get_peers" => Method::GetPeers {
            info_hash: id_of(a.get(b"info_hash"), "info_hash")?,
        },
        b"announce_peer" => {
            let implied_port = a.get(b"implied_port").and_then(Value::as_int) == Some(1);
            let port = match a.get(b"port").and_then(Value::as_int) {
                Some(p) => u16::try_from(p).map_err(|_| KrpcError::Invalid("port"))?,
                None if implied_port => 0,
                None => return Err(KrpcError::Missing("port")),
            };
            Method::AnnouncePeer {
                info_hash: id_of(a.get(b"info_hash"), "info_hash")?,
                port,
                implied_port,
                token: short_bytes(a.get(b"token"), MAX_SHORT_STRING)
                    .ok_or(KrpcError::Missing("token"))?
                    .to_vec(),
            }
        }
        other => Method::Other(other.iter().take(MAX_SHORT_STRING).copied().collect()),
    };
    Ok(Query { id, method, want })
}

pub(crate) fn decode_nodes<A: DhtAddr>(
    v: Option<&Value<'_>>,
    family: Family,
    key: &'static str,
    out: &mut Vec<NodeInfo<A>>,
) -> Result<(), KrpcError> {
    let Some(v) = v else { return Ok(()) };
    let b = v.as_bytes().ok_or(KrpcError::Invalid(key))?;
    let entry = 20 + A::compact_len(family);
    if !b.len().is_multiple_of(entry) {
        return Err(KrpcError::Invalid(key));
    }
    for chunk in b.chunks_exact(entry).take(MAX_NODES) {
        let (id, addr) = chunk.split_at(20);
        if let (Some(id), Some(addr)) = (Id::from_slice(id), A::read_compact(addr)) {
            out.push(NodeInfo { id, addr });
        }
    }
    Ok(())
}

fn decode_response<A: DhtAddr>(r: &Value<'_>) -> Result<Response<A>, KrpcError> {
    if !matches!(r, Value::Dict(_)) {
        return Err(KrpcError::Invalid("r"));
    }
    let id = id_of(r.get(b"id"), "id")?;
    let mut nodes = Vec::new();
    decode_nodes(r.get(b"nodes"), Family::V4, "nodes", &mut nodes)?;
    decode_nodes(r.get(b"nodes6"), Family::V6, "nodes6", &mut nodes)?;
    let values = match r.get(b"values") {
        None => Vec::new(),
        Some(v) => v
            .as_list()
            .ok_or(KrpcError::Invalid("values"))?
            .iter()
            .filter_map(Value::as_bytes)
            .filter_map(A::read_compact)
            .take(MAX_VALUES)
            .collect(),
    };
    let token = short_bytes(r.get(b"token"), MAX_SHORT_STRING).map(<[u8]>::to_vec);
    Ok(Response {
        id,
        nodes,
        values,
        token,
    })
}

fn decode_error<A>(e: &Value<'_>) -> Result<Body<A>, KrpcError> {
    let l = e.as_list().ok_or(KrpcError::Invalid("e"))?;
    let code = l
        .first()
        .and_then(Value::as_int)
        .ok_or(KrpcError::Invalid("e"))?;
    let message = l
        .get(1)
        .and_then(Value::as_bytes)
        .map(|m| String::from_utf8_lossy(&m[..m.len().min(200)]).into_owned())
        .unwrap_or_default();
    Ok(Body::Error { code, message })
}

impl<A: DhtAddr> Message<A> {
    /// The bencoded message (the writer sorts the keys, as bencode requires).
    pub fn encode(&self) -> Vec<u8> {
        let mut d = DictWriter::new();
        match &self.body {
            Body::Query(q) => {
                d.dict("a", encode_args(q));
                d.bytes("q", method_name(&q.method));
            }
            Body::Error { code, message } => {
                let mut e = ListWriter::new();
                e.int(*code).bytes(message);
                d.list("e", e);
            }
            Body::Response(r) => {
                d.dict("r", encode_response(r));
            }
        }
        if let Some(ip) = &self.ip {
            let mut c = Vec::new();
            ip.write_compact(&mut c);
            d.bytes("ip", c);
        }
        if self.ro {
            d.int("ro", 1);
        }
        d.bytes("t", &self.t);
        if let Some(v) = &self.v {
            d.bytes("v", v);
        }
        d.bytes(
            "y",
            match self.body {
                Body::Query(_) => b"q",
                Body::Response(_) => b"r",
                Body::Error { .. } => b"e",
            },
        );
        d.finish()
    }
}

fn method_name(m: &Method) -> &[u8] {
    match m {
        Method::Ping => b"ping",
        Method::FindNode { .. } => b"find_node",
        Method::GetPeers { .. } => b"get_peers",
        Method::AnnouncePeer { .. } => b"announce_peer",
        Method::Other(name) => name,
    }
}

fn encode_args(q: &Query) -> DictWriter {
    let mut d = DictWriter::new();
    d.bytes("id", q.id.0);
    match &q.method {
        Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
        } => {
            if *implied_port {
                d.int("implied_port", 1);
            }
            d.bytes("info_hash", info_hash.0)
                .int("port", i64::from(*port))
                .bytes("token", token);
        }
        Method::GetPeers { info_hash } => {
            d.bytes("info_hash", info_hash.0);
        }
        Method::FindNode { target } => {
            d.bytes("target", target.0);
        }
        Method::Ping | Method::Other(_) => {}
    }
    if let Some(w) = q.want {
        let mut l = ListWriter::new();
        if w.n4 {
            l.bytes(b"n4");
        }
        if w.n6 {
            l.bytes(b"n6");
        }
        d.list("want", l);
    }
    d
}

pub(crate) fn encode_nodes<A: DhtAddr>(r: &Response<A>, family: Family) -> Vec<u8> {
    let mut b = Vec::new();
    for n in r.nodes.iter().filter(|n| n.addr.family() == family) {
        b.extend_from_slice(&n.id.0);
        n.addr.write_compact(&mut b);
    }
    b
}

fn encode_response<A: DhtAddr>(r: &Response<A>) -> DictWriter {
    let mut d = DictWriter::new();
    d.bytes("id", r.id.0);
    let v4 = encode_nodes(r, Family::V4);
    if !v4.is_empty() {
        d.bytes("nodes", v4);
    }
    let v6 = encode_nodes(r, Family::V6);
    if !v6.is_empty() {
        d.bytes("nodes6", v6);
    }
    if let Some(token) = &r.token {
        d.bytes("token", token);
    }
    if !r.values.is_empty() {
        let mut l = ListWriter::new();
        let mut c = Vec::new();
        for v in &r.values {
            c.clear();
            v.write_compact(&mut c);
            l.bytes(&c);
        }
        d.list("values", l);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use scion_addr::ScionAddr;
    use std::net::SocketAddr;

    fn id(c: u8) -> Id {
        Id([c; 20])
    }

    #[test]
    fn bep5_examples_decode() {
        let m: Message<SocketAddr> =
            decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
        assert_eq!(m.t, b"aa");
        assert!(matches!(
            m.body,
            Body::Query(Query {
                method: Method::Ping,
                ..
            })
        ));
        let m: Message<SocketAddr> = decode(
            b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        )
        .unwrap();
        match m.body {
            Body::Query(Query {
                method:
                    Method::AnnouncePeer {
                        port,
                        implied_port,
                        token,
                        ..
                    },
                ..
            }) => {
                assert_eq!(port, 6881);
                assert!(!implied_port);
                assert_eq!(token, b"aoeusnth");
            }
            other => panic!("{other:?}"),
        }
        let m: Message<SocketAddr> =
            decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").unwrap();
        assert_eq!(
            m.body,
            Body::Error {
                code: 201,
                message: "A Generic Error Ocurred".into()
            }
        );
    }

    #[test]
    fn get_peers_response_with_values_and_nodes() {
        let msg = b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re";
        let m: Message<SocketAddr> = decode(msg).unwrap();
        let Body::Response(r) = m.body else { panic!() };
        assert_eq!(r.values.len(), 2);
        assert_eq!(r.token.as_deref(), Some(&b"aoeusnth"[..]));
    }

    /// The layout netsys-lab/dht's tests pin down: `nodes` of 34-byte entries
    /// (id + IA + IPv4 + port) and `values` of 14-byte strings.
    #[test]
    fn scion_forms_match_netsys_lab() {
        let ia = b"\x00\x13\xff\xaa\x00\x01\x0e\x4b";
        let mut nodes = Vec::new();
        for (ip, port) in [([1, 2, 3, 4], 6u16), ([2, 3, 4, 5], 7)] {
            nodes.extend_from_slice(&[0u8; 20]);
            nodes.extend_from_slice(ia);
            nodes.extend_from_slice(&ip);
            nodes.extend_from_slice(&port.to_be_bytes());
        }
        let mut msg = b"d1:rd2:id20:".to_vec();
        msg.extend_from_slice(&[0; 20]);
        msg.extend_from_slice(b"5:nodes68:");
        msg.extend_from_slice(&nodes);
        msg.extend_from_slice(b"6:valuesl14:");
        msg.extend_from_slice(ia);
        msg.extend_from_slice(b"\x01\x02\x03\x04\x56\x78");
        msg.extend_from_slice(b"ee1:t2:\x8c%1:y1:re");
        let m: Message<ScionAddr> = decode(&msg).unwrap();
        let Body::Response(r) = &m.body else { panic!() };
        assert_eq!(r.nodes.len(), 2);
        assert_eq!(r.nodes[0].addr.to_string(), "19-ffaa:1:e4b,[1.2.3.4]:6");
        assert_eq!(r.nodes[1].addr.to_string(), "19-ffaa:1:e4b,[2.3.4.5]:7");
        assert_eq!(r.values[0].to_string(), "19-ffaa:1:e4b,[1.2.3.4]:22136");
        // Our encoder writes the same bytes back.
        assert_eq!(m.encode(), msg);
        // And the IP decoder refuses the SCION node list (34 is not a multiple of 26).
        assert!(decode::<SocketAddr>(&msg).is_err());
    }

    #[test]
    fn scion_v6_nodes_go_to_nodes6() {
        let a: ScionAddr = "1-ff00:0:110,[fd00::1]:7000".parse().unwrap();
        let b: ScionAddr = "1-ff00:0:110,[10.0.0.1]:7000".parse().unwrap();
        let m = Message {
            t: b"xy".to_vec(),
            v: None,
            ro: false,
            ip: None,
            body: Body::Response(Response {
                id: id(1),
                nodes: vec![
                    NodeInfo { id: id(2), addr: b },
                    NodeInfo { id: id(3), addr: a },
                ],
                values: vec![],
                token: None,
            }),
        };
        let bytes = m.encode();
        let root = DECODER.decode(&bytes).unwrap();
        let r = root.get(b"r").unwrap();
        assert_eq!(r.get(b"nodes").and_then(Value::as_bytes).unwrap().len(), 34);
        assert_eq!(
            r.get(b"nodes6").and_then(Value::as_bytes).unwrap().len(),
            46
        );
        assert_eq!(decode::<ScionAddr>(&bytes).unwrap(), m);
    }

    #[test]
    fn required_keys_are_checked() {
        for (bad, what) in [
            (&b"d1:y1:qe"[..], "t"),
            (b"d1:t2:aae", "y"),
            (b"d1:t2:aa1:y1:qe", "q"),
            (b"d1:q4:ping1:t2:aa1:y1:qe", "a"),
            (b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", "id"),
            (b"d1:t2:aa1:y1:re", "r"),
        ] {
            let e = decode::<SocketAddr>(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("'{what}'")), "{e}");
        }
        assert_eq!(
            decode::<SocketAddr>(b"d1:t2:aa1:y1:ze"),
            Err(KrpcError::UnknownType)
        );
        assert_eq!(decode::<SocketAddr>(b"le"), Err(KrpcError::NotADict));
        assert!(matches!(
            decode::<SocketAddr>(&vec![b'x'; MAX_MESSAGE_LEN + 1]),
            Err(KrpcError::TooLong(_))
        ));
    }

    #[test]
    fn unknown_methods_decode_for_an_error_reply() {
        let m: Message<SocketAddr> =
            decode(b"d1:ad2:id20:abcdefghij0123456789e1:q9:sample_ih1:t2:aa1:y1:qe").unwrap();
        let Body::Query(q) = m.body else { panic!() };
        assert_eq!(q.method, Method::Other(b"sample_ih".to_vec()));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

        fn any_id() -> impl Strategy<Value = Id> {
            any::<[u8; 20]>().prop_map(Id)
        }

        fn any_ip_addr() -> impl Strategy<Value = SocketAddr> + Clone {
            prop_oneof![
                (any::<[u8; 4]>(), 1..=u16::MAX)
                    .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), p)),
                (any::<[u8; 16]>(), 1..=u16::MAX)
                    .prop_map(|(ip, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), p))
                    .prop_filter("mapped v4 is written short", |a| match a.ip() {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_none(),
                        _ => true,
                    }),
            ]
        }

        fn any_scion_addr() -> impl Strategy<Value = ScionAddr> + Clone {
            (any::<u64>(), any_ip_addr())
                .prop_map(|(ia, a)| ScionAddr::new(scion_addr::Ia::from_u64(ia), a.ip(), a.port()))
        }

        fn any_method() -> impl Strategy<Value = Method> {
            prop_oneof![
                Just(Method::Ping),
                any_id().prop_map(|target| Method::FindNode { target }),
                any_id().prop_map(|info_hash| Method::GetPeers { info_hash }),
                (
                    any_id(),
                    any::<u16>(),
                    any::<bool>(),
                    proptest::collection::vec(any::<u8>(), 0..20)
                )
                    .prop_map(|(info_hash, port, implied_port, token)| {
                        Method::AnnouncePeer {
                            info_hash,
                            port,
                            implied_port,
                            token,
                        }
                    }),
            ]
        }

        fn any_body<A: DhtAddr>(
            addr: impl Strategy<Value = A> + Clone,
        ) -> impl Strategy<Value = Body<A>> {
            prop_oneof![
                (
                    any_id(),
                    any_method(),
                    proptest::option::of((any::<bool>(), any::<bool>()))
                )
                    .prop_map(|(id, method, want)| Body::Query(Query {
                        id,
                        method,
                        want: want.map(|(n4, n6)| Want { n4, n6 }),
                    })),
                (
                    any_id(),
                    proptest::collection::vec(
                        (any_id(), addr.clone()).prop_map(|(id, addr)| NodeInfo { id, addr }),
                        0..8
                    ),
                    proptest::collection::vec(addr, 0..10),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
                )
                    .prop_map(|(id, mut nodes, values, token)| {
                        // Decoding yields v4 nodes before v6 ones.
                        nodes.sort_by_key(|n: &NodeInfo<A>| n.addr.family() == Family::V6);
                        Body::Response(Response {
                            id,
                            nodes,
                            values,
                            token,
                        })
                    }),
                (any::<i64>(), "[ -~]{0,40}")
                    .prop_map(|(code, message)| Body::Error { code, message }),
            ]
        }

        fn any_message<A: DhtAddr>(
            addr: impl Strategy<Value = A> + Clone,
        ) -> impl Strategy<Value = Message<A>> {
            (
                proptest::collection::vec(any::<u8>(), 0..8),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6)),
                any::<bool>(),
                proptest::option::of(addr.clone()),
                any_body(addr),
            )
                .prop_map(|(t, v, ro, ip, body)| Message { t, v, ro, ip, body })
        }

        proptest! {
            #[test]
            fn ip_messages_round_trip(m in any_message(any_ip_addr())) {
                prop_assert_eq!(decode::<SocketAddr>(&m.encode()), Ok(m));
            }

            #[test]
            fn scion_messages_round_trip(m in any_message(any_scion_addr())) {
                prop_assert_eq!(decode::<ScionAddr>(&m.encode()), Ok(m));
            }

            #[test]
            fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = decode::<SocketAddr>(&b);
                let _ = decode::<ScionAddr>(&b);
            }

            #[test]
            fn mutated_messages_never_panic(
                m in any_message(any_scion_addr()),
                flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            ) {
                let mut b = m.encode();
                for (i, x) in flips {
                    let n = b.len();
                    b[i % n] ^= x;
                }
                let _ = decode::<ScionAddr>(&b);
                let _ = decode::<SocketAddr>(&b);
            }
        }
    }

    /// The DHT's bencode rules ([`DECODER`]; moved here with the DHT's own reader, which
    /// bt-bencode replaced).
    mod bencode_rules {
        use super::super::{DECODER, MAX_DEPTH, MAX_ITEMS};
        use bt_bencode::{put_bytes, put_int, Error as BencodeError, Value};

        fn parse(input: &[u8]) -> Result<Value<'_>, BencodeError> {
            DECODER.decode(input)
        }

        fn put_key(out: &mut Vec<u8>, k: &str) {
            put_bytes(out, k.as_bytes());
        }

        #[test]
        fn parses_nested_values() {
            let v = parse(b"d1:ad2:id3:abce1:lli-3ei0ee1:y1:qe").unwrap();
            assert_eq!(
                v.get(b"a").and_then(|a| a.get(b"id")),
                Some(&Value::Bytes(b"abc"))
            );
            assert_eq!(
                v.get(b"l").and_then(Value::as_list).map(|l| l.len()),
                Some(2)
            );
            assert_eq!(v.get(b"y").and_then(Value::as_bytes), Some(&b"q"[..]));
        }

        #[test]
        fn unsorted_keys_are_accepted() {
            let v = parse(b"d1:y1:q1:t2:aae").unwrap();
            assert_eq!(v.get(b"t").and_then(Value::as_bytes), Some(&b"aa"[..]));
        }

        #[test]
        fn rejects_malformed() {
            for bad in [
                &b""[..],
                b"i",
                b"i-0e",
                b"i01e",
                b"ie",
                b"i1",
                b"5:abc",
                b"01:a",
                b"d1:a",
                b"di1ei2ee",
                b"le1",
                b"x",
                b"99999999999:a",
                b"i99999999999999999999e",
                b"-1:a",
            ] {
                assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
            }
        }

        #[test]
        fn depth_and_item_limits() {
            let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
            assert_eq!(parse(&deep), Err(BencodeError::TooDeep));
            let ok = [vec![b'l'; MAX_DEPTH], vec![b'e'; MAX_DEPTH]].concat();
            assert!(parse(&ok).is_ok());
            let mut many = b"l".to_vec();
            many.extend(std::iter::repeat_n(&b"i1e"[..], MAX_ITEMS).flatten());
            many.push(b'e');
            assert_eq!(parse(&many), Err(BencodeError::TooManyItems));
        }

        #[test]
        fn writers_round_trip() {
            let mut out = Vec::new();
            out.push(b'd');
            put_key(&mut out, "a");
            put_int(&mut out, -42);
            put_key(&mut out, "b");
            put_bytes(&mut out, b"xyz");
            out.push(b'e');
            assert_eq!(out, b"d1:ai-42e1:b3:xyze");
            assert!(parse(&out).is_ok());
        }
    }
}
