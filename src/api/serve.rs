//! The API's accept loop: the axum router on hyper HTTP/1.1 connections, with what
//! `axum::serve` lacks for a daemon others can reach: a deadline for each request's headers (a
//! half-sent request, or a kept-alive connection that sends nothing, is closed) and a cap on
//! open connections (idle connections cannot use up the process's file descriptors; past the
//! cap a new connection is closed at once, so the daemon itself keeps working).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Default deadline for a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on open API connections (well under the usual 1,024 descriptors).
pub const MAX_CONNECTIONS: usize = 512;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a little
                // instead of spinning, then go on.
                tracing::warn!("API accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("API connection refused: {} open", limits.max_connections);
            continue; // dropping the stream closes it
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("API connection ended: {e}");
            }
        });
    }
}
