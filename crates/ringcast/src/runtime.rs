//! Starting the shards of a runtime and the role-independent handle that
//! observes and stops them. A server and a client are the same runtime:
//! the server hands each shard a listening socket, the client none.

use std::any::TypeId;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::Socket;

use crate::callbacks::Callbacks;
use crate::config::Settings;
use crate::dialer::Dialer;
use crate::error::Error;
use crate::message::Message;
use crate::pubsub::{Delivery, Exchange, Frame, Mailbox};
use crate::shard::{Links, Listeners, Shard, Stop};
use crate::stats::{SharedStats, Stats};
use crate::sys::{Io, Waker};
use crate::tls::Tls;
use crate::transport::{Plain, Transport};
use crate::ws::ConnId;

/// Starts the shards of a runtime, one per entry of `listeners` (a server
/// gives each its listening sockets, `(socket, secure)`, a client none). Returns once every shard
/// is ready, or the first error, with the dialer that client connects go
/// through.
pub(crate) fn launch<H, F>(
    settings: Arc<Settings>,
    listeners: Vec<Vec<(Socket, bool)>>,
    local_addr: SocketAddr,
    one_connecting: bool,
    factory: F,
) -> Result<Launched<H::Data>, Error>
where
    H: Callbacks,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let cores = if settings.pin_threads { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
    let factory = Arc::new(factory);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();
    let mut shards = Vec::with_capacity(listeners.len());
    for _ in 0..listeners.len() {
        let waker = Arc::new(Waker::new().map_err(Error::Thread)?);
        let mailbox = Arc::new(Mailbox::new(waker.clone()));
        shards.push((ShardControl { waker, stop: Arc::default(), stats: Arc::default() }, mailbox));
    }
    let mailboxes = shards.iter().map(|(_, mailbox)| mailbox.clone()).collect();
    let deflate = settings.deflate.map(|d| d.tuning());
    let exchange = Arc::new(Exchange::new(mailboxes, settings.interest_watch.clone(), deflate));
    let wakers: Vec<Arc<Waker>> = shards.iter().map(|(control, _)| control.waker.clone()).collect();
    let dialer = Arc::new(Dialer::new(&wakers, one_connecting));
    let mut threads = Vec::with_capacity(settings.shards);
    for (index, listener) in listeners.into_iter().enumerate() {
        let (control, mailbox) = &shards[index];
        let links = Links {
            waker: control.waker.clone(),
            stop: control.stop.clone(),
            stats: control.stats.clone(),
            mailbox: mailbox.clone(),
            exchange: exchange.clone(),
            dialer: dialer.clone(),
        };
        let (settings, factory, ready) = (settings.clone(), factory.clone(), ready_tx.clone());
        let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
        let thread = std::thread::Builder::new()
            .name(format!("ringcast-shard-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(shard = index, "could not pin the shard to a CPU");
                    }
                }
                let io = match Io::new(settings.ring_entries, settings.recv_buffers, settings.recv_buffer_size) {
                    Ok(io) => io,
                    Err(e) => {
                        let _ = ready.send(Err(Error::IoUring(e)));
                        return;
                    }
                };
                let handler = factory(index);
                // A client may connect to wss:// URLs; a server speaks TLS
                // when configured to. Otherwise the plain transport, which
                // costs nothing.
                let client = listener.is_empty();
                let listeners = Listeners::new(listener);
                if settings.tls.is_none() && !client {
                    run_shard(Shard::new(io, listeners, handler, settings, links, index as u16, Plain), &ready)
                } else {
                    let server = settings.tls.as_ref().map(|c| c.0.clone());
                    let transport = Tls::new(server, settings.tls_client.as_ref().map(|c| c.0.clone()));
                    run_shard(Shard::new(io, listeners, handler, settings, links, index as u16, transport), &ready)
                }
            })
            .map_err(Error::Thread)?;
        threads.push(thread);
    }
    drop(ready_tx);
    let runtime = Runtime {
        inner: Arc::new(Inner {
            note_type: TypeId::of::<H::Note>(),
            local_addr,
            shards: shards.into_iter().map(|(control, _)| control).collect(),
            exchange,
            threads: Mutex::new(threads),
            report: Mutex::new(None),
            when_stopped: Mutex::new(Vec::new()),
        }),
    };
    for _ in 0..settings.shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                runtime.shutdown(Duration::ZERO);
                return Err(e);
            }
            Err(_) => {
                runtime.shutdown(Duration::ZERO);
                return Err(Error::Thread(std::io::Error::other("a shard thread died while starting")));
            }
        }
    }
    Ok(Launched { runtime, dialer })
}

/// Says the shard is ready, then runs it.
fn run_shard<H: Callbacks, T: Transport>(shard: Shard<H, T>, ready: &mpsc::Sender<Result<(), Error>>) {
    let _ = ready.send(Ok(()));
    shard.run();
}

/// A runtime whose shards are running, and the dialer that client
/// connects go through (a server's stays unused).
pub(crate) struct Launched<C> {
    pub runtime: Runtime,
    pub dialer: Arc<Dialer<C>>,
}

