//! The daemon's HTTP JSON API (axum), on a thread of its own with a small tokio runtime, apart
//! from the client's io_uring thread. It talks to the client only through a [`ClientHandle`]:
//! commands out, snapshots in. Routes are listed in [`router`]; `docs/openapi.yaml` describes
//! them.

mod add;
mod auth;
pub mod error;
mod handlers;
mod labels;
pub mod metrics;
mod object;
pub mod paths;
mod qbittorrent;
mod queue;
mod serve;
mod transmission;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use tokio::sync::oneshot;

use crate::client::control::ClientHandle;
pub use error::ApiFailure;
pub use paths::{DownloadRoot, PathError};

/// A torrent's files: priorities, sequential mode.
mod files;
/// A file's bytes over HTTP while it downloads, and its play links.
mod stream;

/// Largest request body (a .torrent upload): big torrents have megabytes of piece hashes.
const MAX_BODY: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Required as `Authorization: Bearer TOKEN` (or `?token=`) on every API call when set.
    pub token: Option<String>,
    /// Nothing a caller names is written (or read) outside it; created if missing.
    pub download_root: PathBuf,
    /// Shown in `GET /api/v1/settings`.
    pub data_dir: PathBuf,
    /// Comment lines on the event stream while nothing changes.
    pub sse_keep_alive: Duration,
    /// How long a connection may take to send a request's headers (also between requests
    /// on a kept-alive connection); then it is closed.
    pub header_timeout: Duration,
    /// Most connections open at once; more are closed at once.
    pub max_connections: usize,
    /// How long an upload's body may take, plus a second for every `add::MIN_UPLOAD_RATE`
    /// bytes it declares; then it is answered 408 and its memory is given back.
    pub body_timeout: Duration,
}

impl ApiConfig {
    pub fn new(listen: SocketAddr, download_root: PathBuf, data_dir: PathBuf) -> Self {
        Self {
            listen,
            token: None,
            download_root,
            data_dir,
            sse_keep_alive: Duration::from_secs(15),
            header_timeout: serve::HEADER_TIMEOUT,
            max_connections: serve::MAX_CONNECTIONS,
            body_timeout: add::BODY_TIMEOUT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "refusing to serve the API on {0} without a token: use --http-token (or BTS_HTTP_TOKEN), or a loopback address"
    )]
    InsecureListen(SocketAddr),
    #[error("the token must not be empty")]
    EmptyToken,
    #[error("download root {0}: {1}")]
    DownloadRoot(PathBuf, std::io::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot start the API thread: {0}")]
    Runtime(std::io::Error),
}

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    client: ClientHandle,
    root: Arc<DownloadRoot>,
    token: Option<Arc<str>>,
    data_dir: Arc<PathBuf>,
    listen: SocketAddr,
    keep_alive: Duration,
    /// Room for upload bodies in memory (`add::UPLOAD_BUDGET` bytes).
    uploads: Arc<tokio::sync::Semaphore>,
    body_timeout: Duration,
}

