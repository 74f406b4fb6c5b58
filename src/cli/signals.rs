//! SIGINT and SIGTERM for the long-running commands (seeding, `--keep-seeding`, the bwtest
//! servers, the daemon): the first asks the command to stop cleanly, a second exits at once.

use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;

use super::exit::ExitKind;
use crate::net::uring::App;
use crate::net::{NetEvent, ScionNet};

/// Runs `stop` on a small thread when the first SIGINT or SIGTERM arrives; a second one ends
/// the process at once with [`ExitKind::Interrupted`]. The handlers are registered before this
/// returns, so no signal sent afterwards is lost (nor kills the process the default way).
pub fn on_first_signal(stop: impl FnOnce() + Send + 'static) -> io::Result<()> {
    // Everything on the new thread: the caller may be inside a runtime already (io_uring's).
    let (registered, result) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bts-signals".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(registered.send(Err(e))),
            };
            rt.block_on(async move {
                let (mut int, mut term) = match handlers() {
                    Ok(h) => {
                        let _ = registered.send(Ok(()));
                        h
                    }
                    Err(e) => return drop(registered.send(Err(e))),
                };
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                tracing::info!("signal received: stopping (a second signal exits at once)");
                stop();
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
                tracing::warn!("second signal: exiting without a clean stop");
                std::process::exit(ExitKind::Interrupted as i32);
            })
        })?;
    result
        .recv()
        .unwrap_or_else(|_| Err(io::Error::other("the signal thread ended")))
}

/// SIGINT's and SIGTERM's streams; inside a runtime.
fn handlers() -> io::Result<(Signal, Signal)> {
    Ok((
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
    ))
}

/// An [`App`] that also ends when a signal asked it to: for the servers whose app never ends
/// by itself (the bwtest server).
pub struct UntilSignal<A> {
    app: A,
    stop: Arc<AtomicBool>,
    wake: Rc<Notify>,
}

impl<A: App> UntilSignal<A> {
    /// Registers the signal handlers; call inside the io_uring runtime that will run `app`.
    pub fn new(app: A) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let wake = app.wake_handle().unwrap_or_default();
        // The signal thread cannot touch the loop's Rc; a task on the loop passes it on.
        let from_thread = Arc::new(tokio::sync::Notify::new());
        let (flag, notify) = (stop.clone(), from_thread.clone());
        on_first_signal(move || {
            flag.store(true, Ordering::Release);
            notify.notify_one();
        })?;
        let to_loop = wake.clone();
        tokio_uring::spawn(async move {
            from_thread.notified().await;
            to_loop.notify_one();
        });
        Ok(Self { app, stop, wake })
    }
}

impl<A: App> App for UntilSignal<A> {
    fn on_event(&mut self, net: &mut ScionNet, event: NetEvent, now: Instant) {
        self.app.on_event(net, event, now)
    }

    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant> {
        self.app.poll(net, now)
    }

    fn is_done(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.app.is_done()
    }

    fn wake_handle(&self) -> Option<Rc<Notify>> {
        Some(self.wake.clone())
    }
}
