//! TLS (`wss://`) in the shard: a [`Transport`] over rustls' unbuffered
//! connection, so that no record is copied into a buffer of rustls' own.
//!
//! - **In**: the records of a receive are processed where they arrived (the
//!   provided buffer); only an incomplete record at the end of a read is
//!   copied, into the session's `pending` buffer, which is freed again once
//!   the rest has come. The plaintext is gathered in the shard's scratch
//!   buffer for the HTTP and WebSocket code above.
//! - **Out**: the plaintext a turn queued is encrypted into one buffer just
//!   before the send ([`OutQueue::seal_with`]), so corking still makes one
//!   send per connection per turn. Records rustls writes on its own
//!   (handshake, session tickets, key updates, alerts, close_notify) go
//!   before any plaintext not yet sealed ([`OutQueue::push_wire`]), in the
//!   order rustls numbered them.
//! - **Memory**: an idle TLS connection holds its session box: the rustls
//!   connection (its keys and state machine) and nothing else; no buffer
//!   survives the turn that needed it.
//!
//! A plain listener and a TLS listener can share a shard: a connection from
//! the plain one has no session (`None`) and costs one pointer.
//!
//! Server name indication: rustls' unbuffered server connection does not
//! say which name the client asked for, so the certificate resolver is
//! wrapped ([`NameRecorder`]) and notes it in a thread-local as the
//! handshake runs on this thread; the session takes it from there.
//!
//! With the `ktls` feature, a server session hands its keys to the kernel
//! after the handshake where the kernel can take them (`kernel`).

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConnectionData, UnbufferedServerConnection};
use rustls::sign::CertifiedKey;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic};

use crate::sys::OutQueue;
use crate::transport::{Session, Transport, TransportError};

#[cfg(feature = "ktls")]
use super::kernel;

/// The most ciphertext kept for one connection between reads: rustls
/// holds a handshake message spanning several records here until it is
/// whole (at most 64 KiB), and a record is at most 16 KiB plus 256 bytes.
const MAX_PENDING: usize = 96 << 10;

thread_local! {
    /// The server name of the ClientHello being handled on this thread.
    static ASKED_NAME: RefCell<Option<Box<str>>> = const { RefCell::new(None) };
}

/// Wraps a certificate resolver to note the server name each ClientHello
/// asks for (see the module docs).
#[derive(Debug)]
pub(crate) struct NameRecorder {
    inner: Arc<dyn ResolvesServerCert>,
}

impl ResolvesServerCert for NameRecorder {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = client_hello.server_name().map(Box::from);
        ASKED_NAME.with(|asked| *asked.borrow_mut() = name);
        self.inner.resolve(client_hello)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }
}

/// Makes a user's rustls configuration fit the runtime: ALPN `http/1.1`
/// unless the user chose protocols, no early data (an upgrade request sent
/// as 0-RTT data could be replayed), and the server-name recorder.
pub(crate) fn server_config(mut config: rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    config.cert_resolver = Arc::new(NameRecorder { inner: config.cert_resolver.clone() });
    // The keys go to the kernel after the handshake where it can take them.
    #[cfg(feature = "ktls")]
    {
        config.enable_secret_extraction = true;
    }
    Arc::new(config)
}

/// Makes a user's client configuration fit the runtime: ALPN `http/1.1`
/// unless the user chose protocols.
pub(crate) fn client_config(mut config: rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Arc::new(config)
}

/// The client configuration used when none was given: the system's root
/// certificates (read once, at the first `wss://` connect).
fn system_roots() -> Result<Arc<rustls::ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!("no system root certificates ({:?}): give ClientBuilder::tls a root store", found.errors));
    }
    let config = rustls::ClientConfig::builder_with_provider(super::files::crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(client_config(config))
}

/// A shard's transport when TLS is in use: a server's connections from
/// its TLS listener and a client's `wss://` connections get a rustls
/// session; the others none.
pub(crate) struct Tls {
    server: Option<Arc<rustls::ServerConfig>>,
    client: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
    /// Whether the kernel takes TLS keys.
    #[cfg(feature = "ktls")]
    kernel: kernel::Support,
}

