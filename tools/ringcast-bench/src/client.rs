//! One client connection on a mio event loop: a non-blocking connect, the
//! opening handshake (random key, `Sec-WebSocket-Accept` checked by
//! `ringcast_proto::handshake::ClientHandshake`), then frames: an out buffer
//! that frames are built into and written from, and a [`FrameReader`].

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use ringcast_proto::deflate::{client_accept, DeflateConfig, PerMessageDeflate, Tuning};
use ringcast_proto::handshake::ClientHandshake;
use socket2::{Domain, Socket, Type};

use crate::frames::{Frame, FrameReader};
use crate::rng::Rng;
use crate::tls::Io;
use crate::wire::Target;

/// Options of one connection attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Source address to bind before connecting (several 127.0.0.x give
    /// more than one ephemeral port range towards one server).
    pub source: Option<IpAddr>,
    /// Receive buffer size, set before connecting (a small one makes a
    /// subscriber that never reads fill the server's queue soon).
    pub recv_buffer: Option<usize>,
    /// Offer permessage-deflate, as a browser does (no
    /// `server_no_context_takeover`, so a server configured for context
    /// takeover may use it); compressed messages are then inflated.
    pub offer_deflate: bool,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect in progress.
    Connecting,
    /// Upgrade request sent; waiting for the 101.
    Upgrading,
    /// Frames flow.
    Open,
    /// Failed or closed; ignored from now on.
    Closed,
}

/// Why a connection could not be opened, by kind (for the report).
#[derive(Debug, Clone)]
pub struct ConnectError {
    /// `refused`, `timeout`, `reset`, `closed`, `status`, `handshake`, `io`.
    pub kind: &'static str,
    /// What happened.
    pub message: String,
}

impl ConnectError {
    fn io(e: &io::Error) -> ConnectError {
        let kind = match e.kind() {
            ErrorKind::ConnectionRefused => "refused",
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => "reset",
            ErrorKind::TimedOut => "timeout",
            _ => "io",
        };
        ConnectError { kind, message: e.to_string() }
    }
}

/// The handshake state, boxed so an open connection does not carry it.
#[derive(Debug)]
struct Upgrade {
    handshake: ClientHandshake,
    head: Vec<u8>,
}

/// A client connection.
#[derive(Debug)]
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    /// Its TLS connection (`wss://`): the socket is read and written
    /// through [`Io`], which goes through it when there is one.
    pub tls: Option<Box<rustls::ClientConnection>>,
    /// Where the connection is.
    pub phase: Phase,
    /// Bytes to send; `out[written..]` is still unsent.
    pub out: Vec<u8>,
    written: usize,
    /// Frames received.
    pub reader: FrameReader,
    upgrade: Option<Box<Upgrade>>,
    /// When the attempt began.
    pub started: Instant,
}

