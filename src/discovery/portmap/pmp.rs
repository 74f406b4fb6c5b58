//! NAT-PMP (RFC 6886) and PCP (RFC 6887) MAP requests and answers: codecs that check every
//! length, version, opcode and nonce, and the one UDP exchange with the gateway's port 5351
//! (retransmitted on RFC 6886's doubling schedule, cut short at four tries so a silent
//! gateway costs under 4 s). Hand-written: the `natpmp` crate has no PCP and brings its own
//! async runtime choice, and both formats are a few fixed-size fields.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::Protocol;

pub const PORT: u16 = 5351;
/// RFC 6886 §3.1: 250 ms, doubling; we stop after four tries.
const FIRST_WAIT: Duration = Duration::from_millis(250);
const TRIES: u32 = 4;
/// Larger than any answer we accept (PCP answers may carry options: at most 1100 bytes).
const MAX_DATAGRAM: usize = 1100;

/// Why an exchange or its answer failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum PmpError {
    #[error("no answer from {0} (tried {TRIES} times)")]
    NoAnswer(SocketAddr),
    #[error("socket: {0}")]
    Io(String),
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    #[error("the gateway speaks NAT-PMP only (it refused PCP's version)")]
    NatPmpOnly,
    #[error("the gateway refused: {0}")]
    Refused(String),
}

impl From<io::Error> for PmpError {
    fn from(e: io::Error) -> Self {
        PmpError::Io(e.to_string())
    }
}

/// A mapping as the gateway granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub external_port: u16,
    pub lifetime: Duration,
    /// PCP tells the external address with the mapping; NAT-PMP asks for it separately.
    pub external_ip: Option<Ipv4Addr>,
}

// ---- NAT-PMP -------------------------------------------------------------------------

fn pmp_opcode(p: Protocol) -> u8 {
    match p {
        Protocol::Udp => 1,
        Protocol::Tcp => 2,
    }
}

/// The external address request (opcode 0).
pub fn pmp_external_request() -> [u8; 2] {
    [0, 0]
}

/// A map request; `lifetime` 0 with external port 0 removes the mapping.
pub fn pmp_map_request(p: Protocol, internal: u16, external: u16, lifetime: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[1] = pmp_opcode(p);
    b[4..6].copy_from_slice(&internal.to_be_bytes());
    b[6..8].copy_from_slice(&external.to_be_bytes());
    b[8..12].copy_from_slice(&lifetime.to_be_bytes());
    b
}

fn pmp_result(code: u16) -> Result<(), PmpError> {
    let why = match code {
        0 => return Ok(()),
        1 => "unsupported version",
        2 => "not authorized (port mapping is disabled on the gateway)",
        3 => "network failure (the gateway has no external address)",
        4 => "out of resources",
        5 => "unsupported opcode",
        _ => return Err(PmpError::Refused(format!("NAT-PMP result code {code}"))),
    };
    Err(PmpError::Refused(format!("NAT-PMP result {code}: {why}")))
}

/// Reads the header of an answer to `opcode`: version 0, opcode 128 + `opcode`, result.
fn pmp_header(b: &[u8], opcode: u8, len: usize) -> Result<(), PmpError> {
    if b.len() < 4 {
        return Err(PmpError::Malformed("shorter than a NAT-PMP header"));
    }
    if b[0] != 0 {
        return Err(PmpError::Malformed("not NAT-PMP version 0"));
    }
    if b[1] != 128 + opcode {
        return Err(PmpError::Malformed("an answer to another request"));
    }
    pmp_result(u16::from_be_bytes([b[2], b[3]]))?;
    if b.len() < len {
        return Err(PmpError::Malformed("NAT-PMP answer cut short"));
    }
    Ok(())
}

pub fn pmp_parse_external(b: &[u8]) -> Result<Ipv4Addr, PmpError> {
    pmp_header(b, 0, 12)?;
    Ok(Ipv4Addr::new(b[8], b[9], b[10], b[11]))
}

pub fn pmp_parse_map(b: &[u8], p: Protocol, internal: u16) -> Result<Granted, PmpError> {
    pmp_header(b, pmp_opcode(p), 16)?;
    if u16::from_be_bytes([b[8], b[9]]) != internal {
        return Err(PmpError::Malformed(
            "the answer names another internal port",
        ));
    }
    Ok(Granted {
        external_port: u16::from_be_bytes([b[10], b[11]]),
        lifetime: Duration::from_secs(u32::from_be_bytes([b[12], b[13], b[14], b[15]]).into()),
        external_ip: None,
    })
}

// ---- PCP -----------------------------------------------------------------------------

const PCP_VERSION: u8 = 2;
const PCP_MAP: u8 = 1;
const PCP_REQUEST_LEN: usize = 24 + 36;