impl Tls {
    /// `server` for accepted connections; `client` for connects (the
    /// system's roots when `None`).
    pub(crate) fn new(server: Option<Arc<rustls::ServerConfig>>, client: Option<Arc<rustls::ClientConfig>>) -> Self {
        let once = OnceLock::new();
        if let Some(client) = client {
            let _ = once.set(Ok(client));
        }
        Tls {
            server,
            client: once,
            #[cfg(feature = "ktls")]
            kernel: kernel::Support::default(),
        }
    }
}

/// A rustls connection of either role. (Boxed: about a kilobyte each,
/// which a session in the kernel gives back.)
enum Conn {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
    /// The kernel seals and opens the records.
    #[cfg(feature = "ktls")]
    Kernel(kernel::Kernel),
    /// The keys left rustls but the kernel refused them (the session has
    /// failed).
    #[cfg(feature = "ktls")]
    Spent,
}

/// What the record processing needs of a rustls connection, whatever its
/// role (rustls gives each role its own `process_tls_records`).
trait Records {
    type Data;
    fn records<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Records for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn records<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, ServerConnectionData> {
        self.process_tls_records(incoming)
    }
}

impl Records for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn records<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, ClientConnectionData> {
        self.process_tls_records(incoming)
    }
}

/// One TLS connection's state.
pub(crate) struct TlsSession {
    conn: Conn,
    /// Ciphertext received but not yet processed (an incomplete record).
    pending: Vec<u8>,
    /// The server name the client asked for (a server's sessions).
    server_name: Option<Box<str>>,
    /// Failed (an alert is queued): input is ignored from now on.
    failed: bool,
    /// Our close_notify is queued.
    closing: bool,
    /// The keys were offered to the kernel (once per session).
    #[cfg(feature = "ktls")]
    offered: bool,
}

impl Session for Option<Box<TlsSession>> {
    fn server_name(&self) -> Option<&str> {
        self.as_ref().and_then(|s| s.server_name.as_deref())
    }

    fn is_secure(&self) -> bool {
        self.is_some()
    }
}

/// What a processing step asks of the loop around it.
enum Next {
    /// Call rustls again.
    Again,
    /// Nothing more can be done with the bytes at hand.
    Wait,
}

impl Transport for Tls {
    type Session = Option<Box<TlsSession>>;

    fn accept(&self, secure: bool) -> Result<Self::Session, TransportError> {
        let Some(config) = self.server.as_ref().filter(|_| secure) else { return Ok(None) };
        let conn = UnbufferedServerConnection::new(config.clone())
            .map_err(|e| TransportError::new("TLS configuration refused").detail(e))?;
        Ok(Some(TlsSession::new(Conn::Server(Box::new(conn)), None)))
    }