/// What the handle keeps of each shard: the way to wake and stop it, and
/// its counters.
struct ShardControl {
    waker: Arc<Waker>,
    stop: Arc<Stop>,
    stats: Arc<SharedStats>,
}

struct Inner {
    /// The handler's note type: [`crate::Notes`] are made for it alone.
    note_type: TypeId,
    local_addr: SocketAddr,
    shards: Vec<ShardControl>,
    exchange: Arc<Exchange>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    report: Mutex<Option<ShutdownReport>>,
    /// Called once every shard has stopped (e.g. a signal watcher's way
    /// to end its thread).
    when_stopped: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

/// A running runtime, whatever its role: its shards' counters, pub/sub
/// from any thread, and the way to stop it. The server's and the client's
/// handles delegate to it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Runtime {
    inner: Arc<Inner>,
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections still there at the deadline, closed without a closing
    /// handshake.
    pub forced: u64,
}

impl Runtime {
    /// The listening address (a client runtime has none: 0.0.0.0:0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// A shutdown has been asked for.
    pub fn is_stopping(&self) -> bool {
        self.inner.shards.iter().any(|s| s.stop.is_requested())
    }

    /// Publishes to every subscriber of `topic` on every shard; see
    /// [`ServerHandle::publish`](crate::ServerHandle::publish).
    pub fn publish(&self, topic: &str, message: Message<'_>) -> u64 {
        let delivery = self.inner.exchange.delivery(topic, message, None);
        self.inner.exchange.forward(&delivery, None)
    }

    /// `message` framed once.
    pub fn frame(&self, message: Message<'_>) -> Frame {
        self.inner.exchange.frame(message)
    }

    /// Publishes a framed message through every interested shard's
    /// mailbox, in the order of the calls.
    pub fn publish_sequenced(&self, topic: &str, frame: &Frame, seq: u64, except: Option<ConnId>) -> u64 {
        let delivery = Delivery { topic: Arc::from(topic), frame: frame.clone(), exclude: None, seq };
        self.inner.exchange.forward_all(&delivery, except.map(|id| (id.shard(), (id.key, id.generation))))
    }

    /// Whether `N` is the handler's note type.
    pub fn takes_notes<N: 'static>(&self) -> bool {
        self.inner.note_type == TypeId::of::<N>()
    }

    /// Subscribes one connection from any thread, in mailbox order.
    pub fn join(&self, conn: ConnId, topic: &str, after: u64, note: Box<dyn std::any::Any + Send>) {
        self.inner.exchange.join(conn.shard(), (conn.key, conn.generation), topic, after, note);
    }

    /// Posts a note for one connection.
    pub fn notify(&self, conn: ConnId, note: Box<dyn std::any::Any + Send>) {
        self.inner.exchange.notify(conn.shard(), (conn.key, conn.generation), note);
    }

    /// Subscribers of `topic` across all shards (as of their last change).
    pub fn subscribers(&self, topic: &str) -> u64 {
        self.inner.exchange.subscribers(topic)
    }

    /// The counters, summed over the shards.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for shard in &self.inner.shards {
            total += shard.stats.load();
        }
        total
    }

    /// The counters of each shard, in shard order (for per-shard metrics:
    /// an uneven spread shows up here).
    pub fn shard_stats(&self) -> Vec<Stats> {
        self.inner.shards.iter().map(|shard| shard.stats.load()).collect()
    }

    /// Stops the runtime gracefully: no new connections; every open
    /// connection is sent close 1001 ("going away"); connections still
    /// there after `grace` are cut. Returns when every shard has stopped.
    /// Calling it again (from any clone) waits for the same stop.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.request_stop(grace);
        self.wait()
    }

    /// Asks every shard to stop gracefully (see [`shutdown`](Self::shutdown))
    /// without waiting for it.
    pub fn request_stop(&self, grace: Duration) {
        for shard in &self.inner.shards {
            shard.stop.request(grace);
            shard.waker.wake();
        }
    }

    /// Runs `then` once the runtime has stopped and been waited for (at
    /// once if it already has).
    pub fn when_stopped(&self, then: Box<dyn FnOnce() + Send>) {
        let mut waiting = self.inner.when_stopped.lock().unwrap_or_else(|e| e.into_inner());
        let stopped = self.inner.report.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if stopped {
            drop(waiting);
            then();
        } else {
            waiting.push(then);
        }
    }

    /// Waits until the runtime has stopped (after a `shutdown` from
    /// anywhere).
    pub fn wait(&self) -> ShutdownReport {
        let mut threads = self.inner.threads.lock().unwrap_or_else(|e| e.into_inner());
        for thread in threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a shard thread panicked");
            }
        }
        let mut waiting = self.inner.when_stopped.lock().unwrap_or_else(|e| e.into_inner());
        let report =
            *self.inner.report.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| ShutdownReport {
                forced: self.inner.shards.iter().map(|s| s.stats.forced()).sum(),
            });
        let then: Vec<_> = waiting.drain(..).collect();
        drop(waiting);
        for then in then {
            then();
        }
        report
    }
}
