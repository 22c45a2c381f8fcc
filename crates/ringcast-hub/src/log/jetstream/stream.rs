//! History across hubs: one JetStream stream holds every topic's recent
//! messages, and live delivery comes from it.
//!
//! - **The stream** (`RINGCAST_{prefix}`, subjects `{prefix}.>`) keeps the
//!   last `--history-size` messages per topic (its per-subject limit), for
//!   `--history-ttl` (its age limit), within `--history-memory` bytes (its
//!   size limit, oldest first). A hub makes it if it is missing and uses it
//!   as it is otherwise.
//! - **Offsets** are the stream's sequence numbers: increasing per topic,
//!   with gaps (other topics' messages take the numbers between). **The
//!   epoch** is the stream's creation time: a stream deleted and made
//!   again is another history.
//! - **Nothing missed** is decided by the client's last message: the
//!   stream drops a topic's messages oldest first (per topic or overall),
//!   so if that message is still there, so is every later one of its
//!   topic. A topic that has no message yet gets a marker (a message the
//!   hubs never deliver) when a client subscribes, so that every position
//!   a client is given is a message it can come back with.
//! - **Live delivery**: per topic with local subscribers, one ordered
//!   consumer from the last message delivered here; this thread posts each
//!   message to the local subscribers with `publish_sequenced` (the
//!   stream's order), the publishing connection excepted when it is ours.
//! - **Joining** goes through this thread too, so it is ordered with the
//!   live posts: a subscribe is answered with where the topic's live
//!   delivery stands here, and the connection subscribes after it; a
//!   recovery replays from the stream (an ordered pull consumer, a batch
//!   of up to the pace per drain of the connection), then joins once it
//!   has caught up with the live delivery.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, push, DeliverPolicy};
use async_nats::jetstream::stream::{self, DirectGetErrorKind, DiscardPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use futures_util::StreamExt;
use ringcast::broker::{Frame, Notes, ServerExt as _};
use ringcast::{ConnId, ServerHandle};
use tokio::sync::oneshot;

use super::asks::Subscription;
use crate::cluster::subject::{self, KIND, ORIGIN};
use crate::cluster::{Bridge, Outbound};
use crate::control::{Id, Newest, Reply};
use crate::fanout;
use crate::log::{Bounds, Note};
use crate::payload::{Kind, Payload};
use crate::position::Position;
use crate::topic::{json_topic, raw_topic, Form};
/// Header naming the publishing connection and the form it is skipped in
/// (`j:` or `r:` and its id), read only by the hub that published.
const EXCEPT: &str = "Rc-Except";
/// The kind of a marker: a message that holds a position, never delivered.
const MARKER: &str = "marker";
/// How long a replay waits for its connection to drain before giving up.
const DRAIN_WAIT: Duration = Duration::from_secs(120);
/// How long a replay waits for the stream's next message.
const READ_WAIT: Duration = Duration::from_secs(5);
/// A live feed without local subscribers stays this long after its last
/// join (a join's connection subscribes a moment after it is posted).
const LINGER: Duration = Duration::from_secs(10);

/// A replay waiting for its connection to drain: the connection and the
/// topic.
type Waiting = (ConnId, Arc<str>);
/// A join waiting for a live feed to start.
type Starting = oneshot::Sender<Result<Rc<Cell<u64>>, Unavailable>>;

struct Live {
    /// The last offset posted to local subscribers.
    last: Rc<Cell<u64>>,
    stop: Option<oneshot::Sender<()>>,
    joined: Instant,
}

/// The stream, seen from one hub's bridge thread.
pub(super) struct Jet {
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    notes: Notes<Note>,
    js: Context,
    stream: stream::Stream,
    epoch: Arc<str>,
    pace: usize,
    live: RefCell<HashMap<Arc<str>, Live>>,
    /// Where stopped live feeds stood, to start again from there.
    stopped: RefCell<HashMap<Arc<str>, u64>>,
    /// Live feeds being started, with the joins waiting for them.
    starting: RefCell<HashMap<Arc<str>, Vec<Starting>>>,
    /// Replays waiting for their connection to drain.
    waiting: RefCell<HashMap<Waiting, oneshot::Sender<()>>>,
}

/// What a message of the stream carries.
enum Carried<'a> {
    /// A payload checked against its kind.
    Payload(Payload<'a>),
    /// A marker: holds a position, never delivered.
    Marker,
    /// A payload that is not what its kind says (never delivered).
    Unreadable,
}

/// What `message` carries, read from its `Rc-Kind` header.
fn carried(message: &async_nats::Message) -> Carried<'_> {
    let kind = message.headers.as_ref().and_then(|h| h.get(KIND)).map(|v| v.as_str());
    if kind == Some(MARKER) {
        return Carried::Marker;
    }
    match Payload::read(kind.and_then(Kind::parse), &message.payload) {
        Some(payload) => Carried::Payload(payload),
        None => Carried::Unreadable,
    }
}

