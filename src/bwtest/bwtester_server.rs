//! A server of scion-apps' bwtester protocol (what their `scion-bwtestserver` does), over our
//! SCION/UDP socket ([`super::scion_udp`]).
//!
//! One test at a time. The control socket listens on the server's port; the data socket sits
//! on the next port for the server's lifetime (bwtestserver opens it per test; a port taken by
//! something else is then an error at start instead of a refused test later). A test sends the
//! server→client packets to the client's data port over the reverse of the path its `'N'`
//! request came over, via the router that delivered it, and counts client→server packets from
//! exactly the client's data address. Its result is kept for a minute under the client's full
//! control address and handed out for the right key.
//!
//! What bwtestserver takes and we do not: parameters beyond [`Limits`] (a client could make
//! it send at any rate for 300 s, or keep a map of billions of arrivals), a server→client
//! port other than ours (bwtestserver binds whatever port the client names), durations or
//! packet counts below one, and packets that do not fit a UDP datagram. Like bwtestserver,
//! it does not answer a request it refuses; it says why in its log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::bwtester::{
    self, receive_deadline, retry_wait, send_deadline, server_finish, NewReply, Parameters,
    Request, ResultReply, TestResult, REQUEST_NEW, REQUEST_RESULT, RESULT_EXPIRY,
};
use super::bwtester_dc::{self, ReceiveUntil, Received};
use super::scion_udp::{Route, Socket};
use crate::scion::ScionAddr;

/// The most a client may ask for, per direction.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bits per second (packet size × 8 × packets / duration).
    pub max_bandwidth_bps: i64,
    /// Packets.
    pub max_packets: i64,
}

/// Default bandwidth limit per direction: 1 Gbit/s.
pub const DEFAULT_MAX_BANDWIDTH: i64 = 1_000_000_000;
/// Default packet limit per direction (the receiver keeps one arrival time per packet).
pub const DEFAULT_MAX_PACKETS: i64 = 10_000_000;
/// How long an 'R' from the client of the running test waits for the test to end.
const FINISH_GRACE: Duration = Duration::from_millis(100);
/// Largest UDP payload a datagram can carry over the IPv4 underlay.
const MAX_DATAGRAM: usize = 65_507;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bandwidth_bps: DEFAULT_MAX_BANDWIDTH,
            max_packets: DEFAULT_MAX_PACKETS,
        }
    }
}

/// Why a request that bwtestserver's own checks pass is refused here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{direction}: duration {duration_ns} ns is not positive")]
    Duration {
        direction: &'static str,
        duration_ns: i64,
    },
    #[error("{direction}: {packets} packets (at least 1, at most {max})")]
    Packets {
        direction: &'static str,
        packets: i64,
        max: i64,
    },
    #[error("{direction}: {bps} bit/s asked, more than this server's limit of {max} bit/s")]
    Bandwidth {
        direction: &'static str,
        bps: i128,
        max: i64,
    },
    #[error("server->client: data port {asked}, but this server's data port is {ours}")]
    DataPort { asked: u16, ours: u16 },
    #[error("server->client: packets of {size} bytes do not fit a UDP datagram with {overhead} bytes of SCION headers")]
    TooLarge { size: i64, overhead: usize },
}

/// bits per second of a direction, in wide arithmetic (a peer's values may be anything).
fn bandwidth(p: &Parameters) -> i128 {
    if p.duration_ns <= 0 {
        return i128::MAX;
    }
    i128::from(p.packet_size) * 8 * i128::from(p.num_packets) * 1_000_000_000
        / i128::from(p.duration_ns)
}

/// Our checks beyond [`Parameters::validate`] (which [`Request::decode`] has run).
pub fn check_request(
    cs: &Parameters,
    sc: &Parameters,
    our_data_port: u16,
    limits: &Limits,
) -> Result<(), Refusal> {
    for (direction, p) in [("client->server", cs), ("server->client", sc)] {
        if p.duration_ns <= 0 {
            return Err(Refusal::Duration {
                direction,
                duration_ns: p.duration_ns,
            });
        }
        if p.num_packets < 1 || p.num_packets > limits.max_packets {
            return Err(Refusal::Packets {
                direction,
                packets: p.num_packets,
                max: limits.max_packets,
            });
        }
        let bps = bandwidth(p);
        if bps > i128::from(limits.max_bandwidth_bps) {
            return Err(Refusal::Bandwidth {
                direction,
                bps,
                max: limits.max_bandwidth_bps,
            });
        }
    }
    if sc.port != our_data_port {
        return Err(Refusal::DataPort {
            asked: sc.port,
            ours: our_data_port,
        });
    }
    Ok(())
}

