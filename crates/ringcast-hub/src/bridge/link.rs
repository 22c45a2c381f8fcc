//! The bridge's thread: one NATS connection (async-nats on a
//! single-threaded tokio runtime), publishing what the shards queued,
//! holding one subscription per topic with local interest, and delivering
//! what arrives to the local subscribers.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::{Client, ConnectOptions, Event, HeaderMap, Subscriber};
use futures_util::StreamExt;
use ringcast::ServerHandle;
use tokio::sync::{mpsc, oneshot};

use super::presence::{local as presence_local, Gossip, TICK};
use super::state::{Ask, Bridge, Outbound, FIRST_CONNECT_NOTICE};
use super::stream::{Jet, KIND, ORIGIN};
use super::subject;
use crate::control;
use crate::deliver::{self, Kind};
use crate::handover::Note;
use crate::topic::{json_topic, raw_topic};

/// The thread's body.
pub(super) fn run(
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    queue: mpsc::UnboundedReceiver<Outbound>,
    asks: mpsc::UnboundedReceiver<Ask>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "bridge: cannot start its runtime; the hub serves alone");
            return;
        }
    };
    // The history's tasks share this thread's state without locks.
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(serve(bridge, handle, queue, asks)));
}

/// Waits 50 ms, then twice as long after each failed attempt, up to 2 s.
fn backoff(attempts: usize) -> Duration {
    Duration::from_millis(50u64 << attempts.min(6)).min(Duration::from_secs(2))
}

async fn serve(
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    mut queue: mpsc::UnboundedReceiver<Outbound>,
    mut asks: mpsc::UnboundedReceiver<Ask>,
) {
    let events = bridge.clone();
    let options = ConnectOptions::new()
        .name("ringcast-hub")
        .no_echo()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(backoff)
        .connection_timeout(Duration::from_secs(2))
        // A topic's messages wait here while the link delivers others;
        // past it the client drops them and reports a slow consumer (each
        // message at most --max-message-size: the bound on this memory).
        .subscription_capacity(1024)
        .event_callback(move |event| {
            let bridge = events.clone();
            async move { on_event(&bridge, event) }
        });
    let urls: Vec<async_nats::ServerAddr> = bridge.config.urls.iter().filter_map(|u| u.parse().ok()).collect();
    let client = match async_nats::connect_with_options(urls, options).await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "bridge: cannot use the NATS settings; the hub serves alone");
            return;
        }
    };
    let notice = bridge.clone();
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_CONNECT_NOTICE).await;
        if notice.metrics.connects.load(Ordering::Relaxed) == 0 {
            tracing::warn!(
                servers = ?notice.config.urls,
                "bridge: NATS unreachable; serving local subscribers only, retrying in the background"
            );
        }
    });
    let mut topics: HashMap<Box<str>, oneshot::Sender<()>> = HashMap::new();
    let history = History { wanted: bridge.keeps_history(), jet: None, tried: None };
    let mut history = history;
    let mut sweep = tokio::time::interval(Duration::from_secs(5));
    let presence_subject = format!("{}_presence", bridge.config.prefix);
    let mut presence = match client.subscribe(presence_subject.clone()).await {
        Ok(subscriber) => Some(subscriber),
        Err(e) => {
            tracing::warn!(error = %e, "bridge: no presence across hubs");
            None
        }
    };
    let mut gossip = Gossip::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            biased;
            () = bridge.stop.notified() => break,
            heard = async { presence.as_mut()?.next().await }, if presence.is_some() => match heard {
                Some(message) => gossip.heard(&bridge.origin, &message.payload, &bridge.elsewhere),
                None => presence = None,
            },
            _ = tick.tick() => {
                let watched = std::mem::take(&mut *bridge.presence_dirty.lock().unwrap_or_else(|e| e.into_inner()));
                if bridge.metrics.connected.load(Ordering::Relaxed) {
                    for message in gossip.tick(&bridge.origin, watched, |name| presence_local(&handle, name)) {
                        let _ = client.publish(presence_subject.clone(), message.into()).await;
                    }
                }
                gossip.expire(&bridge.elsewhere);
                if history.wanted && history.jet.is_none() && bridge.metrics.connected.load(Ordering::Relaxed) {
                    // The stream is opened once connected, not at the first
                    // subscribe (which would wait for it).
                    history.jet(&bridge, &handle, &client).await;
                }
            }
            () = bridge.wake.notified() => match history.wanted {
                true => {
                    bridge.dirty.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    if let Some(jet) = &history.jet {
                        jet.sweep();
                    }
                }
                false => follow_interest(&bridge, &handle, &client, &mut topics).await,
            },
            ask = asks.recv() => match ask {
                Some(ask) => history.serve(&bridge, &handle, &client, ask).await,
                None => break,
            },
            message = queue.recv() => match message {
                Some(message) => history.publish(&bridge, &handle, &client, message).await,
                None => break,
            },
            _ = sweep.tick(), if history.wanted => {
                if let Some(jet) = &history.jet {
                    jet.sweep();
                }
            }
        }
    }
    // Stopping: hand over what is queued, then say goodbye.
    while let Ok(message) = queue.try_recv() {
        history.publish(&bridge, &handle, &client, message).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
}

