//! WebSocket clients on the same shard runtime as the server: the same
//! rings, receive buffers, corked sends, timers and [`Handler`] callbacks;
//! frames are masked with a fresh key each (RFC 6455 §5.3), by the SIMD
//! kernels of [`ringcast_proto`].
//!
//! ```no_run
//! use ringcast::{Client, Connect, Handler, Message, Ws};
//!
//! struct Printer;
//!
//! impl Handler for Printer {
//!     type Conn = u32;
//!
//!     fn open(&mut self, ws: &mut Ws<'_, u32>) {
//!         let _ = ws.send_text("hello");
//!     }
//!
//!     fn message(&mut self, ws: &mut Ws<'_, u32>, message: Message<'_>) {
//!         println!("connection {} got {:?}", ws.state(), message);
//!         let _ = ws.close(ringcast::CloseCode::NORMAL, "bye");
//!     }
//! }
//!
//! let client = Client::builder().start(|_shard| Printer)?;
//! let target = Connect::new("ws://127.0.0.1:9001/")?;
//! for i in 0..10 {
//!     client.connect(&target, i)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **The CONNECTING rule.** By default at most one connection per remote
//! address (IP and port) is in its TCP connect and opening handshake at a
//! time, as RFC 6455 §4.1 requires of clients; the others wait their turn.
//! Opening N connections to one server then takes N round trips one after
//! the other (on loopback, about 10–20 µs each: tens of thousands per
//! second; across a 50 ms link, 20 per second). Load generators that need
//! a faster ramp turn it off with
//! [`ClientBuilder::one_connecting_per_host`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ringcast_proto::handshake::{ClientHandshake, WsUri};

use crate::config::Settings;
use crate::dialer::{DialRequest, Dialer};
use crate::error::{ConnectError, Error};
use crate::handler::Handler;
use crate::message::Message;
use crate::runtime::{self, Runtime, ShutdownReport};
use crate::stats::Stats;

/// The entry point: `Client::builder()`.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// A builder with the default settings: one shard, not pinned, the
    /// CONNECTING rule on, the server's limits.
    pub fn builder() -> ClientBuilder {
        let settings = Settings { shards: 1, pin_threads: false, ..Settings::default() };
        ClientBuilder { settings, one_connecting: true }
    }
}

/// Configures and starts a client runtime. The limits protect the client
/// from a hostile server exactly as the server's protect it from clients.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    settings: Settings,
    one_connecting: bool,
}

impl ClientBuilder {
    /// Number of shards (threads with their own ring). Default 1.
    pub fn shards(mut self, shards: usize) -> Self {
        self.settings.shards = shards;
        self
    }

    /// Pin shard `i` to the `i`-th CPU (default false: a client usually
    /// shares the machine with other work).
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.settings.pin_threads = pin;
        self
    }

    /// At most one connection per remote address in CONNECTING at a time
    /// (default true, as RFC 6455 §4.1 requires). `false` lets a load
    /// generator open connections in parallel.
    pub fn one_connecting_per_host(mut self, on: bool) -> Self {
        self.one_connecting = on;
        self
    }

    /// Largest message the server may send, fragments together (default
    /// 16 MiB); larger closes the connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.max_message_size = bytes;
        self
    }

    /// Largest single frame (default 16 MiB); larger closes with 1009.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.settings.max_frame_size = bytes;
        self
    }

    /// Largest upgrade response head (default 8 KiB).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.settings.max_header_bytes = bytes;
        self
    }

    /// Unsent bytes a connection may queue (default 1 MiB); see
    /// [`ServerBuilder::max_backpressure`](crate::ServerBuilder::max_backpressure).
    pub fn max_backpressure(mut self, bytes: usize) -> Self {
        self.settings.max_backpressure = bytes;
        self
    }

    /// Open connections (default 100 000), split evenly over the shards;
    /// past it, connects fail with [`ConnectError::Limit`].
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.settings.max_connections = connections;
        self
    }

    /// Time for the TCP connect and the upgrade response together (default
    /// 10 s); past it, the connect fails with [`ConnectError::Timeout`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.settings.handshake_timeout = timeout;
        self
    }

    /// Silence after which the client pings the server (default 120 s);
    /// `None` disables the check.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// Time the server has to answer the idle ping (default 30 s).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.settings.pong_timeout = timeout;
        self
    }

    /// Time allowed for the closing handshake (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.settings.close_timeout = timeout;
        self
    }

    /// Receive buffers per shard (default 512 × 32 KiB); see
    /// [`ServerBuilder::recv_buffers`](crate::ServerBuilder::recv_buffers).
    pub fn recv_buffers(mut self, count: u16, size: u32) -> Self {
        self.settings.recv_buffers = count;
        self.settings.recv_buffer_size = size;
        self
    }

    /// Completion batching after a busy turn (default 20 µs); see
    /// [`ServerBuilder::batch_wait`](crate::ServerBuilder::batch_wait).
    pub fn batch_wait(mut self, wait: Duration) -> Self {
        self.settings.batch_wait = wait;
        self
    }

    /// Starts the shards, each running a handler made by
    /// `factory(shard_index)` on its own thread. Connections are then
    /// opened with [`ClientHandle::connect`]; the handler's `connected` (by
    /// default `open`), `message`, `close` and `connect_failed` callbacks
    /// tell what happens to them.
    pub fn start<H, F>(self, factory: F) -> Result<ClientHandle<H::Conn>, Error>
    where
        H: Handler,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let max_head = self.settings.max_header_bytes;
        let settings = Arc::new(self.settings);
        settings.check().map_err(Error::Config)?;
        let no_listeners = (0..settings.shards).map(|_| None).collect();
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        let runtime::Launched { runtime, dialer } =
            runtime::launch(settings, no_listeners, nowhere, self.one_connecting, factory)?;
        Ok(ClientHandle { runtime, dialer, max_head })
    }
}

