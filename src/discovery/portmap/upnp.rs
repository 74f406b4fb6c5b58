//! UPnP-IGD: the gateway found by SSDP (M-SEARCH to 239.255.255.250:1900, and to the gateway
//! itself when we know it), its description fetched and read for a WANIPConnection or
//! WANPPPConnection service, and that service's SOAP actions (AddPortMapping,
//! DeletePortMapping, GetExternalIPAddress). Everything a device sends is bounded: datagrams
//! at 2 KiB, at most 8 answers, the description at 64 KiB, SOAP answers at 16 KiB, every
//! HTTP exchange at 5 s; XML with a DTD is refused (no entity expansion). The description
//! and control URLs must name the host that answered the search, so a device cannot point
//! us at another host. ureq (already the CLI's client) does HTTP; roxmltree reads the XML.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::Protocol;

const SSDP_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), 1900);
const SEARCH_TARGETS: [&str; 2] = [
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
];
/// How long answers to a search are gathered.
const SEARCH_WAIT: Duration = Duration::from_millis(1500);
const MAX_DATAGRAM: usize = 2048;
const MAX_CANDIDATES: usize = 8;
const MAX_DESCRIPTION: u64 = 64 * 1024;
const MAX_SOAP_ANSWER: u64 = 16 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The services that can map ports, in the order we prefer them.
const WAN_SERVICES: [&str; 3] = [
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
];
/// What our mappings are called on the gateway.
pub const DESCRIPTION: &str = "bittorrent-over-scion";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UpnpError {
    #[error("no Internet gateway answered the SSDP search")]
    NoAnswer,
    #[error("no answering device is usable: {0}")]
    Several(String),
    #[error("SSDP socket: {0}")]
    Socket(String),
    #[error("a malformed SSDP answer from {from}: {why}")]
    BadSsdp { from: SocketAddr, why: &'static str },
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    #[error("{url}: not usable XML: {why}")]
    Xml { url: String, why: String },
    #[error("{0}: the gateway offers no WANIPConnection or WANPPPConnection service")]
    NoWanService(String),
    #[error("{url} names another host than the gateway that answered ({gateway})")]
    OtherHost { url: String, gateway: IpAddr },
    #[error("{action} refused: UPnP error {code} {description}")]
    Fault {
        action: &'static str,
        code: u16,
        description: String,
    },
    #[error("{action}: the gateway's answer lacks {field}")]
    Missing {
        action: &'static str,
        field: &'static str,
    },
}

/// A gateway's port-mapping service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Igd {
    pub service_type: String,
    pub control_url: String,
    /// The host that answered the search.
    pub host: IpAddr,
}

/// Searches for gateways from `local` (the multicast leaves on its interface) and returns
/// the first that offers a port-mapping service, or why none did.
pub fn discover(local: Ipv4Addr, gateway: Option<Ipv4Addr>) -> Result<Igd, UpnpError> {
    let found = search(local, gateway)?;
    let mut errors = vec![];
    for (from, location) in found {
        match fetch_igd(from.ip(), &location) {
            Ok(igd) => return Ok(igd),
            Err(e) => errors.push(e),
        }
    }
    // Several devices may have answered: every one's failure is told (the gateway's first).
    match errors.len() {
        0 => Err(UpnpError::NoAnswer),
        1 => Err(errors.remove(0)),
        _ => Err(UpnpError::Several(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

/// The (sender, LOCATION) of the valid answers to an M-SEARCH, the gateway's first.
fn search(
    local: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
) -> Result<Vec<(SocketAddr, String)>, UpnpError> {
    let sock = |e: std::io::Error| UpnpError::Socket(e.to_string());
    let socket = UdpSocket::bind(SocketAddrV4::new(local, 0)).map_err(sock)?;
    if !local.is_unspecified() {
        socket2::SockRef::from(&socket)
            .set_multicast_if_v4(&local)
            .map_err(sock)?;
    }
    socket.set_multicast_ttl_v4(2).map_err(sock)?;
    for st in SEARCH_TARGETS {
        let msg = format!(
            "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: {st}\r\n\r\n"
        );
        // The group may be unreachable (no multicast route) while the gateway answers
        // unicast, so a failed send is not yet an error.
        let _ = socket.send_to(msg.as_bytes(), SSDP_GROUP);
        if let Some(gw) = gateway {
            let _ = socket.send_to(msg.as_bytes(), SocketAddrV4::new(gw, 1900));
        }
    }
    let until = Instant::now() + SEARCH_WAIT;
    let mut found: Vec<(SocketAddr, String)> = vec![];
    let mut first_bad = None;
    let mut buf = [0u8; MAX_DATAGRAM];
    let mut answers = 0;
    while answers < 4 * MAX_CANDIDATES && found.len() < MAX_CANDIDATES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket.set_read_timeout(Some(left)).map_err(sock)?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => break, // timed out (or an ICMP error): the search is over
        };
        answers += 1;
        match parse_ssdp_answer(&buf[..n]) {
            Ok(loc) if !found.iter().any(|(f, l)| *f == from && *l == loc) => {
                found.push((from, loc))
            }
            Ok(_) => {}
            Err(why) => {
                first_bad.get_or_insert(UpnpError::BadSsdp { from, why });
            }
        }
    }
    found.sort_by_key(|(from, _)| Some(from.ip()) != gateway.map(IpAddr::V4));
    match (found.is_empty(), first_bad) {
        (true, Some(bad)) => Err(bad),
        (true, None) => Err(UpnpError::NoAnswer),
        (false, _) => Ok(found),
    }
}

/// The LOCATION of an SSDP answer (`HTTP/1.1 200 OK`, headers in any case).
pub fn parse_ssdp_answer(b: &[u8]) -> Result<String, &'static str> {
    let text = std::str::from_utf8(b).map_err(|_| "not text")?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        return Err("not an HTTP 200 answer");
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("location") {
                let v = value.trim();
                if !v
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
                {
                    return Err("LOCATION is not an http:// URL");
                }
                return Ok(v.to_string());
            }
        }
    }
    Err("no LOCATION header")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// The authority's host of an http:// URL.
