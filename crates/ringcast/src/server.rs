//! Starting a server, and the handle that observes and stops it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::builder::Builder;
use crate::callbacks::{AsServer, Typed};
use crate::config::{Settings, Shared};
use crate::error::Error;
use crate::handler::ServerHandler;
use crate::message::Message;
use crate::runtime::{self, Runtime, ShutdownReport};
use crate::stats::Stats;

/// Configures and starts a server: the shared settings of [`Builder`]
/// (limits, timeouts, shards) and [`start`](Builder::start).
pub type ServerBuilder = Builder<ServerRole>;

/// The server role of a [`Builder`]: a listening socket per shard.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ServerRole;

impl Default for ServerBuilder {
    fn default() -> Self {
        Builder::with(Settings::default(), ServerRole)
    }
}

impl Builder<ServerRole> {
    /// A server builder with the default settings: one pinned shard per
    /// CPU the process may use (set [`shards`](Self::shards) and
    /// [`pin_threads`](Self::pin_threads) for a small app on a shared
    /// machine), and a safe default for every limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `wss://` with this rustls configuration (certificates, key,
    /// protocol versions): on the address given to [`start`](Self::start),
    /// or on [`tls_address`](Self::tls_address) beside a plain one. The
    /// runtime sets ALPN to `http/1.1` unless the configuration names
    /// protocols, and turns early (0-RTT) data off: an upgrade sent as early
    /// data could be replayed. The TLS handshake counts in the handshake
    /// timeout; a client that fails it gets rustls' alert and the
    /// connection closes. The server name the client asked for is
    /// [`Peer::server_name`](crate::Peer::server_name).
    pub fn tls(mut self, config: rustls::ServerConfig) -> Self {
        self.settings.tls = Some(Shared(crate::tls::server_config(config)));
        self
    }

    /// With [`tls`](Self::tls): serve TLS on `addr` and plain WebSockets
    /// on the address given to `start` (two listeners per shard, one
    /// runtime: rooms and publishes span both).
    pub fn tls_address(mut self, addr: SocketAddr) -> Self {
        self.settings.tls_address = Some(addr);
        self
    }

    /// Binds `addr` once per shard (SO_REUSEPORT; port 0 picks one port for
    /// all) and starts the shards, each running a handler made by
    /// `factory(shard_index)` on its own thread. Returns once every shard
    /// is ready, or the first error.
    pub fn start<N, H, F>(self, addr: impl ToSocketAddrs, factory: F) -> Result<ServerHandle, Error>
    where
        N: Send + 'static,
        H: ServerHandler<N>,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        let addr = addr.to_socket_addrs().map_err(Error::Resolve)?.next().ok_or(Error::Config("no address to bind"))?;
        let (settings, ServerRole) = self.into_checked()?;
        let main = bind_all(addr, &settings)?;
        let local_addr = bound_addr(&main[0], addr);
        let main_secure = settings.tls.is_some() && settings.tls_address.is_none();
        let (tls, tls_addr) = match settings.tls_address {
            Some(tls_addr) => {
                let sockets = bind_all(tls_addr, &settings)?;
                let bound = bound_addr(&sockets[0], tls_addr);
                (sockets, Some(bound))
            }
            None => (Vec::new(), main_secure.then_some(local_addr)),
        };
        let mut tls = tls.into_iter();
        let listeners = main
            .into_iter()
            .map(|socket| {
                let mut shard = vec![(socket, main_secure)];
                shard.extend(tls.next().map(|socket| (socket, true)));
                shard
            })
            .collect();
        let factory = move |shard| Typed::<H, N, AsServer>::new(factory(shard));
        let runtime = runtime::launch(settings, listeners, local_addr, true, factory)?.runtime;
        let handle = ServerHandle { runtime, tls_addr };
        tracing::info!(local_addr = %handle.local_addr(), tls = ?tls_addr, shards = handle.shards(), "listening");
        Ok(handle)
    }
}

