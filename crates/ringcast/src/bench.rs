//! Entry points for measuring the runtime, not for applications.

use std::net::ToSocketAddrs;

use ringcast_proto::handshake::Request;

use crate::error::Error;
use crate::handler::{Decision, Handler, Peer, ServerHandler};
use crate::message::Message;
use crate::server::{ServerBuilder, ServerHandle};
use crate::ws::Ws;

/// Runs a plain TCP echo server on this runtime (same shards, rings,
/// buffers, corked sends) instead of a WebSocket server: the floor for
/// this machine, which WebSocket echo is measured against
/// (`examples/tcp_echo.rs`, `tools/compare.sh`).
pub fn start_tcp_echo(mut builder: ServerBuilder, addr: impl ToSocketAddrs) -> Result<ServerHandle, Error> {
    builder.settings.tcp_echo = true;
    builder.start(addr, |_| TcpEcho)
}

/// The handler of a TCP echo server: never called, the shard echoes bytes.
struct TcpEcho;

impl Handler for TcpEcho {
    type Data = ();

    fn message(&mut self, _ws: &mut Ws<'_, ()>, _message: Message<'_>) {}
}

impl ServerHandler for TcpEcho {
    fn upgrade(&mut self, _request: &Request<'_>, _peer: &Peer<'_>) -> Decision<()> {
        Decision::reject(500)
    }
}
