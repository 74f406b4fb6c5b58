//! bt-utp against the real libtorrent (python3-libtorrent, run with /usr/bin/python3) over a
//! real UDP socket on 127.0.0.1, libtorrent with TCP disabled: we dial it and download a file
//! with plain BitTorrent messages, and it dials us and downloads the file from us (checking
//! every piece's hash). Byte-exact both ways. The BitTorrent side here is the least a peer
//! must say (handshake, bitfield, unchoke, interested, request, piece); the engine's own
//! uTP lanes are not built yet.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bt_utp::{Endpoint, EndpointConfig, Handle};

const BLOCK: usize = 16 * 1024;
/// Bail-out for a hung exchange (never an assertion on speed).
const GIVE_UP: Duration = Duration::from_secs(90);

struct Peer {
    child: Child,
    out: Option<BufReader<ChildStdout>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    fn start(args: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lt_utp.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 (install python3-libtorrent: scripts/install-deps.sh)");
        let out = child.stdout.take().map(BufReader::new);
        Self { child, out }
    }

    /// The value after `key` on the next line starting with it.
    fn expect(&mut self, key: &str) -> String {
        let mut line = String::new();
        let out = self.out.as_mut().expect("libtorrent's output");
        loop {
            line.clear();
            let n = out.read_line(&mut line).expect("read libtorrent's output");
            assert!(
                n > 0,
                "libtorrent ended before printing {key} (is python3-libtorrent installed?)"
            );
            if let Some(rest) = line.trim_end().strip_prefix(key) {
                return rest.trim().to_string();
            }
        }
    }
}

fn hex20(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex info hash");
    }
    out
}

/// Our side: one UDP socket and the endpoint, driven on the wall clock.
struct Net {
    sock: UdpSocket,
    ep: Endpoint<SocketAddr>,
    out: Vec<u8>,
    rbuf: Vec<u8>,
}