/// The address a listener got (its port, if port 0 was asked for).
fn bound_addr(socket: &Socket, asked: SocketAddr) -> SocketAddr {
    socket.local_addr().ok().and_then(|a| a.as_socket()).unwrap_or(asked)
}

/// Fails if something already listens on `addr`. The shards' listeners
/// share their port through SO_REUSEPORT, which would also let them share
/// it with another process of the same user already listening there (a
/// second hub started by mistake, which then takes part of the traffic):
/// a socket without SO_REUSEPORT may bind only where nobody listens.
fn nobody_listens(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    // Connections left in TIME_WAIT by an earlier run do not count.
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into()).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            std::io::Error::new(e.kind(), format!("{e} (another process listens on this address)"))
        }
        _ => e,
    })
}

/// One listening socket per shard, all on the same address and port.
fn bind_all(addr: SocketAddr, settings: &Settings) -> Result<Vec<Socket>, Error> {
    nobody_listens(addr).map_err(|source| Error::Bind { addr, source })?;
    let mut bound = addr;
    let mut listeners = Vec::with_capacity(settings.shards);
    for _ in 0..settings.shards {
        let bind = |addr: SocketAddr| -> std::io::Result<Socket> {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            // Accepted sockets inherit it: messages leave at once.
            socket.set_tcp_nodelay(true)?;
            if let Some(size) = settings.send_buffer_size {
                // Inherited too, with the lock that turns autotuning off.
                socket.set_send_buffer_size(size)?;
            }
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

/// A running server: its address, its counters, and the way to stop it.
/// Cheap to clone and usable from any thread. Dropping every handle leaves
/// the server running until the process exits.
#[derive(Clone)]
pub struct ServerHandle {
    runtime: Runtime,
    tls_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("local_addr", &self.local_addr()).finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on (with the port it picked, if
    /// asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.runtime.local_addr()
    }

    /// Where `wss://` is served (the main address, or the TLS address when
    /// plain WebSockets are served beside it); `None` without TLS.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.runtime.shards()
    }

    /// Publishes `message` to every subscriber of `topic`, on every shard,
    /// from any thread. The frame is built once and shared by the shards.
    /// Returns the number of subscribers at the time of the call (they may
    /// leave before it arrives). Once a shutdown has begun, subscribers are
    /// being closed and a publish reaches nobody.
    pub fn publish(&self, topic: &str, message: Message<'_>) -> u64 {
        self.runtime.publish(topic, message)
    }

    /// Subscribers of `topic` across all shards (as of their last change).
    pub fn subscribers(&self, topic: &str) -> u64 {
        self.runtime.subscribers(topic)
    }

    /// The counters, summed over the shards.
    pub fn stats(&self) -> Stats {
        self.runtime.stats()
    }

    /// The counters of each shard, in shard order (for per-shard metrics:
    /// an uneven spread shows up here).
    pub fn shard_stats(&self) -> Vec<Stats> {
        self.runtime.shard_stats()
    }

    /// Stops the server gracefully: no new connections; every open
    /// connection is sent close 1001 ("going away", reason `server
    /// shutting down`); connections still there after `grace` are cut.
    /// Returns when every shard has stopped. Calling it again (from any
    /// clone) waits for the same stop.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.runtime.shutdown(grace)
    }

    /// Waits until the server has stopped (after a `shutdown` from
    /// anywhere, or a signal with
    /// [`shutdown_on_signals`](Self::shutdown_on_signals)).
    pub fn wait(&self) -> ShutdownReport {
        self.runtime.wait()
    }

    /// Makes SIGINT (Ctrl-C) and SIGTERM stop the server gracefully, as
    /// [`shutdown`](Self::shutdown) with `grace` does: every connection is
    /// sent close 1001, and [`wait`](Self::wait) returns once they are
    /// gone. A second signal during the grace ends the process as the
    /// signal's default action would. The handlers stay until the server
    /// stops; fails only if they cannot be installed.
    pub fn shutdown_on_signals(&self, grace: Duration) -> std::io::Result<()> {
        crate::signals::watch(&self.runtime, grace)
    }

    /// The runtime under this handle, for [`crate::broker`].
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}