fn pcp_protocol(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

/// A MAP request from `client` (our address, which the gateway checks against the source).
pub fn pcp_map_request(
    p: Protocol,
    internal: u16,
    external: u16,
    lifetime: u32,
    client: Ipv4Addr,
    nonce: [u8; 12],
) -> [u8; PCP_REQUEST_LEN] {
    let mut b = [0u8; PCP_REQUEST_LEN];
    b[0] = PCP_VERSION;
    b[1] = PCP_MAP;
    b[4..8].copy_from_slice(&lifetime.to_be_bytes());
    b[8..24].copy_from_slice(&client.to_ipv6_mapped().octets());
    b[24..36].copy_from_slice(&nonce);
    b[36] = pcp_protocol(p);
    b[40..42].copy_from_slice(&internal.to_be_bytes());
    b[42..44].copy_from_slice(&external.to_be_bytes());
    // No preferred external address: the IPv4-mapped all-zeros address (RFC 6887 §11.1).
    b[44..60].copy_from_slice(&Ipv4Addr::UNSPECIFIED.to_ipv6_mapped().octets());
    b
}

fn pcp_result(code: u8) -> Result<(), PmpError> {
    let why = match code {
        0 => return Ok(()),
        1 => "unsupported version",
        2 => "not authorized",
        3 => "malformed request",
        4 => "unsupported opcode",
        5 => "unsupported option",
        6 => "malformed option",
        7 => "network failure",
        8 => "no resources",
        9 => "unsupported protocol",
        10 => "user exceeded quota",
        11 => "cannot provide the external port",
        12 => "address mismatch (a NAT between us and the gateway?)",
        13 => "excessive remote peers",
        _ => return Err(PmpError::Refused(format!("PCP result code {code}"))),
    };
    Err(PmpError::Refused(format!("PCP result {code}: {why}")))
}

pub fn pcp_parse_map(
    b: &[u8],
    p: Protocol,
    internal: u16,
    nonce: [u8; 12],
) -> Result<Granted, PmpError> {
    // A NAT-PMP-only gateway answers a version it does not know with its own version 0 and
    // result 1 (RFC 6887 §9).
    if b.len() >= 4 && b[0] == 0 && u16::from_be_bytes([b[2], b[3]]) == 1 {
        return Err(PmpError::NatPmpOnly);
    }
    if b.len() < 24 {
        return Err(PmpError::Malformed("shorter than a PCP header"));
    }
    if b[0] != PCP_VERSION {
        return Err(PmpError::Malformed("not PCP version 2"));
    }
    if b[1] != 0x80 | PCP_MAP {
        return Err(PmpError::Malformed("not an answer to MAP"));
    }
    pcp_result(b[3])?;
    if b.len() < PCP_REQUEST_LEN {
        return Err(PmpError::Malformed("PCP MAP answer cut short"));
    }
    if b[24..36] != nonce {
        return Err(PmpError::Malformed("the answer carries another nonce"));
    }
    if b[36] != pcp_protocol(p) || u16::from_be_bytes([b[40], b[41]]) != internal {
        return Err(PmpError::Malformed("the answer is for another mapping"));
    }
    let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&b[44..60]).expect("16 bytes"));
    Ok(Granted {
        external_port: u16::from_be_bytes([b[42], b[43]]),
        lifetime: Duration::from_secs(u32::from_be_bytes([b[4], b[5], b[6], b[7]]).into()),
        external_ip: ip.to_ipv4_mapped(),
    })
}

// ---- the exchange --------------------------------------------------------------------

