//! TLS (`wss://`): building the rustls configuration a server or client
//! is given ([`ServerBuilder::tls`](crate::ServerBuilder::tls),
//! [`ClientBuilder::tls`](crate::ClientBuilder::tls)), from PEM files or a
//! certificate resolver of your own.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let config = ringcast::tls::server_config_from_pem(Path::new("cert.pem"), Path::new("key.pem"))?;
//! let builder = ringcast::ServerBuilder::new().tls(config);
//! # let _ = builder;
//! # Ok::<(), ringcast::tls::TlsFileError>(())
//! ```
//!
//! The runtime drives rustls itself, in the shard, with no buffer of
//! rustls' own between the socket and the WebSocket code. The crypto is
//! the process's default rustls provider, `ring` unless the application
//! installed another ([`crypto_provider`]). [`rustls`] is re-exported here
//! so that the configuration types match the ones this crate was built
//! with.

mod files;
#[cfg(feature = "ktls")]
mod kernel;
mod session;

/// The rustls this crate was built with.
pub use rustls;

pub use files::{
    crypto_provider, load_certified_key, server_config_from_pem, server_config_with_resolver, TlsFileError,
};
pub(crate) use session::{client_config, server_config, Tls};
