//! scion-apps' bwtester protocol (`scion-bwtestclient` / `scion-bwtestserver`), sans IO.
//!
//! Written from reading netsec-ethz/scion-apps at commit
//! 87c1131d51acdbe0e94c2e8da0b4083c0f06b862 (main, on scionproto v0.14.0): `bwtester/bwtest`,
//! `bwtester/bwtestclient`, `bwtester/bwtestserver`; checked against vectors that their code
//! produced (`bwtester/testdata/vectors.txt`, see the tests). No code of theirs is copied.
//!
//! # The protocol
//! A test runs over two SCION/UDP "connections" between the same two hosts:
//! - the **control connection** (CC): the client's socket to the server's listening port
//!   (40002 by default); requests and replies below, each one datagram;
//! - the **data connection** (DC): the client's second socket (any port) and the server's
//!   port *CC port + 1* (chosen by the client, sent in the request, opened by the server for
//!   the test). Both directions' test packets flow between these two sockets at once.
//!
//! Requests (client → server CC), replies (server → client CC):
//! - `'N'` ‖ gob(`Parameters` client→server) ‖ gob(`Parameters` server→client): start a test.
//!   The client→server parameters carry the client's DC port, the server→client ones the
//!   server's DC port. Reply `'N', 0`: started (the server starts sending at once); `'N', s`:
//!   busy with another client, ask again in `s` seconds. Invalid requests get no reply.
//! - `'R'` ‖ PRG key of the client→server direction: fetch the server's receive result.
//!   Reply `'R', 0` ‖ gob(`Result`); `'R', s`: not finished, ask again in `s` seconds;
//!   `'R', 127`: no result for this client address and key.
//!
//! The gob encoding is Go's `encoding/gob` stream of a fresh encoder (see [`gob`]); integers
//! there are variable-length big-endian. Test packets are `packet_size` bytes: the
//! little-endian `u32` `(i * packet_size) mod 2^32` for packet `i`, then AES-128 output keyed
//! with the direction's 16-byte key (see [`Prg`]). Packet `i` leaves at `i * duration /
//! (packets - 1)` after the start.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};

pub mod gob;
#[cfg(test)]
mod tests;

use gob::{Field, GobError, Kind, Schema, Value};

/// Longest test a server accepts (`bwtest.MaxDuration`).
pub const MAX_DURATION: Duration = Duration::from_secs(300);
/// How long a receiver waits for stragglers past the test's duration (`StragglerWaitPeriod`).
pub const STRAGGLER_WAIT: Duration = Duration::from_secs(1);
/// How long a sender may send past the test's duration (`GracePeriodSend`).
pub const GRACE_PERIOD_SEND: Duration = Duration::from_millis(10);
/// Smallest packet: the index must fit (`MinPacketSize`).
pub const MIN_PACKET_SIZE: i64 = 4;
/// Largest packet a server accepts (`MaxPacketSize`).
pub const MAX_PACKET_SIZE: i64 = 66_000;
/// Lowest DC port a server accepts (`MinPort`).
pub const MIN_PORT: u16 = 1024;
/// PRG key length: AES-128.
pub const KEY_LEN: usize = 16;
/// The server's default control port (`-listen :40002`); its data port is one more.
pub const DEFAULT_SERVER_PORT: u16 = 40002;
/// The client's default `-cs`/`-sc`.
pub const DEFAULT_PARAMETERS: &str = "3,1000,30,80kbps";
pub const DEFAULT_DURATION_S: i64 = 3;
pub const DEFAULT_PACKET_SIZE: i64 = 1000;
pub const DEFAULT_PACKET_COUNT: i64 = 30;
/// Bandwidth (bit/s) the client takes for one it cannot read.
pub const DEFAULT_BANDWIDTH: i64 = 3000;
/// The client sends a request up to this many times (`MaxTries`); "wait" replies do not count.
pub const MAX_TRIES: u32 = 5;
/// How long the client waits for each reply (`MaxRTT`).
pub const MAX_RTT: Duration = Duration::from_secs(1);
/// The client's pause after a malformed reply (`Timeout`).
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// How long the server keeps a result (`resultExpiry`).
pub const RESULT_EXPIRY: Duration = Duration::from_secs(60);
/// Reply code of an `'R'` reply: no result for this client and key.
pub const RESULT_NOT_FOUND: u8 = 127;
pub const REQUEST_NEW: u8 = b'N';
pub const REQUEST_RESULT: u8 = b'R';

// ---------------------------------------------------------------------------------------------
// Messages

/// One direction's test parameters (`bwtest.Parameters`), as on the wire: Go's signed
/// `time.Duration` and `int64`s, whatever the peer sent. [`Parameters::validate`] is the
/// server's check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parameters {
    /// `BwtestDuration`, nanoseconds.
    pub duration_ns: i64,
    pub packet_size: i64,
    pub num_packets: i64,
    pub prg_key: Vec<u8>,
    /// The data port this direction is sent from: client→server parameters carry the
    /// client's DC port, server→client ones the server's (its control port + 1).
    pub port: u16,
}

