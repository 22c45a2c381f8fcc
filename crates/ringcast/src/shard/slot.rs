//! One connection's slot in the shard's table: its socket, where it is in
//! its life, its send queue, its timer and its subscriptions.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ringcast_proto::handshake::{ClientHandshake, RequestReader};
use ringcast_proto::Connection;

use std::time::Duration;

use crate::pubsub::Subscriptions;
use crate::sys::OutQueue;
use crate::timer::{millis, reached, tick_start, Millis, Wheel};

/// Flag bits of [`Slot::flags`].
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
    /// The transport moves into the kernel (kernel TLS) once no receive
    /// is armed and no sealed byte waits: receiving stops until then.
    pub const OFFLOAD: u16 = 1 << 10;
}

/// A request head still arriving over several reads.
pub struct Handshake {
    pub reader: RequestReader,
    pub head: Vec<u8>,
    /// Set once the head is complete and its body is still arriving:
    /// (head length, head + body length).
    pub body: Option<(usize, usize)>,
}

/// A client connection in CONNECTING: the TCP connect, then the upgrade
/// request out and the response coming in.
pub struct Dial<C> {
    pub handshake: ClientHandshake,
    pub data: C,
    /// The server's address: the key of the CONNECTING rule.
    pub addr: SocketAddr,
    /// Response bytes so far, when the head spans several reads.
    pub head: Vec<u8>,
}

/// Where a connection is in its life.
pub enum Phase<C> {
    /// Reading the HTTP request head.
    Handshake(Box<Handshake>),
    /// A client connection: connecting, then waiting for the 101.
    Connecting(Box<Dial<C>>),
    /// A plain TCP echo (the benchmark floor, see
    /// `bench::start_tcp_echo`): bytes in, same bytes out.
    RawEcho,
    /// A WebSocket connection; the handler has been told `open`.
    Open { proto: Connection, data: C },
    /// The exchange is over (the handler has been told `close`, or never
    /// saw an open connection): the last bytes leave, then the socket goes.
    Finished,
}

/// One entry of the shard's connection table; `S` is the transport's
/// per-connection session (zero-sized for plain TCP).
pub struct Slot<C, S = ()> {
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
    /// The transport's state (see `crate::transport`).
    pub session: S,
}

impl<C, S> Slot<C, S> {
    pub fn new(socket: OwnedFd, generation: u32, reader: Option<RequestReader>, now: Millis, session: S) -> Self {
        let phase = match reader {
            Some(reader) => Phase::Handshake(Box::new(Handshake { reader, head: Vec::new(), body: None })),
            None => Phase::RawEcho,
        };
        Self::with_phase(socket, generation, phase, now, session)
    }

    pub fn with_phase(socket: OwnedFd, generation: u32, phase: Phase<C>, now: Millis, session: S) -> Self {
        Slot {
            socket,
            generation,
            flags: 0,
            deadline: now,
            timer_tick: 0,
            last_rx: now,
            phase,
            out: OutQueue::default(),
            subs: None,
            session,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Files the connection's next deadline, adding a wheel entry only when
    /// the deadline is earlier than the one it has (`key` is its table key).
    pub fn set_deadline(&mut self, wheel: &mut Wheel, key: usize, deadline: Millis) {
        self.deadline = deadline;
        if !self.has(flag::TIMER) || !reached(tick_start(self.timer_tick), deadline) {
            self.timer_tick = wheel.schedule(key as u32, self.generation, deadline);
            self.flags |= flag::TIMER;
        }
    }

    /// Sets the deadline `after` from `now`.
    pub fn deadline_in(&mut self, wheel: &mut Wheel, key: usize, now: Millis, after: Duration) {
        self.set_deadline(wheel, key, now.wrapping_add(millis(after)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_stays_small() {
        // The slot of a connection with no data of its own: the protocol
        // state, the send queue, the subscriptions and the bookkeeping. The
        // budget per idle connection is 256 bytes: this, the table's tag
        // and a 12-byte timer entry.
        let size = std::mem::size_of::<Slot<()>>();
        eprintln!(
            "Slot<()> = {size} bytes; Connection = {}, Phase = {}, OutQueue = {}, Receiver = {}, Sender = {}",
            std::mem::size_of::<Connection>(),
            std::mem::size_of::<Phase<()>>(),
            std::mem::size_of::<OutQueue>(),
            std::mem::size_of::<ringcast_proto::connection::Receiver>(),
            std::mem::size_of::<ringcast_proto::connection::Sender>(),
        );
        assert!(size <= 192, "{size} bytes");
    }
}
