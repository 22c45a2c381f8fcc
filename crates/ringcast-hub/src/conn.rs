//! What each WebSocket connection carries: its route with that route's
//! state (a room's topic, a `/ws` connection's subscriptions), where its
//! recoveries stand, its token's grant, its publish bucket, its address.
//! Per connection, in the shard's table: no locks.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::Grant;
use crate::limits::Bucket;
use crate::position::Position;
use crate::topic::Topic;

/// The route a connection came in on, with that route's state.
pub(crate) enum Route {
    /// `/topics/{name}`; `recovery`: its recovery of the topic's history,
    /// until it has joined live delivery.
    Room { topic: Topic, echo: bool, recovery: Option<Box<Recovering>> },
    /// `/ws`, with the number of topics it subscribes to (those it is
    /// still recovering included) and each recovery under way.
    Control { subscribed: usize, recoveries: Vec<(Arc<str>, Recovering)> },
}

/// Where a connection's recovery of a topic stands (the topic log's
/// bookkeeping, kept with the connection).
#[derive(Debug)]
pub(crate) enum Recovering {
    /// To go on from this position (the embedded log): when the
    /// connection drains, or (a room) when it opens.
    From(Position),
    /// The log's thread is on it (JetStream).
    Asked,
    /// The log's thread sent a part and waits for the connection to drain.
    Draining,
}

/// A WebSocket connection's data.
pub(crate) struct Conn {
    pub route: Route,
    /// What its token allows (`None`: the hub requires no tokens).
    pub grant: Option<Box<Grant>>,
    /// Its publishes per second.
    pub bucket: Bucket,
    /// Its address, counted in the hub's per-address limit.
    pub ip: Option<IpAddr>,
}

impl Conn {
    /// Whether the connection is still recovering `name` (a note for a
    /// recovery it gave up, by unsubscribing, finds none).
    pub fn recovering(&self, name: &str) -> bool {
        match &self.route {
            Route::Control { recoveries, .. } => recoveries.iter().any(|(n, _)| **n == *name),
            Route::Room { recovery, .. } => recovery.is_some(),
        }
    }

    /// Sets where the connection's recovery of `name` stands.
    pub fn set_recovery(&mut self, name: &Arc<str>, state: Recovering) {
        match &mut self.route {
            Route::Control { recoveries, .. } => match recoveries.iter_mut().find(|(n, _)| n == name) {
                Some((_, was)) => *was = state,
                None => recoveries.push((name.clone(), state)),
            },
            Route::Room { recovery, .. } => *recovery = Some(Box::new(state)),
        }
    }

    /// The recovery of `name` is over (or given up); false if there was
    /// none.
    pub fn end_recovery(&mut self, name: &str) -> bool {
        match &mut self.route {
            Route::Control { recoveries, .. } => {
                let before = recoveries.len();
                recoveries.retain(|(n, _)| **n != *name);
                recoveries.len() < before
            }
            Route::Room { recovery, .. } => recovery.take().is_some(),
        }
    }

    /// The recoveries `pick` chooses (those waiting for the connection to
    /// drain), each marked [`Recovering::Asked`] and returned with what it
    /// was.
    pub fn take_recoveries(&mut self, pick: impl Fn(&Recovering) -> bool) -> Vec<(Arc<str>, Recovering)> {
        let mut taken = Vec::new();
        match &mut self.route {
            Route::Control { recoveries, .. } => {
                for (name, state) in recoveries.iter_mut().filter(|(_, state)| pick(state)) {
                    taken.push((name.clone(), std::mem::replace(state, Recovering::Asked)));
                }
            }
            Route::Room { topic, recovery: Some(state), .. } if pick(state) => {
                taken.push((topic.name.clone(), std::mem::replace(&mut **state, Recovering::Asked)));
            }
            Route::Room { .. } => {}
        }
        taken
    }

    /// A `/ws` subscription (or a recovery leading to one) is gone: one
    /// topic less against the per-connection limit.
    pub fn unsubscribed(&mut self) {
        if let Route::Control { subscribed, .. } = &mut self.route {
            *subscribed -= 1;
        }
    }
}
