#![doc = include_str!("../README.md")]
//!
//! ## The API at a glance
//!
//! - Start: [`ServerBuilder`] (limits, shards, TLS, compression) →
//!   [`ServerBuilder::start`] with a factory of handlers, one per shard →
//!   [`ServerHandle`] (address, publish from any thread, counters,
//!   shutdown, signals).
//! - React: [`Handler`] (open, message, drain, alarm, close) and
//!   [`ServerHandler`] (`upgrade`, plain `http`); each callback gets a
//!   [`Ws`], the connection: send, close, ping, subscribe, publish, its
//!   data.
//! - Decide: [`Request`] (path, query, headers, `Origin`, subprotocols) →
//!   [`Decision`] (accept with an [`Accept`], or reject with a
//!   [`Response`]).
//! - Client: [`ClientBuilder`] → [`ClientHandle::connect`] with a
//!   [`Connect`]; [`ClientHandler`] adds `connected` and `connect_failed`.
//! - Errors by who is at fault: [`Error`] (start), [`ConnectError`] (a
//!   client connection), [`SendError`], [`SubscribeError`]; close codes
//!   are [`CloseCode`].
//! - Modules: [`tls`] (certificates from PEM files), [`broker`] (what a
//!   broker with history needs: kept frames, sequenced publishes, notes,
//!   interest), [`bench`](mod@bench) (the TCP echo floor), [`proto`] (the sans-IO
//!   protocol core).

// The modules from the bottom layer up; each imports only modules listed
// before it (docs/architecture.md draws the arrows).
mod sys;
pub mod tls;
mod transport;

mod builder;
mod config;
mod error;
mod inbox;
mod message;
mod stats;
mod timer;

mod alarm;

mod dialer;
mod pubsub;

mod ws;

mod handler;

mod callbacks;
mod shard;

mod runtime;

mod signals;

mod client;
mod notes;
mod server;

pub mod bench;
pub mod broker;

/// `docs/guide.md`, whose Rust blocks are compiled as doc tests of this
/// crate (outside the crate's directory: only in the repository).
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide.md")]
pub struct Guide;

/// The repository's README, whose example is compiled the same way.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct Readme;

/// The sans-IO protocol core this runtime drives: for a server on another
/// event loop, or the protocol's own types beyond the ones re-exported
/// here.
pub use ringcast_proto as proto;

pub use builder::Builder;
pub use client::{ClientBuilder, ClientHandle, ClientRole, Connect};
pub use config::{Deflate, SlowConsumer};
pub use error::{ConnectError, Error, SubscribeError};
pub use handler::{Accept, ClientHandler, CloseInfo, Decision, Handler, Peer, Response, ServerHandler};
pub use message::Message;
pub use ringcast_proto::handshake::Request;
pub use ringcast_proto::{CloseCode, RequestError};
pub use runtime::ShutdownReport;
pub use server::{ServerBuilder, ServerHandle, ServerRole};
pub use stats::Stats;
pub use ws::{ConnId, SendError, Ws};
