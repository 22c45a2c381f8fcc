//! Client connections on a shard: the TCP connect, the upgrade request, the
//! server's response, then the same WebSocket path as accepted
//! connections.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use ringcast_proto::handshake::ClientHandshake;
use ringcast_proto::{Config, Connection};
use socket2::{Domain, SockRef, Socket, Type};

use super::conn::{on_frames, tell_open, Conn, Ctx, Phase};
use super::{flag, op, token, Shard};
use crate::client::{ConnectError, DialRequest, Dialer};
use crate::handler::Handler;
use crate::pubsub::LocalTopics;

/// A client connection in CONNECTING: the TCP connect, then the upgrade
/// request out and the response coming in.
pub struct Dial<C> {
    handshake: ClientHandshake,
    state: C,
    /// The server's address: the key of the CONNECTING rule.
    addr: SocketAddr,
    /// Response bytes so far, when the head spans several reads.
    head: Vec<u8>,
}

/// What the response bytes led to.
pub enum Step {
    /// The response head is not complete yet.
    Waiting,
    /// The connection is open; this many messages were delivered from
    /// frames that followed the head in the same read.
    Opened(u64),
    /// The server refused or answered nonsense: the handler was told, the
    /// connection must be torn down.
    Failed,
}

/// Creates a non-blocking socket and starts connecting. `Ok(true)`: the
/// connection is already established (it happens on loopback).
fn start_socket(addr: SocketAddr, local: Option<SocketAddr>) -> std::io::Result<(OwnedFd, bool)> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), None)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(local) = local {
        socket.bind(&local.into())?;
    }
    let done = match socket.connect(&addr.into()) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => false,
        Err(e) => return Err(e),
    };
    Ok((socket.into(), done))
}

/// Ends a connection still in CONNECTING: the handler gets its state back
/// with the reason, the next connect to the same address may start.
/// Does nothing in other phases.
pub fn fail<H: Handler>(handler: &mut H, conn: &mut Conn<H::Conn>, error: ConnectError, dialer: &Dialer) {
    if let Phase::Connecting(_) = conn.phase {
        if let Phase::Connecting(dial) = std::mem::replace(&mut conn.phase, Phase::Finished) {
            report_failure(handler, dial.state, dial.addr, error, dialer);
        }
    }
}

/// A connect request that will not open: its address is free for the next
/// one, and the handler gets the state back with the reason.
fn report_failure<H: Handler>(handler: &mut H, state: H::Conn, addr: SocketAddr, error: ConnectError, dialer: &Dialer) {
    dialer.release(addr);
    tracing::debug!(%addr, %error, "connect failed");
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.connect_failed(state, &error))).is_err() {
        tracing::error!("the handler panicked in connect_failed");
    }
}

/// Feeds received bytes to a connection waiting for its upgrade response.
/// Parses in place when the head arrives in one read; on a 101, bytes after
/// the head go straight to the WebSocket path.
pub fn on_response<H: Handler>(
    handler: &mut H,
    conn: &mut Conn<H::Conn>,
    input: &mut [u8],
    ctx: &Ctx,
    proto: Config,
    topics: &mut LocalTopics,
    dialer: &Dialer,
) -> Step {
    let Phase::Connecting(dial) = &mut conn.phase else { return Step::Waiting };
    let in_place = dial.head.is_empty();
    if !in_place {
        dial.head.extend_from_slice(input);
    }
    let Dial { handshake, head, .. } = &mut **dial;
    let buf: &mut [u8] = if in_place { &mut *input } else { head.as_mut_slice() };
    let (protocol, head_len) = match handshake.read_response(buf) {
        Ok(None) => {
            if in_place {
                dial.head.extend_from_slice(input);
            }
            return Step::Waiting;
        }
        Err(e) => {
            fail(handler, conn, ConnectError::Handshake(e), dialer);
            return Step::Failed;
        }
        Ok(Some(response)) => (response.protocol().map(str::to_owned), response.head_len()),
    };
    let Phase::Connecting(dial) = std::mem::replace(&mut conn.phase, Phase::Finished) else { return Step::Failed };
    let Dial { state, addr, mut head, .. } = *dial;
    dialer.release(addr);
    conn.phase = Phase::Open { ws: Connection::client(proto), state };
    if !tell_open(handler, conn, ctx, topics, "connected", |handler, ws| handler.connected(ws, protocol.as_deref())) {
        return Step::Opened(0);
    }
    let rest = if in_place { &mut input[head_len..] } else { &mut head[head_len..] };
    Step::Opened(if rest.is_empty() { 0 } else { on_frames(handler, conn, rest, ctx, topics) })
}