/// Sends `request` to the gateway's port 5351 and returns the first answer `parse` accepts;
/// datagrams from elsewhere, and answers `parse` calls malformed, are skipped (a stale
/// answer to an earlier request may still arrive). A refusal ends the exchange.
pub fn exchange<T>(
    gateway: Ipv4Addr,
    local: Ipv4Addr,
    request: &[u8],
    mut parse: impl FnMut(&[u8]) -> Result<T, PmpError>,
) -> Result<T, PmpError> {
    let to = SocketAddr::V4(SocketAddrV4::new(gateway, PORT));
    let socket = UdpSocket::bind(SocketAddrV4::new(local, 0))?;
    socket.connect(to)?;
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut wait = FIRST_WAIT;
    let mut last_malformed = None;
    for _ in 0..TRIES {
        socket.send(request)?;
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket.set_read_timeout(Some(left))?;
            match socket.recv(&mut buf) {
                Ok(n) => match parse(&buf[..n]) {
                    Err(e @ PmpError::Malformed(_)) => last_malformed = Some(e),
                    r => return r,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                // ICMP port unreachable: nothing listens there; try again as for a loss.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(left);
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        wait *= 2;
    }
    Err(last_malformed.unwrap_or(PmpError::NoAnswer(to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nat_pmp_map_request_is_laid_out_as_rfc_6886_says() {
        let b = pmp_map_request(Protocol::Tcp, 6881, 6881, 7200);
        assert_eq!(b, [0, 2, 0, 0, 0x1a, 0xe1, 0x1a, 0xe1, 0, 0, 0x1c, 0x20]);
        assert_eq!(pmp_map_request(Protocol::Udp, 1, 0, 0)[1], 1);
    }

    #[test]
    fn a_nat_pmp_map_answer_is_read() {
        let mut a = vec![0, 130, 0, 0, 0, 0, 0, 9];
        a.extend_from_slice(&6881u16.to_be_bytes());
        a.extend_from_slice(&40000u16.to_be_bytes());
        a.extend_from_slice(&3600u32.to_be_bytes());
        let g = pmp_parse_map(&a, Protocol::Tcp, 6881).unwrap();
        assert_eq!(g.external_port, 40000);
        assert_eq!(g.lifetime, Duration::from_secs(3600));
        // Another internal port, the UDP opcode, a cut answer: all refused as malformed.
        assert!(matches!(
            pmp_parse_map(&a, Protocol::Tcp, 6882),
            Err(PmpError::Malformed(_))
        ));
        assert!(matches!(
            pmp_parse_map(&a, Protocol::Udp, 6881),
            Err(PmpError::Malformed(_))
        ));
        assert!(matches!(
            pmp_parse_map(&a[..15], Protocol::Tcp, 6881),
            Err(PmpError::Malformed(_))
        ));
    }

    #[test]
    fn a_nat_pmp_refusal_says_why() {
        let a = [0, 130, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let e = pmp_parse_map(&a, Protocol::Tcp, 0).unwrap_err();
        assert!(e.to_string().contains("not authorized"), "{e}");
        // A refusal is told even when the rest is missing.
        let e = pmp_parse_external(&[0, 128, 0, 3]).unwrap_err();
        assert!(e.to_string().contains("network failure"), "{e}");
    }

    #[test]
    fn the_external_address_is_read() {
        let a = [0, 128, 0, 0, 0, 0, 0, 1, 203, 0, 113, 7];
        assert_eq!(
            pmp_parse_external(&a).unwrap(),
            Ipv4Addr::new(203, 0, 113, 7)
        );
    }

    fn pcp_answer(req: &[u8], result: u8, port: u16) -> Vec<u8> {
        let mut a = req.to_vec();
        a[1] = 0x81;
        a[3] = result;
        a[8..24].fill(0);
        a[42..44].copy_from_slice(&port.to_be_bytes());
        a[44..60].copy_from_slice(&Ipv4Addr::new(198, 51, 100, 9).to_ipv6_mapped().octets());
        a
    }

    #[test]
    fn a_pcp_map_round_trip() {
        let nonce = [7u8; 12];
        let req = pcp_map_request(
            Protocol::Udp,
            6881,
            6881,
            600,
            Ipv4Addr::new(10, 0, 0, 2),
            nonce,
        );
        assert_eq!(req[0], 2);
        assert_eq!(req[36], 17);
        assert_eq!(
            &req[8..24],
            &Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped().octets()
        );
        let g = pcp_parse_map(&pcp_answer(&req, 0, 50000), Protocol::Udp, 6881, nonce).unwrap();
        assert_eq!(g.external_port, 50000);
        assert_eq!(g.lifetime, Duration::from_secs(600));
        assert_eq!(g.external_ip, Some(Ipv4Addr::new(198, 51, 100, 9)));
        let other = pcp_parse_map(&pcp_answer(&req, 0, 1), Protocol::Udp, 6881, [8; 12]);
        assert!(matches!(other, Err(PmpError::Malformed(_))));
        let refused = pcp_parse_map(&pcp_answer(&req, 8, 1), Protocol::Udp, 6881, nonce);
        assert!(refused.unwrap_err().to_string().contains("no resources"));
    }

    #[test]
    fn a_nat_pmp_only_gateway_is_recognised() {
        let a = [0, 129, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            pcp_parse_map(&a, Protocol::Tcp, 1, [0; 12]),
            Err(PmpError::NatPmpOnly)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let nonce = [1u8; 12];
        for len in 0..80 {
            for fill in [0u8, 0x80, 0x81, 2, 0xff] {
                let b = vec![fill; len];
                let _ = pmp_parse_map(&b, Protocol::Tcp, 0);
                let _ = pmp_parse_external(&b);
                let _ = pcp_parse_map(&b, Protocol::Tcp, 0, nonce);
            }
        }
    }

    #[test]
    fn a_silent_gateway_is_no_answer() {
        let r = exchange(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &[0, 0], |b| {
            pmp_parse_external(b)
        });
        // Port 5351 on loopback: nothing listens (refused) or a silent socket; either way
        // no answer, never a hang.
        assert!(matches!(r, Err(PmpError::NoAnswer(_))), "{r:?}");
    }
}
