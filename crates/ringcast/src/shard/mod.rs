//! A shard: one thread, one ring, its listeners, one table of connections.
//!
//! A loop turn is: hand the kernel everything queued (sends, re-armed
//! receives, closes) and wait, in one `io_uring_enter`; then handle every
//! completion, calling the handler as messages come; then expire timers.
//! Output produced anywhere in the turn is corked per connection and leaves
//! at the start of the next turn.

mod accept;
mod batch;
mod dial;
mod frames;
mod handshake;
mod link;
mod listeners;
mod mailbox;
mod notify;
mod slot;
mod token;

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringcast_proto::handshake::RequestLimits;
use ringcast_proto::{CloseCode, State};
use slab::Slab;

use self::batch::Batcher;
pub(crate) use self::link::{Links, Stop};
pub(crate) use self::listeners::Listeners;
use self::notify::{fail_connecting, finish, with_ws};
use self::slot::{flag, Dial, Phase, Slot};
use self::token::{op, token, untoken};
use crate::alarm::Alarms;
use crate::callbacks::Callbacks;
use crate::config::Settings;
use crate::dialer::{DialRequest, Dialer};
use crate::error::ConnectError;
use crate::pubsub::{LocalTopics, Mailbox, TopicLimits};
use crate::stats::SharedStats;
use crate::sys::{Completion, Io, Waker};
use crate::timer::{self, millis, reached, Millis, Wheel};
use crate::transport::{Plain, Transport, TransportError};
use crate::ws::{ConnId, ShardCtx};

/// One shard's state. `io` is the first field on purpose: dropping it
/// cancels every kernel operation before the connections (whose send
/// buffers the kernel may be reading) are dropped. `T` is the transport
/// seam (see `crate::transport`): plain TCP unless a layer such as TLS is
/// put in.
pub(crate) struct Shard<H: Callbacks, T: Transport = Plain> {
    io: Io,
    conns: Slab<Slot<H::Data, T::Session>>,
    transport: T,
    /// Plaintext a transport could not leave in the receive buffer.
    scratch: Vec<u8>,
    /// Connections whose transport failed while their output was sealed.
    unsealed: Vec<(usize, TransportError)>,
    handler: H,
    settings: Arc<Settings>,
    waker: Arc<Waker>,
    stop: Arc<Stop>,
    /// Where the counters are published for other threads.
    shared_stats: Arc<SharedStats>,
    mailbox: Arc<Mailbox>,
    index: u16,
    listeners: Listeners,
    wheel: Wheel,
    due: Vec<timer::Entry>,
    alarms_due: Vec<(u32, u32)>,
    completions: Vec<Completion>,
    flush_list: Vec<usize>,
    epoch: Instant,
    now: Millis,
    next_generation: u32,
    /// Set once the runtime is stopping: the moment to stop waiting.
    stop_deadline: Option<Millis>,
    /// Completions handled in the last turn.
    last_batch: usize,
    /// Whether the next enter waits for a batch (see `batch.rs`).
    batcher: Batcher,
    /// Sends started by the last flush.
    sends: usize,
    max_connections: usize,
    proto: ringcast_proto::Config,
    request_limits: RequestLimits,
    /// What callbacks share: topics, counters, the send budget.
    local: ShardCtx,
    /// Connections that got a delivery, to look at afterwards.
    touched: Vec<usize>,
    /// Client connect requests and the CONNECTING rule.
    dialer: Arc<Dialer<H::Data>>,
}