impl Net {
    fn bind() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        Self {
            sock,
            ep: Endpoint::new(EndpointConfig::default(), Instant::now(), 42),
            out: Vec::new(),
            rbuf: vec![0u8; 2048],
        }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Receives what has arrived (waiting up to 2 ms for the first), runs the timers, sends.
    fn turn(&mut self) {
        loop {
            match self.sock.recv_from(&mut self.rbuf) {
                Ok((n, from)) => {
                    self.ep
                        .handle_datagram(from, &self.rbuf[..n], Instant::now());
                    // Only the first read waits.
                    self.sock.set_nonblocking(true).unwrap();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        self.sock.set_nonblocking(false).unwrap();
        let now = Instant::now();
        if self.ep.poll_timeout().is_some_and(|t| t <= now) {
            self.ep.handle_timeout(now);
        }
        while let Some(to) = self.ep.poll_transmit(now, &mut self.out) {
            self.sock.send_to(&self.out, to).unwrap();
        }
    }

    fn write_all(&mut self, h: Handle, mut data: &[u8]) {
        let start = Instant::now();
        while !data.is_empty() {
            let c = self.ep.connection_mut(h).expect("connection");
            assert!(!c.is_closed(), "closed while writing: {:?}", c.error());
            let n = c.write(data);
            data = &data[n..];
            self.turn();
            assert!(start.elapsed() < GIVE_UP, "write stalled");
        }
    }

    /// Reads into `inbox` whatever the connection has.
    fn read(&mut self, h: Handle, inbox: &mut Vec<u8>) {
        let mut buf = [0u8; 16 * 1024];
        let c = self.ep.connection_mut(h).expect("connection");
        assert!(!c.is_closed(), "connection closed: {:?}", c.error());
        loop {
            let n = c.read(&mut buf);
            if n == 0 {
                return;
            }
            inbox.extend_from_slice(&buf[..n]);
        }
    }
}

fn handshake(info_hash: &[u8; 20]) -> Vec<u8> {
    let mut h = vec![19];
    h.extend_from_slice(b"BitTorrent protocol");
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(info_hash);
    h.extend_from_slice(b"-UT0001-utpcratetest");
    h
}

fn message(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(payload);
    m
}

/// Takes the next whole message (id, payload) off `inbox`; keep-alives are skipped.
fn next_message(inbox: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    loop {
        if inbox.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes(inbox[..4].try_into().unwrap()) as usize;
        if inbox.len() < 4 + len {
            return None;
        }
        let m: Vec<u8> = inbox.drain(..4 + len).collect();
        if len > 0 {
            return Some((m[4], m[5..].to_vec()));
        }
    }
}

/// Waits for the peer's 68-byte handshake and checks its info hash.
fn take_handshake(net: &mut Net, h: Handle, inbox: &mut Vec<u8>, info_hash: &[u8; 20]) {
    let start = Instant::now();
    while inbox.len() < 68 {
        net.turn();
        net.read(h, inbox);
        assert!(start.elapsed() < GIVE_UP, "no handshake from libtorrent");
    }
    let hs: Vec<u8> = inbox.drain(..68).collect();
    assert_eq!(&hs[..20], b"\x13BitTorrent protocol");
    assert_eq!(&hs[28..48], info_hash);
}

fn source(dir: &Path, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8)
        .collect();
    let path = dir.join("utp-data.bin");
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

#[test]
fn we_dial_libtorrent_over_utp_and_download_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = source(dir.path(), 3 * 1024 * 1024 + 5000);
    let mut lt = Peer::start(&["seed", path.to_str().unwrap(), dir.path().to_str().unwrap()]);
    let info_hash = hex20(&lt.expect("INFOHASH"));
    let port: u16 = lt.expect("LISTEN").parse().unwrap();
    lt.expect("SEEDING");

    let mut net = Net::bind();
    let remote: SocketAddr = ([127, 0, 0, 1], port).into();
    let h = net.ep.connect(remote, Instant::now()).unwrap();
    net.write_all(h, &handshake(&info_hash));
    let mut inbox = Vec::new();
    take_handshake(&mut net, h, &mut inbox, &info_hash);
    net.write_all(h, &message(2, &[])); // interested

    let blocks = data.len().div_ceil(BLOCK);
    let mut got = vec![0u8; data.len()];
    let mut have = 0usize;
    let mut requested = false;
    let start = Instant::now();
    while have < blocks {
        net.turn();
        net.read(h, &mut inbox);
        while let Some((id, payload)) = next_message(&mut inbox) {
            match id {
                1 if !requested => {
                    // Unchoked: ask for every block (each piece is one block).
                    requested = true;
                    let mut reqs = Vec::new();
                    for i in 0..blocks {
                        let len = BLOCK.min(data.len() - i * BLOCK) as u32;
                        let mut p = (i as u32).to_be_bytes().to_vec();
                        p.extend_from_slice(&0u32.to_be_bytes());
                        p.extend_from_slice(&len.to_be_bytes());
                        reqs.extend_from_slice(&message(6, &p));
                    }
                    net.write_all(h, &reqs);
                }
                7 => {
                    let index = u32::from_be_bytes(payload[..4].try_into().unwrap()) as usize;
                    let block = &payload[8..];
                    got[index * BLOCK..index * BLOCK + block.len()].copy_from_slice(block);
                    have += 1;
                }
                _ => {}
            }
        }
        assert!(
            start.elapsed() < GIVE_UP,
            "download stalled at {have} of {blocks} blocks"
        );
    }
    assert!(got == data, "the bytes from libtorrent differ");
    let c = net.ep.connection(h).unwrap();
    eprintln!(
        "rtt {:?}, cwnd {}, {:?}",
        c.rtt(),
        c.congestion_window(),
        c.stats()
    );
}

#[test]
fn libtorrent_dials_us_over_utp_and_downloads_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("lt");
    std::fs::create_dir(&save).unwrap();
    let (path, data) = source(dir.path(), 2 * 1024 * 1024 + 777);
    let mut net = Net::bind();
    let peer = format!("127.0.0.1:{}", net.port());
    let mut lt = Peer::start(&[
        "leech",
        path.to_str().unwrap(),
        save.to_str().unwrap(),
        &peer,
    ]);
    let info_hash = hex20(&lt.expect("INFOHASH"));

    // Accept its connection (it dials again every 2 s until one holds).
    let start = Instant::now();
    let h = loop {
        net.turn();
        if let Some(h) = net.ep.accept() {
            break h;
        }
        assert!(
            start.elapsed() < GIVE_UP,
            "libtorrent never connected over uTP"
        );
    };
    let mut inbox = Vec::new();
    take_handshake(&mut net, h, &mut inbox, &info_hash);
    let blocks = data.len().div_ceil(BLOCK);
    let mut bitfield = vec![0u8; blocks.div_ceil(8)];
    for i in 0..blocks {
        bitfield[i / 8] |= 0x80 >> (i % 8);
    }
    let mut hello = handshake(&info_hash);
    hello.extend_from_slice(&message(5, &bitfield));
    hello.extend_from_slice(&message(1, &[])); // unchoke
    net.write_all(h, &hello);

    // Serve requests until libtorrent says it has every piece (hash-checked).
    let (tx, rx) = std::sync::mpsc::channel();
    let mut out = lt.out.take().expect("libtorrent's output");
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if line.trim_end() == "DONE" {
                let _ = tx.send(());
                return;
            }
            line.clear();
        }
    });
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(()) => break,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                panic!("libtorrent ended without finishing the download")
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
        net.turn();
        if net.ep.connection(h).is_some_and(|c| c.is_closed()) {
            break;
        }
        net.read(h, &mut inbox);
        while let Some((id, payload)) = next_message(&mut inbox) {
            if id != 6 || payload.len() != 12 {
                continue;
            }
            let index = u32::from_be_bytes(payload[..4].try_into().unwrap()) as usize;
            let begin = u32::from_be_bytes(payload[4..8].try_into().unwrap()) as usize;
            let len = u32::from_be_bytes(payload[8..].try_into().unwrap()) as usize;
            let off = index * BLOCK + begin;
            let mut p = payload[..8].to_vec();
            p.extend_from_slice(&data[off..off + len]);
            net.write_all(h, &message(7, &p));
        }
        assert!(start.elapsed() < GIVE_UP, "libtorrent's download stalled");
    }
    let saved = std::fs::read(save.join("utp-data.bin")).expect("libtorrent's file");
    assert!(saved == data, "the bytes libtorrent saved differ");
}