/// What the server logs (bwtestserver prints "Received request: N addr" and little else).
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// A request of kind 'N' or 'R' from this control address.
    Request { kind: char, client: ScionAddr },
    /// A datagram on the control port that is no request; not answered.
    Ignored { client: ScionAddr, why: String },
    /// An 'N' request we do not take; not answered.
    Refused { client: ScionAddr, why: String },
    /// 'N' while another client's test runs: asked to come back.
    Busy { client: ScionAddr, wait: u8 },
    Started {
        client: ScionAddr,
        client_to_server: Parameters,
        server_to_client: Parameters,
    },
    Finished {
        client: ScionAddr,
        result: TestResult,
        sent: i64,
        /// Datagrams on the data port from other senders during the test.
        foreign: u64,
    },
    /// A test whose threads failed (socket error): no result is kept.
    Failed { client: ScionAddr, why: String },
}

impl std::fmt::Display for ServerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerEvent::Request { kind, client } => {
                write!(f, "Received request: {kind} {client}")
            }
            ServerEvent::Ignored { client, why } => write!(f, "Ignored from {client}: {why}"),
            ServerEvent::Refused { client, why } => {
                write!(f, "Refused test from {client}: {why}")
            }
            ServerEvent::Busy { client, wait } => write!(
                f,
                "A bwtest is already ongoing; {client} asked to retry in {wait} s"
            ),
            ServerEvent::Started {
                client,
                client_to_server: cs,
                server_to_client: sc,
            } => write!(
                f,
                "Test started for {client}: client->server {}, server->client {}",
                cs.describe(),
                sc.describe()
            ),
            ServerEvent::Finished {
                client,
                result,
                sent,
                foreign,
            } => write!(
                f,
                "Test finished for {client}: sent {sent} packets, received {} ({} correct){}",
                result.num_packets_received,
                result.correctly_received,
                if *foreign > 0 {
                    format!(", ignored {foreign} datagrams from other senders")
                } else {
                    String::new()
                }
            ),
            ServerEvent::Failed { client, why } => write!(f, "Test for {client} failed: {why}"),
        }
    }
}

struct Running {
    client: ScionAddr,
    finish: Instant,
    abort: Arc<AtomicBool>,
    until: Arc<ReceiveUntil>,
    sender: JoinHandle<std::io::Result<bwtester_dc::SendStats>>,
    receiver: JoinHandle<std::io::Result<Received>>,
}

/// The bwtester server on a control socket and its data socket (control port + 1).
pub struct Server {
    cc: Socket,
    dc: Socket,
    limits: Limits,
    running: Option<Running>,
    results: HashMap<ScionAddr, (Instant, TestResult)>,
}