/// The stream's name for a subject prefix.
fn stream_name(prefix: &str) -> String {
    let cleaned: String = prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("RINGCAST_{cleaned}")
}

/// Why the stream could not serve a request (NATS or JetStream failed).
#[derive(Debug, Clone)]
pub(super) struct Unavailable(String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "history unavailable: {}", self.0)
    }
}

fn unavailable(e: impl std::fmt::Display) -> Unavailable {
    Unavailable(e.to_string())
}

/// The stream's bounds, and what a replay hands a connection at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    pub bounds: Bounds,
    pub pace: usize,
}

impl Jet {
    /// Opens (or makes) the stream.
    pub async fn open(
        bridge: Arc<Bridge>,
        handle: ServerHandle,
        notes: Notes<Note>,
        client: &Client,
        limits: StreamLimits,
    ) -> Result<Rc<Jet>, Unavailable> {
        let StreamLimits { bounds, pace } = limits;
        let prefix = bridge.prefix();
        let js = jetstream::new(client.clone());
        let config = stream::Config {
            name: stream_name(prefix),
            subjects: vec![format!("{prefix}.>")],
            max_messages_per_subject: bounds.size.map_or(-1, i64::from),
            max_age: bounds.ttl.unwrap_or(Duration::ZERO),
            max_bytes: i64::try_from(bounds.memory).unwrap_or(i64::MAX),
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            allow_direct: true,
            ..Default::default()
        };
        let stream = js.get_or_create_stream(config.clone()).await.map_err(|e| {
            unavailable(format!("JetStream stream {}: {e} (is nats-server running with -js?)", config.name))
        })?;
        let info = stream.get_info().await.map_err(|e| unavailable(format!("JetStream stream info: {e}")))?;
        let kept = &info.config;
        if (kept.max_messages_per_subject, kept.max_age, kept.max_bytes)
            != (config.max_messages_per_subject, config.max_age, config.max_bytes)
        {
            tracing::warn!(
                stream = %config.name,
                size = kept.max_messages_per_subject, ttl = ?kept.max_age, bytes = kept.max_bytes,
                "bridge: the history stream exists with other limits than this hub's; it is used as it is"
            );
        }
        let epoch: Arc<str> = format!("{:x}", info.created.unix_timestamp_nanos()).into();
        tracing::info!(stream = %config.name, %epoch, "bridge: history lives in JetStream");
        Ok(Rc::new(Jet {
            bridge,
            handle,
            notes,
            js,
            stream,
            epoch,
            pace: pace.max(1),
            live: RefCell::default(),
            stopped: RefCell::default(),
            starting: RefCell::default(),
            waiting: RefCell::default(),
        }))
    }

    fn subject(&self, name: &str) -> String {
        subject::encode(self.bridge.prefix(), name)
    }

    fn note(&self, conn: ConnId, note: Note) {
        self.notes.notify(conn, note);
    }

    /// Subscribes `conn` to `name` in `form` after offset `after`, then
    /// hands it `note` (caught up, or lost). The runtime counts it as a
    /// subscriber at once, so every live post from here on reaches its
    /// shard, behind the subscription.
    fn join_live(&self, conn: ConnId, name: &str, form: Form, after: u64, note: Note) {
        self.notes.join(conn, &form.topic(name), after, note);
    }

