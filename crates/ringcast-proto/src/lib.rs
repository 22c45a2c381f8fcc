#![doc = include_str!("../README.md")]

pub mod close;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{CloseFrame, Config, Connection, Event, MessageKind, Read, Role, State};
pub use error::{Error, ProtocolError, RequestError, ResponseError, UsageError};
pub use extension::{Extension, ExtensionError};
pub use utf8::{OwnedMessage, Utf8Bytes};