fn url_host(url: &str) -> Option<IpAddr> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    if uri.scheme_str() != Some("http") {
        return None;
    }
    uri.host()?
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .ok()
}

fn check_host(url: &str, gateway: IpAddr) -> Result<(), UpnpError> {
    match url_host(url) {
        Some(h) if h == gateway => Ok(()),
        _ => Err(UpnpError::OtherHost {
            url: url.to_string(),
            gateway,
        }),
    }
}

/// Fetches and reads the description at `location`, served by `from`.
fn fetch_igd(from: IpAddr, location: &str) -> Result<Igd, UpnpError> {
    check_host(location, from)?;
    let http = |why: String| UpnpError::Http {
        url: location.to_string(),
        why,
    };
    let mut resp = agent()
        .get(location)
        .call()
        .map_err(|e| http(e.to_string()))?;
    if resp.status() != 200 {
        return Err(http(format!("HTTP status {}", resp.status())));
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_DESCRIPTION)
        .read_to_string()
        .map_err(|e| {
            http(format!(
                "description unreadable or over {MAX_DESCRIPTION} bytes: {e}"
            ))
        })?;
    let (service_type, control) = parse_description(&body).map_err(|e| match e {
        DescriptionError::Xml(why) => UpnpError::Xml {
            url: location.to_string(),
            why,
        },
        DescriptionError::NoWanService => UpnpError::NoWanService(location.to_string()),
    })?;
    let control_url = resolve(location, &control).ok_or_else(|| UpnpError::Xml {
        url: location.to_string(),
        why: format!("controlURL {control:?} is not a usable URL"),
    })?;
    check_host(&control_url, from)?;
    Ok(Igd {
        service_type,
        control_url,
        host: from,
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum DescriptionError {
    Xml(String),
    NoWanService,
}

fn parse_xml(text: &str) -> Result<roxmltree::Document<'_>, String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 10_000,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| e.to_string())
}

/// The best port-mapping service of a device description: (serviceType, controlURL as
/// written, resolved against URLBase when there is one).
pub fn parse_description(xml: &str) -> Result<(String, String), DescriptionError> {
    let doc = parse_xml(xml).map_err(DescriptionError::Xml)?;
    let child_text = |n: roxmltree::Node, name: &str| {
        n.children()
            .find(|c| c.tag_name().name() == name)
            .and_then(|c| c.text())
            .map(|t| t.trim().to_string())
    };
    let services: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "service")
        .filter_map(|n| Some((child_text(n, "serviceType")?, child_text(n, "controlURL")?)))
        .collect();
    let base = doc
        .root_element()
        .children()
        .find(|c| c.tag_name().name() == "URLBase")
        .and_then(|c| c.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    for want in WAN_SERVICES {
        if let Some((st, url)) = services.iter().find(|(st, _)| st == want) {
            let url = match &base {
                Some(b) if !url.starts_with("http://") => resolve(b, url).unwrap_or(url.clone()),
                _ => url.clone(),
            };
            return Ok((st.clone(), url));
        }
    }
    Err(DescriptionError::NoWanService)
}

/// `reference` resolved against `base` (both http://; absolute path or relative path).
pub fn resolve(base: &str, reference: &str) -> Option<String> {
    if reference.starts_with("http://") {
        return Some(reference.to_string());
    }
    let rest = base.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || reference.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    if reference.starts_with('/') {
        return Some(format!("http://{authority}{reference}"));
    }
    let dir = &path[..path.rfind('/').map_or(1, |i| i + 1)];
    Some(format!("http://{authority}{dir}{reference}"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One SOAP action; the answer's arguments by name, or the device's fault.
fn soap(
    igd: &Igd,
    action: &'static str,
    args: &[(&str, String)],
) -> Result<Vec<(String, String)>, UpnpError> {
    let mut body = format!(
        "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:{action} xmlns:u=\"{}\">",
        escape(&igd.service_type)
    );
    for (name, value) in args {
        body.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    }
    body.push_str(&format!("</u:{action}></s:Body></s:Envelope>\r\n"));
    let url = igd.control_url.as_str();
    let http = |why: String| UpnpError::Http {
        url: url.to_string(),
        why,
    };
    let mut resp = agent()
        .post(url)
        .header("Content-Type", "text/xml; charset=\"utf-8\"")
        .header("SOAPAction", format!("\"{}#{action}\"", igd.service_type))
        .send(body.as_bytes())
        .map_err(|e| http(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_SOAP_ANSWER)
        .read_to_string()
        .map_err(|e| {
            http(format!(
                "{action}: answer unreadable or over {MAX_SOAP_ANSWER} bytes: {e}"
            ))
        })?;
    parse_soap_answer(action, status, &text).map_err(|e| match e {
        SoapError::Xml(why) => UpnpError::Xml {
            url: url.to_string(),
            why: format!("{action}: {why}"),
        },
        SoapError::Status(s) => http(format!("{action}: HTTP status {s}")),
        SoapError::Fault(code, description) => UpnpError::Fault {
            action,
            code,
            description,
        },
    })
}

#[derive(Debug, PartialEq, Eq)]
pub enum SoapError {
    Xml(String),
    Status(u16),
    Fault(u16, String),
}

/// A SOAP answer: the arguments of `<{action}Response>`, or the UPnP fault it carries.
pub fn parse_soap_answer(
    action: &str,
    status: u16,
    text: &str,
) -> Result<Vec<(String, String)>, SoapError> {
    let doc = match parse_xml(text) {
        Ok(d) => d,
        Err(_) if status != 200 => return Err(SoapError::Status(status)),
        Err(e) => return Err(SoapError::Xml(e)),
    };
    let find = |name: &str| doc.descendants().find(|n| n.tag_name().name() == name);
    if let Some(code) = find("errorCode") {
        let code = code.text().and_then(|t| t.trim().parse().ok()).unwrap_or(0);
        let description = find("errorDescription")
            .and_then(|d| d.text())
            .unwrap_or_default()
            .trim()
            .chars()
            .take(200)
            .collect();
        return Err(SoapError::Fault(code, description));
    }
    if status != 200 {
        return Err(SoapError::Status(status));
    }
    let response = find(&format!("{action}Response"))
        .ok_or_else(|| SoapError::Xml(format!("no {action}Response element")))?;
    Ok(response
        .children()
        .filter(|c| c.is_element())
        .map(|c| {
            let text = c.text().unwrap_or_default().trim().to_string();
            (c.tag_name().name().to_string(), text)
        })
        .collect())
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    }
}

/// Maps `port` (the same number outside) to `client:port` for `lease` (0: permanent).
pub fn add_port_mapping(
    igd: &Igd,
    p: Protocol,
    port: u16,
    client: Ipv4Addr,
    lease: u32,
) -> Result<(), UpnpError> {
    soap(
        igd,
        "AddPortMapping",
        &[
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", port.to_string()),
            ("NewProtocol", proto_name(p).into()),
            ("NewInternalPort", port.to_string()),
            ("NewInternalClient", client.to_string()),
            ("NewEnabled", "1".into()),
            ("NewPortMappingDescription", DESCRIPTION.into()),
            ("NewLeaseDuration", lease.to_string()),
        ],
    )
    .map(drop)
}

pub fn delete_port_mapping(igd: &Igd, p: Protocol, port: u16) -> Result<(), UpnpError> {
    soap(
        igd,
        "DeletePortMapping",
        &[
            ("NewRemoteHost", String::new()),
            ("NewExternalPort", port.to_string()),
            ("NewProtocol", proto_name(p).into()),
        ],
    )
    .map(drop)
}

pub fn external_ip(igd: &Igd) -> Result<Ipv4Addr, UpnpError> {
    const ACTION: &str = "GetExternalIPAddress";
    let args = soap(igd, ACTION, &[])?;
    args.iter()
        .find(|(n, _)| n == "NewExternalIPAddress")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or(UpnpError::Missing {
            action: ACTION,
            field: "a valid NewExternalIPAddress",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESC: &str = r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><deviceList><device>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>
<controlURL>/ppp</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl/IPConn</controlURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>"#;

    #[test]
    fn the_ip_connection_service_is_preferred() {
        let (st, url) = parse_description(DESC).unwrap();
        assert_eq!(st, "urn:schemas-upnp-org:service:WANIPConnection:1");
        assert_eq!(url, "/ctl/IPConn");
    }

    #[test]
    fn bad_descriptions_say_why() {
        assert!(matches!(
            parse_description("<root><device>"),
            Err(DescriptionError::Xml(_))
        ));
        assert_eq!(
            parse_description("<root><service><serviceType>x</serviceType></service></root>"),
            Err(DescriptionError::NoWanService)
        );
        // Entity expansion (a "billion laughs") is refused with the DTD.
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><root>&b;</root>"#;
        assert!(matches!(
            parse_description(bomb),
            Err(DescriptionError::Xml(_))
        ));
    }

    #[test]
    fn url_base_and_relative_urls_resolve() {
        assert_eq!(
            resolve("http://10.0.0.1:5000/rootDesc.xml", "/ctl/IPConn").unwrap(),
            "http://10.0.0.1:5000/ctl/IPConn"
        );
        assert_eq!(
            resolve("http://10.0.0.1:5000/igd/desc.xml", "ctl").unwrap(),
            "http://10.0.0.1:5000/igd/ctl"
        );
        assert_eq!(
            resolve("http://10.0.0.1", "ctl").unwrap(),
            "http://10.0.0.1/ctl"
        );
        assert_eq!(resolve("https://10.0.0.1/", "ctl"), None);
        assert_eq!(resolve("http://10.0.0.1/", "a b"), None);
        let with_base = DESC.replacen(
            "<device>",
            "<URLBase>http://10.0.0.1:49000/</URLBase><device>",
            1,
        );
        let (_, url) = parse_description(&with_base).unwrap();
        assert_eq!(url, "http://10.0.0.1:49000/ctl/IPConn");
    }

    #[test]
    fn urls_must_name_the_gateway_that_answered() {
        let gw: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(check_host("http://10.0.0.1:5000/x", gw).is_ok());
        assert!(check_host("http://10.0.0.9:5000/x", gw).is_err());
        assert!(check_host("http://example.org/x", gw).is_err());
        assert!(check_host("garbage", gw).is_err());
    }

    #[test]
    fn ssdp_answers_are_read_or_refused() {
        let ok = b"HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nlocation: http://10.0.0.1:5000/rootDesc.xml\r\nST: x\r\n\r\n";
        assert_eq!(
            parse_ssdp_answer(ok).unwrap(),
            "http://10.0.0.1:5000/rootDesc.xml"
        );
        assert!(parse_ssdp_answer(b"NOTIFY * HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_ssdp_answer(b"HTTP/1.1 200 OK\r\nST: x\r\n\r\n").is_err());
        assert!(parse_ssdp_answer(b"HTTP/1.1 200 OK\r\nLOCATION: file:///etc/passwd\r\n").is_err());
        assert!(parse_ssdp_answer(&[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn soap_answers_and_faults() {
        let ok = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalIPAddress>198.51.100.4</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>"#;
        let args = parse_soap_answer("GetExternalIPAddress", 200, ok).unwrap();
        assert_eq!(
            args,
            vec![("NewExternalIPAddress".into(), "198.51.100.4".into())]
        );
        let fault = r#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            parse_soap_answer("AddPortMapping", 500, fault),
            Err(SoapError::Fault(718, "ConflictInMappingEntry".into()))
        );
        assert_eq!(
            parse_soap_answer("AddPortMapping", 500, "oops"),
            Err(SoapError::Status(500))
        );
        assert!(matches!(
            parse_soap_answer("AddPortMapping", 200, "<a>"),
            Err(SoapError::Xml(_))
        ));
        assert!(matches!(
            parse_soap_answer("AddPortMapping", 200, "<a/>"),
            Err(SoapError::Xml(_))
        ));
    }
}
