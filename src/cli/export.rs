//! `-exportMetricsTo`: the per-path CSV goes to a file, or — as in the original client — is
//! POSTed to an `http://` URL, over TCP or, for a host in SCION form
//! (`http://[1-ff00:0:112,127.0.0.1]:8080/metrics`), over QUIC/SCION.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bt_tracker::client::transport::http_post;
use bt_tracker::client::ScionHttp;

use super::exit::{self, CliError};
use super::report::Summary;
use crate::discovery::scion_http::LazyScionHttp;

/// How long the POST may take before the command gives up on it.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn export_csv(
    summary: &Summary,
    target: &Path,
    sciond: &Option<String>,
    host: IpAddr,
) -> Result<(), CliError> {
    let text = target.to_string_lossy();
    if !text.starts_with("http://") {
        return summary
            .write_csv(target)
            .map_err(|e| exit::other(format!("cannot write {}: {e}", target.display())));
    }
    let url = text.into_owned();
    let csv = summary.csv();
    let sciond = super::run::daemon_address(sciond);
    // On a thread and runtime of its own: the caller may be inside the io_uring runtime.
    let post = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let scion = ScionHttp(Arc::new(LazyScionHttp::new(sciond, Some(host))));
            http_post(&url, "text/csv", csv.into(), POST_TIMEOUT, Some(&scion))
                .await
                .map_err(|e| e.to_string())
        })
    });
    let status = post
        .join()
        .map_err(|_| exit::other("the metrics export failed"))?
        .map_err(|e| {
            exit::other(format!(
                "cannot export the metrics to {}: {e}",
                target.display()
            ))
        })?;
    if !(200..300).contains(&status) {
        return Err(exit::other(format!(
            "cannot export the metrics to {}: HTTP status {status}",
            target.display()
        )));
    }
    tracing::info!("metrics posted to {}", target.display());
    Ok(())
}
