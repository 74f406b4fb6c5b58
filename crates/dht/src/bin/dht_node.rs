//! A standalone DHT node over UDP/IP, driven by commands on stdin, reporting on stdout
//! (used by the interop tests; handy for poking at a DHT by hand).
//!
//! Commands: `get_peers HASH`, `announce HASH PORT|implied`, `find_node ID`, `bootstrap`,
//! `add ADDR`, `save FILE`, `stats`, `quit`. Output lines: `listening ADDR id ID`,
//! `bootstrapped N`, `peers HASH ADDR...`, `done HASH KIND responded=N peers=N announced=A,B`,
//! `announced HASH PEER` (someone announced to us), `saved N`, `error ...`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use bt_dht::udp::UdpDriver;
use bt_dht::{Config, Dht, DhtEvent, Id, LookupKind};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
#[command(about = "A mainline DHT node (BEP 5) on UDP/IP, controlled through stdin")]
struct Args {
    /// Local address to bind.
    #[arg(long, default_value = "0.0.0.0:6881")]
    bind: SocketAddr,
    /// Bootstrap node (repeatable).
    #[arg(long)]
    bootstrap: Vec<SocketAddr>,
    /// Routing table file: restored at start if present.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Node id in hex (random by default).
    #[arg(long)]
    id: Option<String>,
}

fn main() -> anyhow_free::Result {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// The binary avoids an error-handling dependency: errors print and exit non-zero.
mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}

async fn run(args: Args) -> anyhow_free::Result {
    let id = match &args.id {
        Some(h) => Some(Id::from_hex(h).ok_or("--id must be 40 hex digits")?),
        None => None,
    };
    let families = bt_dht::Want {
        n4: args.bind.is_ipv4(),
        n6: args.bind.is_ipv6(),
    };
    let config = Config {
        id,
        bootstrap: args.bootstrap.clone(),
        families,
        ..Config::default()
    };
    let socket = tokio::net::UdpSocket::bind(args.bind).await?;
    let now = Instant::now();
    let saved = args.state.as_ref().and_then(|p| std::fs::read(p).ok());
    let dht = match saved {
        Some(bytes) => Dht::restore(config, &bytes, now)?,
        None => Dht::new(config, now),
    };
    let mut node = UdpDriver::with_socket(socket, dht);
    println!("listening {} id {}", node.local_addr()?, node.dht.id());
    if let Err(e) = node.dht.bootstrap(Instant::now()) {
        println!("error {e}");
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        while let Some(ev) = node.dht.poll_event() {
            print_event(&ev);
        }
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(l) => {
                    if !command(&mut node, l.trim()) {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            },
            r = node.step() => r?,
        }
    }
}

fn command(node: &mut UdpDriver, line: &str) -> bool {
    let now = Instant::now();
    let words: Vec<&str> = line.split_whitespace().collect();
    let hash = |i: usize| words.get(i).and_then(|h| Id::from_hex(h));
    let result = match words.as_slice() {
        ["get_peers", _] => hash(1)
            .ok_or("bad hash".to_string())
            .and_then(|h| node.dht.get_peers(h, now).map_err(|e| e.to_string()))
            .map(drop),
        ["announce", _, port] => {
            let port = if *port == "implied" {
                Ok(None)
            } else {
                port.parse::<u16>().map(Some).map_err(|e| e.to_string())
            };
            match (hash(1), port) {
                (Some(h), Ok(p)) => node
                    .dht
                    .announce(h, p, now)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                _ => Err("usage: announce HASH PORT|implied".into()),
            }
        }
        ["find_node", _] => hash(1)
            .ok_or("bad id".to_string())
            .and_then(|h| node.dht.find_node(h, now).map_err(|e| e.to_string()))
            .map(drop),
        ["bootstrap"] => node.dht.bootstrap(now).map(drop).map_err(|e| e.to_string()),
        ["add", addr] => addr
            .parse()
            .map(|a| node.dht.add_node(a, now))
            .map_err(|e: std::net::AddrParseError| e.to_string()),
        ["save", path] => {
            let bytes = node.dht.save();
            std::fs::write(path, &bytes)
                .map(|_| {
                    let s = node.dht.stats();
                    println!("saved {}", s.nodes_v4 + s.nodes_v6);
                })
                .map_err(|e| e.to_string())
        }
        ["stats"] => {
            println!("stats {:?}", node.dht.stats());
            Ok(())
        }
        ["quit"] => return false,
        [] => Ok(()),
        _ => Err(format!("unknown command {line:?}")),
    };
    if let Err(e) = result {
        println!("error {e}");
    }
    true
}

fn print_event(ev: &DhtEvent<SocketAddr>) {
    match ev {
        DhtEvent::PeersFound {
            info_hash, peers, ..
        } => {
            let peers: Vec<String> = peers.iter().map(ToString::to_string).collect();
            println!("peers {info_hash} {}", peers.join(" "));
        }
        DhtEvent::LookupDone {
            target,
            kind,
            responded,
            peers_found,
            announced_to,
            ..
        } => {
            let kind = match kind {
                LookupKind::FindNode => "find_node",
                LookupKind::GetPeers => "get_peers",
                LookupKind::Announce { .. } => "announce",
            };
            let to: Vec<String> = announced_to.iter().map(ToString::to_string).collect();
            println!(
                "done {target} {kind} responded={responded} peers={peers_found} announced={}",
                to.join(",")
            );
        }
        DhtEvent::Bootstrapped { nodes } => println!("bootstrapped {nodes}"),
        DhtEvent::PeerAnnounced { info_hash, peer } => println!("announced {info_hash} {peer}"),
    }
}
