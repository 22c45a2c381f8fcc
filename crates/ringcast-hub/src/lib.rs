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

use ringcast::{Server, ServerHandle, ShutdownReport};

// From the bottom layer up: each imports only modules listed before it.
mod config;
mod control;
mod history;
mod limits;
mod topic;

mod handover;

mod auth;
mod deliver;

pub mod bridge;
mod metrics;

mod sequencer;
mod shared;

mod recover;

mod http;
mod routes;
mod tls;

use bridge::{Bridge, BridgeConfig};
pub use config::{parse_duration, parse_size, HubConfig, Policy, Secret};

/// Why a hub did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A setting that cannot work (the message says which and why).
    Config(String),
    /// The server could not start (address in use, no io_uring…).
    Server(ringcast::Error),
    /// The bridge's thread could not start.
    Bridge(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(why) => f.write_str(why),
            StartError::Server(e) => write!(f, "{e}"),
            StartError::Bridge(e) => write!(f, "cannot start the NATS bridge thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running hub: its server and, when clustered, its bridge to NATS.
#[derive(Clone)]
pub struct Hub {
    server: ServerHandle,
    bridge: Option<Arc<Bridge>>,
    certificate: Option<Arc<tls::Certificate>>,
}

impl Hub {
    /// The server: address, counters, publish.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// The cluster bridge, when `--nats` was given.
    pub fn bridge(&self) -> Option<&Arc<Bridge>> {
        self.bridge.as_ref()
    }

    /// Reads the TLS certificate and key files again (SIGHUP): new
    /// handshakes get the new certificate, open connections stay. On an
    /// error the certificate in use stays and the error says why. Without
    /// TLS, nothing to do.
    pub fn reload_tls(&self) -> Result<(), String> {
        match &self.certificate {
            Some(certificate) => certificate.reload(),
            None => Ok(()),
        }
    }

    /// Closes every connection with 1001 (see
    /// [`ServerHandle::shutdown`]), then stops the bridge.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let report = self.server.shutdown(grace);
        if let Some(bridge) = &self.bridge {
            bridge.stop();
        }
        report
    }
}

/// Starts the hub on `config.listen` (and its bridge when `config.nats` is
/// set).
pub fn start(config: HubConfig) -> Result<Hub, StartError> {
    let bridge = match config.nats.is_empty() {
        true => None,
        false => Some(
            Bridge::new(BridgeConfig {
                urls: config.nats.clone(),
                prefix: config.nats_prefix.clone(),
                max_pending: config.nats_max_pending,
                history: keeps_history(&config).then(|| bridge::StreamLimits {
                    size: config.history_size,
                    ttl: config.history_ttl,
                    memory: config.history_memory,
                    pace: pace(&config),
                }),
            })
            .map_err(StartError::Config)?,
        ),
    };
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
    if config.compression {
        let deflate = ringcast::Deflate::default()
            .threshold(config.compression_threshold)
            .server_context_takeover(config.compression_context_takeover)
            .window_bits(config.compression_window_bits)
            .memory_level(config.compression_memory_level);
        builder = builder.deflate(deflate);
    }
    let topics = Arc::new(metrics::TopicCount::default());
    let (counter, watcher) = (topics.clone(), bridge.clone());
    builder = builder.on_interest(move |topic, on| {
        counter.changed(topic, on);
        if let Some(bridge) = &watcher {
            bridge.interest_changed(topic);
        }
    });
    let certificate = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let certificate = Arc::new(tls::Certificate::load(cert.clone(), key.clone()).map_err(StartError::Config)?);
            let resolver = Arc::new(tls::Resolver(certificate.clone()));
            builder = builder.tls(ringcast::server_config_with_resolver(resolver));
            if let Some(addr) = &config.tls_listen {
                let addr = addr
                    .parse()
                    .map_err(|e| StartError::Config(format!("--tls-listen {addr}: not an address ({e})")))?;
                builder = builder.tls_address(addr);
            }
            Some(certificate)
        }
        _ => None,
    };
    let sequencer = sequencer(&config);
    let shards = builder.shard_count();
    let listen = config.listen.clone();
    let verifier = verifier(&config)?;
    let shared = Arc::new(shared::Shared {
        per_address: limits::PerAddress::new(config.max_connections_per_ip),
        config,
        handle: OnceLock::new(),
        metrics: (0..shards).map(|_| metrics::ShardMetrics::default()).collect(),
        topics,
        bridge: bridge.clone(),
        verifier,
        sequencer,
    });
    let for_shards = shared.clone();
    let handle = builder
        .start(listen, move |shard| routes::HubHandler { shard, shared: for_shards.clone() })
        .map_err(StartError::Server)?;
    let _ = shared.handle.set(handle.clone());
    warn_if_open(&shared.config);
    if let Some(bridge) = &bridge {
        if let Err(e) = bridge.start(handle.clone()) {
            handle.shutdown(Duration::ZERO);
            return Err(StartError::Bridge(e));
        }
    }
    Ok(Hub { server: handle, bridge, certificate })
}

/// The token checks the settings ask for, if any.
fn verifier(config: &HubConfig) -> Result<Option<auth::Verifier>, StartError> {
    if let Some(secret) = &config.jwt_secret {
        return auth::Verifier::from_secret(secret.expose()).map(Some).map_err(StartError::Config);
    }
    let Some(path) = &config.jwt_public_key else { return Ok(None) };
    let pem =
        std::fs::read(path).map_err(|e| StartError::Config(format!("--jwt-public-key {}: {e}", path.display())))?;
    auth::Verifier::from_public_key(&pem).map(Some).map_err(StartError::Config)
}

/// Whether the settings ask for history.
fn keeps_history(config: &HubConfig) -> bool {
    config.history_size.is_some() || config.history_ttl.is_some()
}

/// What a replay leaves queued on its connection at a time: well inside
/// the connection's backpressure budget.
fn pace(config: &HubConfig) -> usize {
    (config.max_backpressure / 4).clamp(1, 256 << 10)
}

/// The embedded store's sequencer, when the settings ask for history on a
/// hub that serves alone (with `--nats`, history lives in JetStream).
fn sequencer(config: &HubConfig) -> Option<sequencer::Sequencer> {
    if !keeps_history(config) || !config.nats.is_empty() {
        return None;
    }
    let bounds = history::Bounds {
        size: config.history_size.map_or(usize::MAX, |n| n as usize),
        ttl: config.history_ttl,
        memory: config.history_memory,
    };
    Some(sequencer::Sequencer::new(bounds, pace(config)))
}

/// An open hub is for development: say so.
fn warn_if_open(config: &HubConfig) {
    if config.jwt_secret.is_none() && config.jwt_public_key.is_none() {
        tracing::warn!("no --jwt-secret or --jwt-public-key: any client may subscribe and publish to any topic");
    }
    if config.api_keys.is_empty() {
        tracing::warn!("no --api-key: anyone who reaches the hub may POST /publish");
    }
}
