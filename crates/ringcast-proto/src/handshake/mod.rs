//! The opening handshake (RFC 6455 §4), both sides, as pure functions over
//! caller-owned buffers.
//!
//! Server side: [`RequestReader`] finds a complete request head in the bytes
//! received so far and parses it into a [`Request`] that borrows them; the
//! caller's policy looks at path, Origin and subprotocols;
//! [`Request::validate`] checks the WebSocket rules and yields an
//! [`Upgrade`] that writes the 101 response; [`write_response`] answers
//! anything else (rejections, plain HTTP such as `/healthz`).
//!
//! Client side: [`WsUri`] parses `ws://` and `wss://` URIs,
//! [`ClientHandshake`] writes the request and checks the 101 response.

mod client;
mod headers;
mod key;
mod request;
mod response;
mod uri;

pub use client::{ClientHandshake, Response};
pub use headers::{parse_extension_header, ExtensionOffer};
pub use key::{accept_key, AcceptKey, GUID};
pub use request::{Request, RequestLimits, RequestReader, Upgrade};
pub use response::{reason_phrase, write_response};
pub use uri::WsUri;