    fn connect(&self, server_name: &str, secure: bool) -> Result<Self::Session, TransportError> {
        if !secure {
            return Ok(None);
        }
        let config = self
            .client
            .get_or_init(system_roots)
            .as_ref()
            .map_err(|e| TransportError::new("no TLS client configuration").detail(e))?;
        // An IP literal is verified against the certificate's IP names.
        let host = server_name.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| TransportError::new("not a TLS server name").detail(e))?;
        let conn = UnbufferedClientConnection::new(config.clone(), name)
            .map_err(|e| TransportError::new("TLS configuration refused").detail(e))?;
        Ok(Some(TlsSession::new(Conn::Client(Box::new(conn)), None)))
    }

    fn open<'w>(
        &self,
        session: &mut Self::Session,
        wire: &'w mut [u8],
        scratch: &'w mut Vec<u8>,
        out: &mut OutQueue,
    ) -> Result<&'w mut [u8], TransportError> {
        let Some(tls) = session else { return Ok(wire) };
        guarded(tls, |tls| tls.open(wire, scratch, out))
    }

    fn seal(&self, session: &mut Self::Session, out: &mut OutQueue) -> Result<(), TransportError> {
        let Some(tls) = session else { return Ok(()) };
        if tls.failed || out.unsealed() == 0 {
            return Ok(());
        }
        #[cfg(feature = "ktls")]
        if let Conn::Kernel(kernel) = &mut tls.conn {
            return kernel.seal(out);
        }
        // Still handshaking (false): the plaintext waits.
        guarded(tls, |tls| tls.with_traffic(out, Op::Seal))?;
        Ok(())
    }

    fn finish(&self, session: &mut Self::Session, out: &mut OutQueue) -> bool {
        let Some(tls) = session else { return false };
        if tls.failed || tls.closing {
            return false;
        }
        tls.closing = true;
        #[cfg(feature = "ktls")]
        if let Conn::Kernel(kernel) = &tls.conn {
            kernel.finish();
            return false;
        }
        matches!(guarded(tls, |tls| tls.with_traffic(out, Op::CloseNotify)), Ok(true))
    }

    #[cfg(feature = "ktls")]
    fn wants_offload(&self, session: &Self::Session) -> bool {
        self.kernel.may_try() && session.as_ref().is_some_and(|tls| tls.may_hand_over())
    }

    #[cfg(feature = "ktls")]
    fn offload(&self, session: &mut Self::Session, fd: std::os::fd::RawFd) -> Result<(), TransportError> {
        let Some(tls) = session.as_mut().filter(|tls| tls.may_hand_over()) else { return Ok(()) };
        tls.offered = true;
        let Conn::Server(conn) = std::mem::replace(&mut tls.conn, Conn::Spent) else {
            unreachable!("may_hand_over checked the role")
        };
        match kernel::hand_over(conn, fd, &self.kernel) {
            kernel::HandOver::Done(kernel) => tls.conn = Conn::Kernel(kernel),
            kernel::HandOver::Kept(conn) => tls.conn = Conn::Server(conn),
            kernel::HandOver::Failed(e) => {
                tls.failed = true;
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Runs a step of a session, so that a panic in rustls costs this
/// connection (it fails) and not the shard with all its others.
fn guarded<R>(
    tls: &mut TlsSession,
    step: impl FnOnce(&mut TlsSession) -> Result<R, TransportError>,
) -> Result<R, TransportError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&mut *tls))) {
        Ok(result) => result,
        Err(_) => {
            tracing::error!("rustls panicked; the connection fails");
            tls.failed = true;
            tls.pending = Vec::new();
            Err(TransportError::new("TLS failed"))
        }
    }
}

impl TlsSession {
    /// A server session whose handshake is done, with nothing held back,
    /// not offered to the kernel yet.
    #[cfg(feature = "ktls")]
    fn may_hand_over(&self) -> bool {
        !self.offered
            && !self.failed
            && !self.closing
            && self.pending.is_empty()
            && matches!(&self.conn, Conn::Server(conn) if !conn.is_handshaking())
    }

    fn new(conn: Conn, server_name: Option<Box<str>>) -> Box<TlsSession> {
        Box::new(TlsSession {
            conn,
            pending: Vec::new(),
            server_name,
            failed: false,
            closing: false,
            #[cfg(feature = "ktls")]
            offered: false,
        })
    }

