//! The socket driver: one io_uring UDP socket moving bytes between the kernel and a
//! [`ScionNet`], and the event loop that runs the application on top.
//!
//! Receives run in their own task with several operations in flight; sends are submitted in
//! batches so that one `io_uring_enter` carries many datagrams. Everything else (SCION, QUIC,
//! BitTorrent) is synchronous code called from this loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio_uring::net::UdpSocket;

use super::gso;
use super::scion_net::{NetEvent, Outgoing, ScionNet};
use super::steering::Mailboxes;

/// Longest sleep when neither QUIC nor the app has a deadline.
const IDLE_SLEEP: Duration = Duration::from_secs(10);
/// Datagrams submitted to the kernel per batch.
const SEND_BATCH: usize = 64;
/// Receive operations kept in flight.
const RECV_IN_FLIGHT: usize = 4;
/// How long the end of a run waits for its receivers and accept loops (they stop at once;
/// see `complete_pending`).
const PENDING_STOP: Duration = Duration::from_secs(2);
/// Room for a GRO batch (up to 64 KiB of coalesced datagrams).
const RECV_BUF: usize = 65536;

/// What runs on top of the network.
pub trait App {
    fn on_event(&mut self, net: &mut ScionNet, event: NetEvent, now: Instant);
    /// Does the application's work (write to streams, open connections, tick timers) and says
    /// when it wants to be polled again at the latest.
    fn poll(&mut self, net: &mut ScionNet, now: Instant) -> Option<Instant>;
    fn is_done(&self) -> bool;
    /// Something other than the UDP socket (e.g. TCP connections) that wakes the loop.
    fn wake_handle(&self) -> Option<Rc<Notify>> {
        None
    }
}

type RxQueue = Rc<RefCell<VecDeque<(Vec<u8>, SocketAddr)>>>;
/// Receive buffers handed back by the loop after processing: no allocation and no zeroing per
/// datagram (the kernel writes into the spare capacity; `len` is what it wrote).
type BufPool = Rc<RefCell<Vec<Vec<u8>>>>;
/// Most spare receive buffers kept (64 KiB each).
const POOL_MAX: usize = 64;

fn take_buf(pool: &BufPool) -> Vec<u8> {
    pool.borrow_mut()
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(RECV_BUF))
}

/// Binds a UDP socket for SCION traffic (SO_REUSEPORT so several runtimes can share a port).
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    bind_std(addr).map(UdpSocket::from_std)
}

/// [`bind`] for a socket that another thread's runtime will take over.
pub fn bind_std(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    s.set_reuse_port(true)?;
    // Large kernel buffers: bursts of a congestion window must not be dropped locally.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    if !gso::enable_gro(&s) {
        tracing::debug!("UDP GRO not available; receiving datagram by datagram");
    }
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn spawn_receivers(
    socket: &Rc<UdpSocket>,
    rx: &RxQueue,
    pool: &BufPool,
    notify: &Rc<Notify>,
    stop: &Rc<Cell<bool>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..RECV_IN_FLIGHT)
        .map(|_| {
            let (socket, rx, pool) = (socket.clone(), rx.clone(), pool.clone());
            let (notify, stop) = (notify.clone(), stop.clone());
            tokio_uring::spawn(receive(socket, rx, pool, notify, stop))
        })
        .collect()
}

/// One receive operation kept in flight until `stop`. A receive is never abandoned while
/// the kernel may still write into its buffer: tokio-uring 0.5 frees the buffers of abandoned
/// operations when its runtime is dropped, before the kernel has cancelled them (heap
/// corruption when a packet lands in between, seen when a magnet download's metadata runtime
/// ended). [`stop_receivers`] makes the pending receives complete instead.
async fn receive(
    socket: Rc<UdpSocket>,
    rx: RxQueue,
    pool: BufPool,
    notify: Rc<Notify>,
    stop: Rc<Cell<bool>>,
) {
    let mut buf = take_buf(&pool);
    loop {
        buf.clear();
        let (res, b) = socket.recv_from(buf).await;
        buf = b;
        if stop.get() {
            return;
        }
        match res {
            Ok((n, from)) => {
                // The kernel set the length to what it wrote.
                let pkt = std::mem::replace(&mut buf, take_buf(&pool));
                debug_assert_eq!(pkt.len(), n);
                rx.borrow_mut().push_back((pkt, from));
                notify.notify_one();
            }
            Err(e) => {
                // ICMP errors surface as ECONNREFUSED on Linux; keep receiving.
                tracing::trace!("udp receive error: {e}");
            }
        }
    }
}

