//! What every shard's handler shares: the settings, the server once
//! started, the counters, the token checks, the per-address limit and the
//! topic log. Hub-wide, behind one `Arc`; per-connection state is in
//! [`crate::conn`].

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ringcast::Request;
use ringcast::ServerHandle;

use crate::auth::Verifier;
use crate::config::HubConfig;
use crate::counters::{ShardMetrics, TopicCount};
use crate::limits::{Bucket, PerAddress};
use crate::log::TopicLog;

/// What every shard's handler shares.
pub(crate) struct HubState {
    pub config: HubConfig,
    /// Set right after the server started: HTTP publishes and `/metrics`
    /// need it.
    pub handle: OnceLock<ServerHandle>,
    pub metrics: Vec<ShardMetrics>,
    /// Topics with subscribers.
    pub topics: Arc<TopicCount>,
    /// Token checks, when the hub requires tokens.
    pub verifier: Option<Verifier>,
    /// Connections per client address.
    pub per_address: PerAddress,
    /// Where topics' messages go and come from.
    pub log: Arc<dyn TopicLog>,
}

impl HubState {
    /// Browsers always send `Origin`; other clients may not, and are let in.
    pub fn origin_allowed(&self, request: &Request<'_>) -> bool {
        let allowed = &self.config.allowed_origins;
        match request.origin() {
            Some(origin) if !allowed.is_empty() => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
            _ => true,
        }
    }
}

/// One shard's side of the hub: the shared state and its own counters.
pub(crate) struct Shard {
    pub state: Arc<HubState>,
    pub index: usize,
}

impl Shard {
    /// This shard's counters.
    pub fn metrics(&self) -> &ShardMetrics {
        &self.state.metrics[self.index]
    }

    /// Takes one publish from the connection's bucket.
    pub fn within_rate(&self, bucket: &mut Bucket) -> bool {
        bucket.take(self.state.config.max_publish_rate, Instant::now())
    }
}