/// Where to connect and what to ask for. Resolved once, reusable for any
/// number of connections.
#[derive(Debug, Clone)]
pub struct Connect {
    uri: WsUri,
    addr: SocketAddr,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
    shard: Option<usize>,
    local: Option<SocketAddr>,
}

impl Connect {
    /// Parses a `ws://host[:port]/path?query` URL and resolves its host
    /// (blocking, on the calling thread; an IP literal costs nothing).
    pub fn new(url: &str) -> Result<Connect, ConnectError> {
        let uri = WsUri::parse(url).map_err(ConnectError::InvalidRequest)?;
        if uri.is_secure() {
            return Err(ConnectError::Unsupported("wss:// (TLS): put a TLS proxy in front or connect with ws://"));
        }
        let addr = (uri.host(), uri.port())
            .to_socket_addrs()
            .map_err(ConnectError::Resolve)?
            .next()
            .ok_or_else(|| ConnectError::Resolve(std::io::Error::other("no address for the host")))?;
        Ok(Connect { uri, addr, protocols: Vec::new(), headers: Vec::new(), shard: None, local: None })
    }

    /// Offers a subprotocol (in order of preference); the server's choice
    /// reaches [`Handler::connected`].
    pub fn protocol(mut self, name: &str) -> Self {
        self.protocols.push(name.to_owned());
        self
    }

    /// Adds a header field to the upgrade request (`Origin`,
    /// `Authorization`, cookies).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs the connection on this shard (modulo the shard count) instead
    /// of the next in turn.
    pub fn shard(mut self, shard: usize) -> Self {
        self.shard = Some(shard);
        self
    }

    /// Binds this local address before connecting (e.g. another
    /// 127.0.0.x to get past the 28 000 ephemeral ports of one source
    /// address).
    pub fn bind(mut self, local: SocketAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// The resolved server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A running client runtime. Cheap to clone, usable from any thread.
pub struct ClientHandle<C> {
    runtime: Runtime,
    /// Where connect requests go (typed by the handler's per-connection
    /// value).
    dialer: Arc<Dialer<C>>,
    max_head: usize,
}

impl<C> Clone for ClientHandle<C> {
    fn clone(&self) -> Self {
        ClientHandle { runtime: self.runtime.clone(), dialer: self.dialer.clone(), max_head: self.max_head }
    }
}

impl<C> std::fmt::Debug for ClientHandle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle").field("shards", &self.runtime.shards()).finish_non_exhaustive()
    }
}

impl<C: Send + 'static> ClientHandle<C> {
    /// Opens a connection with `state` as its per-connection state. Returns
    /// at once; the handler hears `connected` (or `connect_failed`, with
    /// the state handed back) on the connection's shard. Fails here only
    /// when the request cannot start: headers that cannot be sent, or the
    /// runtime stopping.
    pub fn connect(&self, target: &Connect, state: C) -> Result<(), ConnectError> {
        if self.runtime.is_stopping() {
            return Err(ConnectError::Stopping);
        }
        let mut handshake = ClientHandshake::new(target.uri.clone()).max_head_bytes(self.max_head);
        for protocol in &target.protocols {
            handshake = handshake.protocol(protocol);
        }
        for (name, value) in &target.headers {
            handshake = handshake.header(name, value);
        }
        // Checked here so that a bad header is the caller's error, now.
        handshake.write_request(&mut Vec::new()).map_err(ConnectError::InvalidRequest)?;
        let request = DialRequest { addr: target.addr, local: target.local, handshake, state };
        self.dialer.submit(self.dialer.pick(target.shard), request);
        Ok(())
    }
}

impl<C> ClientHandle<C> {
    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.runtime.shards()
    }

    /// Connect requests waiting for another connection to the same address
    /// to leave CONNECTING.
    pub fn waiting(&self) -> usize {
        self.dialer.queued()
    }

    /// The counters, summed over the shards (`accepted` counts connections
    /// opened).
    pub fn stats(&self) -> Stats {
        self.runtime.stats()
    }

    /// Publishes to every subscribed connection of this runtime; see
    /// [`ServerHandle::publish`](crate::ServerHandle::publish).
    pub fn publish(&self, topic: &str, message: Message<'_>) -> u64 {
        self.runtime.publish(topic, message)
    }

    /// Closes every open connection with 1001 and stops, cutting what is
    /// left after `grace`; connects not started yet fail with
    /// [`ConnectError::Stopping`].
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.runtime.shutdown(grace)
    }

    /// Waits until the runtime has stopped.
    pub fn wait(&self) -> ShutdownReport {
        self.runtime.wait()
    }
}
