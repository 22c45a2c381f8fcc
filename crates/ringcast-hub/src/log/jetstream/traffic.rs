//! The JetStream log on the bridge's link: publishes go into the stream,
//! live feeds and replays come out of it, and the shards' asks are served
//! here. The stream is opened once NATS is connected (not at the first
//! subscribe, which would wait for it), and again after a failure (at
//! most every two seconds).

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::asks::Ask;
use super::stream::{Jet, StreamLimits};
use crate::cluster::link::{Link, Traffic};
use crate::cluster::Outbound;
use crate::log::Note;
use ringcast::broker::Notes;

/// Every how many ticks idle live feeds are stopped.
const SWEEP_TICKS: u32 = 5;

/// The stream as the link sees it.
pub(super) struct JetTraffic {
    limits: StreamLimits,
    notes: Notes<Note>,
    jet: Option<Rc<Jet>>,
    tried: Option<Instant>,
    ticks: u32,
}

impl JetTraffic {
    pub fn new(limits: StreamLimits, notes: Notes<Note>) -> JetTraffic {
        JetTraffic { limits, notes, jet: None, tried: None, ticks: 0 }
    }

    /// The stream, opened if it is not (and not tried in the last two
    /// seconds).
    async fn jet(&mut self, link: &Link) -> Option<Rc<Jet>> {
        if self.jet.is_none() && self.tried.is_none_or(|at| at.elapsed() > Duration::from_secs(2)) {
            self.tried = Some(Instant::now());
            let (bridge, handle, notes) = (link.bridge.clone(), link.handle.clone(), self.notes.clone());
            match Jet::open(bridge, handle, notes, &link.client, self.limits).await {
                Ok(jet) => self.jet = Some(jet),
                Err(why) => tracing::warn!(error = %why, "bridge: cannot open the history stream"),
            }
        }
        self.jet.clone()
    }
}

impl Traffic for JetTraffic {
    type Ask = Ask;
    const WHEN_CUT: &'static str =
        "with history in JetStream, publishes are refused and nothing is delivered until it is back";

    async fn publish(&mut self, link: &Link, message: Outbound) {
        match self.jet(link).await {
            Some(jet) => jet.publish(message).await,
            None => {
                link.bridge.metrics.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Feeds are started by joins; interest lost stops idle ones.
    async fn interest(&mut self, link: &Link) {
        link.bridge.dirty.lock().unwrap_or_else(|e| e.into_inner()).clear();
        if let Some(jet) = &self.jet {
            jet.sweep();
        }
    }

    async fn ask(&mut self, link: &Link, ask: Ask) {
        let jet = self.jet(link).await;
        const UNREACHABLE: &str = "history unavailable: JetStream cannot be reached";
        match (ask, jet) {
            (Ask::Subscribe(subscription), Some(jet)) => {
                tokio::task::spawn_local(jet.subscribe(subscription));
            }
            (Ask::Subscribe(subscription), None) => {
                let (name, form) = (subscription.name, subscription.form);
                self.notes.notify(subscription.conn, Note::Failed { name, form, why: UNREACHABLE.into() });
            }
            (Ask::More(conn, name), Some(jet)) => jet.more(conn, &name),
            (Ask::History { conn, name, limit, budget, id }, Some(jet)) => {
                tokio::task::spawn_local(jet.history(conn, name, limit, budget, id));
            }
            (Ask::History { conn, id, .. }, None) => {
                let reply = crate::control::Reply::Refused { id, why: UNREACHABLE.into() };
                self.notes.notify(conn, Note::Reply(reply));
            }
            (Ask::More(..), None) => {}
        }
    }

    async fn tick(&mut self, link: &Link) {
        if self.jet.is_none() && link.bridge.connected() {
            self.jet(link).await;
        }
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(SWEEP_TICKS) {
            if let Some(jet) = &self.jet {
                jet.sweep();
            }
        }
    }
}