/// Ends the receivers: each sees `stop` once its pending receive completes, which
/// [`complete_pending`] makes happen.
async fn stop_receivers(
    socket: &UdpSocket,
    stop: &Cell<bool>,
    receivers: Vec<tokio::task::JoinHandle<()>>,
) {
    stop.set(true);
    complete_pending(&[socket.as_raw_fd()], receivers, "UDP receivers").await;
}

/// Completes the operations pending on `sockets` and waits for the `tasks` that issued them,
/// so none is in flight when the sockets and the runtime go (see [`receive`] for why that
/// matters with tokio-uring). `shutdown(SHUT_RD)` makes a pending receive return no data and
/// a pending accept fail (on an unconnected UDP socket the call reports ENOTCONN but still
/// shuts reading down). The tasks must end once their operation completes. False if they did
/// not end within [`PENDING_STOP`].
pub async fn complete_pending(
    sockets: &[RawFd],
    tasks: Vec<tokio::task::JoinHandle<()>>,
    what: &str,
) -> bool {
    for &fd in sockets {
        // SAFETY: shutdown on a descriptor its task still owns; no memory is passed.
        unsafe { libc::shutdown(fd, libc::SHUT_RD) };
    }
    let ended = tokio::time::timeout(PENDING_STOP, join_all(tasks))
        .await
        .is_ok();
    if !ended {
        tracing::warn!("{what} did not stop within {PENDING_STOP:?}");
    }
    ended
}

/// Runs `app` on `net` over `socket` until the app is done.
pub async fn run(socket: UdpSocket, net: &mut ScionNet, app: &mut impl App) -> anyhow::Result<()> {
    run_shared(socket, net, app, None).await
}

/// One of several runtimes on one port: `shared` is this runtime's index and the mailboxes
/// through which runtimes pass each other packets the kernel delivered to the wrong socket.
pub type SharedPort = (u8, Arc<Mailboxes>);

