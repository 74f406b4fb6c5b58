//! A client of scion-apps' bwtester protocol (what their `scion-bwtestclient` does), over our
//! SCION/UDP socket ([`super::scion_udp`]).
//!
//! One path from the daemon carries the control connection (CC) and the data connection (DC).
//! The client's DC receiver runs before the `'N'` request goes out (the server starts sending
//! when it accepts); the client then sends its own direction, waits for its receiver, and asks
//! for the server's result with `'R'`. Requests are retried as bwtestclient retries them (up
//! to 5 tries with a 1 s wait for each reply; "wait" replies do not count), and everything a
//! server may do wrong ends in a [`ClientError`]: silence, garbage, endless "wait" replies,
//! results for another key and results no honest server could produce.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::bwtester::{
    self, receive_deadline, send_deadline, NewReply, Parameters, ParsedParameters, Request,
    ResultReply, TestResult, MAX_RTT, MAX_TRIES, MIN_PORT, RETRY_PAUSE,
};
use super::bwtester_dc::{self, ReceiveUntil, Received, SendStats};
use super::scion_udp::{ask_daemon, Route, Socket};
use crate::lanes::interactive::ChoiceError;
use crate::lanes::{PathPolicy, Preference};
use crate::scion::{Ia, ScionAddr, ScionPath};

/// How long the client keeps asking a server that says it is busy with another test: the
/// longest test (300 s) and its stragglers' wait, plus a margin.
pub const MAX_BUSY_WAIT: Duration = Duration::from_secs(310);
/// Beyond the test's own duration, how long the client waits for a result the server says is
/// not ready yet (an honest server needs about a second).
pub const RESULT_WAIT_MARGIN: Duration = Duration::from_secs(10);

/// bwtestclient's retry rules, and our bounds on its waits.
#[derive(Debug, Clone)]
pub struct Retries {
    pub max_tries: u32,
    pub reply_timeout: Duration,
    /// Pause after a malformed reply.
    pub pause: Duration,
    /// Most time spent waiting as `'N', s` replies ask (bwtestclient: unbounded).
    pub max_busy_wait: Duration,
    /// Most time spent waiting as `'R', s` replies ask; `None`: the longer direction's
    /// duration plus [`RESULT_WAIT_MARGIN`].
    pub max_result_wait: Option<Duration>,
}

