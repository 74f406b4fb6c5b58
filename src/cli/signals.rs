//! SIGINT and SIGTERM for the long-running commands (seeding, `--keep-seeding`, the bwtest
//! servers, the daemon): the first asks the command to stop cleanly, a second exits at once.

use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;

use super::exit::ExitKind;
use crate::client::control::{ClientHandle, Command};
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

/// A single-shot transfer's signal handling, registered once at its start and handed from
/// client to client (a magnet link's metadata fetch, then the download): the first signal
/// shuts down the client that runs now, or the next one as soon as it is attached.
#[derive(Clone)]
pub struct Stopper {
    state: Arc<Mutex<StopState>>,
}

#[derive(Default)]
struct StopState {
    signalled: bool,
    client: Option<ClientHandle>,
}

impl Stopper {
    /// Registers the handlers (see [`on_first_signal`]).
    pub fn install() -> io::Result<Self> {
        let state = Arc::new(Mutex::new(StopState::default()));
        let on_signal = state.clone();
        on_first_signal(move || {
            let mut s = on_signal.lock().unwrap_or_else(PoisonError::into_inner);
            s.signalled = true;
            if let Some(c) = &s.client {
                shut_down(c);
            }
        })?;
        Ok(Self { state })
    }

    /// From now on a signal shuts down `client`; if one came already, it is shut down now
    /// (the command waits in its channel until the client's loop runs).
    pub fn stops(&self, client: &ClientHandle) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.signalled {
            shut_down(client);
        }
        s.client = Some(client.clone());
    }

    /// Whether a signal came.
    pub fn signalled(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .signalled
    }
}

/// Closes the client's lanes, then ends its loop, the way the daemon shuts down.
fn shut_down(client: &ClientHandle) {
    let (reply, _) = tokio::sync::oneshot::channel();
    client.notify(Command::Shutdown(reply));
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
