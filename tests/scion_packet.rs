//! The SCION/UDP codec through real routers: packets encoded here cross pocketscion's border
//! routers on the local testnet (three-paths), arrive decodable with a valid checksum, show the
//! interfaces they traversed, and the reversed path carries the reply back. A link taken down
//! comes back as an SCMP external-interface-down naming it.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use btscion::scion::{
    daemon::BlockingDaemonClient,
    packet::{
        decode, decode_checked, encode_udp, path_interfaces, reverse_path, Decoded, ScmpMessage,
        UdpEncoder,
    },
    parse_ia, Ia, ScionAddr, ScionPath,
};
use scion_testnet::{Testnet, Topology};

const SRC: &str = "1-ff00:0:111";
const DST: &str = "1-ff00:0:112";

fn ia(s: &str) -> Ia {
    parse_ia(s).unwrap()
}

struct Setup {
    net: Testnet,
    paths: Vec<ScionPath>,
    a: UdpSocket,
    b: UdpSocket,
    src: ScionAddr,
    dst: ScionAddr,
}

fn setup() -> Setup {
    let net = Testnet::start(&Topology::builtin("three-paths").unwrap()).unwrap();
    let daemon = net.state().as_state(SRC).unwrap().daemon.to_string();
    let paths = BlockingDaemonClient::connect(&daemon)
        .unwrap()
        .paths(ia(DST), false)
        .unwrap();
    assert_eq!(paths.len(), 3);
    let sock = || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let (a, b) = (sock(), sock());
    let src = ScionAddr::new(
        ia(SRC),
        a.local_addr().unwrap().ip(),
        a.local_addr().unwrap().port(),
    );
    let dst = ScionAddr::new(
        ia(DST),
        b.local_addr().unwrap().ip(),
        b.local_addr().unwrap().port(),
    );
    Setup {
        net,
        paths,
        a,
        b,
        src,
        dst,
    }
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 9000];
    let (n, from) = s.recv_from(&mut buf).expect("no packet within 5 s");
    buf.truncate(n);
    (buf, from)
}

#[test]
fn round_trip_over_each_of_three_paths() {
    let t = setup();
    let router_112 = t.net.state().as_state(DST).unwrap().router;
    for (n, p) in t.paths.iter().enumerate() {
        let payload = vec![n as u8; 1200];
        let mut pkt = Vec::new();
        encode_udp(&t.src, &t.dst, &p.raw, &payload, &mut pkt).unwrap();
        t.a.send_to(&pkt, p.first_hop.unwrap()).unwrap();

        let (buf, from) = recv(&t.b);
        assert_eq!(from, router_112, "delivered by the destination AS's router");
        let Decoded::Udp {
            src,
            dst,
            path,
            payload: got,
        } = decode_checked(&buf).expect("valid packet with valid checksum")
        else {
            panic!("not UDP")
        };
        assert_eq!((src, dst), (t.src, t.dst));
        assert_eq!(got, &payload[..]);

        // The received path names the interfaces the packet crossed.
        let hops = path_interfaces(path).unwrap();
        let crossed: Vec<u16> = hops
            .iter()
            .flat_map(|(i, e)| [*i, *e])
            .filter(|id| *id != 0)
            .collect();
        let expected: Vec<u16> = p.interfaces.iter().map(|i| i.id).collect();
        assert_eq!(crossed, expected, "path {p}");

        // Reply over the reversed path, to the router it came from.
        let rev = reverse_path(path).unwrap();
        let enc = UdpEncoder::new(&dst, &src, &rev).unwrap();
        let mut reply = Vec::new();
        enc.encode(b"pong", &mut reply).unwrap();
        t.b.send_to(&reply, from).unwrap();

        let (buf, _) = recv(&t.a);
        let Decoded::Udp {
            src: rsrc,
            dst: rdst,
            path: rpath,
            payload,
        } = decode_checked(&buf).unwrap()
        else {
            panic!("not UDP")
        };
        assert_eq!((rsrc, rdst, payload), (t.dst, t.src, &b"pong"[..]));
        let back: Vec<u16> = path_interfaces(rpath)
            .unwrap()
            .iter()
            .flat_map(|(i, e)| [*i, *e])
            .filter(|id| *id != 0)
            .collect();
        let mut fwd = expected.clone();
        fwd.reverse();
        assert_eq!(back, fwd, "reply crossed the same interfaces backwards");
    }
}

#[test]
fn link_down_answers_scmp_external_interface_down() {
    let t = setup();
    let p2 = t
        .paths
        .iter()
        .find(|p| p.interfaces[0].id == 2)
        .expect("path via interface 2")
        .clone();
    t.net.set_link(SRC, 2, false).unwrap();

    let mut pkt = Vec::new();
    encode_udp(&t.src, &t.dst, &p2.raw, b"hello?", &mut pkt).unwrap();
    t.a.send_to(&pkt, p2.first_hop.unwrap()).unwrap();

    let (buf, _) = recv(&t.a);
    let Decoded::Scmp {
        src, dst, message, ..
    } = decode(&buf).expect("decodable SCMP")
    else {
        panic!("expected SCMP, got {:?}", decode(&buf))
    };
    assert_eq!(dst.ia, ia(SRC));
    assert_eq!(src.ia, ia(SRC), "the local router reports");
    match &message {
        ScmpMessage::ExternalInterfaceDown {
            ia: i, interface, ..
        } => {
            assert_eq!((*i, *interface), (ia(SRC), 2));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(message.is_error());
    assert!(message.affects_path(&p2));
    for p in t.paths.iter().filter(|p| p.interfaces[0].id != 2) {
        assert!(!message.affects_path(p), "{p}");
    }
    let q = message.quoted().expect("quoted header");
    assert_eq!((q.dst.ia, q.dst_port), (ia(DST), Some(t.dst.port)));
    assert_eq!(q.src_port, Some(t.src.port));

    // The other two paths still deliver.
    for p in t.paths.iter().filter(|p| p.interfaces[0].id != 2) {
        let mut pkt = Vec::new();
        encode_udp(&t.src, &t.dst, &p.raw, b"still up", &mut pkt).unwrap();
        t.a.send_to(&pkt, p.first_hop.unwrap()).unwrap();
        let (buf, _) = recv(&t.b);
        assert!(matches!(
            decode_checked(&buf),
            Ok(Decoded::Udp {
                payload: b"still up",
                ..
            })
        ));
    }
}