impl Server {
    /// `dc` must be on `cc`'s port + 1 (the port bwtester clients send to).
    pub fn new(cc: Socket, dc: Socket, limits: Limits) -> std::io::Result<Server> {
        if cc.local().port.checked_add(1) != Some(dc.local().port) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the data port {} is not the control port {} + 1",
                    dc.local().port,
                    cc.local().port
                ),
            ));
        }
        Ok(Server {
            cc,
            dc,
            limits,
            running: None,
            results: HashMap::new(),
        })
    }

    pub fn local(&self) -> ScionAddr {
        self.cc.local()
    }

    /// Serves until `stop` is set (checked every 200 ms) or the control socket fails.
    pub fn serve(
        &mut self,
        stop: &AtomicBool,
        log: &mut dyn FnMut(ServerEvent),
    ) -> std::io::Result<()> {
        let result = self.serve_inner(stop, log);
        if let Some(r) = self.running.take() {
            r.abort.store(true, Ordering::Release);
            r.until.abort();
            let _ = r.sender.join();
            let _ = r.receiver.join();
        }
        result
    }

    fn serve_inner(
        &mut self,
        stop: &AtomicBool,
        log: &mut dyn FnMut(ServerEvent),
    ) -> std::io::Result<()> {
        while !stop.load(Ordering::Acquire) {
            self.collect(log);
            let mut wake = Instant::now() + Duration::from_millis(200);
            if let Some(r) = &self.running {
                wake = wake.min(r.finish.max(Instant::now() + Duration::from_millis(5)));
            }
            let Some(d) = self.cc.recv(wake)? else {
                continue;
            };
            let (client, path, from) = (d.src, d.path.to_vec(), d.from);
            let payload = d.payload.to_vec();
            self.collect(log);
            self.on_request(client, &path, from, &payload, log);
        }
        Ok(())
    }

    /// Files the running test's result once both its threads are done.
    fn collect(&mut self, log: &mut dyn FnMut(ServerEvent)) {
        let done = self
            .running
            .as_ref()
            .is_some_and(|r| r.sender.is_finished() && r.receiver.is_finished());
        if !done {
            return;
        }
        let Some(r) = self.running.take() else {
            return;
        };
        let sent = r.sender.join();
        let received = r.receiver.join();
        match (sent, received) {
            (Ok(Ok(s)), Ok(Ok(rx))) => {
                let now = Instant::now();
                self.results.retain(|_, (expiry, _)| *expiry > now);
                log(ServerEvent::Finished {
                    client: r.client,
                    result: rx.result.clone(),
                    sent: s.sent,
                    foreign: rx.foreign,
                });
                self.results
                    .insert(r.client, (now + RESULT_EXPIRY, rx.result));
            }
            (s, rx) => {
                let why = match (s, rx) {
                    (Ok(Err(e)), _) => format!("sending: {e}"),
                    (_, Ok(Err(e))) => format!("receiving: {e}"),
                    _ => "a test thread failed".into(),
                };
                log(ServerEvent::Failed {
                    client: r.client,
                    why,
                });
            }
        }
    }

    fn reply(&mut self, client: ScionAddr, path: &[u8], from: std::net::SocketAddr, msg: &[u8]) {
        match Route::reply(&self.cc.local(), client, path, from) {
            Ok(route) => {
                if let Err(e) = self.cc.send(&route, msg) {
                    tracing::debug!(%client, "bwtester reply not sent: {e}");
                }
            }
            Err(e) => tracing::debug!(%client, "no route back: {e}"),
        }
    }

    fn on_request(
        &mut self,
        client: ScionAddr,
        path: &[u8],
        from: std::net::SocketAddr,
        payload: &[u8],
        log: &mut dyn FnMut(ServerEvent),
    ) {
        let kind = match payload.first() {
            Some(&k @ (REQUEST_NEW | REQUEST_RESULT)) => k,
            Some(&k) => {
                return log(ServerEvent::Ignored {
                    client,
                    why: format!("request kind {k:#04x} is neither 'N' nor 'R'"),
                })
            }
            None => {
                return log(ServerEvent::Ignored {
                    client,
                    why: "empty datagram".into(),
                })
            }
        };
        log(ServerEvent::Request {
            kind: kind as char,
            client,
        });
        let now = Instant::now();
        if kind == REQUEST_NEW {
            if let Some(r) = &self.running {
                if r.client == client {
                    // Our 'N', 0 was lost: say it again.
                    return self.reply(client, path, from, &NewReply::Started.encode());
                }
                let wait = retry_wait(r.finish.saturating_duration_since(now));
                log(ServerEvent::Busy { client, wait });
                return self.reply(client, path, from, &NewReply::RetryIn(wait).encode());
            }
            let (cs, sc) = match Request::decode(payload) {
                Ok(Request::New {
                    client_to_server,
                    server_to_client,
                }) => (client_to_server, server_to_client),
                Ok(Request::Result { .. }) => return,
                Err(e) => {
                    return log(ServerEvent::Refused {
                        client,
                        why: e.to_string(),
                    })
                }
            };
            if let Err(e) = check_request(&cs, &sc, self.dc.local().port, &self.limits) {
                return log(ServerEvent::Refused {
                    client,
                    why: e.to_string(),
                });
            }
            let client_dc = client.with_port(cs.port);
            let route = match Route::reply(&self.dc.local(), client_dc, path, from) {
                Ok(r) => r,
                Err(e) => {
                    return log(ServerEvent::Refused {
                        client,
                        why: format!("no route back to {client_dc}: {e}"),
                    })
                }
            };
            let size = usize::try_from(sc.packet_size).unwrap_or(usize::MAX);
            if size.saturating_add(route.overhead()) > MAX_DATAGRAM {
                return log(ServerEvent::Refused {
                    client,
                    why: Refusal::TooLarge {
                        size: sc.packet_size,
                        overhead: route.overhead(),
                    }
                    .to_string(),
                });
            }
            match self.start(client, client_dc, route, cs.clone(), sc.clone()) {
                Ok(()) => {
                    log(ServerEvent::Started {
                        client,
                        client_to_server: cs,
                        server_to_client: sc,
                    });
                    self.reply(client, path, from, &NewReply::Started.encode());
                }
                Err(e) => {
                    log(ServerEvent::Refused { client, why: e });
                    // bwtestserver asks to try again in a second when its set-up fails.
                    self.reply(client, path, from, &NewReply::RetryIn(1).encode());
                }
            }
        } else {
            if self.running.as_ref().is_some_and(|r| r.client == client) {
                // The client asks once it has received and sent everything; the last of its
                // packets may still be on its way through our receiver. A moment's wait saves
                // it a whole second.
                let until = now + FINISH_GRACE;
                while self.running.is_some() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(2));
                    self.collect(log);
                }
            }
            if let Some(r) = self.running.as_ref().filter(|r| r.client == client) {
                let wait = retry_wait(r.finish.saturating_duration_since(now));
                return self.reply(client, path, from, &ResultReply::RetryIn(wait).encode());
            }
            let key = &payload[1..];
            let reply = match self.results.get(&client) {
                Some((expiry, res)) if *expiry > now && res.prg_key == key => {
                    ResultReply::Ready(res.clone())
                }
                _ => ResultReply::NotFound,
            };
            self.reply(client, path, from, &reply.encode());
        }
    }

    fn start(
        &mut self,
        client: ScionAddr,
        client_dc: ScionAddr,
        route: Route,
        cs: Parameters,
        sc: Parameters,
    ) -> Result<(), String> {
        let io = |e: std::io::Error| format!("data socket: {e}");
        let mut rx_socket = self.dc.try_clone().map_err(io)?;
        let mut tx_socket = self.dc.try_clone().map_err(io)?;
        bwtester_dc::drain(&mut rx_socket).map_err(io)?;
        let start = Instant::now();
        let until = ReceiveUntil::new();
        until.set(start, start + receive_deadline(&cs));
        let abort = Arc::new(AtomicBool::new(false));
        let (until_rx, cs_rx) = (until.clone(), cs.clone());
        let receiver = std::thread::Builder::new()
            .name("bwtester-receive".into())
            .spawn(move || {
                bwtester_dc::receive(&mut rx_socket, client_dc, &cs_rx, start, &until_rx)
            })
            .map_err(io)?;
        let (abort_tx, sc_tx) = (abort.clone(), sc.clone());
        let sender = std::thread::Builder::new()
            .name("bwtester-send".into())
            .spawn(move || {
                bwtester_dc::send(
                    &mut tx_socket,
                    &route,
                    &sc_tx,
                    start,
                    start + send_deadline(&sc_tx),
                    &abort_tx,
                )
            });
        let sender = match sender {
            Ok(s) => s,
            Err(e) => {
                until.abort();
                let _ = receiver.join();
                return Err(io(e));
            }
        };
        self.running = Some(Running {
            client,
            finish: start + server_finish(&cs, &sc),
            abort,
            until,
            sender,
            receiver,
        });
        Ok(())
    }
}

