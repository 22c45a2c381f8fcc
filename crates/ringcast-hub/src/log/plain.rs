//! The plain log: no history. A publish is delivered to this hub's
//! subscribers at once (each form framed once, from the publisher's shard
//! when a connection publishes) and, in a cluster, handed to NATS once;
//! what comes from NATS is delivered the same way (`cluster::relay`).
//! Without a sequence, two publishers on two shards may be seen in
//! different orders; one publisher's messages keep theirs.

use std::sync::Arc;

use ringcast::{ServerHandle, Ws};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::contract::{Published, Publisher, RoomStart, TopicLog};
use crate::cluster::link;
use crate::cluster::relay::Relay;
use crate::cluster::{Bridge, BridgeMetrics};
use crate::conn::Conn;
use crate::control::{self, Reply};
use crate::fanout::{self, FromConn};
use crate::payload::Payload;
use crate::position::Position;
use crate::topic::{json_topic, raw_topic, Topic};

/// The plain log, alone or with the cluster's bridge.
pub(crate) struct Plain {
    cluster: Option<Arc<Bridge>>,
}

impl Plain {
    /// A hub that serves alone.
    pub fn alone() -> Plain {
        Plain { cluster: None }
    }

    /// A hub of a cluster, through `bridge`.
    pub fn clustered(bridge: Arc<Bridge>) -> Plain {
        Plain { cluster: Some(bridge) }
    }
}

impl TopicLog for Plain {
    fn start(&self, handle: &ServerHandle) -> std::io::Result<()> {
        match &self.cluster {
            Some(bridge) => link::start(bridge, handle.clone(), Relay::default, mpsc::unbounded_channel().1),
            None => Ok(()),
        }
    }

    fn stop(&self) {
        if let Some(bridge) = &self.cluster {
            bridge.stop();
        }
    }

    fn interest_changed(&self, server_topic: &str) {
        if let Some(bridge) = &self.cluster {
            bridge.interest_changed(server_topic);
        }
    }

    fn publish(&self, from: Publisher<'_, '_>, topic: &Topic, payload: Payload<'_>, _: Option<&RawValue>) -> Published {
        let receivers = match from {
            Publisher::Conn { ws, echo, .. } => fanout::to_local(&mut FromConn { ws, echo }, topic, payload),
            Publisher::Http(handle) => fanout::to_local(&mut &*handle, topic, payload),
        };
        if let Some(bridge) = &self.cluster {
            bridge.forward(&topic.name, payload.kind(), payload.bytes());
        }
        Published::Done { receivers, at: None }
    }

    fn subscribe(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, since: Option<Position>, id: Option<&RawValue>) {
        let topic = json_topic(name);
        crate::topic::admitted(ws.subscribe(&topic), &topic);
        let reply = Reply::Subscribed { id: id.map(RawValue::to_owned), recovered: since.map(|_| false), at: None };
        control::send(ws, &reply);
    }

    fn room_start(&self, _name: &str, since: Option<Position>) -> RoomStart {
        RoomStart { recovered: since.map(|_| false), ..RoomStart::default() }
    }

    fn open_room(&self, ws: &mut Ws<'_, Conn>, name: &Arc<str>, _from: Option<Position>) {
        let topic = raw_topic(name);
        crate::topic::admitted(ws.subscribe(&topic), &topic);
    }

    fn history(&self, _: &mut Ws<'_, Conn>, _: &Arc<str>, _: usize, _: usize, id: Option<&RawValue>) -> Option<Reply> {
        let why = "this hub keeps no history (--history-size, --history-ttl)".into();
        Some(Reply::Refused { id: id.map(RawValue::to_owned), why })
    }

    fn elsewhere(&self, name: &str) -> u64 {
        self.cluster.as_ref().map_or(0, |bridge| bridge.elsewhere(name))
    }

    fn bridge_metrics(&self) -> Option<&BridgeMetrics> {
        self.cluster.as_ref().map(|bridge| &bridge.metrics)
    }
}
