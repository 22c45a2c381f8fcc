//! A publisher over HTTP: `POST /publish/{topic}` with the stamped message
//! as its body, one request at a time on an HTTP/1.1 connection kept alive
//! when the server allows it (ringcast-hub answers `Connection: close`, so
//! there a new connection carries each request). Every answer must be 200.
//!
//! After a `Connection: close` answer the publisher waits for the server's
//! end of stream before it opens the next connection, unless told to close
//! at once (as curl does). Closing at once currently makes ringcast-hub
//! (as of this writing) sometimes publish the next request without
//! answering it: the early close is kept as an option to show that.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::client::{open_socket, ConnectOptions};
use crate::stamp::{Mode, Payload, Stamp};
use crate::wire::Target;

/// The POST path for a room URL: `ws://h:p/topics/NAME` → `/publish/NAME`.
pub fn publish_path(target: &Target) -> Result<String, String> {
    let resource = target.uri.resource();
    let path = resource.split('?').next().unwrap_or_default();
    path.strip_prefix("/topics/")
        .filter(|name| !name.is_empty())
        .map(|name| format!("/publish/{name}"))
        .ok_or_else(|| format!("--via http needs a room URL like ws://host:port/topics/NAME, not {}", target.url))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No request in flight.
    Idle,
    /// Connecting; the request is queued.
    Connecting,
    /// Request sent (or being sent); reading the answer.
    Waiting,
}

/// One HTTP publisher.
#[derive(Debug)]
pub struct HttpPublisher {
    /// Publisher id (the stamp's sender).
    pub id: u32,
    /// Messages due so far (by the schedule).
    pub due: u32,
    /// Next message to post.
    pub next: u32,
    /// Highest message answered 200, plus one.
    pub published: u64,
    /// Requests answered 200.
    pub answered: u64,
    addr: SocketAddr,
    token: Token,
    head: String,
    stream: Option<TcpStream>,
    state: State,
    out: Vec<u8>,
    written: usize,
    answer: Vec<u8>,
    early_close: bool,
}

impl HttpPublisher {
    /// A publisher posting to `path` on the room's server.
    /// `early_close`: close as soon as a `Connection: close` answer is
    /// complete, without waiting for the server to close.
    pub fn new(
        id: u32,
        target: &Target,
        path: &str,
        payload: &Payload,
        token: Token,
        early_close: bool,
    ) -> HttpPublisher {
        let content_type = match payload.mode() {
            Mode::Text => "text/plain; charset=utf-8",
            Mode::Binary => "application/octet-stream",
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            target.uri.host_header(),
            payload.size()
        );
        HttpPublisher {
            id,
            due: 0,
            next: 0,
            published: 0,
            answered: 0,
            addr: target.addr,
            token,
            head,
            stream: None,
            state: State::Idle,
            out: Vec::new(),
            written: 0,
            answer: Vec::new(),
            early_close,
        }
    }

    /// Starts the next request if none is in flight and one is due;
    /// `intended(seq)` gives its stamp time.
    pub fn pump(
        &mut self,
        registry: &Registry,
        payload: &Payload,
        intended: impl Fn(u32) -> u64,
    ) -> Result<(), String> {
        if self.state != State::Idle || self.next >= self.due {
            return Ok(());
        }
        self.out.clear();
        self.written = 0;
        self.out.extend_from_slice(self.head.as_bytes());
        payload.write(&mut self.out, &Stamp { sender: self.id, seq: self.next, time_ns: intended(self.next) });
        self.answer.clear();
        if self.stream.is_none() {
            let mut stream = open_socket(self.addr, ConnectOptions::default())
                .map_err(|e| format!("publisher {}: connect {}: {e}", self.id, self.addr))?;
            registry
                .register(&mut stream, self.token, Interest::READABLE | Interest::WRITABLE)
                .map_err(|e| format!("register: {e}"))?;
            self.stream = Some(stream);
            self.state = State::Connecting;
            return Ok(());
        }
        self.state = State::Waiting;
        self.write()
    }

    /// Handles readiness. Returns the status of a completed answer (after
    /// which the publisher is idle again).
    pub fn on_event(&mut self, registry: &Registry, scratch: &mut [u8]) -> Result<Option<u16>, String> {
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        if self.state == State::Connecting {
            if let Some(e) = stream.take_error().ok().flatten() {
                return Err(self.fail(registry, format!("connect: {e}")));
            }
            match stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(None),
                Err(e) => return Err(self.fail(registry, format!("connect: {e}"))),
            }
            let _ = stream.set_nodelay(true);
            self.state = State::Waiting;
        }
        if self.state == State::Idle {
            // A kept-alive connection the server closed meanwhile.
            let mut probe = [0u8; 1];
            match stream.read(&mut probe) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                _ => self.drop_stream(registry),
            }
            return Ok(None);
        }
        self.write()?;
        let Some(stream) = self.stream.as_mut() else { return Ok(None) };
        loop {
            match stream.read(scratch) {
                Ok(0) => return self.complete(registry, true),
                Ok(n) => self.answer.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return self.complete(registry, false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(registry, format!("read: {e}"))),
            }
        }
    }

    fn write(&mut self) -> Result<(), String> {
        let Some(stream) = self.stream.as_mut() else { return Ok(()) };
        while self.written < self.out.len() {
            match stream.write(&self.out[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("publisher {}: write: {e}", self.id)),
            }
        }
        Ok(())
    }

    /// Looks at the answer so far; `eof`: the server closed the connection.
    fn complete(&mut self, registry: &Registry, eof: bool) -> Result<Option<u16>, String> {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut fields);
        let head_len = match response.parse(&self.answer) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if !eof => return Ok(None),
            Ok(httparse::Status::Partial) => {
                let why = format!("closed without answering ({} bytes of answer)", self.answer.len());
                return Err(self.fail(registry, why));
            }
            Err(e) => return Err(self.fail(registry, format!("bad HTTP answer: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        let header = |name: &str| {
            response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.to_ascii_lowercase())
        };
        let length: usize =
            header("content-length").and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok()).unwrap_or(0);
        let close = eof
            || response.version == Some(0)
            || header("connection").is_some_and(|v| v.windows(5).any(|w| w == b"close"));
        if self.answer.len() < head_len + length {
            return if eof { Err(self.fail(registry, "closed in the middle of the answer".into())) } else { Ok(None) };
        }
        if close && !eof && !self.early_close {
            return Ok(None); // the server closes next: wait for it
        }
        if close {
            self.drop_stream(registry);
        }
        self.state = State::Idle;
        let seq = self.next;
        self.next += 1;
        if status == 200 {
            self.answered += 1;
            self.published = u64::from(seq) + 1;
        }
        Ok(Some(status))
    }

    /// Gives up the current request (counted as an error by the caller).
    fn fail(&mut self, registry: &Registry, why: String) -> String {
        self.drop_stream(registry);
        self.state = State::Idle;
        let seq = self.next;
        self.next += 1;
        format!("publisher {}: POST of message {seq}: {why}", self.id)
    }

    fn drop_stream(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_post_path_comes_from_the_room() {
        let t = Target::parse("ws://127.0.0.1:9/topics/news?echo=1").unwrap();
        assert_eq!(publish_path(&t).unwrap(), "/publish/news");
        assert!(publish_path(&Target::parse("ws://127.0.0.1:9/").unwrap()).is_err());
        assert!(publish_path(&Target::parse("ws://127.0.0.1:9/topics/").unwrap()).is_err());
    }
}
