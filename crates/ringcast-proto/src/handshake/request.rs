//! The server side: reading and validating the client's upgrade request.

use super::headers::{self, ExtensionOffer, Fields, HeadScanner, TokenCheck};
use super::key::{self, AcceptKey};
use super::response::write_head;
use crate::error::{RequestError, UsageError};

/// Most header fields a request may carry; more is answered with 431.
pub const MAX_HEADERS: usize = 64;

/// Limits on the request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLimits {
    /// Largest request head (request line and header fields) in bytes;
    /// larger is answered with 431. Default 8 KiB.
    pub max_head_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits { max_head_bytes: 8 << 10 }
    }
}

impl RequestLimits {
    /// Sets [`RequestLimits::max_head_bytes`].
    pub fn max_head_bytes(mut self, bytes: usize) -> Self {
        self.max_head_bytes = bytes;
        self
    }
}

/// Finds a complete request head in a buffer that grows as bytes arrive.
///
/// The full parser runs on the first call and then only when a new line has
/// ended, so a client trickling its head a byte at a time (slowloris) costs
/// a scan of each new byte, not a re-parse of the whole head per byte; and
/// garbage is refused as soon as its first line is known to be wrong.
#[derive(Debug, Clone)]
pub struct RequestReader {
    scanner: HeadScanner,
}

impl Default for RequestReader {
    fn default() -> Self {
        Self::new(RequestLimits::default())
    }
}

impl RequestReader {
    /// A reader with these limits.
    pub fn new(limits: RequestLimits) -> Self {
        RequestReader { scanner: HeadScanner::new(limits.max_head_bytes) }
    }

    /// Looks at everything received so far (`buf` only ever grows between
    /// calls). Returns the request once its head is complete; bytes after
    /// [`Request::head_len`] already belong to the WebSocket stream.
    pub fn poll<'b>(&mut self, buf: &'b [u8]) -> Result<Option<Request<'b>>, RequestError> {
        if !self.scanner.should_parse(buf) {
            return self.check_size(buf.len()).map(|()| None);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                self.check_size(head_len)?;
                Ok(Some(Request::from_parsed(&req, head_len)))
            }
            Ok(httparse::Status::Partial) => self.check_size(buf.len()).map(|()| None),
            Err(httparse::Error::TooManyHeaders) => Err(RequestError::TooManyHeaders),
            Err(_) => Err(RequestError::Malformed),
        }
    }

    fn check_size(&self, len: usize) -> Result<(), RequestError> {
        if self.scanner.within_limit(len) {
            Ok(())
        } else {
            Err(RequestError::HeadTooLarge)
        }
    }
}

/// A parsed HTTP/1.x request head, borrowing the receive buffer. It exposes
/// what a server's policy decides on: path, query, Origin, subprotocols and
/// extensions.
#[derive(Debug, Clone)]
pub struct Request<'b> {
    method: &'b str,
    target: &'b str,
    minor_version: u8,
    fields: Fields<'b>,
    head_len: usize,
}

impl<'b> Request<'b> {
    fn from_parsed(req: &httparse::Request<'_, 'b>, head_len: usize) -> Self {
        Request {
            method: req.method.unwrap_or_default(),
            target: req.path.unwrap_or_default(),
            minor_version: req.version.unwrap_or_default(),
            fields: Fields::from_httparse(req.headers),
            head_len,
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'b str {
        self.method
    }

    /// The request target as sent: path and query.
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The path: the target up to `?`.
    pub fn path(&self) -> &'b str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The query: what follows `?`, if anything.
    pub fn query(&self) -> Option<&'b str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The minor HTTP version: 1 for HTTP/1.1.
    pub fn http_minor(&self) -> u8 {
        self.minor_version
    }

    /// Length of the head in bytes; what follows is not HTTP.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// Every header field in order, names as sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> + '_ {
        self.fields.iter()
    }