/// What a receiver reports (`bwtest.Result`). The interarrival figures are nanoseconds; the
/// one named "variance" is in fact max − average (as bwtester computes it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TestResult {
    pub num_packets_received: i64,
    pub correctly_received: i64,
    pub ipa_var: i64,
    pub ipa_min: i64,
    pub ipa_avg: i64,
    pub ipa_max: i64,
    /// The client→server key, so a client only gets its own result.
    pub prg_key: Vec<u8>,
}

const PARAMETERS: Schema = Schema {
    name: "Parameters",
    fields: &[
        Field {
            name: "BwtestDuration",
            kind: Kind::Int,
        },
        Field {
            name: "PacketSize",
            kind: Kind::Int,
        },
        Field {
            name: "NumPackets",
            kind: Kind::Int,
        },
        Field {
            name: "PrgKey",
            kind: Kind::Bytes,
        },
        Field {
            name: "Port",
            kind: Kind::Uint16,
        },
    ],
};

const RESULT: Schema = Schema {
    name: "Result",
    fields: &[
        Field {
            name: "NumPacketsReceived",
            kind: Kind::Int,
        },
        Field {
            name: "CorrectlyReceived",
            kind: Kind::Int,
        },
        Field {
            name: "IPAvar",
            kind: Kind::Int,
        },
        Field {
            name: "IPAmin",
            kind: Kind::Int,
        },
        Field {
            name: "IPAavg",
            kind: Kind::Int,
        },
        Field {
            name: "IPAmax",
            kind: Kind::Int,
        },
        Field {
            name: "PrgKey",
            kind: Kind::Bytes,
        },
    ],
};

fn int(v: &Option<Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        _ => 0,
    }
}

fn bytes(v: &mut Option<Value>) -> Vec<u8> {
    match v.take() {
        Some(Value::Bytes(b)) => b,
        _ => Vec::new(),
    }
}

impl Parameters {
    /// Appends the gob stream bwtestclient sends (`bwtest.EncodeParameters`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        gob::encode(
            out,
            &PARAMETERS,
            &[
                Value::Int(self.duration_ns),
                Value::Int(self.packet_size),
                Value::Int(self.num_packets),
                Value::Bytes(self.prg_key.clone()),
                Value::Uint(u64::from(self.port)),
            ],
        );
    }

    /// Reads one gob stream of parameters from the start of `buf` (`bwtest.DecodeParameters`):
    /// the parameters and the bytes taken.
    pub fn decode(buf: &[u8]) -> Result<(Parameters, usize), GobError> {
        let (mut v, n) = gob::decode(buf, &PARAMETERS)?;
        let port = match v[4] {
            Some(Value::Uint(p)) => p as u16, // gob::decode checked the range
            _ => 0,
        };
        Ok((
            Parameters {
                duration_ns: int(&v[0]),
                packet_size: int(&v[1]),
                num_packets: int(&v[2]),
                prg_key: bytes(&mut v[3]),
                port,
            },
            n,
        ))
    }

    /// bwtestserver's check of each direction's parameters. It does not look at the number of
    /// packets, nor at durations below zero.
    pub fn validate(&self) -> Result<(), InvalidParameters> {
        if self.duration_ns > MAX_DURATION.as_nanos() as i64 {
            return Err(InvalidParameters::DurationTooLong(self.duration_ns));
        }
        if self.packet_size < MIN_PACKET_SIZE {
            return Err(InvalidParameters::PacketTooSmall(self.packet_size));
        }
        if self.packet_size > MAX_PACKET_SIZE {
            return Err(InvalidParameters::PacketTooLarge(self.packet_size));
        }
        if self.port < MIN_PORT {
            return Err(InvalidParameters::Port(self.port));
        }
        if self.prg_key.len() != KEY_LEN {
            return Err(InvalidParameters::KeyLength(self.prg_key.len()));
        }
        Ok(())
    }

    /// The test's duration; zero for the negative ones a peer may send.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_ns.max(0) as u64)
    }

    /// "3 seconds, 1000 bytes, 30 packets", as bwtestclient shows parameters.
    pub fn describe(&self) -> String {
        format!(
            "{} seconds, {} bytes, {} packets",
            self.duration_ns / 1_000_000_000,
            self.packet_size,
            self.num_packets
        )
    }
}

impl TestResult {
    /// Appends the gob stream bwtestserver sends (`bwtest.EncodeResult`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        gob::encode(
            out,
            &RESULT,
            &[
                Value::Int(self.num_packets_received),
                Value::Int(self.correctly_received),
                Value::Int(self.ipa_var),
                Value::Int(self.ipa_min),
                Value::Int(self.ipa_avg),
                Value::Int(self.ipa_max),
                Value::Bytes(self.prg_key.clone()),
            ],
        );
    }

    /// Reads one gob stream of a result from the start of `buf` (`bwtest.DecodeResult`).
    pub fn decode(buf: &[u8]) -> Result<(TestResult, usize), GobError> {
        let (mut v, n) = gob::decode(buf, &RESULT)?;
        Ok((
            TestResult {
                num_packets_received: int(&v[0]),
                correctly_received: int(&v[1]),
                ipa_var: int(&v[2]),
                ipa_min: int(&v[3]),
                ipa_avg: int(&v[4]),
                ipa_max: int(&v[5]),
                prg_key: bytes(&mut v[6]),
            },
            n,
        ))
    }
}

