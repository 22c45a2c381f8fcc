//! The client side: writing the upgrade request and checking the answer.

use super::headers::{self, ExtensionOffer, Fields, HeadScanner, TokenCheck};
use super::key::{self, AcceptKey};
use super::uri::WsUri;
use crate::error::{ResponseError, UsageError};

/// Most header fields a response may carry.
const MAX_HEADERS: usize = 64;

/// One client's opening handshake: the request it sends and the checks the
/// server's answer must pass.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    uri: WsUri,
    key: [u8; 24],
    accept: AcceptKey,
    protocols: Vec<String>,
    extensions: Vec<String>,
    extra: Vec<(String, String)>,
    scanner: HeadScanner,
}

impl ClientHandshake {
    /// A handshake with a random 16-byte nonce from the OS.
    ///
    /// # Panics
    /// If the operating system has no entropy to give.
    pub fn new(uri: WsUri) -> Self {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).expect("the OS random source is unavailable");
        Self::with_nonce(uri, nonce)
    }

    /// A handshake with a chosen nonce (tests; real clients use [`Self::new`]).
    pub fn with_nonce(uri: WsUri, nonce: [u8; 16]) -> Self {
        let key = key::encode_client_key(nonce);
        ClientHandshake {
            uri,
            key,
            accept: key::accept_key(&key),
            protocols: Vec::new(),
            extensions: Vec::new(),
            extra: Vec::new(),
            scanner: HeadScanner::new(8 << 10),
        }
    }

    /// Offers a subprotocol (in order of preference).
    pub fn protocol(mut self, name: &str) -> Self {
        self.protocols.push(name.to_owned());
        self
    }

    /// Offers an extension, e.g. `permessage-deflate; client_max_window_bits`.
    ///
    /// `ringcast-proto` decodes no extension yet: if the server accepts one
    /// whose frames set RSV bits, the [`crate::Connection`] fails them with
    /// 1002. Offer only what your own code can decode.
    pub fn extension(mut self, offer: &str) -> Self {
        self.extensions.push(offer.to_owned());
        self
    }

    /// Adds a header field, e.g. `Origin` or `Authorization`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the largest response head accepted (default 8 KiB).
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.scanner.set_max(bytes);
        self
    }

    /// The target URI.
    pub fn uri(&self) -> &WsUri {
        &self.uri
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        std::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// Appends the upgrade request to `out`.
    pub fn write_request(&self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        let protocols = self.protocols.join(", ");
        let extensions = self.extensions.join(", ");
        let user = self.extra.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let optional =
            [("Sec-WebSocket-Protocol", protocols.as_str()), ("Sec-WebSocket-Extensions", extensions.as_str())];
        let optional = optional.into_iter().filter(|(_, v)| !v.is_empty());
        let fields: Vec<(&str, &str)> = optional.chain(user).collect();
        if !fields
            .iter()
            .all(|(n, v)| !n.is_empty() && headers::is_safe_field(n.as_bytes()) && headers::is_safe_field(v.as_bytes()))
        {
            return Err(UsageError::InvalidHeader);
        }
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.uri.resource().as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(self.uri.host_header().as_bytes());
        out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
        out.extend_from_slice(&self.key);
        out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
        for (name, value) in fields {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Looks at everything received so far (`buf` only grows between
    /// calls) and returns the response once its head is complete and valid.
    /// Bytes after [`Response::head_len`] are already WebSocket frames.
    pub fn read_response<'b>(&mut self, buf: &'b [u8]) -> Result<Option<Response<'b>>, ResponseError> {
        if !self.scanner.should_parse(buf) {
            return self.check_size(buf.len()).map(|()| None);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut fields);
        let head_len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return self.check_size(buf.len()).map(|()| None),
            Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeadTooLarge),
            Err(_) => return Err(ResponseError::Malformed),
        };
        self.check_size(head_len)?;
        let response =
            Response { status: resp.code.unwrap_or_default(), fields: Fields::from_httparse(resp.headers), head_len };
        self.check(&response)?;
        Ok(Some(response))
    }

    fn check_size(&self, len: usize) -> Result<(), ResponseError> {
        if self.scanner.within_limit(len) {
            Ok(())
        } else {
            Err(ResponseError::HeadTooLarge)
        }
    }

    /// RFC 6455 §4.1: status 101, Upgrade, Connection, the accept value, and
    /// nothing chosen that we did not offer.
    fn check(&self, response: &Response<'_>) -> Result<(), ResponseError> {
        if response.status != 101 {
            return Err(ResponseError::Status(response.status));
        }
        for (name, token) in [("Upgrade", "websocket"), ("Connection", "upgrade")] {
            match response.fields.token(name, token) {
                TokenCheck::Missing => return Err(ResponseError::MissingHeader(name)),
                TokenCheck::Absent => return Err(ResponseError::InvalidHeader(name)),
                TokenCheck::Present => {}
            }
        }
        let accept =
            response.header("Sec-WebSocket-Accept").ok_or(ResponseError::MissingHeader("Sec-WebSocket-Accept"))?;
        if accept != self.accept.as_str().as_bytes() {
            return Err(ResponseError::AcceptMismatch);
        }
        let mut chosen = response.header_all("Sec-WebSocket-Protocol");
        if let Some(p) = chosen.next() {
            if chosen.next().is_some() || !self.protocols.iter().any(|o| o.as_bytes() == p) {
                return Err(ResponseError::UnofferedProtocol);
            }
        }
        let offered: Vec<ExtensionOffer<'_>> = {
            let mut v = Vec::new();
            for offer in &self.extensions {
                headers::parse_extensions(offer.as_bytes(), &mut v);
            }
            v
        };
        // An answer we cannot even read must not pass for "no extension".
        if response.header_all("Sec-WebSocket-Extensions").any(|v| std::str::from_utf8(v).is_err()) {
            return Err(ResponseError::InvalidHeader("Sec-WebSocket-Extensions"));
        }
        let accepted = response.extensions();
        if accepted.iter().any(|a| !offered.iter().any(|o| o.name.eq_ignore_ascii_case(a.name))) {
            return Err(ResponseError::UnofferedExtension);
        }
        Ok(())
    }
}

/// A valid 101 response, borrowing the receive buffer.
#[derive(Debug, Clone)]
pub struct Response<'b> {
    status: u16,
    fields: Fields<'b>,
    head_len: usize,
}

impl<'b> Response<'b> {
    /// The status (always 101 once returned by [`ClientHandshake::read_response`]).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Length of the head in bytes.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// The first value of the field `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.fields.first(name)
    }

    /// Every value of the field `name` (case-insensitive).
    pub fn header_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.fields.all(name)
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&'b str> {
        self.header("Sec-WebSocket-Protocol").and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The extensions the server accepted.
    pub fn extensions(&self) -> Vec<ExtensionOffer<'b>> {
        self.fields.extensions()
    }
}
