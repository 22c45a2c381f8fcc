//! Starting a server, and the handle that observes and stops it.

use std::any::Any;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::client::Dialer;
use crate::config::Settings;
use crate::error::Error;
use crate::handler::{Handler, Message};
use crate::pubsub::{Delivery, Hub, Mailbox};
use crate::shard::{Links, Shard};
use crate::sys::{Io, Waker};

/// What a shard and the handle share: the stop signal and the counters.
pub(crate) struct ShardShared {
    pub waker: Waker,
    /// Deliveries from other shards and from the handle.
    pub mailbox: Mailbox,
    pub stop: AtomicBool,
    pub grace_ms: AtomicU64,
    pub stats: ShardStats,
    /// Client connections to open (`DialRequest<H::Conn>`, type-erased:
    /// this struct is not generic over the handler).
    pub dials: Mutex<Vec<Box<dyn Any + Send>>>,
}

/// Counters a shard publishes once per loop turn.
#[derive(Debug, Default)]
pub(crate) struct ShardStats {
    pub connections: AtomicU64,
    pub accepted: AtomicU64,
    pub messages: AtomicU64,
    pub reads: AtomicU64,
    pub turns: AtomicU64,
    pub enters: AtomicU64,
    pub forced: AtomicU64,
    pub dropped: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Configures and starts a server. Every limit has a safe default; see each
/// setter.
#[derive(Debug, Clone, Default)]
pub struct ServerBuilder {
    settings: Settings,
}

/// The entry point: `Server::builder()`.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// A builder with the default settings.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }
}

impl ServerBuilder {
    /// Number of shards (threads, each with its own ring and listener).
    /// Default: one per CPU the process may run on.
    pub fn shards(mut self, shards: usize) -> Self {
        self.settings.shards = shards;
        self
    }

    /// The number of shards `start` will run (the default is one per CPU
    /// this process may use): for sizing per-shard state before starting.
    pub fn shard_count(&self) -> usize {
        self.settings.shards
    }

    /// Pin shard `i` to the `i`-th CPU the process may run on (default
    /// true): a shard never migrates and keeps its caches warm.
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.settings.pin_threads = pin;
        self
    }

    /// Largest message, all fragments together (default 16 MiB); larger
    /// closes the connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// Largest single frame (default 16 MiB); larger closes with 1009.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.settings.max_frame_size = bytes;
        self
    }

    /// Largest HTTP request head (default 8 KiB); larger is answered 431.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_header_bytes = bytes;
        self
    }

    /// Unsent bytes a connection may have queued before a further send
    /// closes it with 1008 (default 1 MiB). One message is always accepted
    /// into an empty queue, whatever its size.
    pub fn max_backpressure(mut self, bytes: usize) -> Self {
        self.settings.max_backpressure = bytes;
        self
    }

    /// What to do with a connection past `max_backpressure`: close it with
    /// 1008 (default) or drop what is sent to it and count the drops.
    pub fn slow_consumer(mut self, policy: crate::SlowConsumer) -> Self {
        self.settings.slow_consumer = policy;
        self
    }

    /// Open connections the server admits, split evenly over the shards
    /// (default 100 000). Past it, new connections are answered 503.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.settings.max_connections = connections;
        self
    }

    /// Time a client has to send its whole request head (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// Silence after which the server pings a connection (default 120 s);
    /// `None` disables the check.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Time the peer has to answer the idle ping with anything (default
    /// 30 s) before the connection is dropped.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.settings.pong_timeout = timeout;
        self
    }

    /// Time allowed for the closing handshake and for the peer to hang up
    /// after it (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.close_timeout = timeout;
        self
    }

    /// Receive buffers per shard, shared by all its connections: `count`
    /// (a power of two) buffers of `size` bytes (default 512 × 32 KiB).
    /// A read fills one buffer; messages larger than a buffer are
    /// assembled.
    pub fn recv_buffers(mut self, count: u16, size: u32) -> Self {
        self.settings.recv_buffers = count;
        self.settings.recv_buffer_size = size;
        self
    }

    /// After a busy loop turn, how long the shard may wait for the next
    /// batch of completions to fill up before handling what it has
    /// (default 20 µs; kernels 6.12+; zero disables). Busy shards then make
    /// fewer system calls; a quiet shard never waits, so light traffic
    /// sees no added latency.
    pub fn batch_wait(mut self, wait: Duration) -> Self {
        self.settings.batch_wait = wait;
        self
    }

    /// Runs a plain TCP echo server on this same runtime (same shards,
    /// rings, buffers, corked sends) instead of a WebSocket server. It is
    /// the floor for this machine: WebSocket echo is measured against it.
    pub fn start_tcp_echo(mut self, addr: impl ToSocketAddrs) -> Result<ServerHandle, Error> {
        self.settings.tcp_echo = true;
        self.start(addr, |_| TcpEcho)
    }

    /// Binds `addr` once per shard (SO_REUSEPORT; port 0 picks one port for
    /// all) and starts the shards, each running a handler made by
    /// `factory(shard_index)` on its own thread. Returns once every shard
    /// is ready, or the first error.
    pub fn start<H, F>(self, addr: impl ToSocketAddrs, factory: F) -> Result<ServerHandle, Error>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let addr = addr.to_socket_addrs().map_err(Error::Resolve)?.next().ok_or(Error::Config("no address to bind"))?;
        let handle = launch(self.settings, Some(addr), true, factory)?;
        tracing::info!(local_addr = %handle.local_addr(), shards = handle.shards(), "listening");
        Ok(handle)
    }
}