/// Why bwtestserver turns a direction's parameters down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidParameters {
    #[error("duration {0} ns exceeds the maximum of 300 s")]
    DurationTooLong(i64),
    #[error("packet size {0} below the minimum of 4 bytes")]
    PacketTooSmall(i64),
    #[error("packet size {0} above the maximum of 66000 bytes")]
    PacketTooLarge(i64),
    #[error("data port {0} below 1024")]
    Port(u16),
    #[error("PRG key of {0} bytes instead of 16")]
    KeyLength(usize),
}

/// A request on the control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `'N'`: start a test with these parameters.
    New {
        client_to_server: Parameters,
        server_to_client: Parameters,
    },
    /// `'R'`: the result of the test whose client→server key this is.
    Result { prg_key: Vec<u8> },
}

/// Why a server ignores a request (bwtestserver sends no reply to any of these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("empty request")]
    Empty,
    #[error("request kind {0:#04x} is neither 'N' nor 'R'")]
    UnknownKind(u8),
    #[error("client->server parameters: {0}")]
    DecodeClientToServer(GobError),
    #[error("invalid client->server parameters: {0}")]
    InvalidClientToServer(InvalidParameters),
    #[error("server->client parameters: {0}")]
    DecodeServerToClient(GobError),
    #[error("invalid server->client parameters: {0}")]
    InvalidServerToClient(InvalidParameters),
    #[error("{0} bytes after the parameters")]
    TrailingBytes(usize),
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(300);
        match self {
            Request::New {
                client_to_server,
                server_to_client,
            } => {
                out.push(REQUEST_NEW);
                client_to_server.encode(&mut out);
                server_to_client.encode(&mut out);
            }
            Request::Result { prg_key } => {
                out.push(REQUEST_RESULT);
                out.extend_from_slice(prg_key);
            }
        }
        out
    }

    /// Reads a request as bwtestserver does, with its checks of both parameter sets; every
    /// error is a request that server ignores.
    pub fn decode(buf: &[u8]) -> Result<Request, RequestError> {
        let (&kind, rest) = buf.split_first().ok_or(RequestError::Empty)?;
        match kind {
            REQUEST_NEW => {
                let (cs, n1) =
                    Parameters::decode(rest).map_err(RequestError::DecodeClientToServer)?;
                cs.validate().map_err(RequestError::InvalidClientToServer)?;
                let (sc, n2) =
                    Parameters::decode(&rest[n1..]).map_err(RequestError::DecodeServerToClient)?;
                sc.validate().map_err(RequestError::InvalidServerToClient)?;
                if n1 + n2 != rest.len() {
                    return Err(RequestError::TrailingBytes(rest.len() - n1 - n2));
                }
                Ok(Request::New {
                    client_to_server: cs,
                    server_to_client: sc,
                })
            }
            REQUEST_RESULT => Ok(Request::Result {
                prg_key: rest.to_vec(),
            }),
            other => Err(RequestError::UnknownKind(other)),
        }
    }
}

/// The reply to `'N'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewReply {
    /// `'N', 0`: the test has started.
    Started,
    /// `'N', s` (s > 0): another test runs; ask again in `s` seconds (does not count as a try).
    RetryIn(u8),
}

/// The reply to `'R'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultReply {
    /// `'R', 0` ‖ gob(Result).
    Ready(TestResult),
    /// `'R', s`: the test is still running; ask again in `s` seconds.
    RetryIn(u8),
    /// `'R', 127`: no result for this client and key.
    NotFound,
}

/// A reply bwtestclient would not take (it sends the request again, up to [`MAX_TRIES`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("reply of {0} bytes")]
    Length(usize),
    #[error("reply kind {0:#04x} does not answer the request")]
    WrongKind(u8),
    #[error("result: {0}")]
    Decode(GobError),
    #[error("{0} bytes after the result")]
    TrailingBytes(usize),
    #[error("the result is for another PRG key")]
    KeyMismatch,
}

impl NewReply {
    pub fn encode(&self) -> [u8; 2] {
        match self {
            NewReply::Started => [REQUEST_NEW, 0],
            NewReply::RetryIn(s) => [REQUEST_NEW, *s],
        }
    }

    /// As bwtestclient reads it: exactly `'N'` and one byte.
    pub fn decode(buf: &[u8]) -> Result<NewReply, ReplyError> {
        match buf {
            [REQUEST_NEW, 0] => Ok(NewReply::Started),
            [REQUEST_NEW, s] => Ok(NewReply::RetryIn(*s)),
            [k, _] => Err(ReplyError::WrongKind(*k)),
            _ => Err(ReplyError::Length(buf.len())),
        }
    }
}