    /// See [`Transport::open`].
    fn open<'w>(
        &mut self,
        wire: &'w mut [u8],
        scratch: &'w mut Vec<u8>,
        out: &mut OutQueue,
    ) -> Result<&'w mut [u8], TransportError> {
        scratch.clear();
        if self.failed {
            return Ok(scratch.as_mut_slice());
        }
        #[cfg(feature = "ktls")]
        if let Conn::Kernel(_) = self.conn {
            return Ok(wire);
        }
        let result = if self.pending.is_empty() {
            let result = self.process(wire, scratch, out);
            if let Ok(used) = result {
                self.pending.extend_from_slice(&wire[used..]);
            }
            result
        } else {
            self.pending.extend_from_slice(wire);
            let mut pending = std::mem::take(&mut self.pending);
            let result = self.process(&mut pending, scratch, out);
            if let Ok(used) = result {
                pending.drain(..used);
                if !pending.is_empty() {
                    self.pending = pending; // else freed: an idle connection keeps no buffer
                }
            }
            result
        };
        ASKED_NAME.with(|asked| {
            if let Some(name) = asked.borrow_mut().take() {
                self.server_name = Some(name);
            }
        });
        match result {
            Ok(_) if self.pending.len() > MAX_PENDING => {
                self.failed = true;
                Err(TransportError::new("TLS record too large"))
            }
            Ok(_) => Ok(scratch.as_mut_slice()),
            Err(e) => {
                self.failed = true;
                self.pending = Vec::new();
                Err(e)
            }
        }
    }

    /// Brings rustls to where it may encrypt (sending the records it owes
    /// first) and does `op` there; false while the handshake is not done.
    fn with_traffic(&mut self, out: &mut OutQueue, op: Op) -> Result<bool, TransportError> {
        match &mut self.conn {
            Conn::Server(conn) => with_traffic(conn.as_mut(), &mut self.pending, out, op),
            Conn::Client(conn) => with_traffic(conn.as_mut(), &mut self.pending, out, op),
            #[cfg(feature = "ktls")]
            Conn::Kernel(_) | Conn::Spent => Err(TransportError::new("TLS is not in user space")),
        }
    }

    /// Processes the records at the start of `buf`: plaintext to `scratch`,
    /// records owed to the peer to `out`. Returns how many bytes are done
    /// with; the rest is an incomplete record.
    fn process(&mut self, buf: &mut [u8], scratch: &mut Vec<u8>, out: &mut OutQueue) -> Result<usize, TransportError> {
        match &mut self.conn {
            Conn::Server(conn) => process(conn.as_mut(), buf, scratch, out),
            Conn::Client(conn) => process(conn.as_mut(), buf, scratch, out),
            #[cfg(feature = "ktls")]
            Conn::Kernel(_) | Conn::Spent => Err(TransportError::new("TLS is not in user space")),
        }
    }
}

/// What to do once rustls may encrypt.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Encrypt the queued plaintext.
    Seal,
    /// Queue close_notify.
    CloseNotify,
}

/// See [`TlsSession::with_traffic`]. rustls is given the bytes kept from
/// earlier reads (`pending`): it may hold a handshake message there in the
/// middle of being joined, and expects to find it again at the start of
/// every buffer.
fn with_traffic<C: Records>(
    conn: &mut C,
    pending: &mut Vec<u8>,
    out: &mut OutQueue,
    op: Op,
) -> Result<bool, TransportError> {
    loop {
        let UnbufferedStatus { discard, state } = conn.records(pending.as_mut_slice());
        let result = match state {
            Ok(ConnectionState::WriteTraffic(mut traffic)) => Some(
                match op {
                    Op::Seal => out.seal_with(|plain, wire| encrypt(&mut traffic, plain, wire)),
                    Op::CloseNotify => out.push_wire(|wire| close_notify(&mut traffic, wire)),
                }
                .map(|()| true),
            ),
            Ok(state) => match handshake_output(state, out) {
                Ok(Next::Again) => None,
                Ok(Next::Wait) => Some(Ok(false)),
                Err(e) => Some(Err(e)),
            },
            Err(e) => Some(Err(TransportError::new("TLS error").detail(e))),
        };
        pending.drain(..discard);
        if let Some(result) = result {
            return result;
        }
    }
}