/// The JetStream side, when history lives there: opened on first use and
/// again after a failure (at most every two seconds).
struct History {
    wanted: bool,
    jet: Option<Rc<Jet>>,
    tried: Option<Instant>,
}

impl History {
    async fn jet(&mut self, bridge: &Arc<Bridge>, handle: &ServerHandle, client: &Client) -> Option<Rc<Jet>> {
        if self.jet.is_none() && self.tried.is_none_or(|at| at.elapsed() > Duration::from_secs(2)) {
            self.tried = Some(Instant::now());
            match Jet::open(bridge.clone(), handle.clone(), client).await {
                Ok(jet) => self.jet = Some(jet),
                Err(why) => tracing::warn!(error = %why, "bridge: history unavailable"),
            }
        }
        self.jet.clone()
    }

    async fn publish(&mut self, bridge: &Arc<Bridge>, handle: &ServerHandle, client: &Client, message: Outbound) {
        if !self.wanted {
            return publish(bridge, client, message).await;
        }
        bridge.pending.fetch_sub(message.payload.len(), Ordering::Relaxed);
        match self.jet(bridge, handle, client).await {
            Some(jet) => jet.publish(message).await,
            None => {
                bridge.metrics.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    async fn serve(&mut self, bridge: &Arc<Bridge>, handle: &ServerHandle, client: &Client, ask: Ask) {
        let jet = self.jet(bridge, handle, client).await;
        match (ask, jet) {
            (Ask::Join(join), Some(jet)) => {
                tokio::task::spawn_local(jet.join(join));
            }
            (Ask::Join(join), None) => {
                let text = control::recovery_failed(&join.name, "history unavailable: JetStream cannot be reached");
                handle.notify(join.conn, Box::new(Note::Failed { name: join.name, form: join.form, text }));
            }
            (Ask::More(conn, name), Some(jet)) => jet.more(conn, &name),
            (Ask::History { conn, name, limit, budget, id }, Some(jet)) => {
                tokio::task::spawn_local(jet.history(conn, name, limit, budget, id));
            }
            (Ask::History { conn, id, .. }, None) => {
                let text = control::error_text(id.as_deref(), "history unavailable: JetStream cannot be reached");
                handle.notify(conn, Box::new(Note::Send(text)));
            }
            (Ask::More(..), None) => {}
        }
    }
}

fn on_event(bridge: &Bridge, event: Event) {
    let metrics = &bridge.metrics;
    match event {
        Event::Connected => {
            metrics.connected.store(true, Ordering::Relaxed);
            metrics.connects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("bridge: connected to NATS; publishes reach the cluster");
        }
        Event::Disconnected => {
            metrics.connected.store(false, Ordering::Relaxed);
            tracing::warn!(
                "bridge: NATS connection lost; local delivery goes on, forwarding is counted lost until it is back"
            );
        }
        Event::Closed => metrics.connected.store(false, Ordering::Relaxed),
        Event::SlowConsumer(_) => {
            metrics.dropped_in.fetch_add(1, Ordering::Relaxed);
        }
        other => tracing::warn!(event = %other, "bridge: NATS"),
    }
}

async fn publish(bridge: &Bridge, client: &Client, message: Outbound) {
    bridge.pending.fetch_sub(message.payload.len(), Ordering::Relaxed);
    let metrics = &bridge.metrics;
    if !metrics.connected.load(Ordering::Relaxed) {
        metrics.lost.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, bridge.origin.as_str());
    headers.insert(KIND, message.kind.as_str());
    let subject = subject::encode(&bridge.config.prefix, &message.name);
    match client.publish_with_headers(subject, headers, message.payload).await {
        Ok(()) => metrics.published.fetch_add(1, Ordering::Relaxed),
        Err(e) => {
            tracing::debug!(error = %e, topic = %message.name, "bridge: publish not handed to NATS");
            metrics.lost.fetch_add(1, Ordering::Relaxed)
        }
    };
}

/// Subscribes to the subjects of topics that gained local interest and
/// leaves those that lost it.
async fn follow_interest(
    bridge: &Arc<Bridge>,
    handle: &ServerHandle,
    client: &Client,
    topics: &mut HashMap<Box<str>, oneshot::Sender<()>>,
) {
    let changed: Vec<Box<str>> = bridge.dirty.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
    for name in changed {
        let wanted = handle.subscribers(&raw_topic(&name)) + handle.subscribers(&json_topic(&name)) > 0;
        if wanted == topics.contains_key(&name) {
            continue;
        }
        if !wanted {
            if let Some(stop) = topics.remove(&name) {
                let _ = stop.send(());
            }
            continue;
        }
        match client.subscribe(subject::encode(&bridge.config.prefix, &name)).await {
            Ok(subscriber) => {
                let (stop, stopped) = oneshot::channel();
                tokio::spawn(deliver_topic(bridge.clone(), handle.clone(), name.clone(), subscriber, stopped));
                topics.insert(name, stop);
            }
            Err(e) => {
                // Only when the client is shutting down: nothing to retry.
                tracing::warn!(error = %e, topic = %name, "bridge: cannot subscribe");
            }
        }
    }
    bridge.metrics.subjects.store(topics.len() as u64, Ordering::Relaxed);
}

/// Delivers one topic's messages from NATS, in their order, until told to
/// stop (the topic lost its last local subscriber).
async fn deliver_topic(
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    name: Box<str>,
    mut subscriber: Subscriber,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            message = subscriber.next() => match message {
                Some(message) => deliver_one(&bridge, &handle, &name, &message),
                None => return,
            },
        }
    }
    let _ = subscriber.unsubscribe().await;
}

fn deliver_one(bridge: &Bridge, handle: &ServerHandle, name: &str, message: &async_nats::Message) {
    let header = |key: &str| message.headers.as_ref().and_then(|h| h.get(key)).map(|v| v.as_str());
    if header(ORIGIN) == Some(bridge.origin.as_str()) {
        return; // our own publish (no_echo already keeps these away)
    }
    let claimed = header(KIND).and_then(Kind::parse);
    let Some(payload) = deliver::check(claimed, &message.payload) else {
        bridge.metrics.dropped_in.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(topic = %name, "bridge: a message whose payload does not match its kind was dropped");
        return;
    };
    deliver::to_local(handle, name, payload);
    bridge.metrics.received.fetch_add(1, Ordering::Relaxed);
}
