//! The extension seam (RFC 6455 §9): where a negotiated extension gives the
//! RSV bits a meaning and transforms a message's payload, without touching
//! framing.
//!
//! A [`Connection`](crate::Connection) with an [`Extension`] calls it at
//! three points and nowhere else:
//!
//! - **Frame headers**: the RSV bits the extension claims ([`Extension::rsv_bits`])
//!   are accepted on the first frame of a data message; any other RSV bit,
//!   or a claimed bit on a continuation or control frame, still fails the
//!   connection with 1002.
//! - **Inbound messages**: when a message whose first frame carried claimed
//!   bits is complete (all its frames assembled), [`Extension::decode`]
//!   turns its payload into the message; only then is a text message checked
//!   for UTF-8 (1007 if it is not), so the bytes on the wire never are.
//! - **Outbound messages**: [`Sender::send`](crate::connection::Sender::send)
//!   offers each whole message to [`Extension::encode`], which may replace
//!   the payload and name the RSV bits of its frame.
//!
//! permessage-deflate (RFC 7692) is such an extension: RSV1, inflate on
//! decode, deflate on encode. Negotiating it (the `Sec-WebSocket-Extensions`
//! header) is the handshake's business; this seam starts after that.

use std::fmt;

use crate::frame::MessageKind;

/// A negotiated extension that transforms whole messages. One value per
/// connection (it may keep compression state across messages).
pub trait Extension: fmt::Debug + Send {
    /// The RSV bits this extension gives a meaning to, as in
    /// [`FrameHeader::rsv`](crate::frame::FrameHeader::rsv) (RSV1 is `0b100`).
    fn rsv_bits(&self) -> u8;

    /// A whole message arrived whose first frame carried `rsv` (some of
    /// [`rsv_bits`](Self::rsv_bits)): writes the message's payload into `out`
    /// (empty on entry), at most `max_size` bytes. Text is checked for UTF-8
    /// after this returns.
    fn decode(&mut self, rsv: u8, payload: &[u8], max_size: usize, out: &mut Vec<u8>) -> Result<(), ExtensionError>;

    /// A whole message is about to be framed: either writes the payload to
    /// send into `out` (empty on entry) and returns the RSV bits its frame
    /// carries, or returns `None` to send `payload` as it is, with no bits
    /// set.
    fn encode(&mut self, kind: MessageKind, payload: &[u8], out: &mut Vec<u8>) -> Option<u8>;

    /// Whether [`encode`](Self::encode) keeps nothing from one message to
    /// the next, so that one message encoded once may be sent to many
    /// connections that negotiated the same (a publish compressed once for
    /// every subscriber). Default: false.
    fn encodes_alone(&self) -> bool {
        false
    }
}

/// Why an extension could not decode a message. The connection then fails
/// with the close code of the matching [`ProtocolError`](crate::ProtocolError).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtensionError {
    /// The payload is not valid for the extension (e.g. a corrupt deflate
    /// stream): closed with 1007.
    Invalid,
    /// The decoded message would exceed the maximum message size: closed
    /// with 1009.
    TooLarge,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtensionError::Invalid => f.write_str("the extension could not decode the message"),
            ExtensionError::TooLarge => f.write_str("the decoded message exceeds the maximum message size"),
        }
    }
}

impl std::error::Error for ExtensionError {}
