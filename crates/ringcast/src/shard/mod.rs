//! A shard: one thread, one ring, one listener, one table of connections.
//!
//! A loop turn is: hand the kernel everything queued (sends, re-armed
//! receives, closes) and wait, in one `io_uring_enter`; then handle every
//! completion, calling the handler as messages come; then expire timers.
//! Output produced anywhere in the turn is corked per connection and leaves
//! at the start of the next turn.

mod conn;
mod dial;
mod handshake;
mod timer;

use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_proto::handshake::{RequestLimits, RequestReader};
use ringcast_proto::{CloseCode, State};
use slab::Slab;
use socket2::Socket;

use self::conn::{flag, Conn, Ctx, Phase};
use self::timer::{reached, Millis, Wheel};
use crate::client::SharedDialer;
use crate::config::Settings;
use crate::handler::Handler;
use crate::pubsub::{Delivery, Hub, LocalTopics};
use crate::server::ShardShared;
use crate::sys::{self, Completion, Io};
use crate::ws::{offer_frame, ConnId, Offer, Ws};

/// What a completion belongs to, in the top byte of its `user_data`.
mod op {
    pub const ACCEPT: u64 = 1;
    pub const RECV: u64 = 2;
    pub const SEND: u64 = 3;
    pub const WAKE: u64 = 4;
    /// Shutdown, close, cancel: nothing to do when they complete.
    pub const IGNORE: u64 = 5;
    /// A client socket became writable: its TCP connect is done.
    pub const CONNECT: u64 = 6;
}

/// Packs an operation kind, a table key and its generation (24 bits).
fn token(op: u64, key: usize, generation: u32) -> u64 {
    (op << 56) | (u64::from(generation & 0xFF_FFFF) << 32) | (key as u64 & 0xFFFF_FFFF)
}

fn untoken(user_data: u64) -> (u64, usize, u32) {
    (user_data >> 56, (user_data & 0xFFFF_FFFF) as usize, ((user_data >> 32) & 0xFF_FFFF) as u32)
}

/// Counters kept locally and published once per turn.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    accepted: u64,
    messages: u64,
    reads: u64,
    turns: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// What a shard shares with the rest of its runtime.
pub(crate) struct Links {
    /// Its own stop signal, counters and mailboxes.
    pub shared: Arc<ShardShared>,
    /// The cross-shard topic table.
    pub hub: Arc<Hub>,
    /// Client connect requests and the CONNECTING rule.
    pub dialer: SharedDialer,
}

/// One shard's state. `io` is the first field on purpose: dropping it
/// cancels every kernel operation before the connections (whose send
/// buffers the kernel may be reading) are dropped.
pub(crate) struct Shard<H: Handler> {
    io: Io,
    conns: Slab<Conn<H::Conn>>,
    handler: H,
    settings: Arc<Settings>,
    shared: Arc<ShardShared>,
    index: u16,
    listener: Option<Socket>,
    accept_armed: bool,
    accept_retry_at: Option<Millis>,
    wheel: Wheel,
    due: Vec<timer::Entry>,
    completions: Vec<Completion>,
    flush_list: Vec<usize>,
    epoch: Instant,
    now: Millis,
    next_generation: u32,
    /// Set once the server is stopping: the moment to stop waiting.
    stop_deadline: Option<Millis>,
    counters: Counters,
    /// Completions handled in the last turn.
    last_batch: usize,
    max_connections: usize,
    proto: ringcast_proto::Config,
    request_limits: RequestLimits,
    /// This shard's topic index and the publishes made during callbacks.
    topics: LocalTopics,
    /// Connections that got a delivery, to look at afterwards.
    touched: Vec<usize>,
    /// Client connect requests and the CONNECTING rule.
    dialer: SharedDialer,
}