impl ResultReply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ResultReply::Ready(r) => {
                let mut out = vec![REQUEST_RESULT, 0];
                r.encode(&mut out);
                out
            }
            ResultReply::RetryIn(s) => vec![REQUEST_RESULT, *s],
            ResultReply::NotFound => vec![REQUEST_RESULT, RESULT_NOT_FOUND],
        }
    }

    /// As bwtestclient reads it: bytes after a non-zero code are ignored; a result must fill
    /// the rest of the datagram and carry `expected_key` (the client→server key).
    pub fn decode(buf: &[u8], expected_key: &[u8]) -> Result<ResultReply, ReplyError> {
        let [kind, code, rest @ ..] = buf else {
            return Err(ReplyError::Length(buf.len()));
        };
        if *kind != REQUEST_RESULT {
            return Err(ReplyError::WrongKind(*kind));
        }
        match *code {
            0 => {
                let (r, n) = TestResult::decode(rest).map_err(ReplyError::Decode)?;
                if n != rest.len() {
                    return Err(ReplyError::TrailingBytes(rest.len() - n));
                }
                if r.prg_key != expected_key {
                    return Err(ReplyError::KeyMismatch);
                }
                Ok(ResultReply::Ready(r))
            }
            RESULT_NOT_FOUND => Ok(ResultReply::NotFound),
            s => Ok(ResultReply::RetryIn(s)),
        }
    }
}

/// The wait a busy server asks for: whole seconds left until `remaining` has passed, plus one.
/// bwtestserver computes `byte(seconds) + 1`, which wraps for waits of 255 s and more (a test
/// can take 301 s) and can reach 127, which in an `'R'` reply means "not found"; we stay in
/// 1..=126 instead.
pub fn retry_wait(remaining: Duration) -> u8 {
    remaining.as_secs().saturating_add(1).min(126) as u8
}

// ---------------------------------------------------------------------------------------------
// Timing

/// When the side receiving in direction `p` stops reading, from the test's start.
pub fn receive_deadline(p: &Parameters) -> Duration {
    p.duration() + STRAGGLER_WAIT
}

/// When the side sending in direction `p` stops sending, from the test's start.
pub fn send_deadline(p: &Parameters) -> Duration {
    p.duration() + GRACE_PERIOD_SEND
}

/// When the server's test is over (it receives `client_to_server`, sends `server_to_client`),
/// from its start; until then it asks other clients to wait.
pub fn server_finish(client_to_server: &Parameters, server_to_client: &Parameters) -> Duration {
    receive_deadline(client_to_server).max(send_deadline(server_to_client))
}

/// Nanoseconds between two packets: `duration / (packets - 1)` (Go's truncating division),
/// the whole duration for one packet.
pub fn packet_interval_ns(p: &Parameters) -> i64 {
    if p.num_packets > 1 {
        p.duration_ns / (p.num_packets - 1)
    } else {
        p.duration_ns
    }
}

/// When packet `i` leaves, after the start (bwtester sleeps until then, then sends; a sender
/// behind schedule sends at once). Negative durations from a peer give zero.
pub fn send_offset(p: &Parameters, i: i64) -> Duration {
    Duration::from_nanos(packet_interval_ns(p).wrapping_mul(i).max(0) as u64)
}

/// The value at the start of packet `i`, which is also its PRG counter.
pub fn packet_counter(p: &Parameters, i: i64) -> u32 {
    i.wrapping_mul(p.packet_size) as u32
}

// ---------------------------------------------------------------------------------------------
// Payloads

/// bwtester's payload generator: AES-128 of the block `LE32(counter) ‖ 0^12`.
///
/// For a packet starting at counter `c` with `n` bytes, bwtester's `Fill` (with its known bug:
/// every full block is written to the packet's first 16 bytes) leaves bytes 0..16 holding the
/// block of `c + 16 * (n/16 - 1)`, bytes 16..16*(n/16) zero, and the last `n % 16` bytes the
/// start of the block of `c + 16 * (n/16)`; all counters mod 2^32. Then the first 4 bytes
/// are overwritten with `LE32(c)`.
///
/// The `aes` crate (RustCrypto, already in the tree through sciparse) gives the raw block
/// encryption this needs; `ctr` does not fit (the counter layout and the bug are bwtester's
/// own) and ring exposes AES only inside AEAD and QUIC header-protection constructions.
pub struct Prg {
    cipher: aes::Aes128,
}

/// A PRG key that is not 16 bytes (bwtestserver accepts only 16).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PRG key of {0} bytes instead of 16")]
pub struct KeyLengthError(pub usize);

