//! `ringcast-proto`: the WebSocket protocol (RFC 6455) as a sans-IO state
//! machine, for both roles.
//!
//! No sockets and no clock: the caller feeds bytes it received and gets
//! events and bytes to send, in buffers it owns. That is what lets one core
//! serve the io_uring runtime, the client, the benchmark tool and the tests.
//!
//! - [`handshake`]: the opening handshake, server and client sides.
//! - [`Connection`]: frames after the handshake: assembly, control frames,
//!   the closing handshake, limits; [`Event`]s borrow the caller's input.
//! - [`frame`]: the header codec; [`mask`]: SIMD unmasking chosen at run
//!   time; [`utf8`]: incremental, fail-fast UTF-8 validation.
//! - [`Error`]: faults split by who caused them.
//!
//! ```
//! use ringcast_proto::{Config, Connection, Event};
//!
//! let mut conn = Connection::server(Config::default());
//! // A masked "Hello" text frame from a client (RFC 6455 §5.7).
//! let mut input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
//! let read = conn.read(&mut input).unwrap();
//! assert_eq!(read.event, Some(Event::Text("Hello")));
//! let mut out = Vec::new();
//! conn.send_text("Hello", &mut out).unwrap();
//! assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
//! ```

pub mod close;
pub mod connection;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;

pub use close::CloseCode;
pub use connection::{CloseFrame, Config, Connection, Event, MessageKind, Read, Role, State};
pub use error::{Error, ProtocolError, RequestError, ResponseError, UsageError};