impl Default for Retries {
    fn default() -> Retries {
        Retries {
            max_tries: MAX_TRIES,
            reply_timeout: MAX_RTT,
            pause: RETRY_PAUSE,
            max_busy_wait: MAX_BUSY_WAIT,
            max_result_wait: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The SCION daemon (`host:port`).
    pub daemon: String,
    /// The server's control address (its data port is one more).
    pub server: ScionAddr,
    /// Our IP for both sockets.
    pub local_host: IpAddr,
    /// Our control port; 0: a free port of the AS's range (as is the data port, always).
    pub local_port: u16,
    pub client_to_server: ParsedParameters,
    pub server_to_client: ParsedParameters,
    pub retries: Retries,
    /// Which paths may be used (`--path-policy`, `--sequence`, `--acl`).
    pub policy: PathPolicy,
    /// Which usable path is best.
    pub preference: Preference,
    /// Picks the path from the usable ones, best first, instead of the best (`-i`).
    pub choose: Option<ChoosePath>,
}

/// How `-i` asks for a path: the destination and the usable paths, best first.
pub type ChoosePath = fn(Ia, &[ScionPath]) -> Result<ScionPath, ChoiceError>;

/// A finished test.
#[derive(Debug, Clone)]
pub struct ClientOutcome {
    pub path: ScionPath,
    /// Our control and data addresses.
    pub control: ScionAddr,
    pub data: ScionAddr,
    /// What was asked, as sent (with keys and ports).
    pub client_to_server: Parameters,
    pub server_to_client: Parameters,
    /// Server→client, as we received it.
    pub received: Received,
    /// Client→server, as the server says it received it.
    pub server_result: TestResult,
    pub sent: SendStats,
}

/// Why a test did not finish.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Daemon(String),
    #[error("no path from {from} to {to}")]
    NoPath { from: Ia, to: Ia },
    #[error("none of the {offered} paths to {to} satisfies the path policy {policy}")]
    NoPathInPolicy {
        offered: usize,
        to: Ia,
        policy: String,
    },
    /// `-i`: no path was chosen.
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Setup(String),
    /// Every try timed out or got a reply bwtestclient would not take.
    #[error("no usable reply from the bwtester server at {server} to the '{request}' request after {tries} tries ({timeouts} without a reply within {timeout:?}, {malformed} malformed{last}){hint}")]
    NoAnswer {
        server: ScionAddr,
        request: char,
        tries: u32,
        timeouts: u32,
        malformed: u32,
        timeout: Duration,
        /// ": last <what was wrong>", or empty.
        last: String,
        /// What else arrived instead, or empty.
        hint: String,
    },
    #[error("the bwtester server at {server} asked us to wait {waited:?} in all for {what}, more than the {limit:?} a test can take; giving up")]
    Waited {
        server: ScionAddr,
        what: &'static str,
        waited: Duration,
        limit: Duration,
    },
    #[error("results could not be found or PRG key was incorrect (the server at {0} has no result of our test)")]
    ResultNotFound(ScionAddr),
    #[error("the bwtester server at {server} reports an impossible result: {why}")]
    ImpossibleResult { server: ScionAddr, why: String },
    #[error("{0}")]
    Io(String),
}

/// Parses `-cs` and `-sc` as bwtestclient does (a direction not given takes the other's
/// string, neither gives the default), printing what it prints through `notice`.
pub fn plan(
    cs: Option<&str>,
    sc: Option<&str>,
    notice: &mut dyn FnMut(&str),
) -> Result<(ParsedParameters, ParsedParameters), bwtester::ParamError> {
    let (cs_str, sc_str) = bwtester::direction_strings(cs, sc);
    if cs.is_none() && sc.is_some() {
        notice("Only sc parameter set, using same values for cs");
    }
    let c = bwtester::parse_parameters(cs_str, bwtester::DEFAULT_PACKET_SIZE)?;
    for n in &c.notices {
        notice(&n.to_string());
    }
    if sc.is_none() && cs.is_some() {
        notice("Only cs parameter set, using same values for sc");
    }
    let s = bwtester::parse_parameters(sc_str, bwtester::DEFAULT_PACKET_SIZE)?;
    for n in &s.notices {
        notice(&n.to_string());
    }
    Ok((c, s))
}

/// Runs one test against `cfg.server`. `notice` gets the lines bwtestclient prints during a
/// test ("Incorrect server response, trying again", ...). Blocks; do not call it from inside
/// an async runtime.
pub fn run(cfg: &ClientConfig, notice: &mut dyn FnMut(&str)) -> Result<ClientOutcome, ClientError> {
    let server = cfg.server;
    let server_dc_port = server.port.checked_add(1).ok_or_else(|| {
        ClientError::Usage(format!(
            "server port {} leaves no data port (the control port + 1)",
            server.port
        ))
    })?;
    let server_dc = server.with_port(server_dc_port);
    let daemon =
        ask_daemon(&cfg.daemon, Some(server.ia)).map_err(|e| ClientError::Daemon(e.to_string()))?;
    let ia = daemon.ia;
    let offered = daemon.paths.len();
    let mut usable = cfg.policy.filter(daemon.paths);
    cfg.preference.sort(&mut usable);
    if usable.is_empty() && offered > 0 {
        return Err(ClientError::NoPathInPolicy {
            offered,
            to: server.ia,
            policy: cfg.policy.to_string(),
        });
    }
    let path = match cfg.choose {
        Some(choose) if !usable.is_empty() => choose(server.ia, &usable)?,
        _ => crate::lanes::choose_paths(&usable, 1, &HashSet::new(), &cfg.preference)
            .into_iter()
            .next()
            .ok_or(ClientError::NoPath {
                from: ia,
                to: server.ia,
            })?,
    };

    let mut cc = if cfg.local_port != 0 {
        Socket::bind(ia, cfg.local_host, cfg.local_port)
    } else {
        Socket::bind_first_free(ia, cfg.local_host, &daemon.port_candidates, &[])
    }
    .map_err(|e| {
        ClientError::Setup(format!(
            "cannot bind the control socket on {}:{}: {e}",
            cfg.local_host, cfg.local_port
        ))
    })?;
    let mut dc = Socket::bind_first_free(
        ia,
        cfg.local_host,
        &daemon.port_candidates,
        &[cc.local().port],
    )
    .map_err(|e| {
        ClientError::Setup(format!(
            "cannot bind the data socket on {}: {e}",
            cfg.local_host
        ))
    })?;
    if dc.local().port < MIN_PORT {
        return Err(ClientError::Setup(format!(
            "our data port {} is below {MIN_PORT}, which bwtester servers refuse",
            dc.local().port
        )));
    }

    let cs = cfg
        .client_to_server
        .to_parameters(rand::random(), dc.local().port);
    let sc = cfg
        .server_to_client
        .to_parameters(rand::random(), server_dc_port);
    let setup = |e: crate::scion::packet::PacketError| {
        ClientError::Setup(format!("cannot address {server} over {path}: {e}"))
    };
    let cc_route = Route::over(&cc.local(), server, &path).map_err(setup)?;
    let dc_route = Route::over(&dc.local(), server_dc, &path).map_err(setup)?;

    // The receiver runs before the request: the server starts sending as it accepts.
    let origin = Instant::now();
    let until = ReceiveUntil::new();
    let mut dc_rx = dc
        .try_clone()
        .map_err(|e| ClientError::Setup(format!("data socket: {e}")))?;
    let (sc_rx, until_rx) = (sc.clone(), until.clone());
    let receiver = std::thread::Builder::new()
        .name("bwtest-receive".into())
        .spawn(move || bwtester_dc::receive(&mut dc_rx, server_dc, &sc_rx, origin, &until_rx))
        .map_err(|e| ClientError::Setup(format!("cannot start the receiver: {e}")))?;
    let join_receiver = |r: std::thread::JoinHandle<std::io::Result<Received>>| match r.join() {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(ClientError::Io(format!("data socket: {e}"))),
        Err(_) => Err(ClientError::Io("the receiver thread failed".into())),
    };

    let request = Request::New {
        client_to_server: cs.clone(),
        server_to_client: sc.clone(),
    }
    .encode();
    if let Err(e) = request_new(&mut cc, &cc_route, &request, &cfg.retries, notice) {
        until.abort();
        let _ = join_receiver(receiver);
        return Err(e);
    }
    let start = Instant::now();
    until.set(origin, start + receive_deadline(&sc));
    let sent = bwtester_dc::send(
        &mut dc,
        &dc_route,
        &cs,
        start,
        start + send_deadline(&cs),
        &AtomicBool::new(false),
    );
    let sent = match sent {
        Ok(s) => s,
        Err(e) => {
            until.abort();
            let _ = join_receiver(receiver);
            return Err(ClientError::Io(format!("sending test packets: {e}")));
        }
    };
    let received = join_receiver(receiver)?;

    let result_wait = cfg
        .retries
        .max_result_wait
        .unwrap_or_else(|| cs.duration().max(sc.duration()) + RESULT_WAIT_MARGIN);
    let server_result = request_result(
        &mut cc,
        &cc_route,
        &cs.prg_key,
        &cfg.retries,
        result_wait,
        notice,
    )?;
    check_result(&server_result, &cs)
        .map_err(|why| ClientError::ImpossibleResult { server, why })?;
    Ok(ClientOutcome {
        path,
        control: cc.local(),
        data: dc.local(),
        client_to_server: cs,
        server_to_client: sc,
        received,
        server_result,
        sent,
    })
}

/// What an honest receiver of `p` can report: counts that are not negative, no more correct
/// packets than were received or sent.
fn check_result(r: &TestResult, p: &Parameters) -> Result<(), String> {
    if r.num_packets_received < 0 || r.correctly_received < 0 {
        return Err(format!(
            "negative packet counts ({} received, {} correct)",
            r.num_packets_received, r.correctly_received
        ));
    }
    if r.correctly_received > r.num_packets_received {
        return Err(format!(
            "{} packets correct of {} received",
            r.correctly_received, r.num_packets_received
        ));
    }
    if r.correctly_received > p.num_packets {
        return Err(format!(
            "{} packets correct but we sent {}",
            r.correctly_received, p.num_packets
        ));
    }
    Ok(())
}

/// Datagrams on the control socket that did not come from the server.
#[derive(Default)]
struct Strays {
    count: u64,
    example: Option<ScionAddr>,
}

/// The next reply from exactly `server` before `deadline`.
fn reply_from(
    cc: &mut Socket,
    server: ScionAddr,
    deadline: Instant,
    strays: &mut Strays,
) -> Result<Option<Vec<u8>>, ClientError> {
    loop {
        match cc.recv(deadline) {
            Ok(None) => return Ok(None),
            Ok(Some(d)) if d.src == server => return Ok(Some(d.payload.to_vec())),
            Ok(Some(d)) => {
                strays.count += 1;
                strays.example.get_or_insert(d.src);
            }
            Err(e) => return Err(ClientError::Io(format!("control socket: {e}"))),
        }
    }
}

/// Counts of one request's tries, for the error when none succeeds.
struct Tries {
    request: char,
    tries: u32,
    timeouts: u32,
    malformed: u32,
    last: Option<String>,
    waited: Duration,
}

impl Tries {
    fn new(request: char) -> Tries {
        Tries {
            request,
            tries: 0,
            timeouts: 0,
            malformed: 0,
            last: None,
            waited: Duration::ZERO,
        }
    }

