//! Why a hub does not start: settings that cannot work (the operator's
//! fault), or a server or thread that could not start (the machine's).

use std::path::PathBuf;

use crate::auth::KeyError;

/// A setting that cannot work, and why.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The token key (`--jwt-secret`, `--jwt-public-key`).
    Key(KeyError),
    /// The `--jwt-public-key` file cannot be read.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The `--tls-cert` / `--tls-key` pair.
    Certificate(ringcast::tls::TlsFileError),
    /// `--tls-listen` is not an address.
    TlsListen {
        /// What was given.
        addr: String,
        /// Why it is not an address.
        error: std::net::AddrParseError,
    },
    /// `--nats-prefix` is not a subject prefix.
    NatsPrefix(String),
    /// `--nats` was given without a server.
    NoNatsServer,
    /// A `--nats` entry is not a NATS address.
    NatsAddress {
        /// What was given.
        url: String,
        /// Why (the NATS client's words).
        why: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Key(e) => write!(f, "{e}"),
            ConfigError::KeyFile { path, error } => write!(f, "--jwt-public-key {}: {error}", path.display()),
            ConfigError::Certificate(e) => write!(f, "{e}"),
            ConfigError::TlsListen { addr, error } => write!(f, "--tls-listen {addr}: not an address ({error})"),
            ConfigError::NatsPrefix(prefix) => {
                write!(f, "invalid NATS subject prefix {prefix:?}: dot-separated tokens, no spaces or wildcards")
            }
            ConfigError::NoNatsServer => f.write_str("no NATS server given"),
            ConfigError::NatsAddress { url, why } => write!(f, "invalid NATS address {url:?}: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Key(e) => Some(e),
            ConfigError::KeyFile { error, .. } => Some(error),
            ConfigError::Certificate(e) => Some(e),
            ConfigError::TlsListen { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Why a hub did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A setting that cannot work.
    Config(ConfigError),
    /// The server could not start (address in use, no io_uring…).
    Server(ringcast::Error),
    /// The bridge's thread could not start.
    Bridge(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Server(e) => write!(f, "{e}"),
            StartError::Bridge(e) => write!(f, "cannot start the NATS bridge thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Server(e) => Some(e),
            StartError::Bridge(e) => Some(e),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}