impl Prg {
    pub fn new(key: &[u8]) -> Result<Prg, KeyLengthError> {
        if key.len() != KEY_LEN {
            return Err(KeyLengthError(key.len()));
        }
        Ok(Prg {
            cipher: aes::Aes128::new(GenericArray::from_slice(key)),
        })
    }

    fn block(&self, counter: u32) -> [u8; 16] {
        let mut b = GenericArray::from([0u8; 16]);
        b[..4].copy_from_slice(&counter.to_le_bytes());
        self.cipher.encrypt_block(&mut b);
        b.into()
    }

    /// bwtester's `Fill(counter, out)` on a zeroed buffer (the middle is zeroed here).
    pub fn fill(&self, counter: u32, out: &mut [u8]) {
        let full = out.len() / 16;
        let tail = full * 16;
        if full > 0 {
            let last = counter.wrapping_add((full as u32 - 1).wrapping_mul(16));
            out[..16].copy_from_slice(&self.block(last));
            out[16..tail].fill(0);
        }
        if tail < out.len() {
            let b = self.block(counter.wrapping_add((full as u32).wrapping_mul(16)));
            let n = out.len() - tail;
            out[tail..].copy_from_slice(&b[..n]);
        }
    }

    /// The packet that starts with `counter` (packets are at least 4 bytes; a shorter buffer
    /// gets the counter's first bytes).
    pub fn packet(&self, counter: u32, out: &mut [u8]) {
        self.fill(counter, out);
        let n = out.len().min(4);
        out[..n].copy_from_slice(&counter.to_le_bytes()[..n]);
    }
}

// ---------------------------------------------------------------------------------------------
// Receiving

/// Why a receiver cannot be set up for parameters (bwtester would crash or allocate wildly).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiverError {
    #[error(transparent)]
    Invalid(#[from] InvalidParameters),
}

/// Counts one direction's packets as bwtester's `HandleDCConnReceive` does and gives the
/// [`TestResult`] it reports.
///
/// Every datagram counts as received; one of the right size is recorded under sequence
/// number `counter / packet_size` with its arrival time (a later one with the same number
/// replaces it; numbers of `num_packets` and above, which no honest sender produces, are not
/// recorded: memory stays bounded by the test's size) and counts as correct if its bytes are the PRG's for its counter (which need
/// not be a multiple of the packet size, and duplicates count again). Once `num_packets` are
/// correct, the receiver is done and further datagrams are not looked at.
pub struct Receiver {
    packet_size: usize,
    num_packets: i64,
    key: Vec<u8>,
    prg: Prg,
    expected: Vec<u8>,
    received: i64,
    correct: i64,
    /// sequence number → arrival time (ns, any fixed origin).
    arrivals: BTreeMap<i64, i64>,
}

impl Receiver {
    /// A receiver for `p`, which must pass the server's [`Parameters::validate`] but for the
    /// port (which is not the receiver's business).
    pub fn new(p: &Parameters) -> Result<Receiver, ReceiverError> {
        Parameters {
            port: MIN_PORT,
            ..p.clone()
        }
        .validate()?;
        let prg = Prg::new(&p.prg_key).map_err(|e| InvalidParameters::KeyLength(e.0))?;
        Ok(Receiver {
            packet_size: p.packet_size as usize,
            num_packets: p.num_packets,
            key: p.prg_key.clone(),
            prg,
            expected: vec![0; p.packet_size as usize],
            received: 0,
            correct: 0,
            arrivals: BTreeMap::new(),
        })
    }

    /// All packets arrived correctly: bwtester stops reading here.
    pub fn is_done(&self) -> bool {
        self.correct >= self.num_packets
    }

    /// One datagram from the peer's data socket, arrived at `arrival_ns`. Returns whether the
    /// receiver is done.
    pub fn on_datagram(&mut self, data: &[u8], arrival_ns: i64) -> bool {
        if self.is_done() {
            return true;
        }
        self.received += 1;
        if data.len() != self.packet_size {
            return false;
        }
        let counter = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let seq = i64::from(counter) / self.packet_size as i64;
        // bwtester records every sequence number; no sender of these parameters produces one
        // at or past `num_packets` (packet i has counter i·size mod 2^32, so its number is at
        // most i), and recording those would let a peer grow the map to 2^32/size entries.
        if seq < self.num_packets {
            self.arrivals.insert(seq, arrival_ns);
        }
        self.prg.packet(counter, &mut self.expected);
        if data == self.expected.as_slice() {
            self.correct += 1;
        }
        self.is_done()
    }

    /// The result so far (the final one once the receive deadline has passed or it is done).
    pub fn result(&self) -> TestResult {
        let (ipa_var, ipa_min, ipa_avg, ipa_max) = interarrival_stats(&self.arrivals);
        TestResult {
            num_packets_received: self.received,
            correctly_received: self.correct,
            ipa_var,
            ipa_min,
            ipa_avg,
            ipa_max,
            prg_key: self.key.clone(),
        }
    }
}

