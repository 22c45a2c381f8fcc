//! Errors, split by who is at fault.
//!
//! A WebSocket endpoint must answer every fault with the right signal: a
//! misbehaving peer gets a close code, a bad opening handshake gets an HTTP
//! status, and a caller who misuses the API gets an error it can fix in code.
//! Keeping the three apart means the runtime never has to guess which signal
//! to send.

use std::fmt;

use crate::close::code::CloseCode;

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke RFC 6455 after the handshake: the connection must be
    /// failed with [`ProtocolError::close_code`].
    Protocol(ProtocolError),
    /// The client's opening handshake cannot be accepted: answer with
    /// [`RequestError::status`].
    Request(RequestError),
    /// The server's answer to our opening handshake is unacceptable.
    Response(ResponseError),
    /// The caller used the API in a way RFC 6455 forbids.
    Usage(UsageError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "peer protocol violation: {e}"),
            Error::Request(e) => write!(f, "unacceptable handshake request: {e}"),
            Error::Response(e) => write!(f, "unacceptable handshake response: {e}"),
            Error::Usage(e) => write!(f, "API misuse: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}
impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        Error::Request(e)
    }
}
impl From<ResponseError> for Error {
    fn from(e: ResponseError) -> Self {
        Error::Response(e)
    }
}
impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Error::Usage(e)
    }
}

/// The peer misbehaved after the handshake. Each variant maps to the close
/// code the connection is failed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client sent a frame without a mask (RFC 6455 §5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (RFC 6455 §5.1).
    MaskedFrame,
    /// RSV1–3 set while no negotiated extension gives them a meaning.
    ReservedBits(u8),
    /// An opcode RFC 6455 reserves (3–7, 11–15).
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set.
    InvalidLength,
    /// A control frame with FIN clear.
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload.
    ControlTooLong,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is unfinished.
    ExpectedContinuation,
    /// A close frame whose payload is one byte long.
    InvalidClosePayload,
    /// A close frame carrying a code that may not appear on the wire.
    InvalidCloseCode(u16),
    /// A text message or close reason that is not UTF-8.
    InvalidUtf8,
    /// A frame larger than the configured maximum frame size.
    FrameTooLarge,
    /// A message larger than the configured maximum message size.
    MessageTooLarge,
    /// The negotiated extension could not decode a message (see
    /// [`Extension::decode`](crate::Extension::decode)).
    ExtensionData,
}

