//! `ringcast-hub`: a ready-to-run WebSocket publish/subscribe hub on the
//! ringcast io_uring server.
//!
//! The binary is the usual way in (`cargo run --release -p ringcast-hub`);
//! this library lets tests and embedders start the same hub in-process.
//! Routes (see the README):
//! `/topics/{name}` rooms, the `/ws` JSON protocol, `POST /publish/{name}`,
//! `GET /metrics`, `GET /healthz` and the chat page at `/`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ringcast::{Server, ServerHandle};

mod config;
mod control;
mod metrics;
mod routes;
mod topic;

pub use config::{parse_duration, parse_size, HubConfig, Policy};

/// Starts the hub on `config.listen` and returns the server's handle (for
/// its address, counters and shutdown).
pub fn start(config: HubConfig) -> Result<ServerHandle, ringcast::Error> {
    let mut builder = Server::builder()
        .max_backpressure(config.max_backpressure)
        .slow_consumer(config.slow_consumer.into())
        .max_message_size(config.max_message_size)
        .max_frame_size(config.max_message_size)
        .max_connections(config.max_connections)
        .batch_wait(Duration::from_micros(config.batch_wait_us));
    if let Some(shards) = config.shards {
        builder = builder.shards(shards);
    }
    if let Some(size) = config.send_buffer_size {
        builder = builder.send_buffer_size(size);
    }
    let shards = builder.shard_count();
    let listen = config.listen.clone();
    let shared = Arc::new(routes::Shared {
        config,
        handle: OnceLock::new(),
        metrics: (0..shards).map(|_| metrics::ShardMetrics::default()).collect(),
    });
    let for_shards = shared.clone();
    let handle = builder.start(listen, move |shard| routes::HubHandler { shard, shared: for_shards.clone() })?;
    let _ = shared.handle.set(handle.clone());
    Ok(handle)
}