impl<H: Callbacks, T: Transport> Shard<H, T> {
    pub(crate) fn new(
        io: Io,
        listeners: Listeners,
        handler: H,
        settings: Arc<Settings>,
        links: Links<H::Data>,
        index: u16,
        transport: T,
    ) -> Self {
        let Links { waker, stop, stats, mailbox, exchange, dialer } = links;
        let max_connections = settings.max_connections_per_shard();
        let proto = ringcast_proto::Config::default()
            .max_message_size(settings.max_message_size)
            .max_frame_size(settings.max_frame_size);
        let request_limits = RequestLimits::default().max_head_bytes(settings.max_header_bytes);
        // Without `min_wait` (kernels before 6.12) the ring cannot wait for
        // a batch with a deadline: never ask.
        let batcher = Batcher::new(if io.ring.can_batch() { settings.batch_wait } else { Duration::ZERO });
        Shard {
            io,
            // Reserved up front: untouched capacity costs address space, not
            // memory, and the table never moves under load.
            conns: Slab::with_capacity(max_connections.min(1 << 20)),
            transport,
            scratch: Vec::new(),
            unsealed: Vec::new(),
            handler,
            waker,
            stop,
            shared_stats: stats,
            mailbox,
            index,
            listeners,
            wheel: Wheel::new(0),
            due: Vec::new(),
            alarms_due: Vec::new(),
            completions: Vec::with_capacity(1024),
            flush_list: Vec::with_capacity(1024),
            epoch: Instant::now(),
            now: 0,
            next_generation: 0,
            stop_deadline: None,
            last_batch: 0,
            batcher,
            sends: 0,
            max_connections,
            proto,
            request_limits,
            local: ShardCtx {
                topics: LocalTopics::new(
                    usize::from(index),
                    exchange,
                    TopicLimits { subscriptions: settings.max_subscriptions, name: settings.max_topic_len },
                ),
                stats: Default::default(),
                budget: settings.max_backpressure,
                policy: settings.slow_consumer,
                alarms: Alarms::new(),
            },
            settings,
            touched: Vec::new(),
            dialer,
        }
    }

    /// Runs until the runtime stops and every connection is gone.
    pub(crate) fn run(mut self) {
        let _span = tracing::info_span!("shard", index = self.index).entered();
        tracing::debug!(setup = ?self.io.ring.setup_flags(), "ring ready");
        self.arm_accept();
        self.io.ring.read_wake(self.waker.fd(), token(op::WAKE, 0, 0));
        if self.stop.is_requested() {
            self.begin_stop();
        }
        loop {
            self.flush();
            if self.stop_deadline.is_some() && self.conns.is_empty() && !self.listeners.any_armed() {
                break;
            }
            let timeout = self.next_timeout();
            let batch = self.batcher.next(self.last_batch, self.sends);
            if let Err(e) = self.io.ring.submit_and_wait(timeout, batch) {
                tracing::error!(error = %e, "io_uring_enter failed; the shard stops");
                break;
            }
            self.now = self.clock();
            self.local.alarms.now = self.now;
            self.io.ring.reap(&mut self.completions);
            self.last_batch = self.completions.len();
            self.local.stats.batch_waits += u64::from(batch.is_some());
            self.local.stats.batch_misses += u64::from(self.batcher.observe(self.last_batch));
            let completions = std::mem::take(&mut self.completions);
            for c in &completions {
                self.dispatch(*c);
            }
            self.completions = completions;
            self.completions.clear();
            self.io.bufs.publish();
            self.expire_timers();
            self.ring_alarms();
            self.check_stop_deadline();
            self.local.stats.turns += 1;
            self.publish_stats();
        }
        // The last closes were queued after the last enter.
        self.io.ring.submit();
        self.publish_stats();
        tracing::debug!("shard stopped");
    }

