//! The message type handed to callbacks and taken by sends and publishes:
//! below the connection handle, pub/sub and the handler, which all use it.

/// A whole message, borrowed from the receive buffer (or from the assembly
/// buffer when it arrived in pieces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message: UTF-8, already validated.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// True for text.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}