/// bwtester's interarrival statistics over `sequence number → arrival ns`: `(var, min, avg,
/// max)` in ns, where only the gaps between packets that arrived one after the other with
/// consecutive sequence numbers count, avg is the truncated mean (summed in float as bwtester
/// does), "var" is max − avg, and with no gap min is −1 and the rest 0.
///
/// Where two packets arrived at the same nanosecond, bwtester's answer depends on Go's map
/// order; we take the higher sequence number for that time.
pub fn interarrival_stats(arrivals: &BTreeMap<i64, i64>) -> (i64, i64, i64, i64) {
    let mut by_time: Vec<(i64, i64)> = arrivals.iter().map(|(&s, &t)| (t, s)).collect();
    by_time.sort_unstable();
    // The sequence number bwtester's time → sequence map holds for each entry's time.
    let mut seq_at = vec![0i64; by_time.len()];
    for i in (0..by_time.len()).rev() {
        seq_at[i] = match by_time.get(i + 1) {
            Some(&(t, _)) if t == by_time[i].0 => seq_at[i + 1],
            _ => by_time[i].1,
        };
    }
    let gaps: Vec<i64> = (1..by_time.len())
        .filter(|&i| seq_at[i - 1].wrapping_add(1) == seq_at[i])
        .map(|i| by_time[i].0.wrapping_sub(by_time[i - 1].0))
        .collect();
    let (mut min, mut max, mut average) = (-1i64, 0i64, 0f64);
    for &g in &gaps {
        max = max.max(g);
        if g < min || min == -1 {
            min = g;
        }
        average += g as f64 / gaps.len() as f64;
    }
    let avg = average as i64;
    (max.wrapping_sub(avg), min, avg, max)
}

// ---------------------------------------------------------------------------------------------
// What the client prints

/// bwtestclient's summary of one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub attempted_bps: i64,
    pub achieved_bps: i64,
    pub loss_percent: f64,
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    /// bwtester's "mdev": the square root of (max − avg in ns / 10^6).
    pub mdev_ms: f64,
}

impl Report {
    /// Bandwidths use the whole seconds of the duration (bwtestclient divides by zero below
    /// one second; we report 0).
    pub fn new(p: &Parameters, r: &TestResult) -> Report {
        let secs = p.duration_ns / 1_000_000_000;
        let bits = |n: i64| {
            8i64.wrapping_mul(p.packet_size)
                .wrapping_mul(n)
                .checked_div(secs)
                .unwrap_or(0)
        };
        let loss_percent = if p.num_packets > 0 {
            p.num_packets.wrapping_sub(r.correctly_received) as f64 * 100.0 / p.num_packets as f64
        } else {
            0.0
        };
        Report {
            attempted_bps: bits(p.num_packets),
            achieved_bps: bits(r.correctly_received),
            loss_percent,
            min_ms: r.ipa_min as f64 / 1e6,
            avg_ms: r.ipa_avg as f64 / 1e6,
            max_ms: r.ipa_max as f64 / 1e6,
            mdev_ms: (r.ipa_var as f64 / 1e6).sqrt(),
        }
    }
}

impl fmt::Display for Report {
    /// Exactly bwtestclient's four lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Attempted bandwidth: {} bps / {:.2} Mbps",
            self.attempted_bps,
            self.attempted_bps as f64 / 1e6
        )?;
        writeln!(
            f,
            "Achieved bandwidth: {} bps / {:.2} Mbps",
            self.achieved_bps,
            self.achieved_bps as f64 / 1e6
        )?;
        writeln!(f, "Loss rate: {:.1}%", self.loss_percent)?;
        writeln!(
            f,
            "Interarrival time min/avg/max/mdev = {:.3}/{:.3}/{:.3}/{:.3} ms",
            self.min_ms, self.avg_ms, self.max_ms, self.mdev_ms
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The client's parameter strings

/// One direction's parameters as the client's `-cs`/`-sc` string gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedParameters {
    pub duration_s: i64,
    pub packet_size: i64,
    pub num_packets: i64,
    /// What bwtestclient prints while parsing, in order.
    pub notices: Vec<ParamNotice>,
}

impl ParsedParameters {
    /// The wire parameters with this direction's key and receiving data port.
    pub fn to_parameters(&self, prg_key: [u8; KEY_LEN], port: u16) -> Parameters {
        Parameters {
            duration_ns: self.duration_s * 1_000_000_000,
            packet_size: self.packet_size,
            num_packets: self.num_packets,
            prg_key: prg_key.to_vec(),
            port,
        }
    }
}

/// A value bwtestclient replaced or computed, with its message (`Display` gives its exact
/// text, one or two lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamNotice {
    /// Not a positive integer: the default 3 s. Holds the value Go's parser returned (0 for
    /// text, ±i64::MAX for out of range).
    InvalidDuration(i64),
    /// The computed duration (seconds) was above 300: the default.
    ComputedDurationTooLong(i64),
    /// The computed duration was below 1 s: the default.
    ComputedDurationTooShort(i64),
    InvalidPacketSize {
        value: i64,
        default: i64,
    },
    InvalidPacketCount(i64),
    /// The text that could not be read as a bandwidth: [`DEFAULT_BANDWIDTH`] instead.
    InvalidBandwidth(String),
    /// The bandwidth (bit/s) that the other three values give, for a `?` bandwidth.
    TargetBandwidth(i64),
}