/// Starts the shards of a runtime: with a listener each when `addr` is
/// given (a server), without (a client). Returns once every shard is
/// ready, or the first error.
pub(crate) fn launch<H, F>(
    settings: Settings,
    addr: Option<SocketAddr>,
    one_connecting: bool,
    factory: F,
) -> Result<ServerHandle, Error>
where
    H: Handler,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let settings = Arc::new(settings);
    settings.check().map_err(Error::Config)?;
    let listeners: Vec<Option<Socket>> = match addr {
        Some(addr) => bind_all(addr, &settings)?.into_iter().map(Some).collect(),
        None => (0..settings.shards).map(|_| None).collect(),
    };
    let local_addr = match (&listeners[0], addr) {
        (Some(listener), Some(addr)) => listener.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(addr),
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let cores = if settings.pin_threads { core_affinity::get_core_ids().unwrap_or_default() } else { Vec::new() };
    let factory = Arc::new(factory);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();
    let mut shards = Vec::with_capacity(settings.shards);
    for _ in 0..listeners.len() {
        shards.push(Arc::new(ShardShared {
            waker: Waker::new().map_err(Error::Thread)?,
            mailbox: Mailbox::default(),
            stop: AtomicBool::new(false),
            grace_ms: AtomicU64::new(0),
            stats: ShardStats::default(),
            dials: Mutex::new(Vec::new()),
        }));
    }
    let hub = Arc::new(Hub::new(shards.clone()));
    let dialer = Arc::new(Dialer::new(shards.clone(), one_connecting));
    let mut threads = Vec::with_capacity(settings.shards);
    for (index, listener) in listeners.into_iter().enumerate() {
        let shared = shards[index].clone();
        let (settings, factory, ready, hub) = (settings.clone(), factory.clone(), ready_tx.clone(), hub.clone());
        let dialer = dialer.clone();
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
                let links = Links { shared, hub, dialer };
                let shard = Shard::new(io, listener, handler, settings, links, index as u16);
                let _ = ready.send(Ok(()));
                shard.run();
            })
            .map_err(Error::Thread)?;
        threads.push(thread);
    }
    drop(ready_tx);
    let handle = ServerHandle {
        inner: Arc::new(Inner {
            local_addr,
            shards,
            hub,
            dialer,
            threads: Mutex::new(threads),
            report: Mutex::new(None),
        }),
    };
    for _ in 0..settings.shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                handle.shutdown(Duration::ZERO);
                return Err(e);
            }
            Err(_) => {
                handle.shutdown(Duration::ZERO);
                return Err(Error::Thread(std::io::Error::other("a shard thread died while starting")));
            }
        }
    }
    Ok(handle)
}

/// The handler of a TCP echo server: never called, the shard echoes bytes.
struct TcpEcho;

impl Handler for TcpEcho {
    type Conn = ();

    fn upgrade(&mut self, _request: &ringcast_proto::handshake::Request<'_>) -> crate::Decision<()> {
        crate::Decision::reject(500)
    }

    fn message(&mut self, _ws: &mut crate::Ws<'_, ()>, _message: crate::Message<'_>) {}
}

/// One listening socket per shard, all on the same address and port.
fn bind_all(addr: SocketAddr, settings: &Settings) -> Result<Vec<Socket>, Error> {
    let mut bound = addr;
    let mut listeners = Vec::with_capacity(settings.shards);
    for _ in 0..settings.shards {
        let bind = |addr: SocketAddr| -> std::io::Result<Socket> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            // Accepted sockets inherit it: messages leave at once.
            socket.set_tcp_nodelay(true)?;
            socket.bind(&addr.into())?;
            socket.listen(settings.listen_backlog)?;
            Ok(socket)
        };
        let socket = bind(bound).map_err(|source| Error::Bind { addr: bound, source })?;
        if bound.port() == 0 {
            // The first socket got a port; the others share it.
            if let Some(local) = socket.local_addr().ok().and_then(|a| a.as_socket()) {
                bound = local;
            }
        }
        listeners.push(socket);
    }
    Ok(listeners)
}

