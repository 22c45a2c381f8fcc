//! WebSocket servers on Linux io_uring.
//!
//! A server is a set of shards, one thread per CPU by default, each pinned,
//! with its own io_uring, its own `SO_REUSEPORT` listener and its own table
//! of connections: nothing is shared on the hot path. Bytes arrive in a
//! pool of receive buffers registered with the kernel, are parsed and
//! unmasked in place by [`ringcast_proto`], and reach the [`Handler`] as
//! borrowed `&str`/`&[u8]`. Everything sent during a loop turn is corked and
//! leaves with the turn's single `io_uring_enter`.
//!
//! ```no_run
//! use ringcast::{Decision, Handler, Message, Server, Ws};
//! use ringcast::proto::handshake::Request;
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type Data = ();
//!
//!     fn upgrade(&mut self, request: &Request<'_>) -> Decision<()> {
//!         if request.path() == "/" { Decision::accept(()) } else { Decision::reject(404) }
//!     }
//!
//!     fn message(&mut self, ws: &mut Ws<'_, ()>, message: Message<'_>) {
//!         let _ = ws.send(message);
//!     }
//! }
//!
//! let server = Server::builder().shards(2).start("127.0.0.1:9001", |_shard| Echo)?;
//! println!("listening on {}", server.local_addr());
//! server.wait();
//! # Ok::<(), ringcast::Error>(())
//! ```
//!
//! Requires Linux 6.0 or later (multishot receive, provided buffer rings).
//! Without root, the receive pool counts against `RLIMIT_MEMLOCK` on some
//! kernels: raise `ulimit -l` or shrink it with
//! [`Builder::recv_buffers`].

// The modules from the bottom layer up; each imports only modules listed
// before it (docs/architecture.md draws the arrows).
mod sys;
mod tls;
mod tls_files;
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

mod client;
mod notes;
mod server;

/// The sans-IO protocol core this runtime drives.
pub use ringcast_proto as proto;
/// The rustls this crate was built with, for [`ServerBuilder::tls`].
pub use rustls;

pub use builder::Builder;
pub use client::{Client, ClientBuilder, ClientHandle, ClientRole, Connect};
pub use config::{Deflate, SlowConsumer};
pub use error::{ConnectError, Error};
pub use handler::{Accept, CloseInfo, Decision, Handler, Peer, Response};
pub use message::Message;
pub use notes::Notes;
pub use pubsub::Frame;
pub use ringcast_proto::CloseCode;
pub use runtime::ShutdownReport;
pub use server::{Server, ServerBuilder, ServerHandle, ServerRole};
pub use stats::Stats;
pub use tls_files::{
    crypto_provider, load_certified_key, server_config_from_pem, server_config_with_resolver, TlsFileError,
};
pub use ws::{ConnId, SendError, Ws};