impl<H: Handler> Shard<H> {
    pub(crate) fn new(
        io: Io,
        listener: Option<Socket>,
        handler: H,
        settings: Arc<Settings>,
        links: Links,
        index: u16,
    ) -> Self {
        let Links { shared, hub, dialer } = links;
        let max_connections = settings.max_connections_per_shard();
        let proto = ringcast_proto::Config::default()
            .max_message_size(settings.max_message_size)
            .max_frame_size(settings.max_frame_size);
        let request_limits = RequestLimits::default().max_head_bytes(settings.max_header_bytes);
        Shard {
            io,
            // Reserved up front: untouched capacity costs address space, not
            // memory, and the table never moves under load.
            conns: Slab::with_capacity(max_connections.min(1 << 20)),
            handler,
            settings,
            shared,
            index,
            listener,
            accept_armed: false,
            accept_retry_at: None,
            wheel: Wheel::new(0),
            due: Vec::new(),
            completions: Vec::with_capacity(1024),
            flush_list: Vec::with_capacity(1024),
            epoch: Instant::now(),
            now: 0,
            next_generation: 0,
            stop_deadline: None,
            counters: Counters::default(),
            last_batch: 0,
            max_connections,
            proto,
            request_limits,
            topics: LocalTopics::new(usize::from(index), hub),
            touched: Vec::new(),
            dialer,
        }
    }

    /// Runs until the server stops and every connection is gone.
    pub(crate) fn run(mut self) {
        let _span = tracing::info_span!("shard", index = self.index).entered();
        tracing::debug!(setup = ?self.io.ring.setup_flags(), "ring ready");
        self.arm_accept();
        self.io.ring.read_wake(self.shared.waker.fd(), token(op::WAKE, 0, 0));
        if self.shared.stop.load(Ordering::Acquire) {
            self.begin_stop();
        }
        loop {
            self.flush();
            if self.stop_deadline.is_some() && self.conns.is_empty() && !self.accept_armed {
                break;
            }
            let timeout = self.next_timeout();
            if let Err(e) = self.io.ring.submit_and_wait(timeout, self.batch()) {
                tracing::error!(error = %e, "io_uring_enter failed; the shard stops");
                break;
            }
            self.now = self.clock();
            self.io.ring.reap(&mut self.completions);
            self.last_batch = self.completions.len();
            let completions = std::mem::take(&mut self.completions);
            for c in &completions {
                self.dispatch(*c);
            }
            self.completions = completions;
            self.completions.clear();
            self.io.bufs.publish();
            self.expire_timers();
            self.check_stop_deadline();
            self.counters.turns += 1;
            self.publish_stats();
        }
        // The last closes were queued after the last enter.
        self.io.ring.submit();
        self.publish_stats();
        tracing::debug!("shard stopped");
    }

    /// How many completions to wait for: after a busy turn, about as many
    /// as that turn had, for at most `batch_wait`; after a quiet one, just
    /// the first (no added latency when the load is light).
    fn batch(&self) -> Option<(u32, u32)> {
        let wait = self.settings.batch_wait.as_micros().min(u128::from(u32::MAX)) as u32;
        (wait > 0 && self.last_batch >= 4).then(|| (self.last_batch.min(64) as u32, wait))
    }

