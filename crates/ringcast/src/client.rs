//! WebSocket clients on the same shard runtime as the server: the same
//! rings, receive buffers, corked sends, timers and [`Handler`](crate::Handler) callbacks;
//! frames are masked with a fresh key each (RFC 6455 §5.3), by the SIMD
//! kernels of [`ringcast_proto`].
//!
//! ```no_run
//! use ringcast::{ClientBuilder, ClientHandler, Connect, Handler, Message, Ws};
//!
//! struct Printer;
//!
//! impl ClientHandler for Printer {}
//!
//! impl Handler for Printer {
//!     type Data = u32;
//!
//!     fn open(&mut self, ws: &mut Ws<'_, u32>) {
//!         let _ = ws.send_text("hello");
//!     }
//!
//!     fn message(&mut self, ws: &mut Ws<'_, u32>, message: Message<'_>) {
//!         println!("connection {} got {:?}", ws.data(), message);
//!         let _ = ws.close(ringcast::CloseCode::NORMAL, "bye");
//!     }
//! }
//!
//! let client = ClientBuilder::new().start(|_shard| Printer)?;
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

use ringcast_proto::deflate::client_offer;
use ringcast_proto::handshake::{ClientHandshake, WsUri};

use crate::builder::Builder;
use crate::callbacks::{AsClient, Typed};
use crate::config::{Settings, Shared};
use crate::dialer::{DialRequest, Dialer};
use crate::error::{ConnectError, Error};
use crate::handler::ClientHandler;
use crate::message::Message;
use crate::runtime::{self, Runtime, ShutdownReport};
use crate::stats::Stats;

/// Configures and starts a client runtime: the shared settings of
/// [`Builder`] (limits, timeouts, shards), the CONNECTING rule and
/// [`start`](Builder::start).
pub type ClientBuilder = Builder<ClientRole>;

/// The client role of a [`Builder`]: connections are opened, not accepted.
#[derive(Debug, Clone, Copy)]
pub struct ClientRole {
    one_connecting: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        let settings = Settings { shards: 1, pin_threads: false, ..Settings::default() };
        Builder::with(settings, ClientRole { one_connecting: true })
    }
}

impl Builder<ClientRole> {
    /// A client builder with the default settings: one shard, not pinned,
    /// the CONNECTING rule on, the same limits as a server's.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most one connection per remote address in CONNECTING at a time
    /// (default true, as RFC 6455 §4.1 requires). `false` lets a load
    /// generator open connections in parallel.
    pub fn one_connecting_per_host(mut self, on: bool) -> Self {
        self.role.one_connecting = on;
        self
    }

    /// The rustls configuration of `wss://` connections: the roots the
    /// server's certificate must chain to (and client certificates, if
    /// any). Without it, `wss://` uses the system's root certificates,
    /// read at the first such connect. The server's certificate is checked
    /// for the URL's host (server name indication too); ALPN is
    /// `http/1.1` unless the configuration names protocols. The TLS
    /// handshake is part of CONNECTING: the handshake timeout covers it.
    pub fn tls(mut self, config: rustls::ClientConfig) -> Self {
        self.settings.tls_client = Some(Shared(crate::tls::client_config(config)));
        self
    }

    /// Starts the shards, each running a handler made by
    /// `factory(shard_index)` on its own thread. Connections are then
    /// opened with [`ClientHandle::connect`]; the handler's `connected` (by
    /// default `open`), `message`, `close` and `connect_failed` callbacks
    /// tell what happens to them.
    pub fn start<N, H, F>(self, factory: F) -> Result<ClientHandle<H::Data>, Error>
    where
        N: Send + 'static,
        H: ClientHandler<N>,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let factory = move |shard| Typed::<H, N, AsClient>::new(factory(shard));
        let (settings, role) = self.into_checked()?;
        let max_head = settings.max_header_bytes;
        let deflate_offer = settings.deflate.map(|d| Arc::from(client_offer(&d.negotiation())));
        let no_listeners = (0..settings.shards).map(|_| Vec::new()).collect();
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        let runtime::Launched { runtime, dialer } =
            runtime::launch(settings, no_listeners, nowhere, role.one_connecting, factory)?;
        Ok(ClientHandle { runtime, dialer, max_head, deflate_offer })
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
    /// Parses a `ws://` or `wss://host[:port]/path?query` URL and resolves
    /// its host (blocking, on the calling thread; an IP literal costs
    /// nothing).
    pub fn new(url: &str) -> Result<Connect, ConnectError> {
        let uri = WsUri::parse(url).map_err(ConnectError::InvalidRequest)?;
        let addr = (uri.host(), uri.port())
            .to_socket_addrs()
            .map_err(ConnectError::Resolve)?
            .next()
            .ok_or_else(|| ConnectError::Resolve(std::io::Error::other("no address for the host")))?;
        Ok(Connect { uri, addr, protocols: Vec::new(), headers: Vec::new(), shard: None, local: None })
    }

    /// Offers a subprotocol (in order of preference); the server's choice
    /// reaches [`ClientHandler::connected`](crate::ClientHandler::connected).
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
    /// The permessage-deflate offer sent with every request, when enabled.
    deflate_offer: Option<Arc<str>>,
}

impl<C> Clone for ClientHandle<C> {
    fn clone(&self) -> Self {
        ClientHandle {
            runtime: self.runtime.clone(),
            dialer: self.dialer.clone(),
            max_head: self.max_head,
            deflate_offer: self.deflate_offer.clone(),
        }
    }
}

impl<C> std::fmt::Debug for ClientHandle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle").field("shards", &self.runtime.shards()).finish_non_exhaustive()
    }
}

impl<C: Send + 'static> ClientHandle<C> {
    /// Opens a connection with `data` as its per-connection data. Returns
    /// at once; the handler hears `connected` (or `connect_failed`, with
    /// the data handed back) on the connection's shard. Fails here only
    /// when the request cannot start: headers that cannot be sent, or the
    /// runtime stopping.
    pub fn connect(&self, target: &Connect, data: C) -> Result<(), ConnectError> {
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
        if let Some(offer) = &self.deflate_offer {
            handshake = handshake.extension(offer);
        }
        // Checked here so that a bad header is the caller's error, now.
        handshake.write_request(&mut Vec::new()).map_err(ConnectError::InvalidRequest)?;
        let request = DialRequest { addr: target.addr, local: target.local, handshake, data };
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