/// The routes, for serving or for in-process tests (`tower::ServiceExt::oneshot`).
pub fn router(cfg: &ApiConfig, client: ClientHandle) -> Result<Router, ApiError> {
    check_access(cfg)?;
    let root = DownloadRoot::new(&cfg.download_root)
        .map_err(|e| ApiError::DownloadRoot(cfg.download_root.clone(), e))?;
    let state = AppState {
        client,
        root: Arc::new(root),
        // Surrounding white space is no part of a token (callers' tokens are trimmed too).
        token: cfg.token.as_deref().map(str::trim).map(Arc::from),
        data_dir: Arc::new(cfg.data_dir.clone()),
        listen: cfg.listen,
        keep_alive: cfg.sse_keep_alive,
        uploads: Arc::new(add::upload_budget()),
        body_timeout: cfg.body_timeout,
    };
    use handlers as h;
    let guarded = Router::new()
        .route("/api/v1/torrents", get(h::list).post(add::add))
        .route("/api/v1/torrents/{ih}", get(h::show).delete(h::remove))
        .route("/api/v1/torrents/{ih}/pause", post(h::pause))
        .route("/api/v1/torrents/{ih}/resume", post(h::resume))
        .route("/api/v1/torrents/{ih}/recheck", post(h::recheck))
        .route("/api/v1/torrents/{ih}/queue", post(queue::move_in_queue))
        .route("/api/v1/torrents/{ih}/force_start", put(queue::force_start))
        .route("/api/v1/torrents/{ih}/move", post(h::move_data))
        .route(
            "/api/v1/torrents/{ih}/category",
            put(labels::set_torrent_category),
        )
        .route("/api/v1/torrents/{ih}/tags", put(labels::set_tags))
        .route("/api/v1/categories", get(labels::list))
        .route(
            "/api/v1/categories/{name}",
            put(labels::put).delete(labels::delete),
        )
        .route("/api/v1/torrents/{ih}/peers", post(h::add_peers))
        .route("/api/v1/torrents/{ih}/limits", put(h::set_limits))
        .route("/api/v1/torrents/{ih}/path_rules", put(h::set_path_rules))
        .route("/api/v1/settings", get(h::settings).put(h::set_settings))
        .route("/api/v1/paths", get(h::paths))
        .route("/api/v1/snapshot", get(h::snapshot))
        .route("/api/v1/events", get(h::events))
        .route("/api/v1/openapi.yaml", get(h::openapi))
        .route("/metrics", get(h::metrics))
        .route(
            "/api/v1/torrents/{ih}/files",
            get(files::list).put(files::set_priorities),
        )
        .route("/api/v1/torrents/{ih}/options", put(files::set_options))
        .route(
            "/api/v1/torrents/{ih}/stream_access",
            get(stream::link::access),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::check,
        ));
    // The UI's static files hold no data; the UI sends the token on its API calls.
    let public = Router::new()
        .route("/", get(h::ui_index))
        .route("/ui/{*path}", get(h::ui_asset));
    // qBittorrent's Web API v2 (its own login and SID sessions; see api/qbittorrent).
    let qbittorrent = qbittorrent::routes(state.clone());
    // A play link's signature (for a <video>, which sends no token) or the usual access control.
    let streams = Router::new()
        .route(
            "/api/v1/torrents/{ih}/files/{index}/stream",
            get(stream::stream),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            stream::link::check,
        ));
    Ok(public
        .merge(guarded)
        .merge(streams)
        .merge(qbittorrent)
        .fallback(h::not_found)
        // Transmission's RPC (its own session-id handshake and basic auth; see api/transmission).
        .merge(transmission::router(&state))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state))
}

/// The running API thread. Dropping it (or [`ApiServer::stop`]) stops serving.
pub struct ApiServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// The bound address (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (open event streams are cut) and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A token, if given, is not empty; without one only loopback addresses are served.
fn check_access(cfg: &ApiConfig) -> Result<(), ApiError> {
    if cfg.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(ApiError::EmptyToken);
    }
    if cfg.token.is_none() && !cfg.listen.ip().is_loopback() {
        return Err(ApiError::InsecureListen(cfg.listen));
    }
    Ok(())
}

/// Checks the configuration, binds `cfg.listen` (so errors come back here, before the daemon
/// says it is ready), and serves on a new thread with a 2-worker tokio runtime.
pub fn spawn(mut cfg: ApiConfig, client: ClientHandle) -> Result<ApiServer, ApiError> {
    check_access(&cfg)?;
    let listener = TcpListener::bind(cfg.listen).map_err(|e| ApiError::Bind(cfg.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ApiError::Bind(cfg.listen, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ApiError::Bind(cfg.listen, e))?;
    cfg.listen = addr; // settings show the real port when asked for port 0
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bts-api")
        .enable_all()
        .build()
        .map_err(ApiError::Runtime)?;
    // Inside the runtime, so routes can start their background tasks (the Transmission RPC
    // follows the snapshots to hand out ids as torrents appear).
    let app = {
        let _enter = runtime.enter();
        router(&cfg, client)?
    };
    let limits = serve::Limits {
        header_timeout: cfg.header_timeout,
        max_connections: cfg.max_connections,
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("bts-api".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("API listener: {e}");
                        return;
                    }
                };
                tokio::select! {
                    () = serve::serve(listener, app, limits) => {}
                    _ = stop_rx => {}
                }
            });
            // Event streams never end by themselves: don't wait for them.
            runtime.shutdown_timeout(Duration::from_millis(200));
        })
        .map_err(ApiError::Runtime)?;
    Ok(ApiServer {
        addr,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}