impl<H: Handler> Shard<H> {
    /// Starts the connect requests handed to this shard.
    pub(super) fn start_dials(&mut self) {
        let dials = std::mem::take(&mut *self.shared.dials.lock().unwrap_or_else(|e| e.into_inner()));
        for dial in dials {
            match dial.downcast::<DialRequest<H::Conn>>() {
                Ok(request) => self.start_dial(*request),
                Err(_) => tracing::error!("a connect request of another handler type reached this shard"),
            }
        }
    }

    fn start_dial(&mut self, request: DialRequest<H::Conn>) {
        let DialRequest { addr, local, handshake, state } = request;
        let refused = if self.stop_deadline.is_some() {
            Some(ConnectError::Stopping)
        } else if self.conns.len() >= self.max_connections {
            Some(ConnectError::Limit)
        } else {
            None
        };
        let started = match refused {
            Some(error) => Err(error),
            None => start_socket(addr, local).map_err(ConnectError::Io),
        };
        let (socket, connected) = match started {
            Ok(started) => started,
            Err(error) => return report_failure(&mut self.handler, state, addr, error, &self.dialer),
        };
        let generation = self.take_generation();
        let fd = socket.as_raw_fd();
        let dial = Dial { handshake, state, addr, head: Vec::new() };
        let key = self.conns.insert(Conn::with_phase(socket, generation, Phase::Connecting(Box::new(dial)), self.now));
        tracing::debug!(conn = %self.id(key, generation), %addr, "connecting");
        let deadline = self.now.wrapping_add(Self::millis(self.settings.handshake_timeout));
        let conn = &mut self.conns[key];
        Self::set_deadline(&mut self.wheel, conn, key, deadline);
        if connected {
            self.on_tcp_connected(key);
        } else {
            conn.flags |= flag::CONNECT;
            self.io.ring.poll_writable(fd, token(op::CONNECT, key, generation));
        }
    }

    /// The socket became writable (or failed) while connecting.
    pub(super) fn on_connect(&mut self, key: usize, generation: u32, result: i32) {
        let Some(conn) = self.conns.get_mut(key).filter(|conn| conn.generation == generation) else { return };
        conn.flags &= !flag::CONNECT;
        if conn.has(flag::DYING) {
            return self.review(key);
        }
        let error = if result < 0 {
            Some(std::io::Error::from_raw_os_error(-result))
        } else {
            match SockRef::from(&conn.socket).take_error() {
                Ok(None) => None,
                Ok(Some(e)) | Err(e) => Some(e),
            }
        };
        match error {
            None => self.on_tcp_connected(key),
            Some(e) => {
                fail(&mut self.handler, conn, ConnectError::Io(e), &self.dialer);
                self.terminate(key, "connect failed");
            }
        }
    }

    /// TCP is up: send the upgrade request, start receiving the answer.
    fn on_tcp_connected(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        if let Phase::Connecting(dial) = &conn.phase {
            // Checked when the request was made: it cannot fail here.
            let _ = dial.handshake.write_request(conn.out.queue());
        }
        conn.flags |= flag::RECV_ARMED;
        self.io.ring.recv_multi(conn.fd(), self.io.bufs.group(), token(op::RECV, key, conn.generation));
        self.counters.accepted += 1;
        self.review(key);
    }
}
