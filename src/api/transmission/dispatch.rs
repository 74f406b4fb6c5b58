//! The one HTTP handler: the body to a method, the method to its handler, the result to
//! Transmission's answer (HTTP 200 whatever the result, as Transmission answers).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::envelope::{self, Args, RpcError, RpcResult};
use super::{features, session, torrents, Rpc};

pub async fn rpc(State(rpc): State<Rpc>, method: Method, body: Bytes) -> Response {
    let (tag, result) = if method != Method::POST {
        (
            None,
            Err(RpcError::bad("send the request as a POST with a JSON body")),
        )
    } else {
        let (tag, request) = envelope::parse(&body);
        let result = match request {
            Ok(r) => call(&rpc, &r.method, r.args).await,
            Err(e) => Err(e),
        };
        (tag, result)
    };
    if let Err(e) = &result {
        tracing::debug!("transmission rpc: {e}");
    }
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        envelope::answer(tag, result).to_string(),
    )
        .into_response()
}

async fn call(rpc: &Rpc, method: &str, args: Args) -> RpcResult<Map<String, Value>> {
    match method {
        "torrent-get" => torrents::get(rpc, args),
        "torrent-add" => torrents::add(rpc, args).await,
        "torrent-remove" => torrents::remove(rpc, args).await,
        "torrent-start" | "torrent-start-now" | "torrent-stop" => {
            torrents::start_stop(rpc, args, method).await
        }
        "torrent-set" => torrents::set(rpc, args).await,
        "torrent-verify" => features::verify(rpc, args).await,
        "torrent-set-location" => features::set_location(rpc, args).await,
        "torrent-reannounce" | "torrent-rename-path" => torrents::missing(rpc, args, method),
        "queue-move-top" | "queue-move-up" | "queue-move-down" | "queue-move-bottom" => {
            torrents::queue_move(rpc, args, method).await
        }
        "session-get" => session::get(rpc, args),
        "session-set" => session::set(rpc, args).await,
        "session-stats" => session::stats(rpc, args),
        "free-space" => session::free_space(rpc, args),
        "port-test" => {
            args.finish(method)?;
            Err(RpcError::unsupported(
                "port-test",
                "the daemon cannot test its port from outside (Transmission asks a web service of its project)",
            ))
        }
        "session-close" => {
            args.finish(method)?;
            Err(RpcError::unsupported(
                "session-close",
                "stop the daemon with SIGTERM (it saves its state and exits)",
            ))
        }
        "blocklist-update" | "group-get" | "group-set" => Err(RpcError::unsupported(
            method,
            "the daemon has no blocklist and no bandwidth groups",
        )),
        other => Err(RpcError::UnknownMethod(other.to_string())),
    }
}
