//! What an application plugs into a runtime: the [`Handler`] callbacks
//! every connection has, the [`ServerHandler`] and [`ClientHandler`]
//! callbacks of each role, and the values they take and return.

use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use ringcast_proto::handshake::Request;
use ringcast_proto::{CloseCode, RequestError};

use crate::error::ConnectError;
use crate::message::Message;
use crate::ws::Ws;

/// What every connection's logic has, server or client: the callbacks of
/// an open connection. A server implements [`ServerHandler`] on top of
/// it, a client [`ClientHandler`]; the builders take only those, so a
/// server cannot start without an `upgrade`.
///
/// Each shard owns its own handler value, made by the factory given to
/// [`ServerBuilder::start`](crate::ServerBuilder::start) or
/// [`ClientBuilder::start`](crate::ClientBuilder::start) on the shard's
/// thread, so callbacks take `&mut self` and need no locks; state shared
/// across shards goes behind an `Arc` captured by the factory.
///
/// Callbacks run on the shard's event loop: keep them short and never block.
/// Messages are lent straight from the receive buffer: copy what you keep.
///
/// `N` is the type of the notes other threads may post to a connection
/// ([`Notes`](crate::broker::Notes), [`Handler::notified`]); most handlers
/// take none and leave it at `()`.
pub trait Handler<N = ()>: 'static {
    /// The application's data for each connection, stored in the shard's
    /// connection table beside the protocol state (a zero-sized type costs
    /// nothing); reached through [`Ws::data`].
    type Data: 'static;

    /// The connection is open: a server's 101 response is queued, a
    /// client's handshake is done. Sending here is allowed; so is
    /// subscribing.
    fn open(&mut self, ws: &mut Ws<'_, Self::Data>) {
        let _ = ws;
    }

    /// A whole message arrived.
    fn message(&mut self, ws: &mut Ws<'_, Self::Data>, message: Message<'_>);

    /// A pong arrived (the answer to [`Ws::ping`] or to the idle check).
    fn pong(&mut self, ws: &mut Ws<'_, Self::Data>, payload: &[u8]) {
        let _ = (ws, payload);
    }

    /// Everything queued for this connection has been handed to the kernel:
    /// the moment to resume sending after [`Ws::buffered_amount`] grew.
    fn drain(&mut self, ws: &mut Ws<'_, Self::Data>) {
        let _ = ws;
    }

    /// A note posted for this connection with
    /// [`Notes::notify`](crate::broker::Notes::notify) (or carried by
    /// [`Notes::join`](crate::broker::Notes::join)), from any thread: it
    /// arrives through the connection's shard's mailbox, after every
    /// delivery posted there before it (so a thread that publishes with
    /// [`publish_sequenced`](crate::broker::ServerExt::publish_sequenced)
    /// and notifies knows which of its publishes came first). Dropped
    /// unread if the connection is gone. The default ignores it.
    fn notified(&mut self, ws: &mut Ws<'_, Self::Data>, note: N) {
        let _ = (ws, note);
    }

    /// The alarm set with [`Ws::set_alarm`] has come (the connection is
    /// still there: an alarm never outlives its connection).
    fn alarm(&mut self, ws: &mut Ws<'_, Self::Data>) {
        let _ = ws;
    }

    /// The connection is over, for whatever reason; called exactly once for
    /// every connection that was opened, with its data handed back.
    fn close(&mut self, data: Self::Data, info: CloseInfo<'_>) {
        let _ = (data, info);
    }
}

/// A server's connection logic: which upgrade requests become
/// connections (required: there is no default that would refuse everyone
/// in silence), and the plain HTTP requests the server answers beside
/// its WebSockets.
///
/// A handler without it does not start a server; this does not compile:
///
/// ```compile_fail
/// use ringcast::{Handler, Message, ServerBuilder, Ws};
///
/// struct Forgetful;
///
/// impl Handler for Forgetful {
///     type Data = ();
///     fn message(&mut self, _ws: &mut Ws<'_, ()>, _message: Message<'_>) {}
/// }
///
/// let _ = ServerBuilder::new().start("127.0.0.1:0", |_shard| Forgetful);
/// ```
pub trait ServerHandler<N = ()>: Handler<N> {
    /// A valid WebSocket upgrade request, from `peer`: accept it (with the
    /// data of the new connection and, optionally, one of the subprotocols
    /// the client offered) or answer with an HTTP response. The usual
    /// refusals: 403 for an `Origin` the server does not serve pages to,
    /// 404 for a path it does not serve, 401 without valid credentials.
    fn upgrade(&mut self, request: &Request<'_>, peer: &Peer<'_>) -> Decision<Self::Data>;