/// The bwtester data port of a server listening on `port`.
pub fn data_port(port: u16) -> Option<u16> {
    port.checked_add(1)
}

/// bwtestserver's default port if the AS delivers to it (and to the data port after it),
/// else `None`.
pub fn default_port_fits(range: Option<(u16, u16)>) -> bool {
    let p = bwtester::DEFAULT_SERVER_PORT;
    match range {
        Some((lo, hi)) => lo <= p && p < hi,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(duration_ns: i64, size: i64, n: i64, port: u16) -> Parameters {
        Parameters {
            duration_ns,
            packet_size: size,
            num_packets: n,
            prg_key: vec![1; 16],
            port,
        }
    }

    #[test]
    fn absurd_requests_are_refused() {
        let l = Limits::default();
        let ok = p(3_000_000_000, 1000, 30, 40003);
        assert_eq!(check_request(&ok, &ok, 40003, &l), Ok(()));
        let cases = [
            (p(0, 1000, 30, 40003), ok.clone()),
            (p(-5, 1000, 30, 40003), ok.clone()),
            (p(3_000_000_000, 1000, 0, 40003), ok.clone()),
            (p(3_000_000_000, 1000, i64::MAX, 40003), ok.clone()),
            // 1 ns for 30 packets: an instant flood.
            (ok.clone(), p(1, 1000, 30, 40003)),
            // 300 s at 2 Gbit/s.
            (ok.clone(), p(300_000_000_000, 1000, 75_000_000, 40003)),
            (ok.clone(), p(3_000_000_000, 1000, 30, 5000)),
        ];
        for (cs, sc) in cases {
            assert!(check_request(&cs, &sc, 40003, &l).is_err(), "{cs:?} {sc:?}");
        }
        assert!(default_port_fits(Some((1, 65535))));
        assert!(!default_port_fits(Some((31000, 32767))));
    }
}