/// [`run`] as one of several runtimes sharing the socket's port.
pub async fn run_shared(
    socket: UdpSocket,
    net: &mut ScionNet,
    app: &mut impl App,
    shared: Option<SharedPort>,
) -> anyhow::Result<()> {
    let socket = Rc::new(socket);
    let rx: RxQueue = Rc::new(RefCell::new(VecDeque::new()));
    let notify = Rc::new(Notify::new());
    let stop = Rc::new(Cell::new(false));
    let pool: BufPool = Rc::new(RefCell::new(Vec::new()));
    let receivers = spawn_receivers(&socket, &rx, &pool, &notify, &stop);
    let mut arrived = VecDeque::new();
    let extra = app.wake_handle();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut batch: Vec<(Vec<u8>, Outgoing)> = Vec::with_capacity(SEND_BATCH);
    let mut gso_on = gso::supported(&*socket);
    if gso_on {
        net.set_max_datagrams(gso::MAX_SEGMENTS);
    }
    loop {
        let now = Instant::now();
        // Take what arrived; recycle the buffers.
        std::mem::swap(&mut arrived, &mut *rx.borrow_mut());
        for (pkt, from) in arrived.drain(..) {
            net.on_datagram(now, from, &pkt);
            let mut free = pool.borrow_mut();
            if free.len() < POOL_MAX {
                free.push(pkt);
            }
        }
        if let Some((me, mail)) = &shared {
            if let Some(why) = mail.failure() {
                stop_receivers(&socket, &stop, receivers).await;
                anyhow::bail!(why);
            }
            for (to, from, pkt) in net.take_misdirected() {
                mail.post(to, from, pkt);
            }
            for (from, pkt) in mail.take(*me) {
                net.on_passed_packet(now, from, &pkt);
            }
        }
        net.drive(now);
        while let Some(ev) = net.poll_event() {
            app.on_event(net, ev, now);
        }
        let app_deadline = app.poll(net, now);
        net.drive(now);
        while let Some(ev) = net.poll_event() {
            app.on_event(net, ev, now);
        }
        if app.is_done() {
            flush(&socket, net, now, &mut batch, &mut spare, &mut gso_on).await;
            stop_receivers(&socket, &stop, receivers).await;
            if shared.is_some() {
                let st = net.steering_stats;
                tracing::info!(
                    "{} of {} SCION packets received here belonged to another runtime and were \
                     passed on",
                    st.passed_on,
                    st.received
                );
            }
            return Ok(());
        }
        let sent_any = flush(&socket, net, now, &mut batch, &mut spare, &mut gso_on).await;
        if sent_any || !rx.borrow().is_empty() {
            continue;
        }
        let deadline = [net.next_timeout(), app_deadline]
            .into_iter()
            .flatten()
            .min()
            // Nothing due: sleep until an event (the cap only bounds a missed wake-up).
            .unwrap_or(now + IDLE_SLEEP);
        let sleep = tokio::time::sleep_until(deadline.max(now).into());
        tokio::select! {
            _ = notify.notified() => {}
            _ = async {
                match &extra {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = async {
                match &shared {
                    Some((me, mail)) => mail.posted(*me).await,
                    None => std::future::pending().await,
                }
            } => {}
            _ = sleep => {}
        }
    }
}

/// Sends everything QUIC wants to send now, in batches. Returns whether anything was sent.
/// If the kernel refuses GSO, turns it off (`gso_on`) and sends packets one by one.
async fn flush(
    socket: &Rc<UdpSocket>,
    net: &mut ScionNet,
    now: Instant,
    batch: &mut Vec<(Vec<u8>, Outgoing)>,
    spare: &mut Vec<Vec<u8>>,
    gso_on: &mut bool,
) -> bool {
    let mut any = false;
    loop {
        while batch.len() < SEND_BATCH {
            let mut buf = spare.pop().unwrap_or_else(|| Vec::with_capacity(2048));
            match net.poll_datagram(now, &mut buf) {
                Some(to) => batch.push((buf, to)),
                None => {
                    spare.push(buf);
                    break;
                }
            }
        }
        if batch.is_empty() {
            return any;
        }
        any = true;
        let sends = batch.drain(..).map(|(buf, to)| send(socket, buf, to));
        for (res, buf, to) in join_all(sends).await {
            match res {
                Err(e) if to.segment_size.is_some() && gso::is_unsupported(&e) => {
                    if *gso_on {
                        tracing::warn!("UDP GSO refused ({e}); sending packets one by one");
                        *gso_on = false;
                        net.set_max_datagrams(1);
                    }
                    send_split(socket, &buf, to).await;
                }
                // Loss of a datagram is QUIC's business; a persistent error shows as a timeout.
                Err(e) => tracing::debug!("udp send error: {e}"),
                Ok(_) => {}
            }
            spare.push(buf);
        }
        if spare.len() > 4 * SEND_BATCH {
            spare.truncate(4 * SEND_BATCH);
        }
    }
}

/// One datagram, or a GSO batch in one `sendmsg`.
async fn send(
    socket: &UdpSocket,
    buf: Vec<u8>,
    to: Outgoing,
) -> (std::io::Result<usize>, Vec<u8>, Outgoing) {
    match to.segment_size.and_then(|s| u16::try_from(s).ok()) {
        None => {
            let (res, buf) = socket.send_to(buf, to.next_hop).await;
            (res, buf, to)
        }
        // Long SCION paths make a full batch larger than one UDP datagram may be.
        Some(_) if buf.len() > gso::MAX_BATCH_BYTES => {
            send_split(socket, &buf, to).await;
            (Ok(buf.len()), buf, to)
        }
        Some(segment) => {
            let cmsg = gso::control_message(segment);
            let (res, mut bufs, _) = socket
                .sendmsg(vec![buf], Some(to.next_hop), Some(cmsg))
                .await;
            (res, bufs.pop().unwrap_or_default(), to)
        }
    }
}

/// A GSO batch sent as separate datagrams.
async fn send_split(socket: &UdpSocket, buf: &[u8], to: Outgoing) {
    let segment = to.segment_size.unwrap_or(buf.len()).max(1);
    for pkt in buf.chunks(segment) {
        let (res, _) = socket.send_to(pkt.to_vec(), to.next_hop).await;
        if let Err(e) = res {
            tracing::debug!("udp send error: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receivers end by completing their receives, not by abandoning them: after
    /// `stop_receivers` every receiver task has returned, each with a receive that was pending
    /// when it was asked to stop (else they would still run after the wait's time limit).
    #[test]
    fn stopping_completes_every_pending_receive() {
        tokio_uring::start(async {
            let socket = Rc::new(bind("127.0.0.1:0".parse().unwrap()).unwrap());
            let rx: RxQueue = Rc::new(RefCell::new(VecDeque::new()));
            let pool: BufPool = Rc::new(RefCell::new(Vec::new()));
            let (notify, stop) = (Rc::new(Notify::new()), Rc::new(Cell::new(false)));
            let receivers = spawn_receivers(&socket, &rx, &pool, &notify, &stop);
            // Let every receiver submit its receive.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(receivers.iter().all(|h| !h.is_finished()));
            let handles: Vec<_> = receivers.iter().map(|h| h.abort_handle()).collect();
            stop_receivers(&socket, &stop, receivers).await;
            assert!(
                handles.iter().all(|h| h.is_finished()),
                "a receive did not complete on shutdown"
            );
        });
    }
}