    /// A request that is not a valid WebSocket upgrade, with its body and
    /// the reason it is not an upgrade. Answer plain HTTP here (e.g.
    /// `GET /healthz`, `POST /publish`); `None`, the default, sends the
    /// reason's status (400 for missing or malformed fields, 426 with
    /// `Sec-WebSocket-Version: 13` for another version). Bodies come with a
    /// `Content-Length` of at most `max_message_size` (else 413; chunked
    /// bodies get 501).
    fn http(&mut self, request: &Request<'_>, body: &[u8], why: RequestError) -> Option<Response> {
        let _ = (request, body, why);
        None
    }
}

/// A client's connection logic: the two moments only a client has.
/// Everything else is [`Handler`]; a client with nothing to add writes
/// `impl ClientHandler for MyHandler {}`.
pub trait ClientHandler<N = ()>: Handler<N> {
    /// The opening handshake completed; `protocol` is the subprotocol the
    /// server chose, if any. The default calls [`Handler::open`].
    fn connected(&mut self, ws: &mut Ws<'_, Self::Data>, protocol: Option<&str>) {
        let _ = protocol;
        self.open(ws);
    }

    /// A connection never opened (refused, unreachable, timed out, a
    /// status other than 101, an invalid answer): its data comes back with
    /// the reason. Called exactly once per request that does not reach
    /// `connected`; the default logs at debug level.
    fn connect_failed(&mut self, data: Self::Data, error: &ConnectError) {
        let _ = data;
        tracing::debug!(%error, "connect failed");
    }
}

/// The client of an upgrade request. Its address is looked up (one
/// system call) only when asked for.
#[derive(Debug)]
pub struct Peer<'a> {
    socket: BorrowedFd<'a>,
    server_name: Option<&'a str>,
    secure: bool,
}

impl<'a> Peer<'a> {
    pub(crate) fn new(socket: BorrowedFd<'a>, server_name: Option<&'a str>, secure: bool) -> Self {
        Peer { socket, server_name, secure }
    }

    /// The connection is TLS (`wss://`).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The server name a TLS client asked for (SNI): for a server with
    /// several names, e.g. to check it against the `Host` header. `None`
    /// for plain connections and clients that sent none.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name
    }

    /// The client's address; `None` if the connection is already gone.
    pub fn addr(&self) -> Option<SocketAddr> {
        socket2::SockRef::from(&self.socket).peer_addr().ok()?.as_socket()
    }
}

/// The answer to an upgrade request.
#[derive(Debug)]
pub enum Decision<C> {
    /// Switch protocols.
    Accept(Accept<C>),
    /// Refuse with an HTTP response; the connection then closes.
    Reject(Response),
}

impl<C> Decision<C> {
    /// Accept with this connection data, no subprotocol, no extra fields.
    pub fn accept(data: C) -> Self {
        Decision::Accept(Accept::new(data))
    }

    /// Refuse with a bare status (403, 404, 503…).
    pub fn reject(status: u16) -> Self {
        Decision::Reject(Response::new(status))
    }
}

/// An accepted upgrade: the new connection's data and what the 101
/// response carries.
#[derive(Debug)]
pub struct Accept<C> {
    pub(crate) data: C,
    pub(crate) protocol: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl<C> Accept<C> {
    /// Accept with this connection data.
    pub fn new(data: C) -> Self {
        Accept { data, protocol: None, headers: Vec::new() }
    }

    /// Select a subprotocol. It must be one the client offered (see
    /// [`Request::protocols`]); answering another is a programming error
    /// that the server turns into a 500.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Add a header field to the 101 response (e.g. `Set-Cookie`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A plain HTTP response, after which the connection closes.
/// `Content-Length` and `Connection: close` are added by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// A response with this status and no body.
    pub fn new(status: u16) -> Self {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// Add a header field. Fields that would break the response (CR/LF,
    /// `Content-Length`, `Connection`, `Transfer-Encoding`) make the server
    /// answer 500 instead.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body (`text/plain; charset=utf-8` unless a `Content-Type` is
    /// given).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// How a connection ended, for [`Handler::close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseInfo<'a> {
    /// The close code: the peer's, ours, 1005 when a close frame had no
    /// code, or 1006 when the connection ended without a close handshake
    /// (reset, timeout, server stop past its deadline).
    pub code: CloseCode,
    /// The close reason, possibly empty.
    pub reason: &'a str,
    /// The peer started the close (its close frame or its end of stream).
    pub by_peer: bool,
}
