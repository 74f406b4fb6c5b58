//! `--port-mapping` and its options, for the daemon and single-shot runs, and how the CLI
//! shows the mappings. Off by default: a mapping opens a port of the user's router to the
//! Internet and changes another device's configuration, which the user should ask for (and
//! many routers have UPnP off for that reason); the daemon is reachable without it wherever
//! its port is already open.

use std::net::Ipv4Addr;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Args;

use super::exit::{self, CliError};
use crate::client::control::ClientHandle;
use crate::discovery::portmap::{
    spawn_port_mapping, MappingState, MappingStatus, Method, PortMapOptions,
};

#[derive(Args, Debug, Clone, Default)]
pub struct PortMapArgs {
    /// Ask the home gateway to forward our BitTorrent TCP port and the DHT's UDP port to us
    /// (PCP, NAT-PMP or UPnP-IGD), renewed while we run and removed at exit; the API's
    /// snapshot shows each mapping's state.
    #[arg(long)]
    pub port_mapping: bool,
    /// The gateway to ask [default: the IPv4 default route's gateway].
    #[arg(long, value_name = "IP", requires = "port_mapping")]
    pub port_mapping_gateway: Option<Ipv4Addr>,
    /// The methods to try, in order (comma-separated: pcp, natpmp, upnp); the one that
    /// worked last is tried first afterwards.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        requires = "port_mapping",
        default_value = "pcp,natpmp,upnp"
    )]
    pub port_mapping_methods: Vec<Method>,
    /// The lease asked for, in seconds; renewed at half of what the gateway grants.
    #[arg(long, value_name = "SECS", default_value_t = 3600, requires = "port_mapping",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub port_mapping_lease: u32,
}

/// Starts port mapping if asked for; it ends (removing its mappings) when the client's
/// snapshots end (join it).
pub fn start(
    args: &PortMapArgs,
    dht_port: Option<u16>,
    handle: &ClientHandle,
) -> Result<Option<JoinHandle<()>>, CliError> {
    if !args.port_mapping {
        return Ok(None);
    }
    let opts = PortMapOptions {
        gateway: args.port_mapping_gateway,
        methods: args.port_mapping_methods.clone(),
        lease: Duration::from_secs(args.port_mapping_lease.into()),
        dht_port,
    };
    spawn_port_mapping(handle.clone(), opts)
        .map(Some)
        .map_err(|e| exit::other(format!("--port-mapping: {e}")))
}

/// One line per mapping, as `settings` prints them.
pub fn lines(list: &[MappingStatus]) -> Vec<String> {
    list.iter().map(line).collect()
}

fn line(m: &MappingStatus) -> String {
    let proto = format!("{:?}", m.protocol).to_lowercase();
    let purpose = format!("{:?}", m.purpose).to_lowercase();
    let what = format!("{proto} {} ({purpose})", m.internal_port);
    let via = m.method.map(|m| format!(" by {m}")).unwrap_or_default();
    match m.state {
        MappingState::Pending => format!("{what}: pending"),
        MappingState::Mapped => {
            let ip = m.external_ip.as_deref().unwrap_or("?");
            let port = m.external_port.map_or("?".to_string(), |p| p.to_string());
            format!("{what}: mapped to {ip}:{port}{via}")
        }
        MappingState::Failed => format!(
            "{what}: failed: {}",
            m.last_error.as_deref().unwrap_or("unknown")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::portmap::{Protocol, Purpose};

    #[test]
    fn lines_say_state_address_and_error() {
        let mut m = MappingStatus {
            protocol: Protocol::Tcp,
            purpose: Purpose::Bittorrent,
            internal_port: 6881,
            external_port: Some(6881),
            method: Some(Method::Natpmp),
            state: MappingState::Mapped,
            gateway: Some("192.168.0.1".into()),
            external_ip: Some("198.51.100.7".into()),
            last_error: None,
            lease_expires_unix_ms: Some(1),
            renewals: 0,
        };
        assert_eq!(
            line(&m),
            "tcp 6881 (bittorrent): mapped to 198.51.100.7:6881 by natpmp"
        );
        m.state = MappingState::Failed;
        m.last_error = Some("upnp: no Internet gateway answered".into());
        assert_eq!(
            line(&m),
            "tcp 6881 (bittorrent): failed: upnp: no Internet gateway answered"
        );
    }
}