    fn clock(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    fn millis(d: Duration) -> Millis {
        d.as_millis().min(u128::from(u32::MAX / 2)) as Millis
    }

    fn next_timeout(&self) -> Option<Duration> {
        let mut wait = self.wheel.next_in(self.now);
        if let Some(at) = self.accept_retry_at {
            let until = at.wrapping_sub(self.now).min(1000);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        if let Some(at) = self.stop_deadline {
            let until = (at.wrapping_sub(self.now) as i32).max(0) as u32;
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        wait.map(|ms| Duration::from_millis(u64::from(ms.max(1))))
    }

    fn publish_stats(&self) {
        let stats = &self.shared.stats;
        stats.connections.store(self.conns.len() as u64, Ordering::Relaxed);
        stats.accepted.store(self.counters.accepted, Ordering::Relaxed);
        stats.messages.store(self.counters.messages, Ordering::Relaxed);
        stats.reads.store(self.counters.reads, Ordering::Relaxed);
        stats.turns.store(self.counters.turns, Ordering::Relaxed);
        stats.enters.store(self.io.ring.enters(), Ordering::Relaxed);
        stats.dropped.store(self.topics.dropped, Ordering::Relaxed);
        stats.messages_out.store(self.topics.messages_out, Ordering::Relaxed);
        stats.bytes_in.store(self.counters.bytes_in, Ordering::Relaxed);
        stats.bytes_out.store(self.counters.bytes_out, Ordering::Relaxed);
    }

    fn arm_accept(&mut self) {
        if let Some(listener) = &self.listener {
            self.io.ring.accept_multi(listener.as_raw_fd(), token(op::ACCEPT, 0, 0));
            self.accept_armed = true;
            self.accept_retry_at = None;
        }
    }

    fn dispatch(&mut self, c: Completion) {
        let (kind, key, generation) = untoken(c.user_data);
        match kind {
            op::RECV => self.on_recv(key, generation, c),
            op::SEND => self.on_send(key, generation, c.result),
            op::ACCEPT => self.on_accept(c),
            op::WAKE => self.on_wake(c.result),
            op::CONNECT => self.on_connect(key, generation, c.result),
            _ => {}
        }
        if !self.topics.pending.is_empty() {
            let pending = std::mem::take(&mut self.topics.pending);
            for delivery in &pending {
                self.deliver(delivery);
            }
        }
    }

    /// Queues a published frame on every open local subscriber of its
    /// topic (but the publisher). The frame was built once; each
    /// connection's cork buffer gets a copy, which for the small messages
    /// of pub/sub costs less than a reference and an extra iovec per send.
    fn deliver(&mut self, delivery: &Delivery) {
        let budget = self.settings.max_backpressure;
        let mut drops = 0;
        let mut delivered = 0;
        for conn_ref in self.topics.subscribers(&delivery.topic) {
            if Some(conn_ref) == delivery.exclude {
                continue;
            }
            let key = conn_ref.0 as usize;
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.generation == conn_ref.1) else { continue };
            let Phase::Open { ws, .. } = &mut conn.phase else { continue };
            let id = ConnId { shard: self.index, key: conn_ref.0, generation: conn_ref.1 };
            let (frame, policy) = (&delivery.frame, self.settings.slow_consumer);
            match offer_frame(frame, ws.sender(), &mut conn.out, &mut conn.subs, id, budget, policy) {
                Offer::Queued => delivered += 1,
                Offer::Closing => {}
                Offer::Dropped => {
                    drops += 1;
                    continue;
                }
                Offer::NotOpen => continue,
            }
            self.touched.push(key);
        }
        self.topics.dropped += drops;
        self.topics.messages_out += delivered;
        let touched = std::mem::take(&mut self.touched);
        for &key in &touched {
            self.review(key);
        }
        self.touched = touched;
        self.touched.clear();
    }

    fn on_wake(&mut self, result: i32) {
        let mail = std::mem::take(&mut *self.shared.mailbox.lock().unwrap_or_else(|e| e.into_inner()));
        for delivery in &mail {
            self.deliver(delivery);
        }
        self.start_dials();
        if self.shared.stop.load(Ordering::Acquire) {
            if self.stop_deadline.is_none() {
                self.begin_stop();
            }
        } else if result >= 0 || result == -libc::EAGAIN || result == -libc::EINTR {
            self.io.ring.read_wake(self.shared.waker.fd(), token(op::WAKE, 0, 0));
        }
    }

    fn on_accept(&mut self, c: Completion) {
        if !c.more() {
            self.accept_armed = false;
            if self.stop_deadline.is_some() {
                self.listener = None;
            } else if c.result < 0 {
                // Out of descriptors or memory: retry shortly, not in a spin.
                self.accept_retry_at = Some(self.now.wrapping_add(100));
            } else {
                self.arm_accept();
            }
        }
        if c.result < 0 {
            if c.result != -libc::ECANCELED {
                let e = std::io::Error::from_raw_os_error(-c.result);
                tracing::warn!(error = %e, "accept failed");
            }
            return;
        }
        let socket = sys::adopt_fd(c.result);
        if self.stop_deadline.is_some() {
            return; // dropped: closed
        }
        if self.conns.len() >= self.max_connections {
            tracing::warn!(limit = self.max_connections, "connection limit reached; answering 503");
            sys::refuse(socket, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        self.counters.accepted += 1;
        let generation = self.take_generation();
        let fd = socket.as_raw_fd();
        let reader = (!self.settings.tcp_echo).then(|| RequestReader::new(self.request_limits));
        let key = self.conns.insert(Conn::new(socket, generation, reader, self.now));
        tracing::debug!(conn = %self.id(key, generation), fd, "accepted");
        self.io.ring.recv_multi(fd, self.io.bufs.group(), token(op::RECV, key, generation));
        let deadline = self.now.wrapping_add(Self::millis(self.settings.handshake_timeout));
        let conn = &mut self.conns[key];
        conn.flags |= flag::RECV_ARMED;
        Self::set_deadline(&mut self.wheel, conn, key, deadline);
    }

    /// The generation of the next connection (24 bits, as tokens carry).
    fn take_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = (generation + 1) & 0xFF_FFFF;
        generation
    }

    fn id(&self, key: usize, generation: u32) -> ConnId {
        ConnId { shard: self.index, key: key as u32, generation }
    }

    fn on_recv(&mut self, key: usize, generation: u32, c: Completion) {
        let buffer = c.buffer_id();
        let id = self.id(key, generation);
        let Some(conn) = self.conns.get_mut(key).filter(|conn| conn.generation == generation) else {
            if let Some(b) = buffer {
                self.io.bufs.recycle(b);
            }
            return;
        };
        if !c.more() {
            conn.flags &= !flag::RECV_ARMED;
        }
        if c.result <= 0 {
            if let Some(b) = buffer {
                self.io.bufs.recycle(b);
            }
            match c.result {
                0 => self.peer_gone(key, "end of stream"),
                r if r == -libc::ENOBUFS => {
                    // The pool ran dry this turn; buffers come back before
                    // the next one, so arm again then.
                    if !conn.has(flag::DYING) {
                        conn.flags |= flag::REARM;
                    }
                    self.review(key);
                }
                r if r == -libc::ECANCELED => self.review(key),
                r => {
                    let e = std::io::Error::from_raw_os_error(-r);
                    tracing::debug!(conn = %id, error = %e, "receive failed");
                    self.peer_gone(key, "receive failed");
                }
            }
            return;
        }
        let Some(buffer) = buffer else {
            tracing::error!(conn = %id, "a receive completed without a buffer");
            return self.terminate(key, "receive without buffer");
        };
        conn.last_rx = self.now;
        conn.flags |= flag::ACTIVE;
        self.counters.reads += 1;
        self.counters.bytes_in += c.result as u64;
        let input = self.io.bufs.filled(buffer, c.result as usize);
        let ctx = Ctx {
            id,
            max_body: self.settings.max_message_size,
            max_backpressure: self.settings.max_backpressure,
            slow_consumer: self.settings.slow_consumer,
        };
        if !conn.has(flag::DYING | flag::LINGER) {
            match conn.phase {
                Phase::Open { .. } => {
                    self.counters.messages += conn::on_frames(&mut self.handler, conn, input, &ctx, &mut self.topics);
                }
                Phase::Handshake(_) => {
                    self.counters.messages +=
                        handshake::on_data(&mut self.handler, conn, input, &ctx, self.proto, &mut self.topics);
                    Self::opened(&mut self.wheel, self.settings.idle_timeout, self.now, conn, id);
                }
                Phase::Connecting(_) => {
                    let (topics, dialer) = (&mut self.topics, &*self.dialer);
                    match dial::on_response(&mut self.handler, conn, input, &ctx, self.proto, topics, dialer) {
                        dial::Step::Waiting => {}
                        dial::Step::Opened(messages) => {
                            self.counters.messages += messages;
                            Self::opened(&mut self.wheel, self.settings.idle_timeout, self.now, conn, id);
                        }
                        dial::Step::Failed => {
                            self.io.bufs.recycle(buffer);
                            return self.terminate(key, "upgrade refused");
                        }
                    }
                }
                Phase::RawEcho => {
                    conn.out.queue().extend_from_slice(input);
                    self.counters.messages += 1;
                }
                Phase::Finished => {}
            }
        }
        self.io.bufs.recycle(buffer);
        if !c.more() && !conn.has(flag::DYING) {
            conn.flags |= flag::REARM;
        }
        self.review(key);
    }

    /// After a handshake step: if the connection just opened, its idle
    /// timer starts.
    fn opened(wheel: &mut Wheel, idle: Option<Duration>, now: Millis, conn: &mut Conn<H::Conn>, id: ConnId) {
        let key = id.key as usize;
        if let Phase::Open { .. } = conn.phase {
            tracing::debug!(conn = %id, "open");
            if let Some(idle) = idle {
                Self::set_deadline(wheel, conn, key, now.wrapping_add(Self::millis(idle)));
            }
        }
    }

    fn on_send(&mut self, key: usize, generation: u32, result: i32) {
        let id = self.id(key, generation);
        let Some(conn) = self.conns.get_mut(key).filter(|conn| conn.generation == generation) else { return };
        if result < 0 {
            // Nothing more can be written (reset, broken pipe): whatever is
            // left is dropped and the connection ends now. (Retrying would
            // fail again at once, forever.)
            conn.out.abort_send();
            if result != -libc::ECANCELED {
                let e = std::io::Error::from_raw_os_error(-result);
                tracing::debug!(conn = %id, error = %e, "send failed");
            }
            conn::finish(&mut self.handler, conn, CloseCode::ABNORMAL, "send failed", true);
            return self.terminate(key, "send failed");
        }
        self.counters.bytes_out += result as u64;
        let all_out = conn.out.complete_send(result as usize);
        let budget = self.settings.max_backpressure;
        if let Phase::Open { ws, .. } = &mut conn.phase {
            // Pongs held back while the queue was over budget.
            conn::move_pending(ws.sender(), &mut conn.out, false, budget);
        }
        if all_out && conn.out.is_empty() {
            if let Phase::Open { ws, state } = &mut conn.phase {
                let mut handle = Ws {
                    tx: ws.sender(),
                    out: &mut conn.out,
                    state,
                    max_backpressure: budget,
                    slow_consumer: self.settings.slow_consumer,
                    id,
                    topics: &mut self.topics,
                    subs: &mut conn.subs,
                };
                if !conn::guarded(id, "drain", || self.handler.drain(&mut handle)) {
                    let _ = ws.close(Some(CloseCode::INTERNAL_ERROR), "", conn.out.queue());
                    conn::finish(&mut self.handler, conn, CloseCode::INTERNAL_ERROR, "handler panicked", false);
                }
            }
        }
        self.review(key);
    }

    /// Files `conn`'s next deadline, adding a wheel entry only when the
    /// deadline is earlier than the one it has.
    fn set_deadline(wheel: &mut Wheel, conn: &mut Conn<H::Conn>, key: usize, deadline: Millis) {
        conn.deadline = deadline;
        let filed_at = timer::tick_start(conn.timer_tick);
        if !conn.has(flag::TIMER) || !reached(filed_at, deadline) {
            conn.timer_tick = wheel.schedule(key as u32, conn.generation, deadline);
            conn.flags |= flag::TIMER;
        }
    }

    /// Looks at a connection after something happened to it and takes the
    /// next step of its life: flush, close timer, linger, teardown.
    fn review(&mut self, key: usize) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(key) else { return };
        let recv_alive = conn.has(flag::RECV_ARMED | flag::REARM);
        if matches!(conn.phase, Phase::Finished) && conn.subs.is_some() {
            // The WebSocket is over: it leaves its topics now, not after
            // the TCP linger, so subscriber counts are exact.
            self.topics.unsubscribe_all(&mut conn.subs);
        }
        match &conn.phase {
            Phase::Open { ws, .. } if ws.state() == State::CloseSent && !conn.has(flag::CLOSE_TIMER) => {
                // Our close is out: bound the wait for the peer's.
                conn.flags |= flag::CLOSE_TIMER;
                let deadline = now.wrapping_add(Self::millis(self.settings.close_timeout));
                Self::set_deadline(&mut self.wheel, conn, key, deadline);
            }
            Phase::Finished if conn.out.is_empty() && !conn.has(flag::DYING) => {
                if !recv_alive {
                    // The peer already hung up: nothing left to wait for.
                    conn.flags |= flag::DYING;
                } else if !conn.has(flag::LINGER) {
                    // Everything we owed is sent: end our direction and read
                    // until the peer ends its own (closing with unread data
                    // would reset the connection and could destroy our last
                    // frame in the peer's buffers).
                    conn.flags |= flag::LINGER;
                    // A plain system call, not a ring operation: io_uring
                    // runs shutdown in a worker thread that looks the
                    // descriptor up later, when our close may already have
                    // freed the number for another connection.
                    let _ = socket2::SockRef::from(&conn.socket).shutdown(std::net::Shutdown::Write);
                    let deadline = now.wrapping_add(Self::millis(self.settings.close_timeout));
                    Self::set_deadline(&mut self.wheel, conn, key, deadline);
                }
            }
            _ => {}
        }
        if conn.has(flag::DYING) {
            if !conn.has(flag::RECV_ARMED | flag::CONNECT) && !conn.out.in_flight() {
                let mut conn = self.conns.remove(key);
                self.topics.unsubscribe_all(&mut conn.subs);
                let generation = conn.generation;
                self.io.ring.close(conn.socket.into_raw_fd(), token(op::IGNORE, 0, 0));
                tracing::debug!(conn = %self.id(key, generation), "closed");
            }
            return;
        }
        let wants_send = !conn.out.in_flight() && !conn.out.is_empty();
        if (wants_send || conn.has(flag::REARM)) && !conn.has(flag::IN_FLUSH_LIST) {
            conn.flags |= flag::IN_FLUSH_LIST;
            self.flush_list.push(key);
        }
    }

    /// Starts the sends and receives that this turn made necessary.
    fn flush(&mut self) {
        let mut list = std::mem::take(&mut self.flush_list);
        for &key in &list {
            let Some(conn) = self.conns.get_mut(key) else { continue };
            conn.flags &= !flag::IN_FLUSH_LIST;
            if conn.has(flag::DYING) {
                continue;
            }
            if conn.has(flag::REARM) {
                conn.flags = (conn.flags & !flag::REARM) | flag::RECV_ARMED;
                self.io.ring.recv_multi(conn.fd(), self.io.bufs.group(), token(op::RECV, key, conn.generation));
            }
            if !conn.out.in_flight() {
                self.io.ring.send(conn.fd(), &mut conn.out, token(op::SEND, key, conn.generation));
            }
            // A queue buffer taken but left empty goes back to the pool.
            conn.out.release();
        }
        list.clear();
        // Keep the capacity; `review` may have pushed nothing meanwhile.
        list.append(&mut self.flush_list);
        self.flush_list = list;
        if !self.accept_armed
            && self.stop_deadline.is_none()
            && self.accept_retry_at.is_some_and(|at| reached(at, self.now))
        {
            self.arm_accept();
        }
    }

    /// The peer is gone (end of stream, reset) or unusable.
    fn peer_gone(&mut self, key: usize, why: &str) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        match conn.phase {
            // Our last frames may still be queued: send them, then close.
            Phase::Finished => self.review(key),
            _ => {
                conn::finish(&mut self.handler, conn, CloseCode::ABNORMAL, why, true);
                self.terminate(key, why);
            }
        }
    }

    /// Ends a connection now, without a closing handshake: the handler (if
    /// the connection was open) hears 1006, queued output is dropped, and
    /// the socket closes once the kernel gives back its operations.
    fn terminate(&mut self, key: usize, why: &str) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        tracing::debug!(conn = %ConnId { shard: self.index, key: key as u32, generation: conn.generation }, why, "terminating");
        dial::fail(&mut self.handler, conn, crate::ConnectError::Closed, &self.dialer);
        conn::finish(&mut self.handler, conn, CloseCode::ABNORMAL, why, false);
        conn.phase = Phase::Finished;
        conn.flags = (conn.flags | flag::DYING) & !flag::REARM;
        conn.out.discard_unsent();
        if conn.has(flag::RECV_ARMED) {
            self.io.ring.cancel(token(op::RECV, key, conn.generation), token(op::IGNORE, 0, 0));
        }
        if conn.out.in_flight() {
            self.io.ring.cancel(token(op::SEND, key, conn.generation), token(op::IGNORE, 0, 0));
        }
        if conn.has(flag::CONNECT) {
            self.io.ring.cancel(token(op::CONNECT, key, conn.generation), token(op::IGNORE, 0, 0));
        }
        self.review(key);
    }

