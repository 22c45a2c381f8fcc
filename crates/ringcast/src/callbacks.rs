//! The handler as the shards call it: an application's [`Handler`] with
//! its note type fixed, so that the shard code names one type parameter
//! and the mailbox carries notes without knowing their type.
//!
//! A [`Handler<N>`] is generic over its note type (`()` by default), and
//! the shards are not: [`Typed`] wraps a handler with its `N` and its
//! role ([`Side`]) and is the one implementation of [`Callbacks`]. A
//! note crosses the mailbox boxed and is unboxed here to the handler's
//! own type; only [`crate::broker::Notes`] posts notes, and it is handed
//! out for that type alone (checked when it is made), so the unboxing
//! cannot fail.

use std::any::Any;
use std::marker::PhantomData;

use ringcast_proto::handshake::Request;
use ringcast_proto::RequestError;

use crate::error::ConnectError;
use crate::handler::{ClientHandler, CloseInfo, Decision, Handler, Peer, Response, ServerHandler};
use crate::message::Message;
use crate::ws::Ws;

/// What the shards call; see [`Handler`] for each callback.
pub(crate) trait Callbacks: 'static {
    type Data: 'static;
    /// The handler's note type.
    type Note: Send + 'static;
    fn upgrade(&mut self, request: &Request<'_>, peer: &Peer<'_>) -> Decision<Self::Data>;
    fn http(&mut self, request: &Request<'_>, body: &[u8], why: RequestError) -> Option<Response>;
    fn open(&mut self, ws: &mut Ws<'_, Self::Data>);
    fn connected(&mut self, ws: &mut Ws<'_, Self::Data>, protocol: Option<&str>);
    fn connect_failed(&mut self, data: Self::Data, error: &ConnectError);
    fn message(&mut self, ws: &mut Ws<'_, Self::Data>, message: Message<'_>);
    fn pong(&mut self, ws: &mut Ws<'_, Self::Data>, payload: &[u8]);
    fn drain(&mut self, ws: &mut Ws<'_, Self::Data>);
    /// A note from the mailbox, still boxed.
    fn notified(&mut self, ws: &mut Ws<'_, Self::Data>, note: Box<dyn Any + Send>);
    fn alarm(&mut self, ws: &mut Ws<'_, Self::Data>);
    fn close(&mut self, data: Self::Data, info: CloseInfo<'_>);
}

/// A handler with its note type and its role.
pub(crate) struct Typed<H, N, S> {
    handler: H,
    note: PhantomData<fn(N) -> S>,
}

impl<H, N, S> Typed<H, N, S> {
    pub fn new(handler: H) -> Self {
        Typed { handler, note: PhantomData }
    }
}

/// The callbacks only one role has, called on the handler of that role:
/// [`AsServer`] for a [`ServerHandler`], [`AsClient`] for a
/// [`ClientHandler`]. Chosen once, by the builder that starts the runtime.
pub(crate) trait Side<H: Handler<N>, N>: 'static {
    fn upgrade(handler: &mut H, request: &Request<'_>, peer: &Peer<'_>) -> Decision<H::Data>;
    fn http(handler: &mut H, request: &Request<'_>, body: &[u8], why: RequestError) -> Option<Response>;
    fn connected(handler: &mut H, ws: &mut Ws<'_, H::Data>, protocol: Option<&str>);
    fn connect_failed(handler: &mut H, data: H::Data, error: &ConnectError);
}

/// A server's handler: it accepts, it never dials.
pub(crate) struct AsServer;

/// A client's handler: it dials, it never accepts (a client runtime has no
/// listener).
pub(crate) struct AsClient;

impl<N, H: ServerHandler<N>> Side<H, N> for AsServer {
    fn upgrade(handler: &mut H, request: &Request<'_>, peer: &Peer<'_>) -> Decision<H::Data> {
        handler.upgrade(request, peer)
    }

    fn http(handler: &mut H, request: &Request<'_>, body: &[u8], why: RequestError) -> Option<Response> {
        handler.http(request, body, why)
    }

    fn connected(handler: &mut H, ws: &mut Ws<'_, H::Data>, _protocol: Option<&str>) {
        handler.open(ws)
    }

    fn connect_failed(_handler: &mut H, _data: H::Data, error: &ConnectError) {
        tracing::error!(%error, "a server runtime was told of a failed connect");
    }
}

impl<N, H: ClientHandler<N>> Side<H, N> for AsClient {
    fn upgrade(_handler: &mut H, _request: &Request<'_>, _peer: &Peer<'_>) -> Decision<H::Data> {
        Decision::reject(500)
    }

    fn http(_handler: &mut H, _request: &Request<'_>, _body: &[u8], _why: RequestError) -> Option<Response> {
        None
    }

    fn connected(handler: &mut H, ws: &mut Ws<'_, H::Data>, protocol: Option<&str>) {
        handler.connected(ws, protocol)
    }

    fn connect_failed(handler: &mut H, data: H::Data, error: &ConnectError) {
        handler.connect_failed(data, error)
    }
}

impl<N: Send + 'static, H: Handler<N>, S: Side<H, N>> Callbacks for Typed<H, N, S> {
    type Data = H::Data;
    type Note = N;

    fn upgrade(&mut self, request: &Request<'_>, peer: &Peer<'_>) -> Decision<H::Data> {
        S::upgrade(&mut self.handler, request, peer)
    }

    fn http(&mut self, request: &Request<'_>, body: &[u8], why: RequestError) -> Option<Response> {
        S::http(&mut self.handler, request, body, why)
    }

    fn open(&mut self, ws: &mut Ws<'_, H::Data>) {
        self.handler.open(ws)
    }

    fn connected(&mut self, ws: &mut Ws<'_, H::Data>, protocol: Option<&str>) {
        S::connected(&mut self.handler, ws, protocol)
    }

    fn connect_failed(&mut self, data: H::Data, error: &ConnectError) {
        S::connect_failed(&mut self.handler, data, error)
    }

    fn message(&mut self, ws: &mut Ws<'_, H::Data>, message: Message<'_>) {
        self.handler.message(ws, message)
    }

    fn pong(&mut self, ws: &mut Ws<'_, H::Data>, payload: &[u8]) {
        self.handler.pong(ws, payload)
    }

    fn drain(&mut self, ws: &mut Ws<'_, H::Data>) {
        self.handler.drain(ws)
    }

    fn notified(&mut self, ws: &mut Ws<'_, H::Data>, note: Box<dyn Any + Send>) {
        match note.downcast::<N>() {
            Ok(note) => self.handler.notified(ws, *note),
            // Notes<N> is only made for this N: unreachable.
            Err(_) => tracing::error!("a note of another type than the handler's was dropped"),
        }
    }

    fn alarm(&mut self, ws: &mut Ws<'_, H::Data>) {
        self.handler.alarm(ws)
    }

    fn close(&mut self, data: H::Data, info: CloseInfo<'_>) {
        self.handler.close(data, info)
    }
}