impl fmt::Display for ParamNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNREACHABLE: &str = "Target bandwidth might no be reachable with that parameter.";
        match self {
            ParamNotice::InvalidDuration(v) => {
                write!(f, "Invalid duration {v} provided, using default value {DEFAULT_DURATION_S}")
            }
            ParamNotice::ComputedDurationTooLong(v) => write!(
                f,
                "Duration exceeds max: {v} > 300ns, using default value {DEFAULT_DURATION_S}\n{UNREACHABLE}"
            ),
            ParamNotice::ComputedDurationTooShort(v) => write!(
                f,
                "Duration is too short: {v} , using default value {DEFAULT_DURATION_S}\n{UNREACHABLE}"
            ),
            ParamNotice::InvalidPacketSize { value, default } => {
                write!(f, "Invalid packet size {value} provided, using default value {default}")
            }
            ParamNotice::InvalidPacketCount(v) => write!(
                f,
                "Invalid packet count {v} provided, using default value {DEFAULT_PACKET_COUNT}"
            ),
            ParamNotice::InvalidBandwidth(s) => {
                write!(f, "Invalid bandwidth {s} provided, using default value {DEFAULT_BANDWIDTH}")
            }
            ParamNotice::TargetBandwidth(v) => write!(f, "Target bandwidth is {v}"),
        }
    }
}

/// A parameter string bwtestclient refuses (it exits with a usage message), or one where its
/// integer arithmetic would divide by zero (it crashes) or wrap around (it goes on with
/// nonsense, such as a negative duration): we refuse those too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// (The number of values given.)
    #[error("incorrect number of arguments, need 4 values for bwtestparameters. You can use ? as wildcard, e.g. {DEFAULT_PARAMETERS}")]
    FieldCount(usize),
    #[error("duration exceeds max: {0} > 300")]
    DurationTooLong(i64),
    #[error("computed target bandwidth does not match parameters, use wildcard or specify correct bandwidth, expected {lo}-{hi}, provided {provided}")]
    BandwidthMismatch { lo: i64, hi: i64, provided: i64 },
    #[error("a bandwidth or packet size of zero leaves the parameters undefined")]
    DivisionByZero,
    #[error("the parameters overflow 64-bit arithmetic")]
    Overflow,
}

/// Go's `strconv.ParseInt(s, 10, 64)`: `Err` holds the value it returns with its error.
fn go_parse_int(s: &str) -> Result<i64, i64> {
    s.parse::<i64>().map_err(|_| {
        let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if s.starts_with('-') {
                i64::MIN
            } else {
                i64::MAX
            }
        } else {
            0
        }
    })
}

fn mul(a: i64, b: i64) -> Result<i64, ParamError> {
    a.checked_mul(b).ok_or(ParamError::Overflow)
}

fn div(a: i64, b: i64) -> Result<i64, ParamError> {
    if b == 0 {
        return Err(ParamError::DivisionByZero);
    }
    a.checked_div(b).ok_or(ParamError::Overflow)
}

