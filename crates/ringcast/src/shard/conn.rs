//! One connection's slot in the shard's table, and the WebSocket receive
//! path: frames in, handler callbacks out.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ringcast_proto::connection::Sender;
use ringcast_proto::handshake::RequestReader;
use ringcast_proto::{CloseCode, Connection, Error, Event, State};

use super::timer::Millis;
use crate::handler::{CloseInfo, Handler, Message};
use crate::pubsub::{LocalTopics, Subscriptions};
use crate::sys::OutQueue;
use crate::ws::{ConnId, Ws};

/// Flag bits of [`Conn::flags`].
pub mod flag {
    /// A multishot receive is armed.
    pub const RECV_ARMED: u16 = 1 << 0;
    /// The connection is in the shard's flush list.
    pub const IN_FLUSH_LIST: u16 = 1 << 1;
    /// Bytes arrived since the idle timer last looked.
    pub const ACTIVE: u16 = 1 << 2;
    /// An idle-check ping is out and unanswered.
    pub const PING_SENT: u16 = 1 << 3;
    /// Our side is shut down for writing; reading until the peer hangs up.
    pub const LINGER: u16 = 1 << 4;
    /// Tear down: close the socket once no operation is in flight.
    pub const DYING: u16 = 1 << 5;
    /// The connection has an entry in the timer wheel.
    pub const TIMER: u16 = 1 << 6;
    /// The receive must be armed again (it ended while the connection lives).
    pub const REARM: u16 = 1 << 7;
    /// Our close frame is out and its timeout is set.
    pub const CLOSE_TIMER: u16 = 1 << 8;
    /// A client connection's TCP connect is in flight (a poll for
    /// writability).
    pub const CONNECT: u16 = 1 << 9;
}

/// A request head still arriving over several reads.
pub struct Handshake {
    pub reader: RequestReader,
    pub head: Vec<u8>,
    /// Set once the head is complete and its body is still arriving:
    /// (head length, head + body length).
    pub body: Option<(usize, usize)>,
}

/// Where a connection is in its life.
pub enum Phase<C> {
    /// Reading the HTTP request head.
    Handshake(Box<Handshake>),
    /// A client connection: connecting, then waiting for the 101.
    Connecting(Box<super::dial::Dial<C>>),
    /// A plain TCP echo (the benchmark floor, see
    /// `ServerBuilder::start_tcp_echo`): bytes in, same bytes out.
    RawEcho,
    /// A WebSocket connection; the handler has been told `open`.
    Open { ws: Connection, state: C },
    /// The exchange is over (the handler has been told `close`, or never
    /// saw an open connection): the last bytes leave, then the socket goes.
    Finished,
}

/// One entry of the shard's connection table.
pub struct Conn<C> {
    /// The socket; closed through the ring when the connection ends, or
    /// by drop if the shard goes down with it.
    pub socket: OwnedFd,
    pub generation: u32,
    pub flags: u16,
    /// When to act next (handshake, idle, pong, close or linger limit).
    pub deadline: Millis,
    /// The tick of the connection's newest wheel entry.
    pub timer_tick: u32,
    /// When bytes last arrived.
    pub last_rx: Millis,
    pub phase: Phase<C>,
    pub out: OutQueue,
    /// Topics this connection is subscribed to.
    pub subs: Subscriptions,
}

impl<C> Conn<C> {
    pub fn new(socket: OwnedFd, generation: u32, reader: Option<RequestReader>, now: Millis) -> Self {
        let phase = match reader {
            Some(reader) => Phase::Handshake(Box::new(Handshake { reader, head: Vec::new(), body: None })),
            None => Phase::RawEcho,
        };
        Self::with_phase(socket, generation, phase, now)
    }