/// Processes the records at the start of `buf` (see
/// [`TlsSession::process`]).
fn process<C: Records>(
    conn: &mut C,
    buf: &mut [u8],
    scratch: &mut Vec<u8>,
    out: &mut OutQueue,
) -> Result<usize, TransportError> {
    let mut done = 0;
    loop {
        let UnbufferedStatus { discard, state } = conn.records(&mut buf[done..]);
        let next = match state {
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(|e| TransportError::new("TLS error").detail(e))?;
                    scratch.extend_from_slice(record.payload);
                }
                Next::Again
            }
            Ok(state) => handshake_output(state, out)?,
            Err(e) => {
                // rustls may have queued an alert for the peer (not for
                // every refusal: a handshake message too large to join
                // just ends): it goes before the connection does.
                done += discard;
                // One record at most: calling again after it would
                // make rustls look at the refused input once more.
                if let Ok(ConnectionState::EncodeTlsData(mut data)) = conn.records(&mut buf[done..]).state {
                    let _ = out.push_wire(|wire| encode(&mut data, wire));
                }
                return Err(TransportError::new("TLS handshake or record refused").detail(e));
            }
        };
        done += discard;
        if let Next::Wait = next {
            return Ok(done);
        }
    }
}

/// Handles every state but incoming data: records rustls has to send go
/// to `out`; the others say whether to call rustls again.
fn handshake_output<Data>(state: ConnectionState<'_, '_, Data>, out: &mut OutQueue) -> Result<Next, TransportError> {
    match state {
        ConnectionState::EncodeTlsData(mut data) => {
            out.push_wire(|wire| encode(&mut data, wire))?;
            Ok(Next::Again)
        }
        // What was encoded is queued: the shard sends it this turn.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            Ok(Next::Again)
        }
        ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) | ConnectionState::Closed => {
            Ok(Next::Wait)
        }
        // The peer will send no more data; its TCP end follows.
        ConnectionState::PeerClosed => Ok(Next::Again),
        // Early data is switched off (`server_config`); anything else is
        // a state this version of the runtime does not know.
        _ => Err(TransportError::new("unexpected TLS state")),
    }
}

/// Appends to `wire` what `write` puts into a slice at its end, whose size
/// starts at `guess` and grows to what rustls asks for. `write` returns
/// the bytes written, or `Err(Some(size))` for more room, or `Err(None)`
/// when it cannot write at all.
fn append(
    wire: &mut Vec<u8>,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), TransportError> {
    let start = wire.len();
    let mut room = guess;
    loop {
        // rustls writes into initialised bytes: a memset, small beside
        // the encryption that follows.
        wire.resize(start + room, 0);
        match write(&mut wire[start..]) {
            Ok(n) => {
                wire.truncate(start + n);
                return Ok(());
            }
            Err(Some(required)) if required > room => room = required,
            Err(_) => {
                wire.truncate(start);
                // rustls refuses to encrypt more (its keys are used up).
                return Err(TransportError::new("TLS cannot write"));
            }
        }
    }
}

/// Room rustls asked for, or `None` for a failure.
fn room(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    }
}

/// Appends one record rustls prepared to `wire`.
fn encode<Data>(
    data: &mut rustls::unbuffered::EncodeTlsData<'_, Data>,
    wire: &mut Vec<u8>,
) -> Result<(), TransportError> {
    append(wire, 512, |out| match data.encode(out) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(e)) => Err(Some(e.required_size)),
        Err(EncodeError::AlreadyEncoded) => Ok(0),
    })
}

/// Appends the records of `plain` to `wire`.
fn encrypt<Data>(traffic: &mut WriteTraffic<'_, Data>, plain: &[u8], wire: &mut Vec<u8>) -> Result<(), TransportError> {
    // A record carries at most 16 KiB, with at most 29 bytes of header,
    // nonce and tag (TLS 1.2 AES-GCM; TLS 1.3: 22).
    let guess = plain.len() + (plain.len() / (16 << 10) + 1) * 32;
    append(wire, guess, |out| traffic.encrypt(plain, out).map_err(room))
}

/// Appends a close_notify alert to `wire`.
fn close_notify<Data>(traffic: &mut WriteTraffic<'_, Data>, wire: &mut Vec<u8>) -> Result<(), TransportError> {
    append(wire, 64, |out| traffic.queue_close_notify(out).map_err(room))
}