    fn expire_timers(&mut self) {
        self.wheel.expire(self.now, &mut self.due);
        let due = std::mem::take(&mut self.due);
        for entry in &due {
            self.on_timer(*entry);
        }
        self.due = due;
        self.due.clear();
    }

    fn on_timer(&mut self, entry: timer::Entry) {
        let key = entry.key as usize;
        let now = self.now;
        let Some(conn) = self.conns.get_mut(key) else { return };
        if conn.generation != entry.generation || conn.timer_tick != entry.tick || !conn.has(flag::TIMER) {
            return; // superseded by a newer entry
        }
        conn.flags &= !flag::TIMER;
        if !reached(conn.deadline, now) {
            let deadline = conn.deadline;
            return Self::set_deadline(&mut self.wheel, conn, key, deadline);
        }
        match &mut conn.phase {
            Phase::Handshake(_) => self.terminate(key, "handshake timeout"),
            Phase::Connecting(_) => {
                dial::fail(&mut self.handler, conn, crate::ConnectError::Timeout, &self.dialer);
                self.terminate(key, "handshake timeout");
            }
            Phase::RawEcho => {}
            Phase::Finished => self.terminate(key, "close timeout"),
            Phase::Open { ws, .. } if ws.state() != State::Open => self.terminate(key, "close handshake timeout"),
            Phase::Open { ws, .. } => {
                let Some(idle) = self.settings.idle_timeout else { return };
                if conn.flags & flag::ACTIVE != 0 {
                    conn.flags &= !(flag::ACTIVE | flag::PING_SENT);
                    let deadline = conn.last_rx.wrapping_add(Self::millis(idle));
                    if !reached(deadline, now) {
                        return Self::set_deadline(&mut self.wheel, conn, key, deadline);
                    }
                }
                if conn.flags & flag::PING_SENT != 0 {
                    return self.terminate(key, "no pong within the pong timeout");
                }
                // Idle: give back the send buffers, then ask for a sign of life.
                conn.out.release();
                let _ = ws.ping(b"", conn.out.queue());
                conn.flags |= flag::PING_SENT;
                let deadline = now.wrapping_add(Self::millis(self.settings.pong_timeout));
                Self::set_deadline(&mut self.wheel, conn, key, deadline);
                self.review(key);
            }
        }
    }

