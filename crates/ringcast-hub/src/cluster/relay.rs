//! The plain traffic between hubs (no history): every publish taken here
//! goes to its topic's subject once, and each topic with local
//! subscribers has a NATS subscription whose messages are delivered to
//! them, framed once per form as any publish.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_nats::{HeaderMap, Subscriber};
use futures_util::StreamExt;
use ringcast::ServerHandle;
use tokio::sync::oneshot;

use super::bridge::{Bridge, Outbound};
use super::link::{Link, Traffic};
use super::subject::{self, KIND, ORIGIN};
use crate::fanout;
use crate::payload::{Kind, Payload};
use crate::topic::Topic;

/// The topics subscribed to on NATS, each with the way to stop its task.
#[derive(Default)]
pub(crate) struct Relay {
    topics: HashMap<Box<str>, oneshot::Sender<()>>,
}

impl Traffic for Relay {
    type Ask = Infallible;
    const WHEN_CUT: &'static str = "local delivery goes on, forwarding is counted lost until it is back";

    async fn publish(&mut self, link: &Link, message: Outbound) {
        let bridge = &link.bridge;
        let metrics = &bridge.metrics;
        if !bridge.connected() {
            metrics.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, bridge.origin.as_str());
        headers.insert(KIND, message.kind.as_str());
        let subject = subject::encode(bridge.prefix(), &message.name);
        match link.client.publish_with_headers(subject, headers, message.payload).await {
            Ok(()) => metrics.published.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::debug!(error = %e, topic = %message.name, "bridge: publish not handed to NATS");
                metrics.lost.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Subscribes to the subjects of topics that gained local interest and
    /// leaves those that lost it.
    async fn interest(&mut self, link: &Link) {
        let (bridge, handle) = (&link.bridge, &link.handle);
        let changed: Vec<Box<str>> = bridge.dirty.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        for name in changed {
            let Ok(topic) = Topic::new(&name) else { continue };
            let wanted = topic.subscribers(|t| handle.subscribers(t)) > 0;
            if wanted == self.topics.contains_key(&name) {
                continue;
            }
            if !wanted {
                if let Some(stop) = self.topics.remove(&name) {
                    let _ = stop.send(());
                }
                continue;
            }
            match link.client.subscribe(subject::encode(bridge.prefix(), &name)).await {
                Ok(subscriber) => {
                    let (stop, stopped) = oneshot::channel();
                    tokio::spawn(deliver_topic(bridge.clone(), handle.clone(), topic, subscriber, stopped));
                    self.topics.insert(name, stop);
                }
                Err(e) => {
                    // Only when the client is shutting down: nothing to retry.
                    tracing::warn!(error = %e, topic = %name, "bridge: cannot subscribe");
                }
            }
        }
        bridge.metrics.subjects.store(self.topics.len() as u64, Ordering::Relaxed);
    }

    async fn ask(&mut self, _link: &Link, ask: Infallible) {
        match ask {}
    }

    async fn tick(&mut self, _link: &Link) {}
}

/// Delivers one topic's messages from NATS, in their order, until told to
/// stop (the topic lost its last local subscriber).
async fn deliver_topic(
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    topic: Topic,
    mut subscriber: Subscriber,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            message = subscriber.next() => match message {
                Some(message) => deliver_one(&bridge, &handle, &topic, &message),
                None => return,
            },
        }
    }
    let _ = subscriber.unsubscribe().await;
}

fn deliver_one(bridge: &Bridge, handle: &ServerHandle, topic: &Topic, message: &async_nats::Message) {
    let header = |key: &str| message.headers.as_ref().and_then(|h| h.get(key)).map(|v| v.as_str());
    if header(ORIGIN) == Some(bridge.origin.as_str()) {
        return; // our own publish (no_echo already keeps these away)
    }
    let claimed = header(KIND).and_then(Kind::parse);
    let Some(payload) = Payload::read(claimed, &message.payload) else {
        bridge.metrics.dropped_in.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(topic = %topic.name, "bridge: a message whose payload does not match its kind was dropped");
        return;
    };
    fanout::to_local(&mut &*handle, topic, payload);
    bridge.metrics.received.fetch_add(1, Ordering::Relaxed);
}
