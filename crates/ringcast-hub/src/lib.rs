#![doc = include_str!("../README.md")]
//!
//! Routes: `/topics/{name}` rooms, the `/ws` JSON protocol,
//! `POST /publish/{name}`, `GET /metrics`, `GET /dashboard`,
//! `GET /healthz` and the chat page at `/`. `docs/architecture.md` ("The
//! hub") names every file and draws the publish path of each topic log.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ringcast::broker::BuilderExt as _;
use ringcast::tls::TlsFileError;
use ringcast::{ServerBuilder, ServerHandle, ShutdownReport};

// From the bottom layer up: each imports only modules listed before it.
mod config;
mod limits;
mod payload;
mod position;
mod topic;

mod auth;
mod control;
mod counters;
mod error;
mod tls;

mod conn;
mod fanout;

mod cluster;
mod log;

mod state;

mod http;
mod prometheus;
mod requests;
mod room;
mod upgrade;

mod handler;

pub use auth::KeyError;
pub use config::{parse_duration, parse_size, HubConfig, Policy, Secret, ValueError};
pub use error::{ConfigError, StartError};

use crate::log::TopicLog;

/// A running hub: its server and its topic log (with, when clustered, the
/// bridge to NATS).
#[derive(Clone)]
pub struct Hub {
    server: ServerHandle,
    log: Arc<dyn TopicLog>,
    certificate: Option<Arc<tls::Certificate>>,
}

impl Hub {
    /// The server: address, counters, publish.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }

    /// Reads the TLS certificate and key files again (SIGHUP): new
    /// handshakes get the new certificate, open connections stay. On an
    /// error the certificate in use stays and the error says why. Without
    /// TLS, nothing to do.
    pub fn reload_tls(&self) -> Result<(), TlsFileError> {
        match &self.certificate {
            Some(certificate) => certificate.reload(),
            None => Ok(()),
        }
    }

    /// Closes every connection with 1001 (see
    /// [`ServerHandle::shutdown`]), then stops the bridge.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let report = self.server.shutdown(grace);
        self.log.stop();
        report
    }
}

/// Starts the hub on `config.listen` (and its bridge when `config.nats` is
/// set).
pub fn start(config: HubConfig) -> Result<Hub, StartError> {
    let log = log::choose(&config)?;
    let mut builder = ServerBuilder::new()
        .max_backpressure(config.max_backpressure)
        .slow_consumer(config.slow_consumer.into())
        .max_message_size(config.max_message_size)
        .max_frame_size(config.max_message_size)
        .max_connections(config.max_connections)
        .max_subscriptions(config.max_topics_per_connection.max(1))
        .max_topic_len(topic::MAX_SERVER_TOPIC)
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
    let topics = Arc::new(counters::TopicCount::default());
    let (counter, watcher) = (topics.clone(), log.clone());
    builder = builder.on_interest(move |topic, on| {
        counter.changed(topic, on);
        watcher.interest_changed(topic);
    });
    let certificate = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let certificate =
                Arc::new(tls::Certificate::load(cert.clone(), key.clone()).map_err(ConfigError::Certificate)?);
            let resolver = Arc::new(tls::Resolver(certificate.clone()));
            builder = builder.tls(ringcast::tls::server_config_with_resolver(resolver));
            if let Some(addr) = &config.tls_listen {
                let parsed = addr.parse().map_err(|error| ConfigError::TlsListen { addr: addr.clone(), error })?;
                builder = builder.tls_address(parsed);
            }
            Some(certificate)
        }
        _ => None,
    };
    let shards = builder.shard_count();
    let listen = config.listen.clone();
    let verifier = verifier(&config)?;
    let state = Arc::new(state::HubState {
        per_address: limits::PerAddress::new(config.max_connections_per_ip),
        config,
        handle: OnceLock::new(),
        metrics: (0..shards).map(|_| counters::ShardMetrics::default()).collect(),
        topics,
        verifier,
        log: log.clone(),
    });
    let for_shards = state.clone();
    let handle = builder
        .start(listen, move |index| handler::HubHandler { shard: state::Shard { state: for_shards.clone(), index } })
        .map_err(StartError::Server)?;
    let _ = state.handle.set(handle.clone());
    warn_if_open(&state.config);
    if let Err(e) = log.start(&handle) {
        handle.shutdown(Duration::ZERO);
        return Err(StartError::Bridge(e));
    }
    Ok(Hub { server: handle, log, certificate })
}

/// The token checks the settings ask for, if any.
fn verifier(config: &HubConfig) -> Result<Option<auth::Verifier>, ConfigError> {
    if let Some(secret) = &config.jwt_secret {
        return auth::Verifier::from_secret(secret.expose()).map(Some).map_err(ConfigError::Key);
    }
    let Some(path) = &config.jwt_public_key else { return Ok(None) };
    let pem = std::fs::read(path).map_err(|error| ConfigError::KeyFile { path: path.clone(), error })?;
    auth::Verifier::from_public_key(&pem).map(Some).map_err(ConfigError::Key)
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