    pub fn with_phase(socket: OwnedFd, generation: u32, phase: Phase<C>, now: Millis) -> Self {
        Conn {
            socket,
            generation,
            flags: 0,
            deadline: now,
            timer_tick: 0,
            last_rx: now,
            phase,
            out: OutQueue::default(),
            subs: None,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// What a shard lends the receive path.
pub struct Ctx {
    pub id: ConnId,
    /// Largest HTTP request body accepted (`max_message_size`).
    pub max_body: usize,
    pub max_backpressure: usize,
    pub slow_consumer: crate::SlowConsumer,
}

/// Feeds received bytes to an open connection, calling the handler for
/// every event. Ends the connection (phase `Finished`, handler told) on a
/// close frame or a protocol violation; the close frame owed to the peer is
/// then in the out queue. Returns how many messages were delivered.
pub fn on_frames<H: Handler>(
    handler: &mut H,
    conn: &mut Conn<H::Conn>,
    input: &mut [u8],
    ctx: &Ctx,
    topics: &mut LocalTopics,
) -> u64 {
    let Phase::Open { ws, state } = &mut conn.phase else { return 0 };
    let out = &mut conn.out;
    let subs = &mut conn.subs;
    let (rx, tx) = ws.split();
    let mut messages = 0;
    let mut pos = 0;
    // Set when the connection ends: code, reason (copied: it may be lent
    // from the connection's own buffer), whether the peer started it.
    let mut ended: Option<(CloseCode, ReasonBuf, bool)> = None;
    while ended.is_none() {
        let we_closed_first = tx.state() == State::CloseSent;
        let read = match rx.read(tx, &mut input[pos..]) {
            Ok(read) => read,
            Err(e) => {
                let code = match e {
                    Error::Protocol(p) => p.close_code(),
                    _ => CloseCode::INTERNAL_ERROR,
                };
                tracing::debug!(conn = %ctx.id, error = %e, %code, "closing on protocol violation");
                ended = Some((code, ReasonBuf::from_display(&e), false));
                break;
            }
        };
        pos += read.consumed;
        let Some(event) = read.event else { break };
        let mut handle = Ws {
            tx: &mut *tx,
            out: &mut *out,
            state: &mut *state,
            max_backpressure: ctx.max_backpressure,
            slow_consumer: ctx.slow_consumer,
            id: ctx.id,
            topics: &mut *topics,
            subs: &mut *subs,
        };
        let survived = match event {
            Event::Text(text) => {
                messages += 1;
                guarded(ctx.id, "message", || handler.message(&mut handle, Message::Text(text)))
            }
            Event::Binary(data) => {
                messages += 1;
                guarded(ctx.id, "message", || handler.message(&mut handle, Message::Binary(data)))
            }
            Event::Pong(payload) => guarded(ctx.id, "pong", || handler.pong(&mut handle, payload)),
            Event::Close(frame) => {
                let code = frame.code.unwrap_or(CloseCode::NO_STATUS);
                ended = Some((code, ReasonBuf::new(frame.reason), !we_closed_first));
                true
            }
            // Pings are answered by the protocol layer.
            _ => true,
        };
        if !survived {
            let _ = tx.close(Some(CloseCode::INTERNAL_ERROR), "", out.queue());
            ended = Some((CloseCode::INTERNAL_ERROR, ReasonBuf::new("handler panicked"), false));
        }
        move_pending(tx, out, ended.is_some(), ctx.max_backpressure);
    }
    move_pending(tx, out, ended.is_some(), ctx.max_backpressure);
    if let Some((code, reason, by_peer)) = ended {
        finish(handler, conn, code, reason.as_str(), by_peer);
    }
    messages
}

/// Moves the frames the protocol layer owes the peer (pongs, close replies)
/// to the send queue, unless the queue is over the backpressure budget and
/// the connection is not ending: then pongs wait inside the protocol layer,
/// which keeps at most 16 (newest replacing newest), so a peer that floods
/// pings and never reads cannot grow the queue. They move once it drains.
pub fn move_pending(tx: &mut Sender, out: &mut OutQueue, ending: bool, max_backpressure: usize) {
    if tx.has_pending() && (ending || out.buffered() <= max_backpressure) {
        tx.take_pending(out.queue());
    }
}

/// Runs a handler callback, catching a panic so that the shard and its other
/// connections live on. Returns false if it panicked (the caller closes the
/// connection with 1011).
pub fn guarded(id: ConnId, callback: &str, f: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(_) => {
            tracing::error!(conn = %id, callback, "the handler panicked; closing the connection with 1011");
            false
        }
    }
}

/// Tells the handler a connection just opened (`call` is `open` for an
/// accepted connection, `connected` for a client one). If the callback
/// panics, the connection closes with 1011 and `close` is called; returns
/// false then. Does nothing (and returns true) in other phases.
pub fn tell_open<H: Handler>(
    handler: &mut H,
    conn: &mut Conn<H::Conn>,
    ctx: &Ctx,
    topics: &mut LocalTopics,
    callback: &str,
    call: impl FnOnce(&mut H, &mut Ws<'_, H::Conn>),
) -> bool {
    let Phase::Open { ws, state } = &mut conn.phase else { return true };
    let mut handle = Ws {
        tx: ws.sender(),
        out: &mut conn.out,
        state,
        max_backpressure: ctx.max_backpressure,
        slow_consumer: ctx.slow_consumer,
        id: ctx.id,
        topics,
        subs: &mut conn.subs,
    };
    if guarded(ctx.id, callback, || call(handler, &mut handle)) {
        return true;
    }
    let _ = ws.close(Some(CloseCode::INTERNAL_ERROR), "", conn.out.queue());
    finish(handler, conn, CloseCode::INTERNAL_ERROR, "handler panicked", false);
    false
}

/// Ends an open connection: hands the state back to the handler and moves to
/// `Finished`. Does nothing in other phases.
pub fn finish<H: Handler>(handler: &mut H, conn: &mut Conn<H::Conn>, code: CloseCode, reason: &str, by_peer: bool) {
    if let Phase::Open { .. } = conn.phase {
        if let Phase::Open { state, .. } = std::mem::replace(&mut conn.phase, Phase::Finished) {
            // Nothing is left to clean up if `close` itself panics.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                handler.close(state, CloseInfo { code, reason, by_peer })
            }))
            .map_err(|_| tracing::error!(code = code.0, "the handler panicked in close"));
        }
    }
}

/// A close reason copied out of a frame (at most 123 bytes).
struct ReasonBuf {
    bytes: [u8; 123],
    len: u8,
}

impl ReasonBuf {
    fn new(reason: &str) -> Self {
        let mut buf = ReasonBuf { bytes: [0; 123], len: 0 };
        // Cut at a character boundary so the copy stays valid UTF-8.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        buf.bytes[..end].copy_from_slice(&reason.as_bytes()[..end]);
        buf.len = end as u8;
        buf
    }

    fn from_display(e: &impl std::fmt::Display) -> Self {
        Self::new(&e.to_string())
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_stays_small() {
        // The slot of a connection with no state of its own: the protocol
        // state, the send queue, the subscriptions and the bookkeeping. The
        // budget per idle connection is 256 bytes: this, the table's tag
        // and a 12-byte timer entry.
        let size = std::mem::size_of::<Conn<()>>();
        eprintln!(
            "Conn<()> = {size} bytes; Connection = {}, Phase = {}, OutQueue = {}, Receiver = {}, Sender = {}",
            std::mem::size_of::<Connection>(),
            std::mem::size_of::<Phase<()>>(),
            std::mem::size_of::<OutQueue>(),
            std::mem::size_of::<ringcast_proto::connection::Receiver>(),
            std::mem::size_of::<ringcast_proto::connection::Sender>(),
        );
        assert!(size <= 216, "{size} bytes");
    }
}