/// Parses a `-cs`/`-sc` string as bwtestclient does: `duration,size,packets,bandwidth`
/// (seconds, bytes, count, `N[k|M|G|T]bps`), or a bandwidth alone (= `?,?,?,BW`).
///
/// `?` stands for a value computed from the others; where several are `?`, all but the last
/// take their defaults (3 s, `default_packet_size`, 30 packets). Values that do not parse take
/// their defaults with a notice; packet sizes are clamped to 4..=66000 (a computed one is not);
/// a duration above 300 s is an error; a given bandwidth must be within one packet per second
/// of what the other three give.
pub fn parse_parameters(s: &str, default_packet_size: i64) -> Result<ParsedParameters, ParamError> {
    let expanded;
    let s = if s.contains(',') {
        s
    } else {
        expanded = format!("?,?,?,{s}");
        &expanded
    };
    let a: Vec<&str> = s.split(',').collect();
    if a.len() != 4 {
        return Err(ParamError::FieldCount(a.len()));
    }
    let mut p = Parser {
        notices: Vec::new(),
        default_packet_size,
    };
    let mut wildcards = a.iter().filter(|v| **v == "?").count();

    let duration = if a[0] == "?" {
        wildcards -= 1;
        if wildcards == 0 {
            let size = p.packet_size(a[1]);
            let count = p.packet_count(a[2]);
            let bw = p.bandwidth(a[3])?;
            let mut d = div(mul(mul(size, 8)?, count)?, bw)?;
            if d > MAX_DURATION.as_secs() as i64 {
                p.notices.push(ParamNotice::ComputedDurationTooLong(d));
                d = DEFAULT_DURATION_S;
            }
            if d < 1 {
                p.notices.push(ParamNotice::ComputedDurationTooShort(d));
                d = DEFAULT_DURATION_S;
            }
            d
        } else {
            DEFAULT_DURATION_S
        }
    } else {
        p.duration(a[0])?
    };

    let size = if a[1] == "?" {
        wildcards -= 1;
        if wildcards == 0 {
            let count = p.packet_count(a[2]);
            let bw = p.bandwidth(a[3])?;
            div(mul(bw, duration)?, mul(count, 8)?)?
        } else {
            default_packet_size
        }
    } else {
        p.packet_size(a[1])
    };

    let count = if a[2] == "?" {
        wildcards -= 1;
        if wildcards == 0 {
            let bw = p.bandwidth(a[3])?;
            div(mul(bw, duration)?, mul(size, 8)?)?
        } else {
            DEFAULT_PACKET_COUNT
        }
    } else {
        p.packet_count(a[2])
    };

    let expected = div(mul(mul(size, count)?, 8)?, duration)?;
    if a[3] == "?" {
        p.notices.push(ParamNotice::TargetBandwidth(expected));
    } else {
        let bw = p.bandwidth(a[3])?;
        // One packet per second more or less: no half packets are sent.
        let leeway = mul(8, size)?;
        let lo = expected.checked_sub(leeway).ok_or(ParamError::Overflow)?;
        let hi = expected.checked_add(leeway).ok_or(ParamError::Overflow)?;
        if bw < lo || bw > hi {
            return Err(ParamError::BandwidthMismatch {
                lo,
                hi,
                provided: bw,
            });
        }
    }
    Ok(ParsedParameters {
        duration_s: duration,
        packet_size: size,
        num_packets: count,
        notices: p.notices,
    })
}

struct Parser {
    notices: Vec<ParamNotice>,
    default_packet_size: i64,
}

impl Parser {
    fn duration(&mut self, s: &str) -> Result<i64, ParamError> {
        let d = match go_parse_int(s) {
            Ok(v) if v > 0 => v,
            Ok(v) | Err(v) => {
                self.notices.push(ParamNotice::InvalidDuration(v));
                DEFAULT_DURATION_S
            }
        };
        if d > MAX_DURATION.as_secs() as i64 {
            return Err(ParamError::DurationTooLong(d));
        }
        Ok(d)
    }

    fn packet_size(&mut self, s: &str) -> i64 {
        let v = go_parse_int(s).unwrap_or_else(|v| {
            self.notices.push(ParamNotice::InvalidPacketSize {
                value: v,
                default: self.default_packet_size,
            });
            self.default_packet_size
        });
        v.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE)
    }

    fn packet_count(&mut self, s: &str) -> i64 {
        match go_parse_int(s) {
            Ok(v) if v > 0 => v,
            Ok(v) | Err(v) => {
                self.notices.push(ParamNotice::InvalidPacketCount(v));
                DEFAULT_PACKET_COUNT
            }
        }
    }

    /// `N` followed by an optional `k`, `M`, `G` or `T`, then anything from the first "bps" on
    /// is ignored ("80k", "80kbps" and "80kbpsxyz" are all 80000).
    fn bandwidth(&mut self, bw: &str) -> Result<i64, ParamError> {
        let raw = bw.split("bps").next().unwrap_or("");
        let Some(&last) = raw.as_bytes().last() else {
            self.notices
                .push(ParamNotice::InvalidBandwidth(bw.to_string()));
            return Ok(DEFAULT_BANDWIDTH);
        };
        let (val, unit) = match last {
            b'k' => (&raw[..raw.len() - 1], 1_000),
            b'M' => (&raw[..raw.len() - 1], 1_000_000),
            b'G' => (&raw[..raw.len() - 1], 1_000_000_000),
            b'T' => (&raw[..raw.len() - 1], 1_000_000_000_000),
            d if d.is_ascii_digit() => (raw, 1),
            _ => {
                self.notices
                    .push(ParamNotice::InvalidBandwidth(raw.to_string()));
                return Ok(DEFAULT_BANDWIDTH);
            }
        };
        match go_parse_int(val) {
            Ok(v) if v >= 0 => mul(v, unit),
            _ => {
                self.notices
                    .push(ParamNotice::InvalidBandwidth(val.to_string()));
                Ok(DEFAULT_BANDWIDTH)
            }
        }
    }
}

/// bwtestclient's rule for the two directions: a direction not given takes the other's
/// string, and with neither both take [`DEFAULT_PARAMETERS`]. Returns (client→server,
/// server→client).
pub fn direction_strings<'a>(cs: Option<&'a str>, sc: Option<&'a str>) -> (&'a str, &'a str) {
    match (cs, sc) {
        (Some(cs), Some(sc)) => (cs, sc),
        (Some(one), None) | (None, Some(one)) => (one, one),
        (None, None) => (DEFAULT_PARAMETERS, DEFAULT_PARAMETERS),
    }
}
