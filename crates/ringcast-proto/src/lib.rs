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
//! An echo, the whole cycle after the handshake:
//!
//! ```
//! use ringcast_proto::{Config, Connection, Event};
//!
//! let mut conn = Connection::server(Config::default());
//! // What a client sent: a masked "Hello" text frame (RFC 6455 §5.7), then
//! // a ping.
//! let mut input = vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0x89, 0x80, 1, 2, 3, 4];
//! let mut out = Vec::new();
//! let (rx, tx) = conn.split();
//! let mut pos = 0;
//! loop {
//!     let read = rx.read(tx, &mut input[pos..])?; // unmasks in place
//!     pos += read.consumed;
//!     match read.event {
//!         // `text` borrows `input`: no copy before the answer is framed.
//!         Some(Event::Text(text)) => tx.send_text(text, &mut out)?,
//!         Some(Event::Binary(data)) => tx.send_binary(data, &mut out)?,
//!         Some(_) => {} // the pong is queued for us
//!         None => break, // all input used: wait for more bytes
//!     }
//! }
//! tx.take_pending(&mut out); // the pong, after our own output
//! assert_eq!(out, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o', 0x8a, 0x00]);
//! # Ok::<(), ringcast_proto::Error>(())
//! ```

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