struct Inner {
    local_addr: SocketAddr,
    shards: Vec<Arc<ShardShared>>,
    hub: Arc<Hub>,
    dialer: Arc<Dialer>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    report: Mutex<Option<ShutdownReport>>,
}

/// A running server: its address, its counters, and the way to stop it.
/// Cheap to clone and usable from any thread. Dropping every handle leaves
/// the server running until the process exits.
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("local_addr", &self.inner.local_addr).finish_non_exhaustive()
    }
}

/// Counters summed over the shards, as of their last loop turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections in the tables now (any phase).
    pub connections: u64,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Messages received and handed to the handler.
    pub messages: u64,
    /// Receive completions that carried bytes.
    pub reads: u64,
    /// Loop turns.
    pub turns: u64,
    /// `io_uring_enter` system calls.
    pub enters: u64,
    /// Messages dropped under [`SlowConsumer::Drop`](crate::SlowConsumer).
    pub dropped: u64,
    /// Data messages queued for sending: handler sends plus pub/sub
    /// deliveries (one per receiving connection).
    pub messages_out: u64,
    /// Bytes received from the kernel (all connections, any phase).
    pub bytes_in: u64,
    /// Bytes the kernel accepted for sending.
    pub bytes_out: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.connections += other.connections;
        self.accepted += other.accepted;
        self.messages += other.messages;
        self.reads += other.reads;
        self.turns += other.turns;
        self.enters += other.enters;
        self.dropped += other.dropped;
        self.messages_out += other.messages_out;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }
}

impl ShardStats {
    fn snapshot(&self) -> Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            connections: get(&self.connections),
            accepted: get(&self.accepted),
            messages: get(&self.messages),
            reads: get(&self.reads),
            turns: get(&self.turns),
            enters: get(&self.enters),
            dropped: get(&self.dropped),
            messages_out: get(&self.messages_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
        }
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Connections still there at the deadline, closed without a closing
    /// handshake.
    pub forced: u64,
}

impl ServerHandle {
    /// The address the server listens on (with the port it picked, if
    /// asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// Where client connect requests go.
    pub(crate) fn dialer(&self) -> &Dialer {
        &self.inner.dialer
    }

    /// A shutdown has been asked for.
    pub(crate) fn is_stopping(&self) -> bool {
        self.inner.shards.iter().any(|s| s.stop.load(Ordering::Acquire))
    }

    /// Publishes `message` to every subscriber of `topic`, on every shard,
    /// from any thread. The frame is built once and shared by the shards.
    /// Returns the number of subscribers at the time of the call (they may
    /// leave before it arrives).
    pub fn publish(&self, topic: &str, message: Message<'_>) -> u64 {
        let delivery = Delivery { topic: Arc::from(topic), frame: crate::pubsub::frame(message), exclude: None };
        self.inner.hub.forward(&delivery, None)
    }

    /// Subscribers of `topic` across all shards (as of their last change).
    pub fn subscribers(&self, topic: &str) -> u64 {
        self.inner.hub.subscribers(topic)
    }

    /// The counters, summed over the shards.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for shard in &self.inner.shards {
            total += shard.stats.snapshot();
        }
        total
    }

    /// The counters of each shard, in shard order (for per-shard metrics:
    /// an uneven spread shows up here).
    pub fn shard_stats(&self) -> Vec<Stats> {
        self.inner.shards.iter().map(|shard| shard.stats.snapshot()).collect()
    }

    /// Stops the server gracefully: no new connections; every open
    /// connection is sent close 1001 ("going away"); connections still
    /// there after `grace` are cut. Returns when every shard has stopped.
    /// Calling it again (from any clone) waits for the same stop.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let grace_ms = grace.as_millis().min(u128::from(u32::MAX / 2)) as u64;
        for shard in &self.inner.shards {
            if !shard.stop.load(Ordering::Acquire) {
                shard.grace_ms.store(grace_ms, Ordering::Release);
                shard.stop.store(true, Ordering::Release);
            }
            shard.waker.wake();
        }
        self.wait()
    }

    /// Waits until the server has stopped (after a `shutdown` from
    /// anywhere).
    pub fn wait(&self) -> ShutdownReport {
        let mut threads = self.inner.threads.lock().unwrap_or_else(|e| e.into_inner());
        for thread in threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a shard thread panicked");
            }
        }
        let mut report = self.inner.report.lock().unwrap_or_else(|e| e.into_inner());
        let report = report.get_or_insert_with(|| ShutdownReport {
            forced: self.inner.shards.iter().map(|s| s.stats.forced.load(Ordering::Relaxed)).sum(),
        });
        *report
    }
}
