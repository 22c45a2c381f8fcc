//! What every shard's handler shares, and what each connection carries.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ringcast::proto::handshake::Request;
use ringcast::ServerHandle;

use crate::auth::{Grant, Verifier};
use crate::bridge::Bridge;
use crate::config::HubConfig;
use crate::deliver::Kind;
use crate::history::Position;
use crate::limits::{Bucket, PerAddress};
use crate::metrics::{ShardMetrics, TopicCount};
use crate::sequencer::Sequencer;
use crate::topic::Topic;

/// What every shard's handler shares.
pub(crate) struct Shared {
    pub config: HubConfig,
    /// Set right after the server started: HTTP publishes and `/metrics`
    /// need it.
    pub handle: OnceLock<ServerHandle>,
    pub metrics: Vec<ShardMetrics>,
    /// Topics with subscribers.
    pub topics: Arc<TopicCount>,
    /// The cluster bridge, when the hub has one.
    pub bridge: Option<Arc<Bridge>>,
    /// Token checks, when the hub requires tokens.
    pub verifier: Option<Verifier>,
    /// Connections per client address.
    pub per_address: PerAddress,
    /// Topic order and history, when the hub keeps history.
    pub sequencer: Option<Sequencer>,
}

impl Shared {
    /// Browsers always send `Origin`; other clients may not, and are let in.
    pub fn origin_allowed(&self, request: &Request<'_>) -> bool {
        let allowed = &self.config.allowed_origins;
        match request.origin() {
            Some(origin) if !allowed.is_empty() => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
            _ => true,
        }
    }

    /// Hands a publish made here to the other hubs of the cluster.
    pub fn forward(&self, name: &str, kind: Kind, payload: &[u8]) {
        if let Some(bridge) = &self.bridge {
            bridge.forward(name, kind, payload);
        }
    }
}

/// The route a connection came in on, with that route's state.
pub(crate) enum Route {
    /// `/topics/{name}`; `replay`: its recovery of the topic's history,
    /// until it has joined live delivery.
    Room { topic: Topic, echo: bool, replay: Option<Box<Replay>> },
    /// `/ws`, with the number of topics it subscribes to (those it is
    /// still recovering included) and each recovery under way.
    Control { subscribed: usize, replays: Vec<(Arc<str>, Replay)> },
}

/// Where a connection's recovery of a topic stands.
#[derive(Debug)]
pub(crate) enum Replay {
    /// To go on from this position (the embedded store): when the
    /// connection drains, or (a room) when it opens.
    From(Position),
    /// The cluster bridge is on it (history in JetStream).
    Asked,
    /// The bridge sent a part and waits for the connection to drain.
    Draining,
}

/// A WebSocket connection's data.
pub(crate) struct Conn {
    pub route: Route,
    /// What its token allows (`None`: the hub requires no tokens).
    pub grant: Option<Box<Grant>>,
    /// Its publishes per second.
    pub bucket: Bucket,
    /// Its address, counted in [`Shared::per_address`].
    pub ip: Option<IpAddr>,
}