impl ProtocolError {
    /// The close code RFC 6455 prescribes for this violation.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::ExtensionData => CloseCode::INVALID_PAYLOAD,
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrame => f.write_str("client frame is not masked"),
            ProtocolError::MaskedFrame => f.write_str("server frame is masked"),
            ProtocolError::ReservedBits(b) => write!(f, "reserved bits {b:#05b} set"),
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidLength => f.write_str("64-bit length has its top bit set"),
            ProtocolError::FragmentedControl => f.write_str("control frame is fragmented"),
            ProtocolError::ControlTooLong => f.write_str("control frame payload exceeds 125 bytes"),
            ProtocolError::UnexpectedContinuation => f.write_str("continuation frame without a message in progress"),
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is unfinished")
            }
            ProtocolError::InvalidClosePayload => f.write_str("close payload of one byte"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "close code {c} is not allowed"),
            ProtocolError::InvalidUtf8 => f.write_str("invalid UTF-8 in text"),
            ProtocolError::FrameTooLarge => f.write_str("frame exceeds the maximum frame size"),
            ProtocolError::MessageTooLarge => f.write_str("message exceeds the maximum message size"),
            ProtocolError::ExtensionData => f.write_str("the extension could not decode a message"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Why a client's opening handshake is refused. [`RequestError::status`]
/// gives the HTTP status to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The bytes are not an HTTP/1.x request.
    Malformed,
    /// The request head is larger than the configured limit.
    HeadTooLarge,
    /// The request has more header fields than the parser accepts.
    TooManyHeaders,
    /// An upgrade request that is not GET.
    MethodNotGet,
    /// HTTP/1.0: RFC 6455 needs HTTP/1.1 or later.
    HttpVersion,
    /// A required header field is absent.
    MissingHeader(&'static str),
    /// A header field is present but its value is unacceptable (or repeated
    /// where it must be unique).
    InvalidHeader(&'static str),
    /// `Sec-WebSocket-Version` is not 13.
    UnsupportedVersion,
}

impl RequestError {
    /// The HTTP status the server answers with.
    pub fn status(self) -> u16 {
        match self {
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => 431,
            RequestError::UnsupportedVersion => 426,
            _ => 400,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed => f.write_str("malformed HTTP request"),
            RequestError::HeadTooLarge => f.write_str("request head too large"),
            RequestError::TooManyHeaders => f.write_str("too many header fields"),
            RequestError::MethodNotGet => f.write_str("method must be GET"),
            RequestError::HttpVersion => f.write_str("HTTP/1.1 or later is required"),
            RequestError::MissingHeader(h) => write!(f, "missing header {h}"),
            RequestError::InvalidHeader(h) => write!(f, "invalid header {h}"),
            RequestError::UnsupportedVersion => f.write_str("Sec-WebSocket-Version must be 13"),
        }
    }
}

impl std::error::Error for RequestError {}

/// Why a server's answer to our opening handshake is refused (client role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The bytes are not an HTTP/1.x response.
    Malformed,
    /// The response head is larger than the configured limit.
    HeadTooLarge,
    /// The status is not 101; the server refused or did not understand.
    Status(u16),
    /// A required header field is absent.
    MissingHeader(&'static str),
    /// A header field is present but its value is wrong.
    InvalidHeader(&'static str),
    /// `Sec-WebSocket-Accept` does not match our key.
    AcceptMismatch,
    /// The server chose a subprotocol we did not offer.
    UnofferedProtocol,
    /// The server accepted an extension we did not offer.
    UnofferedExtension,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Malformed => f.write_str("malformed HTTP response"),
            ResponseError::HeadTooLarge => f.write_str("response head too large"),
            ResponseError::Status(s) => write!(f, "status {s} instead of 101"),
            ResponseError::MissingHeader(h) => write!(f, "missing header {h}"),
            ResponseError::InvalidHeader(h) => write!(f, "invalid header {h}"),
            ResponseError::AcceptMismatch => f.write_str("Sec-WebSocket-Accept does not match"),
            ResponseError::UnofferedProtocol => f.write_str("subprotocol was not offered"),
            ResponseError::UnofferedExtension => f.write_str("extension was not offered"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// The caller asked for something RFC 6455 or this API does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// A close frame has been sent or received: no more data may be sent.
    Closing,
    /// Control frame payloads are limited to 125 bytes.
    ControlTooLong,
    /// This close code may not be sent (e.g. 1005, 1006, 1015).
    InvalidCloseCode(u16),
    /// A close reason is limited to 123 bytes.
    CloseReasonTooLong,
    /// A whole message was sent while a fragmented one is unfinished, or a
    /// continuation was sent with none started.
    FragmentState,
    /// A subprotocol that the client did not offer.
    UnofferedProtocol,
    /// A header name or value with bytes that would break the HTTP head.
    InvalidHeader,
    /// A URI that is not `ws://` or `wss://`, or is otherwise unusable.
    InvalidUri(&'static str),
    /// A receiver was given the sender of another connection.
    MismatchedHalves,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::Closing => f.write_str("the connection is closing"),
            UsageError::ControlTooLong => f.write_str("control payload exceeds 125 bytes"),
            UsageError::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            UsageError::CloseReasonTooLong => f.write_str("close reason exceeds 123 bytes"),
            UsageError::FragmentState => f.write_str("fragmented send out of order"),
            UsageError::UnofferedProtocol => f.write_str("subprotocol was not offered"),
            UsageError::InvalidHeader => f.write_str("header contains forbidden bytes"),
            UsageError::InvalidUri(why) => write!(f, "invalid WebSocket URI: {why}"),
            UsageError::MismatchedHalves => f.write_str("receiver and sender belong to different connections"),
        }
    }
}

impl std::error::Error for UsageError {}