    fn bad(&mut self, why: String) {
        self.tries += 1;
        self.malformed += 1;
        self.last = Some(why);
    }

    fn failed(self, cc: &Socket, route: &Route, r: &Retries, strays: &Strays) -> ClientError {
        let mut hint = Vec::new();
        if strays.count > 0 {
            hint.push(format!(
                "{} datagrams came from other addresses, e.g. {}",
                strays.count,
                strays.example.map(|a| a.to_string()).unwrap_or_default()
            ));
        }
        if let Some(s) = &cc.skipped.last_scmp {
            hint.push(format!("{} SCMP messages, the last: {s}", cc.skipped.scmp));
        }
        if cc.skipped.undecodable > 0 {
            hint.push(format!("{} undecodable packets", cc.skipped.undecodable));
        }
        ClientError::NoAnswer {
            server: route.dst,
            request: self.request,
            tries: self.tries,
            timeouts: self.timeouts,
            malformed: self.malformed,
            timeout: r.reply_timeout,
            last: self
                .last
                .map(|l| format!("; last: {l}"))
                .unwrap_or_default(),
            hint: if hint.is_empty() {
                String::new()
            } else {
                format!("; {}", hint.join("; "))
            },
        }
    }

    /// Sleeps `s` seconds as a "wait" reply asks, unless the waits would pass `limit`.
    fn wait(
        &mut self,
        s: u8,
        limit: Duration,
        server: ScionAddr,
        what: &'static str,
    ) -> Result<(), ClientError> {
        let d = Duration::from_secs(u64::from(s));
        if self.waited + d > limit {
            return Err(ClientError::Waited {
                server,
                what,
                waited: self.waited + d,
                limit,
            });
        }
        std::thread::sleep(d);
        self.waited += d;
        Ok(())
    }
}

fn send_request(cc: &mut Socket, route: &Route, request: &[u8]) -> Result<(), ClientError> {
    cc.send(route, request)
        .map_err(|e| ClientError::Io(format!("control socket: {e}")))
}

/// bwtestclient's `requestNewBwtest`: `Ok` once the server answered `'N', 0`.
fn request_new(
    cc: &mut Socket,
    route: &Route,
    request: &[u8],
    r: &Retries,
    notice: &mut dyn FnMut(&str),
) -> Result<(), ClientError> {
    let mut t = Tries::new('N');
    let mut strays = Strays::default();
    while t.tries < r.max_tries {
        send_request(cc, route, request)?;
        let Some(reply) = reply_from(cc, route.dst, Instant::now() + r.reply_timeout, &mut strays)?
        else {
            t.tries += 1;
            t.timeouts += 1;
            continue;
        };
        match NewReply::decode(&reply) {
            Ok(NewReply::Started) => return Ok(()),
            Ok(NewReply::RetryIn(s)) => t.wait(
                s,
                r.max_busy_wait,
                route.dst,
                "another client's test to end",
            )?,
            Err(e) => {
                notice("Incorrect server response, trying again");
                t.bad(e.to_string());
                std::thread::sleep(r.pause);
            }
        }
    }
    Err(t.failed(cc, route, r, &strays))
}

/// bwtestclient's `requestResults`: the server's result of our client→server direction.
fn request_result(
    cc: &mut Socket,
    route: &Route,
    key: &[u8],
    r: &Retries,
    max_wait: Duration,
    notice: &mut dyn FnMut(&str),
) -> Result<TestResult, ClientError> {
    let request = Request::Result {
        prg_key: key.to_vec(),
    }
    .encode();
    let mut t = Tries::new('R');
    let mut strays = Strays::default();
    while t.tries < r.max_tries {
        send_request(cc, route, &request)?;
        let Some(reply) = reply_from(cc, route.dst, Instant::now() + r.reply_timeout, &mut strays)?
        else {
            t.tries += 1;
            t.timeouts += 1;
            continue;
        };
        match ResultReply::decode(&reply, key) {
            Ok(ResultReply::Ready(res)) => return Ok(res),
            Ok(ResultReply::NotFound) => return Err(ClientError::ResultNotFound(route.dst)),
            Ok(ResultReply::RetryIn(s)) => {
                notice(&format!(
                    "We need to sleep for {s} seconds before we can get the results"
                ));
                t.wait(s, max_wait, route.dst, "the result")?;
            }
            Err(e) => {
                use bwtester::ReplyError as E;
                match &e {
                    E::Decode(_) => notice("Decoding error, try again"),
                    E::TrailingBytes(_) => {
                        notice("Trailing bytes in response, try again");
                        std::thread::sleep(r.pause);
                    }
                    E::KeyMismatch => {
                        notice("PRG Key returned from server incorrect, this should never happen")
                    }
                    E::Length(_) | E::WrongKind(_) => {}
                }
                t.bad(e.to_string());
            }
        }
    }
    Err(t.failed(cc, route, r, &strays))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(n: i64) -> Parameters {
        Parameters {
            duration_ns: 1_000_000_000,
            packet_size: 100,
            num_packets: n,
            prg_key: vec![0; 16],
            port: 5000,
        }
    }

    #[test]
    fn impossible_results_are_refused() {
        let ok = TestResult {
            num_packets_received: 12,
            correctly_received: 10,
            ..Default::default()
        };
        assert!(check_result(&ok, &params(10)).is_ok());
        for bad in [
            TestResult {
                correctly_received: 11,
                num_packets_received: 11,
                ..ok.clone()
            },
            TestResult {
                correctly_received: 5,
                num_packets_received: 4,
                ..ok.clone()
            },
            TestResult {
                num_packets_received: -1,
                ..ok.clone()
            },
        ] {
            assert!(check_result(&bad, &params(10)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plan_prints_what_bwtestclient_prints() {
        let mut lines = Vec::new();
        let (c, s) = plan(Some("3,1000,?,8Mbps"), None, &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert_eq!(
            (c.duration_s, c.packet_size, c.num_packets),
            (3, 1000, 3000)
        );
        assert_eq!(s, c);
        assert_eq!(lines, ["Only cs parameter set, using same values for sc"]);
        lines.clear();
        let (c, _) = plan(None, Some("?,1000,30,80kbps"), &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert_eq!(c.duration_s, 3);
        assert_eq!(lines[0], "Only sc parameter set, using same values for cs");
        assert!(plan(Some("1,2,3"), None, &mut |_| {}).is_err());
    }
}