    /// The values of every field named `name` (case-insensitive).
    pub fn header_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.fields.all(name)
    }

    /// The first value of the field `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.fields.first(name)
    }

    /// The `Origin` field, which browsers always send: the input to an
    /// Origin policy (answer 403 to a refused one).
    pub fn origin(&self) -> Option<&'b str> {
        self.header("Origin").and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &'b str> + '_ {
        self.header_all("Sec-WebSocket-Protocol")
            .flat_map(headers::list_items)
            .filter_map(|p| std::str::from_utf8(p).ok())
    }

    /// The extensions the client offers. None is accepted unless the server
    /// implements it; this list is for the server's policy and logs.
    pub fn extensions(&self) -> Vec<ExtensionOffer<'b>> {
        self.fields.extensions()
    }

    /// Whether the client asks for an upgrade at all. A request without an
    /// `Upgrade` field is plain HTTP, which the server may answer itself.
    pub fn is_upgrade(&self) -> bool {
        self.header("Upgrade").is_some()
    }

    /// Checks the request against RFC 6455 §4.2.1 and the project's rules:
    /// GET, HTTP/1.1 or later, one Host, `Upgrade: websocket`, a
    /// `Connection` list with `upgrade`, one `Sec-WebSocket-Key` that is the
    /// base64 of 16 bytes, and `Sec-WebSocket-Version: 13`.
    pub fn validate(&self) -> Result<Upgrade<'b>, RequestError> {
        if self.method != "GET" {
            return Err(RequestError::MethodNotGet);
        }
        if self.minor_version < 1 {
            return Err(RequestError::HttpVersion);
        }
        match self.header_all("Host").count() {
            0 => return Err(RequestError::MissingHeader("Host")),
            1 if self.header("Host").is_some_and(|h| !h.is_empty()) => {}
            _ => return Err(RequestError::InvalidHeader("Host")),
        }
        for (name, token) in [("Upgrade", "websocket"), ("Connection", "upgrade")] {
            match self.fields.token(name, token) {
                TokenCheck::Missing => return Err(RequestError::MissingHeader(name)),
                TokenCheck::Absent => return Err(RequestError::InvalidHeader(name)),
                TokenCheck::Present => {}
            }
        }
        let version = self.unique("Sec-WebSocket-Version")?;
        if version != b"13" {
            return Err(RequestError::UnsupportedVersion);
        }
        let client_key = self.unique("Sec-WebSocket-Key")?;
        if !key::is_valid_client_key(client_key) {
            return Err(RequestError::InvalidHeader("Sec-WebSocket-Key"));
        }
        Ok(Upgrade { accept: key::accept_key(client_key), offered: self.protocols().collect() })
    }

    /// The one value of a field that must appear exactly once.
    fn unique(&self, name: &'static str) -> Result<&'b [u8], RequestError> {
        let mut values = self.header_all(name);
        match (values.next(), values.next()) {
            (Some(v), None) => Ok(v),
            (None, _) => Err(RequestError::MissingHeader(name)),
            (Some(_), Some(_)) => Err(RequestError::InvalidHeader(name)),
        }
    }
}

/// A request that passed [`Request::validate`]: writes the 101 response.
#[derive(Debug, Clone)]
pub struct Upgrade<'b> {
    accept: AcceptKey,
    offered: Vec<&'b str>,
}

impl<'b> Upgrade<'b> {
    /// The `Sec-WebSocket-Accept` value for this request.
    pub fn accept_key(&self) -> AcceptKey {
        self.accept
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered_protocols(&self) -> &[&'b str] {
        &self.offered
    }

    /// The first of the server's `supported` subprotocols (in the server's
    /// order of preference) that the client offered.
    pub fn choose_protocol(&self, supported: &[&str]) -> Option<&'b str> {
        supported.iter().find_map(|s| self.offered.iter().find(|o| *o == s).copied())
    }

    /// Writes the `101 Switching Protocols` response. `protocol` must be one
    /// the client offered; no extension is ever accepted here. Extra header
    /// fields (e.g. `Set-Cookie`) are written as given, once checked for
    /// bytes that would break the head.
    pub fn write_response(
        &self,
        protocol: Option<&str>,
        extra: &[(&str, &str)],
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        if protocol.is_some_and(|p| !self.offered.contains(&p)) {
            return Err(UsageError::UnofferedProtocol);
        }
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(4 + extra.len());
        fields.push(("Upgrade", "websocket"));
        fields.push(("Connection", "Upgrade"));
        fields.push(("Sec-WebSocket-Accept", self.accept.as_str()));
        if let Some(p) = protocol {
            fields.push(("Sec-WebSocket-Protocol", p));
        }
        fields.extend_from_slice(extra);
        write_head(101, &fields, out)?;
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}