    fn clock(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    fn next_timeout(&self) -> Option<Duration> {
        let mut wait = self.wheel.next_in(self.now);
        if let Some(alarm) = self.local.alarms.next_in() {
            wait = Some(wait.map_or(alarm, |w| w.min(alarm)));
        }
        if let Some(at) = self.listeners.retry_at {
            let until = at.wrapping_sub(self.now).min(1000);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        if let Some(at) = self.stop_deadline {
            let until = (at.wrapping_sub(self.now) as i32).max(0) as u32;
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        wait.map(|ms| Duration::from_millis(u64::from(ms.max(1))))
    }

    fn publish_stats(&mut self) {
        let stats = &mut self.local.stats;
        stats.connections = self.conns.len() as u64;
        stats.enters = self.io.ring.enters();
        self.shared_stats.store(stats);
    }

    fn dispatch(&mut self, c: Completion) {
        let (kind, key, generation) = untoken(c.user_data);
        match kind {
            op::RECV => self.on_recv(key, generation, c),
            op::SEND => self.on_send(key, generation, c.result),
            op::ACCEPT => self.on_accept(key, c),
            op::WAKE => self.on_wake(c.result),
            op::CONNECT => self.on_connect(key, generation, c.result),
            _ => {}
        }
        self.deliver_pending();
    }

    fn on_wake(&mut self, result: i32) {
        self.read_mailbox();
        self.start_dials();
        if self.stop.is_requested() {
            if self.stop_deadline.is_none() {
                self.begin_stop();
            }
        } else if result >= 0 || result == -libc::EAGAIN || result == -libc::EINTR {
            self.io.ring.read_wake(self.waker.fd(), token(op::WAKE, 0, 0));
        }
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
        let Some(slot) = self.conns.get_mut(key).filter(|slot| slot.generation == generation) else {
            if let Some(b) = buffer {
                self.io.bufs.recycle(b);
            }
            return;
        };
        if !c.more() {
            slot.flags &= !flag::RECV_ARMED;
        }
        if c.result <= 0 {
            if let Some(b) = buffer {
                self.io.bufs.recycle(b);
            }
            match c.result {
                0 => self.peer_gone(key, "end of stream"),
                r if r == -libc::ENOBUFS => {
                    // The ring ran dry this turn: it gets a wider window,
                    // buffers come back before the next turn, and the
                    // receive is armed again then.
                    self.io.bufs.starved();
                    if !slot.has(flag::DYING | flag::OFFLOAD) {
                        slot.flags |= flag::REARM;
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
            return self.terminate(key, "receive without buffer", ConnectError::Closed);
        };
        slot.last_rx = self.now;
        slot.flags |= flag::ACTIVE;
        let local = &mut self.local;
        local.stats.reads += 1;
        local.stats.bytes_in += c.result as u64;
        let wire = self.io.bufs.filled(buffer, c.result as usize);
        // The transport seam, inbound: socket bytes become plaintext.
        let input = match self.transport.open(&mut slot.session, wire, &mut self.scratch, &mut slot.out) {
            Ok(plaintext) => plaintext,
            Err(e) => {
                self.io.bufs.recycle(buffer);
                return self.transport_failed(key, e);
            }
        };
        if !slot.has(flag::DYING | flag::LINGER) {
            match slot.phase {
                Phase::Open { .. } => {
                    local.stats.messages += frames::on_frames(&mut self.handler, slot, input, id, local);
                }
                Phase::Handshake(_) => {
                    let rules = handshake::Rules::of(self.proto, &self.settings);
                    local.stats.messages += handshake::on_data(&mut self.handler, slot, input, id, rules, local);
                    Self::opened(&mut self.wheel, self.settings.idle_timeout, self.now, slot, id);
                }
                Phase::Connecting(_) => {
                    let dialer = &*self.dialer;
                    let rules = handshake::Rules::of(self.proto, &self.settings);
                    match dial::on_response(&mut self.handler, slot, input, id, rules, local, dialer) {
                        dial::Step::Waiting => {}
                        dial::Step::Opened(messages) => {
                            local.stats.messages += messages;
                            Self::opened(&mut self.wheel, self.settings.idle_timeout, self.now, slot, id);
                        }
                        dial::Step::Failed => {
                            self.io.bufs.recycle(buffer);
                            return self.terminate(key, "upgrade refused", ConnectError::Closed);
                        }
                    }
                }
                Phase::RawEcho => {
                    slot.out.queue().extend_from_slice(input);
                    local.stats.messages += 1;
                }
                Phase::Finished => {}
            }
        }
        self.io.bufs.recycle(buffer);
        if matches!(slot.phase, Phase::Open { .. })
            && !slot.has(flag::OFFLOAD | flag::DYING | flag::LINGER)
            && self.transport.wants_offload(&slot.session)
        {
            // The receive stops first: what it already read is decrypted
            // here, what comes after waits for the kernel (see `review`).
            slot.flags |= flag::OFFLOAD;
            if c.more() {
                self.io.ring.cancel(token(op::RECV, key, generation), token(op::IGNORE, 0, 0));
            }
        }
        if !c.more() && !slot.has(flag::DYING | flag::OFFLOAD) {
            slot.flags |= flag::REARM;
        }
        self.review(key);
    }

    /// After a handshake step: if the connection just opened, its idle
    /// timer starts.
    fn opened(
        wheel: &mut Wheel,
        idle: Option<Duration>,
        now: Millis,
        slot: &mut Slot<H::Data, T::Session>,
        id: ConnId,
    ) {
        if let Phase::Open { .. } = slot.phase {
            tracing::debug!(conn = %id, "open");
            if let Some(idle) = idle {
                slot.deadline_in(wheel, id.key as usize, now, idle);
            }
        }
    }

    fn on_send(&mut self, key: usize, generation: u32, result: i32) {
        let id = self.id(key, generation);
        let Some(slot) = self.conns.get_mut(key).filter(|slot| slot.generation == generation) else { return };
        if result < 0 {
            // Nothing more can be written (reset, broken pipe): whatever is
            // left is dropped and the connection ends now. (Retrying would
            // fail again at once, forever.)
            slot.out.abort_send();
            if result != -libc::ECANCELED {
                let e = std::io::Error::from_raw_os_error(-result);
                tracing::debug!(conn = %id, error = %e, "send failed");
            }
            finish(&mut self.handler, slot, CloseCode::ABNORMAL, "send failed", true);
            return self.terminate(key, "send failed", ConnectError::Closed);
        }
        self.local.stats.bytes_out += result as u64;
        let all_out = slot.out.complete_send(result as usize);
        if let Phase::Open { proto, .. } = &mut slot.phase {
            // Pongs held back while the queue was over budget.
            frames::move_pending(proto.sender(), &mut slot.out, false, self.local.budget);
        }
        if all_out && slot.out.is_empty() {
            with_ws(&mut self.handler, slot, id, &mut self.local, "drain", |handler, ws| handler.drain(ws));
        }
        self.review(key);
    }

    /// Looks at a connection after something happened to it and takes the
    /// next step of its life: flush, close timer, linger, teardown.
    fn review(&mut self, key: usize) {
        let now = self.now;
        let Some(slot) = self.conns.get_mut(key) else { return };
        let recv_alive = slot.has(flag::RECV_ARMED | flag::REARM);
        if matches!(slot.phase, Phase::Finished) && slot.subs.is_some() {
            // The WebSocket is over: it leaves its topics now, not after
            // the TCP linger, so subscriber counts are exact.
            self.local.topics.unsubscribe_all(&mut slot.subs);
        }
        match &slot.phase {
            Phase::Open { proto, .. } if proto.state() == State::CloseSent && !slot.has(flag::CLOSE_TIMER) => {
                // Our close is out: bound the wait for the peer's.
                slot.flags |= flag::CLOSE_TIMER;
                slot.deadline_in(&mut self.wheel, key, now, self.settings.close_timeout);
            }
            Phase::Finished if slot.out.is_empty() && !slot.has(flag::DYING) => {
                if !recv_alive {
                    // The peer already hung up: nothing left to wait for.
                    slot.flags |= flag::DYING;
                } else if !slot.has(flag::LINGER) && self.transport.finish(&mut slot.session, &mut slot.out) {
                    // The transport's farewell (TLS close_notify) goes
                    // first; the shutdown follows once it is sent.
                } else if !slot.has(flag::LINGER) {
                    // Everything we owed is sent: end our direction and read
                    // until the peer ends its own (closing with unread data
                    // would reset the connection and could destroy our last
                    // frame in the peer's buffers).
                    slot.flags |= flag::LINGER;
                    // A plain system call, not a ring operation: io_uring
                    // runs shutdown in a worker thread that looks the
                    // descriptor up later, when our close may already have
                    // freed the number for another connection.
                    let _ = socket2::SockRef::from(&slot.socket).shutdown(std::net::Shutdown::Write);
                    slot.deadline_in(&mut self.wheel, key, now, self.settings.close_timeout);
                }
            }
            _ => {}
        }
        if slot.has(flag::DYING) {
            if !slot.has(flag::RECV_ARMED | flag::CONNECT) && !slot.out.in_flight() {
                let mut slot = self.conns.remove(key);
                self.local.topics.unsubscribe_all(&mut slot.subs);
                self.local.alarms.forget(key as u32);
                let generation = slot.generation;
                self.io.ring.close(slot.socket.into_raw_fd(), token(op::IGNORE, 0, 0));
                tracing::debug!(conn = %self.id(key, generation), "closed");
            }
            return;
        }
        if slot.has(flag::OFFLOAD) && !slot.has(flag::RECV_ARMED) && !slot.out.in_flight() && !slot.out.has_sealed() {
            // Nothing read is unprocessed, nothing sealed is unsent: the
            // transport may move (or stay), and receiving resumes.
            slot.flags = (slot.flags & !flag::OFFLOAD) | flag::REARM;
            if matches!(slot.phase, Phase::Open { .. }) {
                let fd = slot.fd();
                if let Err(e) = self.transport.offload(&mut slot.session, fd) {
                    return self.transport_failed(key, e);
                }
            }
        }
        let wants_send = !slot.out.in_flight() && !slot.out.is_empty();
        if (wants_send || slot.has(flag::REARM)) && !slot.has(flag::IN_FLUSH_LIST) {
            slot.flags |= flag::IN_FLUSH_LIST;
            self.flush_list.push(key);
        }
    }

    /// Starts the sends and receives that this turn made necessary.
    fn flush(&mut self) {
        let mut list = std::mem::take(&mut self.flush_list);
        self.sends = 0;
        for &key in &list {
            let Some(slot) = self.conns.get_mut(key) else { continue };
            slot.flags &= !flag::IN_FLUSH_LIST;
            if slot.has(flag::DYING) {
                continue;
            }
            if slot.has(flag::REARM) {
                slot.flags = (slot.flags & !flag::REARM) | flag::RECV_ARMED;
                self.io.ring.recv_multi(slot.fd(), self.io.bufs.group(), token(op::RECV, key, slot.generation));
            }
            if !slot.out.in_flight() {
                // The transport seam, outbound: plaintext becomes wire bytes.
                if let Err(e) = self.transport.seal(&mut slot.session, &mut slot.out) {
                    self.unsealed.push((key, e));
                    continue;
                }
                let id = token(op::SEND, key, slot.generation);
                self.sends += usize::from(self.io.ring.send(slot.fd(), &mut slot.out, id));
            }
            // A queue buffer taken but left empty goes back to the pool.
            slot.out.release();
        }
        list.clear();
        // Keep the capacity; `review` may have pushed nothing meanwhile.
        list.append(&mut self.flush_list);
        self.flush_list = list;
        while let Some((key, e)) = self.unsealed.pop() {
            self.terminate(key, e.reason, ConnectError::Closed);
        }
        self.retry_accept();
    }

    /// The transport refused what the peer sent (a TLS alert may be queued
    /// for it): the handler hears 1006 (or its connect fails), the
    /// plaintext not yet sealed is dropped, and what the transport queued
    /// leaves before the connection closes.
    fn transport_failed(&mut self, key: usize, e: TransportError) {
        let Some(slot) = self.conns.get_mut(key) else { return };
        let id = ConnId { shard: self.index, key: key as u32, generation: slot.generation };
        tracing::debug!(conn = %id, error = %e, "transport failed");
        fail_connecting(&mut self.handler, slot, ConnectError::Tls(e.to_string()), &self.dialer);
        finish(&mut self.handler, slot, CloseCode::ABNORMAL, e.reason, false);
        slot.phase = Phase::Finished;
        slot.out.discard_unsealed();
        slot.deadline_in(&mut self.wheel, key, self.now, self.settings.close_timeout);
        self.review(key);
    }

    /// The peer is gone (end of stream, reset) or unusable.
    fn peer_gone(&mut self, key: usize, why: &str) {
        let Some(slot) = self.conns.get_mut(key) else { return };
        match slot.phase {
            // Our last frames may still be queued: send them, then close.
            Phase::Finished => self.review(key),
            _ => {
                finish(&mut self.handler, slot, CloseCode::ABNORMAL, why, true);
                self.terminate(key, why, ConnectError::Closed);
            }
        }
    }

    /// Ends a connection now, without a closing handshake: the handler
    /// hears 1006 with `why` if the connection was open, or `connecting`
    /// through `connect_failed` if it was still connecting; queued output
    /// is dropped, and the socket closes once the kernel gives back its
    /// operations.
    fn terminate(&mut self, key: usize, why: &str, connecting: ConnectError) {
        let Some(slot) = self.conns.get_mut(key) else { return };
        tracing::debug!(conn = %ConnId { shard: self.index, key: key as u32, generation: slot.generation }, why, "terminating");
        fail_connecting(&mut self.handler, slot, connecting, &self.dialer);
        finish(&mut self.handler, slot, CloseCode::ABNORMAL, why, false);
        slot.phase = Phase::Finished;
        slot.flags = (slot.flags | flag::DYING) & !flag::REARM;
        slot.out.discard_unsent();
        if slot.has(flag::RECV_ARMED) {
            self.io.ring.cancel(token(op::RECV, key, slot.generation), token(op::IGNORE, 0, 0));
        }
        if slot.out.in_flight() {
            self.io.ring.cancel(token(op::SEND, key, slot.generation), token(op::IGNORE, 0, 0));
        }
        if slot.has(flag::CONNECT) {
            self.io.ring.cancel(token(op::CONNECT, key, slot.generation), token(op::IGNORE, 0, 0));
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

    /// Tells the handler of every connection whose alarm has come.
    fn ring_alarms(&mut self) {
        let mut due = std::mem::take(&mut self.alarms_due);
        self.local.alarms.expire(&mut due);
        for &(key, generation) in &due {
            let id = self.id(key as usize, generation);
            let Some(slot) = self.conns.get_mut(key as usize) else { continue };
            with_ws(&mut self.handler, slot, id, &mut self.local, "alarm", |handler, ws| handler.alarm(ws));
            self.review(key as usize);
        }
        due.clear();
        self.alarms_due = due;
    }

    fn on_timer(&mut self, entry: timer::Entry) {
        let key = entry.key as usize;
        let now = self.now;
        let Some(slot) = self.conns.get_mut(key) else { return };
        if slot.generation != entry.generation || slot.timer_tick != entry.tick || !slot.has(flag::TIMER) {
            return; // superseded by a newer entry
        }
        slot.flags &= !flag::TIMER;
        if !reached(slot.deadline, now) {
            let deadline = slot.deadline;
            return slot.set_deadline(&mut self.wheel, key, deadline);
        }
        match &mut slot.phase {
            Phase::Handshake(_) => self.terminate(key, "handshake timeout", ConnectError::Closed),
            Phase::Connecting(_) => self.terminate(key, "handshake timeout", ConnectError::Timeout),
            Phase::RawEcho => {}
            Phase::Finished => self.terminate(key, "close timeout", ConnectError::Closed),
            Phase::Open { proto, .. } if proto.state() != State::Open => {
                self.terminate(key, "close handshake timeout", ConnectError::Closed)
            }
            Phase::Open { proto, .. } => {
                let Some(idle) = self.settings.idle_timeout else { return };
                if slot.flags & flag::ACTIVE != 0 {
                    slot.flags &= !(flag::ACTIVE | flag::PING_SENT);
                    let deadline = slot.last_rx.wrapping_add(millis(idle));
                    if !reached(deadline, now) {
                        return slot.set_deadline(&mut self.wheel, key, deadline);
                    }
                }
                if slot.flags & flag::PING_SENT != 0 {
                    return self.terminate(key, "no pong within the pong timeout", ConnectError::Closed);
                }
                // Idle: give back the send buffers, then ask for a sign of life.
                slot.out.release();
                let _ = proto.ping(b"", slot.out.queue());
                slot.flags |= flag::PING_SENT;
                slot.deadline_in(&mut self.wheel, key, now, self.settings.pong_timeout);
                self.review(key);
            }
        }
    }

    /// The runtime is stopping: refuse new connections, send 1001 to open
    /// ones, drop those still in their handshake (a client's connects in
    /// progress fail with `ConnectError::Stopping`).
    fn begin_stop(&mut self) {
        let grace = self.stop.grace();
        self.stop_deadline = Some(self.now.wrapping_add(millis(grace)));
        tracing::debug!(connections = self.conns.len(), ?grace, "stopping");
        self.listeners.stop(&mut self.io.ring);
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let slot = &mut self.conns[key];
            match &mut slot.phase {
                Phase::Open { proto, .. } => {
                    let _ = proto.close(Some(CloseCode::GOING_AWAY), "server shutting down", slot.out.queue());
                    self.review(key);
                }
                Phase::Connecting(_) => self.terminate(key, "stopping", ConnectError::Stopping),
                Phase::Handshake(_) | Phase::RawEcho => self.terminate(key, "server stopping", ConnectError::Closed),
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
            self.conns.iter().filter(|(_, slot)| !slot.has(flag::DYING)).map(|(key, _)| key).collect();
        if !keys.is_empty() {
            tracing::debug!(connections = keys.len(), "stop deadline passed; closing the rest");
            self.shared_stats.add_forced(keys.len() as u64);
        }
        for key in keys {
            self.terminate(key, "server stopped", ConnectError::Closed);
        }
    }

    /// Starts the connect requests handed to this shard.
    fn start_dials(&mut self) {
        for request in self.dialer.take(usize::from(self.index)) {
            self.start_dial(request);
        }
    }

    fn start_dial(&mut self, request: DialRequest<H::Data>) {
        let DialRequest { addr, local, handshake, data } = request;
        let (host, secure) = (handshake.uri().host(), handshake.uri().is_secure());
        let ((socket, connected), session) = match self.start_connection(addr, local, host, secure) {
            Ok(started) => started,
            Err(error) => return notify::connect_failed(&mut self.handler, data, addr, error, &self.dialer),
        };
        let generation = self.take_generation();
        let fd = socket.as_raw_fd();
        let dial = Dial { handshake, data, addr, head: Vec::new() };
        let phase = Phase::Connecting(Box::new(dial));
        let key = self.conns.insert(Slot::with_phase(socket, generation, phase, self.now, session));
        tracing::debug!(conn = %self.id(key, generation), %addr, "connecting");
        let slot = &mut self.conns[key];
        slot.deadline_in(&mut self.wheel, key, self.now, self.settings.handshake_timeout);
        if connected {
            self.on_tcp_connected(key);
        } else {
            slot.flags |= flag::CONNECT;
            self.io.ring.poll_writable(fd, token(op::CONNECT, key, generation));
        }
    }

    /// Opens the transport session and the socket of a client connection,
    /// unless the shard is stopping or full.
    fn start_connection(
        &self,
        addr: SocketAddr,
        local: Option<SocketAddr>,
        server_name: &str,
        secure: bool,
    ) -> Result<((OwnedFd, bool), T::Session), ConnectError> {
        if self.stop_deadline.is_some() {
            return Err(ConnectError::Stopping);
        }
        if self.conns.len() >= self.max_connections {
            return Err(ConnectError::Limit);
        }
        let session = self.transport.connect(server_name, secure).map_err(|e| ConnectError::Tls(e.to_string()))?;
        let socket = dial::start_socket(addr, local, self.settings.send_buffer_size).map_err(ConnectError::Io)?;
        Ok((socket, session))
    }

    /// The socket became writable (or failed) while connecting.
    fn on_connect(&mut self, key: usize, generation: u32, result: i32) {
        let Some(slot) = self.conns.get_mut(key).filter(|slot| slot.generation == generation) else { return };
        slot.flags &= !flag::CONNECT;
        if slot.has(flag::DYING) {
            return self.review(key);
        }
        match dial::connect_error(&slot.socket, result) {
            None => self.on_tcp_connected(key),
            Some(e) => self.terminate(key, "connect failed", ConnectError::Io(e)),
        }
    }

    /// TCP is up: send the upgrade request, start receiving the answer.
    fn on_tcp_connected(&mut self, key: usize) {
        let slot = &mut self.conns[key];
        if let Phase::Connecting(dial) = &slot.phase {
            // Checked when the request was made: it cannot fail here.
            let _ = dial.handshake.write_request(slot.out.queue());
        }
        slot.flags |= flag::RECV_ARMED;
        self.io.ring.recv_multi(slot.fd(), self.io.bufs.group(), token(op::RECV, key, slot.generation));
        self.local.stats.accepted += 1;
        self.review(key);
    }
}