    /// The server is stopping: refuse new connections, send 1001 to open
    /// ones, drop those still in their handshake.
    fn begin_stop(&mut self) {
        let grace = Duration::from_millis(self.shared.grace_ms.load(Ordering::Acquire));
        self.stop_deadline = Some(self.now.wrapping_add(Self::millis(grace)));
        tracing::debug!(connections = self.conns.len(), ?grace, "stopping");
        if self.accept_armed {
            self.io.ring.cancel(token(op::ACCEPT, 0, 0), token(op::IGNORE, 0, 0));
        } else {
            self.listener = None;
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let conn = &mut self.conns[key];
            match &mut conn.phase {
                Phase::Open { ws, .. } => {
                    let _ = ws.close(Some(CloseCode::GOING_AWAY), "server shutting down", conn.out.queue());
                    self.review(key);
                }
                Phase::Connecting(_) => {
                    dial::fail(&mut self.handler, conn, crate::ConnectError::Stopping, &self.dialer);
                    self.terminate(key, "stopping");
                }
                Phase::Handshake(_) | Phase::RawEcho => self.terminate(key, "server stopping"),
                Phase::Finished => {}
            }
        }
    }

    fn check_stop_deadline(&mut self) {
        let Some(deadline) = self.stop_deadline else { return };
        if !reached(deadline, self.now) {
            return;
        }
        let keys: Vec<usize> =
            self.conns.iter().filter(|(_, conn)| !conn.has(flag::DYING)).map(|(key, _)| key).collect();
        if !keys.is_empty() {
            tracing::debug!(connections = keys.len(), "stop deadline passed; closing the rest");
            self.shared.stats.forced.fetch_add(keys.len() as u64, Ordering::Relaxed);
        }
        for key in keys {
            self.terminate(key, "server stopped");
        }
    }
}
