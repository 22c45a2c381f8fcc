//! The bridge's thread: one NATS connection (async-nats on a
//! single-threaded tokio runtime), handing what the shards queued to the
//! [`Traffic`] it carries, telling it when local interest changes,
//! serving its asks, and keeping the presence gossip.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use futures_util::StreamExt;
use ringcast::ServerHandle;
use tokio::sync::mpsc;

use super::bridge::{Bridge, Outbound, FIRST_CONNECT_NOTICE};
use super::presence::{local as presence_local, Gossip, TICK};

/// What the link carries for the topics: their messages between hubs
/// (plain, [`super::relay`], or through the JetStream log), chosen once
/// when the hub starts.
pub(crate) trait Traffic: 'static {
    /// What the shards ask of it besides publishes.
    type Ask: Send + 'static;
    /// What losing NATS means for this hub's deliveries (logged as is).
    const WHEN_CUT: &'static str;
    /// A publish taken on this hub (its bytes already counted off the
    /// queue's bound).
    fn publish(&mut self, link: &Link, message: Outbound) -> impl Future<Output = ()>;
    /// Local interest changed: [`Bridge::dirty`] names the topics.
    fn interest(&mut self, link: &Link) -> impl Future<Output = ()>;
    /// A shard's ask.
    fn ask(&mut self, link: &Link, ask: Self::Ask) -> impl Future<Output = ()>;
    /// Once a second.
    fn tick(&mut self, link: &Link) -> impl Future<Output = ()>;
}

/// What a traffic works with: the bridge's state, the server, the NATS
/// client.
pub(crate) struct Link {
    pub bridge: Arc<Bridge>,
    pub handle: ServerHandle,
    pub client: Client,
}

/// Starts the link's thread, carrying the traffic `traffic` makes
/// there (the topics' messages, plain or through JetStream, whose
/// state stays on that thread) and serving its `asks`: it connects
/// (retrying with backoff while NATS is unreachable) and serves until
/// [`Bridge::stop`].
pub(crate) fn start<T: Traffic>(
    bridge: &Arc<Bridge>,
    handle: ServerHandle,
    traffic: impl FnOnce() -> T + Send + 'static,
    asks: mpsc::UnboundedReceiver<T::Ask>,
) -> std::io::Result<()> {
    let Some(queue) = bridge.inbound_queue.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(()); // already started
    };
    tracing::info!(servers = ?bridge.urls(), prefix = %bridge.config.prefix, "bridge: joining the NATS cluster");
    let shared = bridge.clone();
    let thread = std::thread::Builder::new()
        .name("ringcast-bridge".into())
        .spawn(move || run(shared, handle, queue, traffic(), asks))?;
    *bridge.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    Ok(())
}

/// The thread's body.
pub(super) fn run<T: Traffic>(
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    queue: mpsc::UnboundedReceiver<Outbound>,
    traffic: T,
    asks: mpsc::UnboundedReceiver<T::Ask>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "bridge: cannot start its runtime; the hub serves alone");
            return;
        }
    };
    // The JetStream log's tasks share this thread's state without locks.
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(serve(bridge, handle, queue, traffic, asks)));
}

/// Waits 50 ms, then twice as long after each failed attempt, up to 2 s.
fn backoff(attempts: usize) -> Duration {
    Duration::from_millis(50u64 << attempts.min(6)).min(Duration::from_secs(2))
}

async fn serve<T: Traffic>(
    bridge: Arc<Bridge>,
    handle: ServerHandle,
    mut queue: mpsc::UnboundedReceiver<Outbound>,
    mut traffic: T,
    mut asks: mpsc::UnboundedReceiver<T::Ask>,
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
            async move { on_event(&bridge, event, T::WHEN_CUT) }
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
            tracing::warn!(servers = ?notice.config.urls, "bridge: NATS unreachable; {}; retrying in the background", T::WHEN_CUT);
        }
    });
    let presence_subject = format!("{}_presence", bridge.config.prefix);
    let mut presence = match client.subscribe(presence_subject.clone()).await {
        Ok(subscriber) => Some(subscriber),
        Err(e) => {
            tracing::warn!(error = %e, "bridge: no presence across hubs");
            None
        }
    };
    let link = Link { bridge, handle, client };
    let bridge = &link.bridge;
    let mut gossip = Gossip::default();
    let mut tick = tokio::time::interval(TICK);
    let mut asking = true;
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
                if bridge.connected() {
                    for message in gossip.tick(&bridge.origin, watched, |name| presence_local(&link.handle, name)) {
                        let _ = link.client.publish(presence_subject.clone(), message.into()).await;
                    }
                }
                gossip.expire(&bridge.elsewhere);
                traffic.tick(&link).await;
            }
            () = bridge.wake.notified() => traffic.interest(&link).await,
            ask = asks.recv(), if asking => match ask {
                Some(ask) => traffic.ask(&link, ask).await,
                None => asking = false, // a traffic that takes no asks
            },
            message = queue.recv() => match message {
                Some(message) => {
                    bridge.pending.fetch_sub(message.payload.len(), Ordering::Relaxed);
                    traffic.publish(&link, message).await;
                }
                None => break,
            },
        }
    }
    // Stopping: hand over what is queued, then say goodbye.
    while let Ok(message) = queue.try_recv() {
        bridge.pending.fetch_sub(message.payload.len(), Ordering::Relaxed);
        traffic.publish(&link, message).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), link.client.flush()).await;
}

fn on_event(bridge: &Bridge, event: Event, when_cut: &str) {
    let metrics = &bridge.metrics;
    match event {
        Event::Connected => {
            metrics.connected.store(true, Ordering::Relaxed);
            metrics.connects.fetch_add(1, Ordering::Relaxed);
            tracing::info!("bridge: connected to NATS; publishes reach the cluster");
        }
        Event::Disconnected => {
            metrics.connected.store(false, Ordering::Relaxed);
            tracing::warn!("bridge: NATS connection lost; {when_cut}");
        }
        Event::Closed => metrics.connected.store(false, Ordering::Relaxed),
        Event::SlowConsumer(_) => {
            metrics.dropped_in.fetch_add(1, Ordering::Relaxed);
        }
        other => tracing::warn!(event = %other, "bridge: NATS"),
    }
}