    /// Offset `offset` of this stream.
    fn position(&self, offset: u64) -> Position {
        Position { offset, epoch: self.epoch.clone() }
    }

    /// Publishes a message taken here into the stream; the live feeds
    /// bring it back to every hub, this one included.
    pub async fn publish(self: &Rc<Self>, message: Outbound) {
        let metrics = &self.bridge.metrics;
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, self.bridge.origin.as_str());
        headers.insert(KIND, message.kind.as_str());
        if let Some((conn, form)) = message.except {
            let form = if form == Form::Json { 'j' } else { 'r' };
            headers.insert(EXCEPT, format!("{form}:{conn}").as_str());
        }
        let subject = self.subject(&message.name);
        let answer = message.ack;
        match self.js.publish_with_headers(subject, headers, message.payload).await {
            Ok(stored) => {
                let jet = self.clone();
                tokio::task::spawn_local(async move {
                    let stored = stored.await;
                    let metrics = &jet.bridge.metrics;
                    match &stored {
                        Ok(_) => metrics.published.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            tracing::debug!(error = %e, "bridge: the stream did not take a publish");
                            metrics.lost.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    if let Some(ack) = answer {
                        let reply = match stored {
                            Ok(stored) => {
                                let at = Some(jet.position(stored.sequence));
                                Reply::Published { id: ack.id, receivers: ack.receivers, at }
                            }
                            Err(e) => Reply::Refused { id: Some(ack.id), why: format!("not kept: {e}") },
                        };
                        jet.note(ack.conn, Note::Reply(reply));
                    }
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, topic = %message.name, "bridge: publish not handed to JetStream");
                metrics.lost.fetch_add(1, Ordering::Relaxed);
                if let Some(ack) = answer {
                    let reply = Reply::Refused { id: Some(ack.id), why: format!("not kept: {e}") };
                    self.note(ack.conn, Note::Reply(reply));
                }
            }
        }
    }

    /// The offset of `subject`'s last message (0: none).
    async fn last_offset(&self, subject: &str) -> Result<u64, Unavailable> {
        match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => Ok(message.sequence),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(0),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Whether every message of `subject` after `offset` is still kept.
    async fn kept_after(&self, subject: &str, offset: u64) -> Result<bool, Unavailable> {
        if offset == 0 {
            // Before the topic's first message: only if the stream never
            // dropped anything.
            let info = self.stream.get_info().await.map_err(unavailable)?;
            return Ok(info.state.first_sequence <= 1 && info.state.deleted_count.unwrap_or(0) == 0);
        }
        match self.stream.direct_get(offset).await {
            Ok(message) => Ok(message.subject.as_str() == subject),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The live feed of `name` here, started if it is not running (once,
    /// however many joins ask at the same time); returns the last offset
    /// it posted.
    async fn live(self: &Rc<Self>, name: &Arc<str>) -> Result<Rc<Cell<u64>>, Unavailable> {
        if let Some(live) = self.live.borrow_mut().get_mut(name) {
            live.joined = Instant::now();
            return Ok(live.last.clone());
        }
        let waiting = self.starting.borrow_mut().get_mut(name).map(|waiters| {
            let (tell, told) = oneshot::channel();
            waiters.push(tell);
            told
        });
        if let Some(told) = waiting {
            return told.await.unwrap_or_else(|_| Err(unavailable("the live feed did not start")));
        }
        self.starting.borrow_mut().insert(name.clone(), Vec::new());
        let started = self.start_live(name).await;
        for waiter in self.starting.borrow_mut().remove(name).unwrap_or_default() {
            let _ = waiter.send(started.clone());
        }
        started
    }

    async fn start_live(self: &Rc<Self>, name: &Arc<str>) -> Result<Rc<Cell<u64>>, Unavailable> {
        let subject = self.subject(name);
        let stopped = self.stopped.borrow_mut().remove(name);
        let start = match stopped {
            Some(last) => last,
            None => self.last_offset(&subject).await?,
        };
        let messages = self.consume(subject, start).await?;
        let last = Rc::new(Cell::new(start));
        let (stop, stopped) = oneshot::channel();
        tokio::task::spawn_local(self.clone().feed(name.clone(), messages, last.clone(), stopped));
        let live = Live { last: last.clone(), stop: Some(stop), joined: Instant::now() };
        self.live.borrow_mut().insert(name.clone(), live);
        self.bridge.metrics.subjects.store(self.live.borrow().len() as u64, Ordering::Relaxed);
        Ok(last)
    }

    /// An ordered consumer of `subject` from the message after `start`.
    async fn consume(&self, subject: String, start: u64) -> Result<push::Ordered, Unavailable> {
        let consumer = self
            .stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                filter_subject: subject,
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start + 1 },
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        consumer.messages().await.map_err(unavailable)
    }

    /// Posts `name`'s messages from the stream to the local subscribers,
    /// in order, until stopped. A consumer that fails (NATS cut off, the
    /// consumer lost) is made again from the last message posted, so the
    /// subscribers here miss nothing the stream still has.
    async fn feed(
        self: Rc<Self>,
        name: Arc<str>,
        mut messages: push::Ordered,
        last: Rc<Cell<u64>>,
        mut stop: oneshot::Receiver<()>,
    ) {
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => return,
                message = messages.next() => match message {
                    Some(Ok(message)) => {
                        let Ok(info) = message.info() else { continue };
                        let offset = info.stream_sequence;
                        if offset > last.get() {
                            self.post_live(&name, &message, offset);
                            last.set(offset);
                        }
                    }
                    failed => {
                        let why = match failed {
                            Some(Err(e)) => e.to_string(),
                            _ => "ended".to_owned(),
                        };
                        tracing::debug!(topic = %name, error = %why, "bridge: live feed starts again");
                        loop {
                            tokio::select! {
                                biased;
                                _ = &mut stop => return,
                                again = self.consume(self.subject(&name), last.get()) => match again {
                                    Ok(again) => {
                                        messages = again;
                                        break;
                                    }
                                    Err(e) => {
                                        tracing::warn!(topic = %name, error = %e, "bridge: live feed cannot start again; retrying");
                                        tokio::time::sleep(Duration::from_millis(500)).await;
                                    }
                                },
                            }
                        }
                    }
                },
            }
        }
    }

    fn post_live(&self, name: &str, message: &async_nats::Message, offset: u64) {
        let payload = match carried(message) {
            Carried::Payload(payload) => payload,
            Carried::Marker => return,
            Carried::Unreadable => {
                self.bridge.metrics.dropped_in.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let header = |key: &str| message.headers.as_ref().and_then(|h| h.get(key)).map(|v| v.as_str());
        let ours = header(ORIGIN) == Some(self.bridge.origin.as_str());
        let except = header(EXCEPT).filter(|_| ours).and_then(|e| {
            let (form, conn) = e.split_once(':')?;
            Some((if form == "j" { Form::Json } else { Form::Raw }, conn.parse::<ConnId>().ok()?))
        });
        let skip = |form: Form| except.filter(|(f, _)| *f == form).map(|(_, conn)| conn);
        let (raw, json) = fanout::frames(&self.handle, name, payload, offset, &self.epoch);
        self.handle.publish_sequenced(&raw_topic(name), &raw, offset, skip(Form::Raw));
        self.handle.publish_sequenced(&json_topic(name), &json, offset, skip(Form::Json));
        if !ours {
            self.bridge.metrics.received.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops the live feeds of topics without local subscribers (those
    /// joined a moment ago stay: their connection is on its way).
    pub fn sweep(&self) {
        let mut live = self.live.borrow_mut();
        let idle: Vec<Arc<str>> = live
            .iter()
            .filter(|(name, feed)| {
                feed.joined.elapsed() > LINGER
                    && self.handle.subscribers(&raw_topic(name)) + self.handle.subscribers(&json_topic(name)) == 0
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut stopped = self.stopped.borrow_mut();
        if stopped.len() > 65_536 {
            stopped.clear(); // a bound: topics not seen lately start from the stream's last message
        }
        for name in idle {
            if let Some(mut feed) = live.remove(&name) {
                if let Some(stop) = feed.stop.take() {
                    let _ = stop.send(());
                }
                stopped.insert(name, feed.last.get());
            }
        }
        self.bridge.metrics.subjects.store(live.len() as u64, Ordering::Relaxed);
    }

    /// A connection that drained asks for the next part of its replay.
    pub fn more(&self, conn: ConnId, name: &str) {
        if let Some(wake) = self.waiting.borrow_mut().remove(&(conn, Arc::from(name))) {
            let _ = wake.send(());
        }
    }

    /// Serves a subscribe (with or without a position to recover from).
    pub async fn subscribe(self: Rc<Self>, subscription: Subscription) {
        let (conn, name, form) = (subscription.conn, subscription.name.clone(), subscription.form);
        if let Err(why) = self.subscribe_steps(subscription).await {
            tracing::debug!(%conn, topic = %name, error = %why, "bridge: a subscribe failed");
            self.note(conn, Note::Failed { name, form, why: why.to_string() });
        }
    }

    async fn subscribe_steps(self: &Rc<Self>, subscription: Subscription) -> Result<(), Unavailable> {
        let Subscription { conn, name, form, since, id } = subscription;
        let subject = self.subject(&name);
        let recovered = match &since {
            Some(since) => *since.epoch == *self.epoch && self.kept_after(&subject, since.offset).await?,
            None => false,
        };
        if !recovered {
            let after = self.join_point(&name, &subject).await?;
            let reply = Reply::Subscribed { id, recovered: since.map(|_| false), at: Some(self.position(after)) };
            let reply = (form == Form::Json).then_some(reply);
            self.join_live(conn, &name, form, after, Note::CaughtUp { name: name.clone(), form, reply });
            return Ok(());
        }
        let since = since.expect("recovered from a position");
        if form == Form::Json {
            let top = self.last_offset(&subject).await?;
            let at = Some(self.position(top.max(since.offset)));
            self.note(conn, Note::Reply(Reply::Subscribed { id, recovered: Some(true), at }));
        }
        self.replay(conn, name, form, since.offset).await
    }

    /// Where a connection joining `name` now starts: the last offset the
    /// live feed here posted (read with no await before the caller posts
    /// its join), at least the marker put on a topic with no message yet.
    /// Always a message of the topic (or a marker), so a client can come
    /// back with it.
    async fn join_point(self: &Rc<Self>, name: &Arc<str>, subject: &str) -> Result<u64, Unavailable> {
        let last = self.live(name).await?;
        let marker = match last.get() {
            0 => self.mark(subject).await?,
            _ => 0,
        };
        // Messages up to the marker that the feed has not posted yet are
        // before the position answered: the join's fence skips them.
        Ok(last.get().max(marker))
    }

    /// Puts a marker on `subject` (a topic with no message yet), so that
    /// its position is a message a client can come back with.
    async fn mark(&self, subject: &str) -> Result<u64, Unavailable> {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, self.bridge.origin.as_str());
        headers.insert(KIND, MARKER);
        let ack = self.js.publish_with_headers(subject.to_owned(), headers, Bytes::new()).await;
        let ack = ack.map_err(unavailable)?;
        Ok(ack.await.map_err(unavailable)?.sequence)
    }

    /// Replays `name` after `from` to `conn`, a batch per drain, then
    /// joins it to the live delivery.
    async fn replay(self: &Rc<Self>, conn: ConnId, name: Arc<str>, form: Form, from: u64) -> Result<(), Unavailable> {
        let subject = self.subject(&name);
        let mut at = from;
        let mut messages: Option<pull::Ordered> = None;
        let mut top = self.last_offset(&subject).await?;
        loop {
            let mut frames: Vec<Frame> = Vec::new();
            let mut bytes = 0;
            let mut caught_up = at >= top;
            let batch_from = at;
            while !caught_up && bytes < self.pace {
                if messages.is_none() {
                    let consumer = self
                        .stream
                        .create_consumer(pull::OrderedConfig {
                            filter_subject: subject.clone(),
                            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: at + 1 },
                            ..Default::default()
                        })
                        .await
                        .map_err(unavailable)?;
                    messages = Some(consumer.messages().await.map_err(unavailable)?);
                }
                let stream = messages.as_mut().expect("made above");
                let next = tokio::time::timeout(READ_WAIT, stream.next()).await;
                let message = match next {
                    Ok(Some(Ok(message))) => message,
                    Ok(Some(Err(e))) => return Err(unavailable(e)),
                    Ok(None) | Err(_) => return Err(unavailable("the stream stopped answering")),
                };
                let info = message.info().map_err(unavailable)?;
                at = info.stream_sequence;
                caught_up = info.pending == 0;
                let Carried::Payload(payload) = carried(&message) else { continue };
                let frame = fanout::frame_in(&self.handle, form, &name, payload, at, &self.epoch);
                bytes += frame.payload().len();
                frames.push(frame);
            }
            // No gap: the message the batch started after is still kept,
            // so every later one of the topic was too.
            if at > batch_from && batch_from > 0 && !self.kept_after(&subject, batch_from).await? {
                let after = self.live(&name).await?.get();
                let lost = Note::Lost { name: name.clone(), form, at: self.position(after) };
                self.join_live(conn, &name, form, after, lost);
                return Ok(());
            }
            if !caught_up {
                let (wake, woken) = oneshot::channel();
                self.waiting.borrow_mut().insert((conn, name.clone()), wake);
                self.note(conn, Note::Part { name: name.clone(), frames, more: true });
                if tokio::time::timeout(DRAIN_WAIT, woken).await.map_or(true, |r| r.is_err()) {
                    self.waiting.borrow_mut().remove(&(conn, name.clone()));
                    return Ok(()); // the connection went away, or stopped reading
                }
                continue;
            }
            if !frames.is_empty() {
                self.note(conn, Note::Part { name: name.clone(), frames, more: false });
            }
            // Caught up with the stream: join once the live delivery here
            // has posted nothing past the replay (no await from the check
            // to the note, so no live post slips between them).
            let last = self.live(&name).await?;
            if at >= last.get() {
                self.join_live(conn, &name, form, at, Note::CaughtUp { name: name.clone(), form, reply: None });
                return Ok(());
            }
            top = last.get();
        }
    }

    /// The `history` answer: the latest `limit` messages of `name`.
    pub async fn history(self: Rc<Self>, conn: ConnId, name: Arc<str>, limit: usize, budget: usize, id: Option<Id>) {
        let reply = match self.latest(&name, limit, budget).await {
            Ok((messages, top)) => Reply::History { id, at: self.position(top), messages },
            Err(why) => Reply::Refused { id, why: why.to_string() },
        };
        self.note(conn, Note::Reply(reply));
    }

    async fn latest(&self, name: &str, limit: usize, budget: usize) -> Result<(Vec<Frame>, u64), Unavailable> {
        let subject = self.subject(name);
        let top = self.last_offset(&subject).await?;
        let info = self.stream.info_with_subjects(subject.clone()).await.map_err(unavailable)?;
        let mut count = 0;
        let mut subjects = info;
        while let Some(entry) = subjects.next().await {
            let (_, n) = entry.map_err(unavailable)?;
            count += n;
        }
        if count == 0 || limit == 0 {
            return Ok((Vec::new(), top));
        }
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig { filter_subject: subject, ..Default::default() })
            .await
            .map_err(unavailable)?;
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        let mut newest = Newest::new(limit, budget);
        loop {
            let next = tokio::time::timeout(READ_WAIT, messages.next()).await;
            let message = match next {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => return Err(unavailable(e)),
                Ok(None) | Err(_) => break,
            };
            let info = message.info().map_err(unavailable)?;
            let (offset, last) = (info.stream_sequence, info.pending == 0);
            if let Carried::Payload(payload) = carried(&message) {
                newest.push(fanout::frame_in(&self.handle, Form::Json, name, payload, offset, &self.epoch));
            }
            if last {
                break;
            }
        }
        Ok((newest.into_frames(), top))
    }
}
