//! The control channel: a loopback TCP socket speaking one JSON request line and one JSON
//! response line per connection. The `link` subcommand uses it to reach a running testnet.

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::{links::LinkTable, state::TestnetState};

/// Longest request line we accept; anything longer is not one of ours.
const MAX_LINE: usize = 64 * 1024;

/// A control request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Take the link with an end at `ia#interface` down or up.
    SetLink {
        /// ISD-AS of one end.
        ia: String,
        /// Interface id at that end.
        interface: u16,
        /// New state.
        up: bool,
    },
    /// Stop the SCION daemon of `ia` (SIGKILL), or start it again on the same address
    /// (answered once it answers). scionproto backend only.
    SetDaemon {
        /// ISD-AS of the daemon's AS.
        ia: String,
        /// Start (`true`) or stop (`false`).
        running: bool,
    },
    /// Return the current state.
    State,
}

/// A control response.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The state after the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TestnetState>,
}

/// Binds the control socket on loopback; serve it with [`serve`].
pub(crate) async fn bind() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the control socket")
}

/// Answers control requests until the runtime shuts down.
pub(crate) async fn serve(listener: TcpListener, links: Arc<LinkTable>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let links = links.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &links).await {
                tracing::warn!(%peer, error = %e, "control connection failed");
            }
        });
    }
}

async fn handle(stream: tokio::net::TcpStream, links: &LinkTable) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_LINE as u64));
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .context("control request timed out")??;

    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => apply(request, links).await,
        Err(e) => failure(format!("bad control request: {e}")),
    };
    let mut out = serde_json::to_vec(&response)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await?;
    Ok(())
}

async fn apply(request: Request, links: &LinkTable) -> Response {
    let result = match request {
        Request::SetLink { ia, interface, up } => links.set(&ia, interface, up),
        Request::SetDaemon { ia, running } => links.set_daemon(&ia, running).await,
        Request::State => Ok(()),
    };
    match result {
        Ok(()) => Response {
            ok: true,
            error: None,
            state: Some(links.snapshot()),
        },
        Err(e) => failure(format!("{e:#}")),
    }
}

fn failure(error: String) -> Response {
    Response {
        ok: false,
        error: Some(error),
        state: None,
    }
}

/// Sends one request to a running testnet (blocking; usable from any thread).
pub fn request(control: SocketAddr, request: &Request) -> anyhow::Result<TestnetState> {
    // A daemon start waits up to 30 s for the daemon to answer.
    let timeout = Duration::from_secs(45);
    let mut stream = TcpStream::connect_timeout(&control, timeout)
        .with_context(|| format!("cannot reach the testnet control socket at {control}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;

    let mut answer = String::new();
    // The answer carries the whole state; bound it generously but bound it.
    BufReader::new(std::io::Read::take(stream, 64 * MAX_LINE as u64))
        .read_line(&mut answer)
        .context("no answer from the testnet control socket")?;
    let response: Response =
        serde_json::from_str(&answer).context("bad answer from the testnet control socket")?;
    match (response.ok, response.state) {
        (true, Some(state)) => Ok(state),
        (true, None) => bail!("the testnet answered without a state"),
        (false, _) => bail!(
            "{}",
            response.error.unwrap_or_else(|| "unknown error".into())
        ),
    }
}
