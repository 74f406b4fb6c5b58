//! A minimal client for the scionproto `DaemonService` over gRPC, used for the readiness probe,
//! the `paths` subcommand and our tests.
//!
//! This is a debugging aid, not the product's daemon client: it opens one HTTP/2 connection per
//! call and knows only unary RPCs. It speaks plain-text HTTP/2 with `h2` directly, so it needs no
//! TLS stack and installs no process-wide crypto provider.

use std::{net::SocketAddr, time::Duration};

use anyhow::{bail, ensure, Context};
use buffa::Message;
use bytes::{Bytes, BytesMut};
use scion_protobuf::proto::daemon::v1::{
    ASRequest, ASResponse, InterfacesRequest, InterfacesResponse, PathsRequest, PathsResponse,
    PortRangeResponse,
};
use sciparse::{identifier::isd_asn::IsdAsn, path::ScionPath};

const SERVICE: &str = "/proto.daemon.v1.DaemonService";
const TIMEOUT: Duration = Duration::from_secs(5);
/// Daemon answers are small; refuse to buffer anything absurd.
const MAX_RESPONSE: usize = 16 << 20;

/// `AS` RPC: information about `ia` (0 = the daemon's local AS).
pub async fn as_info(daemon: SocketAddr, ia: IsdAsn) -> anyhow::Result<ASResponse> {
    unary(
        daemon,
        "AS",
        &ASRequest {
            isd_as: ia.to_u64(),
        },
    )
    .await
}

/// `Paths` RPC from the daemon's local AS to `dst`, as returned on the wire.
///
/// `src == dst` is refused here: pocketscion's daemon answers that with an Internal error
/// (where scionproto's returns an empty path), so say clearly what happened instead.
pub async fn paths_raw(
    daemon: SocketAddr,
    src: IsdAsn,
    dst: IsdAsn,
) -> anyhow::Result<PathsResponse> {
    ensure!(
        src != dst,
        "{src} to itself: no inter-AS path; pocketscion's daemon does not answer this"
    );
    let req = PathsRequest {
        source_isd_as: src.to_u64(),
        destination_isd_as: dst.to_u64(),
        ..Default::default()
    };
    unary(daemon, "Paths", &req).await
}

/// `Paths` RPC with `refresh` set: the daemon asks its control service again instead of
/// answering from its cache (scionproto's daemon caches a destination's segments for its
/// `query_interval`).
pub async fn paths_refreshed(
    daemon: SocketAddr,
    src: IsdAsn,
    dst: IsdAsn,
) -> anyhow::Result<PathsResponse> {
    ensure!(src != dst, "{src} to itself: no inter-AS path");
    let req = PathsRequest {
        source_isd_as: src.to_u64(),
        destination_isd_as: dst.to_u64(),
        refresh: true,
        ..Default::default()
    };
    unary(daemon, "Paths", &req).await
}

/// `Paths` RPC, decoded into sciparse paths (with metadata and next hop).
pub async fn paths(daemon: SocketAddr, src: IsdAsn, dst: IsdAsn) -> anyhow::Result<Vec<ScionPath>> {
    paths_raw(daemon, src, dst)
        .await?
        .paths
        .into_iter()
        .map(|p| ScionPath::try_from_rpc(p, src, dst).map_err(|e| anyhow::anyhow!("bad path: {e}")))
        .collect()
}

/// `Interfaces` RPC: interface id -> underlay address, as the daemon reports them.
pub async fn interfaces(daemon: SocketAddr) -> anyhow::Result<InterfacesResponse> {
    unary(daemon, "Interfaces", &InterfacesRequest {}).await
}

/// `PortRange` RPC.
pub async fn port_range(daemon: SocketAddr) -> anyhow::Result<(u16, u16)> {
    // The request is google.protobuf.Empty, whose encoding is zero bytes.
    let r: PortRangeResponse = unary_raw(daemon, "PortRange", Vec::new()).await?;
    let start = u16::try_from(r.dispatched_port_start).context("port range start > 65535")?;
    let end = u16::try_from(r.dispatched_port_end).context("port range end > 65535")?;
    Ok((start, end))
}

async fn unary<Req: Message, Resp: Message>(
    daemon: SocketAddr,
    method: &str,
    req: &Req,
) -> anyhow::Result<Resp> {
    unary_raw(daemon, method, req.encode_to_vec()).await
}

async fn unary_raw<Resp: Message>(
    daemon: SocketAddr,
    method: &str,
    req: Vec<u8>,
) -> anyhow::Result<Resp> {
    let call = call(daemon, method, req);
    let body = tokio::time::timeout(TIMEOUT, call)
        .await
        .with_context(|| format!("daemon {daemon}: {method} timed out"))?
        .with_context(|| format!("daemon {daemon}: {method} failed"))?;
    Resp::decode_from_slice(&body)
        .map_err(|e| anyhow::anyhow!("daemon {daemon}: {method}: bad response message: {e}"))
}

/// One unary gRPC call; returns the response message bytes (without the gRPC envelope).
async fn call(daemon: SocketAddr, method: &str, msg: Vec<u8>) -> anyhow::Result<Bytes> {
    let tcp = tokio::net::TcpStream::connect(daemon).await?;
    let (client, conn) = h2::client::handshake(tcp).await?;
    // The connection future drives the socket; it ends when `client` is dropped.
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });

    let result = async {
        let mut client = client.ready().await?;
        let request = http::Request::post(format!("http://{daemon}{SERVICE}/{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (response, mut send) = client.send_request(request, false)?;
        send.send_data(grpc_frame(&msg), true)?;

        let response = response.await?;
        let status = response.status();
        ensure!(status == http::StatusCode::OK, "HTTP status {status}");
        let (head, mut body) = response.into_parts();

        let mut buf = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            ensure!(
                buf.len() + chunk.len() <= MAX_RESPONSE,
                "response too large"
            );
            buf.extend_from_slice(&chunk);
        }
        // A trailers-only error response carries grpc-status in the headers.
        let trailers = body.trailers().await?.unwrap_or_default();
        check_grpc_status(&head.headers)?;
        check_grpc_status(&trailers)?;
        grpc_unframe(buf.freeze())
    }
    .await;
    conn.abort();
    result
}

fn check_grpc_status(headers: &http::HeaderMap) -> anyhow::Result<()> {
    let Some(status) = headers.get("grpc-status") else {
        return Ok(());
    };
    if status.as_bytes() == b"0" {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    bail!(
        "gRPC status {} {message}",
        String::from_utf8_lossy(status.as_bytes())
    )
}

/// gRPC envelope: compression flag 0, then the big-endian message length.
fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + msg.len());
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    framed.extend_from_slice(msg);
    framed.freeze()
}

fn grpc_unframe(body: Bytes) -> anyhow::Result<Bytes> {
    let header = body
        .get(..5)
        .context("response shorter than its gRPC envelope")?;
    ensure!(
        header[0] == 0,
        "compressed gRPC responses are not supported"
    );
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    ensure!(
        body.len() >= 5 + len,
        "response shorter than its gRPC envelope declares"
    );
    Ok(body.slice(5..5 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_roundtrip() {
        let framed = grpc_frame(b"abc");
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 3]);
        assert_eq!(grpc_unframe(framed).unwrap(), Bytes::from_static(b"abc"));
        assert!(grpc_unframe(Bytes::from_static(&[0, 0, 0, 0, 9, 1])).is_err());
        assert!(grpc_unframe(Bytes::from_static(&[0, 0])).is_err());
    }
}