impl Client {
    /// Starts a non-blocking connect and registers the socket for read and
    /// write readiness (edge-triggered) under `token`.
    pub fn connect(
        target: &Target,
        options: ConnectOptions,
        rng: &mut Rng,
        registry: &Registry,
        token: Token,
    ) -> Result<Client, ConnectError> {
        let stream = open_socket(target.addr, options).map_err(|e| ConnectError::io(&e))?;
        let tls = match &target.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(target.uri.host().to_string())
                    .map_err(|e| ConnectError { kind: "tls", message: e.to_string() })?;
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| ConnectError { kind: "tls", message: e.to_string() })?;
                Some(Box::new(conn))
            }
            None => None,
        };
        let mut handshake = ClientHandshake::with_nonce(target.uri.clone(), rng.nonce());
        if options.offer_deflate {
            handshake = handshake.extension("permessage-deflate; client_max_window_bits");
        }
        let mut client = Client {
            stream,
            tls,
            phase: Phase::Connecting,
            out: Vec::new(),
            written: 0,
            reader: FrameReader::default(),
            upgrade: Some(Box::new(Upgrade { handshake, head: Vec::new() })),
            started: Instant::now(),
        };
        registry
            .register(&mut client.stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| ConnectError::io(&e))?;
        Ok(client)
    }

    /// Drives the connect and the handshake on a readiness event. Returns
    /// `Ok(true)` once the connection is open; frames that came with the
    /// 101 are passed to `on_frame`.
    pub fn advance(&mut self, scratch: &mut Vec<u8>, on_frame: impl FnMut(Frame<'_>)) -> Result<bool, ConnectError> {
        if self.phase == Phase::Connecting {
            if let Some(e) = self.stream.take_error().map_err(|e| ConnectError::io(&e))? {
                return Err(ConnectError::io(&e));
            }
            match self.stream.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(false),
                Err(e) => return Err(ConnectError::io(&e)),
            }
            let _ = self.stream.set_nodelay(true);
            let upgrade = self.upgrade.as_ref().ok_or_else(|| handshake_error("no handshake state"))?;
            upgrade.handshake.write_request(&mut self.out).map_err(|e| handshake_error(&e.to_string()))?;
            self.phase = Phase::Upgrading;
            self.flush().map_err(|e| ConnectError::io(&e))?;
        }
        if self.phase != Phase::Upgrading {
            return Ok(self.phase == Phase::Open);
        }
        self.flush().map_err(|e| ConnectError::io(&e))?;
        let upgrade = self.upgrade.as_mut().ok_or_else(|| handshake_error("no handshake state"))?;
        if scratch.len() < 4096 {
            scratch.resize(4096, 0);
        }
        loop {
            match Io::new(&mut self.stream, &mut self.tls).read(scratch) {
                Ok(0) => return Err(ConnectError { kind: "closed", message: "closed during the handshake".into() }),
                Ok(n) => upgrade.head.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnectError::io(&e)),
            }
            let head_len = match upgrade.handshake.read_response(&upgrade.head) {
                Ok(None) => continue,
                Ok(Some(response)) => {
                    // Offered (the handshake checked that nothing else came
                    // back): inflate what the server compresses.
                    let config = DeflateConfig::default();
                    match client_accept(&response.extensions(), &config) {
                        Ok(Some(negotiated)) => {
                            self.reader.set_deflate(PerMessageDeflate::new(negotiated, false, Tuning::default()));
                        }
                        Ok(None) => {}
                        Err(e) => return Err(handshake_error(&e.to_string())),
                    }
                    response.head_len()
                }
                Err(ringcast_proto::ResponseError::Status(status)) => {
                    let line = String::from_utf8_lossy(&upgrade.head);
                    let line = line.lines().next().unwrap_or_default();
                    return Err(ConnectError {
                        kind: "status",
                        message: format!("upgrade refused: {line} ({status})"),
                    });
                }
                Err(e) => return Err(handshake_error(&e.to_string())),
            };
            let upgrade = self.upgrade.take().ok_or_else(|| handshake_error("no handshake state"))?;
            self.phase = Phase::Open;
            self.out = Vec::new();
            self.written = 0;
            self.reader.feed(&upgrade.head[head_len..], on_frame).map_err(|e| handshake_error(&e))?;
            return Ok(true);
        }
    }

    /// Writes what is queued: one `write` in the usual case; a short write
    /// leaves the rest for the next writable event. Returns the bytes
    /// written.
    #[inline]
    pub fn flush(&mut self) -> io::Result<usize> {
        let before = self.written;
        let mut io = Io::new(&mut self.stream, &mut self.tls);
        // What TLS still holds goes first (a writable event may be for it).
        io.flush()?;
        while self.written < self.out.len() {
            match io.write(&self.out[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(self.written - before),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let total = self.written - before;
        self.out.clear();
        self.written = 0;
        Ok(total)
    }

    /// A connection already open (a plain TCP socket, no handshake).
    pub fn from_open(stream: TcpStream) -> Client {
        Client {
            stream,
            tls: None,
            phase: Phase::Open,
            out: Vec::new(),
            written: 0,
            reader: FrameReader::default(),
            upgrade: None,
            started: Instant::now(),
        }
    }

    /// Bytes queued and not yet written.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.written
    }

    /// Stops watching the socket (it stays open).
    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.stream);
    }

    /// Marks the connection dead and stops watching it.
    pub fn close(&mut self, registry: &Registry) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.deregister(registry);
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
            self.out = Vec::new();
            self.written = 0;
        }
    }
}

fn handshake_error(message: &str) -> ConnectError {
    ConnectError { kind: "handshake", message: message.to_string() }
}

/// A non-blocking TCP socket with the connect started.
pub fn open_socket(addr: SocketAddr, options: ConnectOptions) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    if let Some(bytes) = options.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(ip) = options.source {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == ErrorKind::WouldBlock => {} // EINPROGRESS
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Opens `options.len()` connections to `target` on `poll` (tokens
/// `token_base + i`), at most `concurrency` in progress at once, each within
/// `timeout`. Any failure fails the whole setup.
pub fn establish(
    poll: &mut mio::Poll,
    target: &Target,
    options: &[ConnectOptions],
    token_base: usize,
    concurrency: usize,
    timeout: Duration,
    rng: &mut Rng,
) -> Result<Vec<Client>, String> {
    let mut clients: Vec<Client> = Vec::with_capacity(options.len());
    let mut events = mio::Events::with_capacity(1024);
    let mut scratch = Vec::new();
    let (mut open, mut pending) = (0usize, 0usize);
    let fail = |i: usize, e: ConnectError| format!("connection {i} to {}: {} ({})", target.url, e.message, e.kind);
    while open < options.len() {
        while pending < concurrency.max(1) && clients.len() < options.len() {
            let i = clients.len();
            let client = Client::connect(target, options[i], rng, poll.registry(), Token(token_base + i))
                .map_err(|e| fail(i, e))?;
            clients.push(client);
            pending += 1;
        }
        poll.poll(&mut events, Some(Duration::from_millis(100))).map_err(|e| format!("poll: {e}"))?;
        for event in &events {
            let i = event.token().0.wrapping_sub(token_base);
            let Some(client) = clients.get_mut(i) else { continue };
            if client.phase == Phase::Open {
                continue;
            }
            let mut early = 0usize;
            if client.advance(&mut scratch, |_| early += 1).map_err(|e| fail(i, e))? {
                open += 1;
                pending -= 1;
                if early > 0 {
                    return Err(format!("connection {i}: the server sent {early} frame(s) before any message"));
                }
            }
        }
        if let Some((i, c)) = clients.iter().enumerate().find(|(_, c)| c.phase != Phase::Open) {
            if c.started.elapsed() > timeout {
                return Err(fail(i, ConnectError { kind: "timeout", message: format!("no 101 within {timeout:?}") }));
            }
        }
    }
    Ok(clients)
}
