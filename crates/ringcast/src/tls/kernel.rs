//! Kernel TLS (feature `ktls`): once rustls has finished a server
//! connection's handshake, its record keys go to the socket and the
//! kernel seals and opens the records from then on. The ring then moves
//! plaintext, sends of a shared frame stay zero-copy, and the rustls
//! connection is dropped, so an idle connection keeps no TLS state in user
//! space.
//!
//! The shard makes the moment safe (see `Transport::offload`): no receive
//! is armed, so every byte read so far went through rustls and whatever
//! arrives next waits in the socket for the kernel to decrypt; and no
//! record rustls sealed is still queued or in flight, since the kernel
//! would encrypt it a second time.
//!
//! Detected at run time, per shard ([`Support`]): the first session of
//! each cipher probes a loopback connection of the shard's own with zero
//! keys, so a kernel without the `tls` module, or without the cipher's
//! crypto module, costs no client its connection: those sessions stay in
//! user space, the default and the path CI tests. Only server sessions
//! move (a client would have to process the session tickets a server
//! sends after the handshake, which the kernel hands over as records of
//! another type).
//!
//! Limits, plainly:
//! - a record of a type other than application data from the peer (a TLS
//!   1.3 key update, or close_notify) fails the kernel's receive, and the
//!   connection ends then;
//! - the kernel cannot renew keys here, so a connection ends when it has
//!   sent half of its cipher's confidentiality limit in records (for
//!   AES-GCM in TLS 1.3, 2^23 records; counted as at least one per send).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};

use rustls::server::UnbufferedServerConnection;
use rustls::{CipherSuite, ConnectionTrafficSecrets, ProtocolVersion, SupportedCipherSuite};

use crate::sys::ktls::{self, Cipher, CryptoInfo, Direction, Version};
use crate::sys::OutQueue;
use crate::transport::TransportError;

/// The most plaintext the kernel puts in one record.
const MAX_RECORD: usize = 16 << 10;

/// The AEADs kernel TLS may know, by the cipher suites that use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Aead {
    fn of(suite: CipherSuite) -> Option<Aead> {
        use CipherSuite as S;
        match suite {
            S::TLS13_AES_128_GCM_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => Some(Aead::Aes128Gcm),
            S::TLS13_AES_256_GCM_SHA384
            | S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => Some(Aead::Aes256Gcm),
            S::TLS13_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => Some(Aead::Chacha20Poly1305),
            _ => None,
        }
    }

    /// Its two bits in [`Support`]: probed, and taken.
    fn bits(self) -> (u8, u8) {
        let shift = 1 + 2 * self as u8;
        (1 << shift, 1 << (shift + 1))
    }

    /// All-zero keys, for a probe.
    fn zero_keys(self) -> Cipher<'static> {
        match self {
            Aead::Aes128Gcm => Cipher::Aes128Gcm { key: &[0; 16], iv: &[0; 12] },
            Aead::Aes256Gcm => Cipher::Aes256Gcm { key: &[0; 32], iv: &[0; 12] },
            Aead::Chacha20Poly1305 => Cipher::Chacha20Poly1305 { key: &[0; 32], iv: &[0; 12] },
        }
    }
}

/// The kernel has no `tls` module.
const ABSENT: u8 = 1;

/// What a shard learnt of its kernel's TLS: whether the `tls` module is
/// there ([`ABSENT`]) and, per AEAD, whether it was probed and whether the
/// kernel took its keys ([`Aead::bits`]).
#[derive(Debug, Default)]
pub(crate) struct Support(AtomicU8);

impl Support {
    /// A hand-over is worth trying: the module is not known to be absent.
    pub(crate) fn may_try(&self) -> bool {
        self.0.load(Ordering::Relaxed) & ABSENT == 0
    }

    fn absent(&self) {
        if self.0.fetch_or(ABSENT, Ordering::Relaxed) & ABSENT == 0 {
            tracing::info!("kernel TLS is not available: TLS stays in user space (rustls)");
        }
    }

    /// Whether the kernel takes keys of `aead`. Learnt once, on a loopback
    /// connection of the shard's own, so that a kernel with the `tls`
    /// module but without the cipher (its crypto module not loaded) costs
    /// no client its connection.
    fn takes(&self, aead: Aead, version: Version) -> bool {
        let (probed, taken) = aead.bits();
        let known = self.0.load(Ordering::Relaxed);
        if known & probed != 0 {
            return known & taken != 0;
        }
        let works = match probe(aead, version) {
            Ok(()) => {
                tracing::info!(cipher = ?aead, "kernel TLS is available: server sessions move to the kernel after the handshake");
                true
            }
            Err(e) if e.raw_os_error().is_some_and(module_missing) => {
                self.absent();
                false
            }
            Err(e) => {
                tracing::info!(cipher = ?aead, error = %e, "kernel TLS does not take this cipher: its sessions stay in user space");
                false
            }
        };
        self.0.fetch_or(probed | if works { taken } else { 0 }, Ordering::Relaxed);
        works
    }
}

/// What `attach` fails with where the kernel has no `tls` module.
fn module_missing(errno: i32) -> bool {
    matches!(errno, libc::ENOENT | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
}

/// Installs zero keys of `aead` both ways on a fresh loopback connection.
fn probe(aead: Aead, version: Version) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let socket = TcpStream::connect(listener.local_addr()?)?;
    let _peer = listener.accept()?;
    let fd = socket.as_raw_fd();
    ktls::attach(fd)?;
    let keys = CryptoInfo::new(version, aead.zero_keys(), 0)?;
    ktls::install(fd, Direction::Send, &keys)?;
    ktls::install(fd, Direction::Receive, &keys)
}

/// A connection whose records the kernel seals and opens.
pub(crate) struct Kernel {
    fd: RawFd,
    /// Records sent since the hand-over, counted from above.
    records: u64,
    /// Where the connection must end, its keys used too often.
    limit: u64,
}

/// How a hand-over went.
pub(crate) enum HandOver {
    /// The kernel has the keys.
    Done(Kernel),
    /// The kernel cannot take them: the session stays in user space.
    Kept(Box<UnbufferedServerConnection>),
    /// The keys left rustls but the kernel refused them: the connection
    /// cannot go on.
    Failed(TransportError),
}

/// Gives a server connection's keys to the socket `fd` (see the module
/// docs for when that is safe).
pub(crate) fn hand_over(conn: Box<UnbufferedServerConnection>, fd: RawFd, support: &Support) -> HandOver {
    // The session checked its handshake is done; the kernel may have
    // been found wanting since the shard asked.
    if !support.may_try() {
        return HandOver::Kept(conn);
    }
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => Version::Tls13,
        Some(ProtocolVersion::TLSv1_2) => Version::Tls12,
        _ => return HandOver::Kept(conn),
    };
    let Some(aead) = conn.negotiated_cipher_suite().and_then(|suite| Aead::of(suite.suite())) else {
        return HandOver::Kept(conn);
    };
    if !support.takes(aead, version) {
        return HandOver::Kept(conn);
    }
    if let Err(e) = ktls::attach(fd) {
        tracing::debug!(error = %e, "kernel TLS: the socket refused the tls protocol");
        return HandOver::Kept(conn);
    }
    let (secrets, kernel) = match (*conn).dangerous_into_kernel_connection() {
        Ok(taken) => taken,
        Err(e) => return HandOver::Failed(TransportError::new("TLS keys could not be taken").detail(e)),
    };
    let limit = match kernel.negotiated_cipher_suite() {
        SupportedCipherSuite::Tls13(suite) => suite.common.confidentiality_limit,
        SupportedCipherSuite::Tls12(suite) => suite.common.confidentiality_limit,
    };
    // Nothing of rustls is kept: no key update or ticket is handled after
    // this point (see the module docs).
    drop(kernel);
    for (direction, (seq, secrets)) in [(Direction::Send, &secrets.tx), (Direction::Receive, &secrets.rx)] {
        let installed = cipher(secrets)
            .ok_or_else(|| std::io::Error::other("a cipher kernel TLS does not know"))
            .and_then(|cipher| CryptoInfo::new(version, cipher, *seq))
            .and_then(|keys| ktls::install(fd, direction, &keys));
        if let Err(e) = installed {
            // The probe took keys of this cipher: not expected.
            tracing::warn!(error = %e, "kernel TLS refused a connection's keys");
            return HandOver::Failed(TransportError::new("kernel TLS refused the keys").detail(e));
        }
    }
    HandOver::Done(Kernel { fd, records: 0, limit: limit / 2 })
}

/// The kernel's name for a connection's AEAD and its secrets.
fn cipher(secrets: &ConnectionTrafficSecrets) -> Option<Cipher<'_>> {
    Some(match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv } => Cipher::Aes128Gcm { key: key.as_ref(), iv: iv.as_ref() },
        ConnectionTrafficSecrets::Aes256Gcm { key, iv } => Cipher::Aes256Gcm { key: key.as_ref(), iv: iv.as_ref() },
        ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
            Cipher::Chacha20Poly1305 { key: key.as_ref(), iv: iv.as_ref() }
        }
        _ => return None,
    })
}

impl Kernel {
    /// The queued plaintext is what the socket is given.
    pub(crate) fn seal(&mut self, out: &mut OutQueue) -> Result<(), TransportError> {
        // Past the limit the connection is cut, and what was just marked
        // is dropped unsent with the rest of its queue.
        let bytes = out.seal_as_is();
        if bytes == 0 {
            return Ok(());
        }
        self.records += (bytes / MAX_RECORD) as u64 + 1;
        if self.records > self.limit {
            return Err(TransportError::new("TLS key use limit reached (kernel TLS cannot renew keys)"));
        }
        Ok(())
    }

    /// Sends close_notify; nothing is queued for it.
    pub(crate) fn finish(&self) {
        const WARNING: u8 = 1;
        const CLOSE_NOTIFY: u8 = 0;
        if let Err(e) = ktls::send_alert(self.fd, WARNING, CLOSE_NOTIFY) {
            tracing::debug!(error = %e, "kernel TLS: close_notify not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    //! No kernel here takes TLS keys (this project's CI has no
    //! `CONFIG_TLS`), so the kernel's side is played by a few lines of
    //! `ring` doing what its TLS 1.3 code does with the structure it was
    //! given: nonce = salt ‖ IV with the record's sequence number xored
    //! into the last 8 bytes, the record header as associated data, the
    //! content type after the plaintext. A rustls peer on the other end
    //! shows that the keys, the layout and the sequence numbers are right.

    use std::io::{Read, Write};
    use std::sync::Arc;

    use ring::aead;
    use rustls::crypto::ring::cipher_suite;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConnection, Connection, ServerConnection, SupportedCipherSuite};

    use super::*;

    /// A TLS 1.3 client and server, handshake done and the server's
    /// session tickets delivered (they use its first sequence numbers).
    fn pair(suite: SupportedCipherSuite) -> (Connection, Connection) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let provider = crate::tls::crypto_provider();
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
            .unwrap();
        server.enable_secret_extraction = true;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let only = rustls::crypto::CryptoProvider { cipher_suites: vec![suite], ..(*provider).clone() };
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(only))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = Connection::Client(ClientConnection::new(Arc::new(client), name).unwrap());
        let mut server = Connection::Server(ServerConnection::new(Arc::new(server)).unwrap());
        for _ in 0..10 {
            carry(&mut client, &mut server);
            carry(&mut server, &mut client);
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(server.negotiated_cipher_suite(), Some(suite));
        (client, server)
    }

    /// Moves what `from` has to send into `to`.
    fn carry(from: &mut Connection, to: &mut Connection) {
        let mut wire = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut wire).unwrap();
        }
        let mut rest = &wire[..];
        while !rest.is_empty() {
            to.read_tls(&mut rest).unwrap();
            to.process_new_packets().unwrap();
        }
    }

    /// The AEAD, key and salt ‖ IV the kernel would build from `info`,
    /// and its first sequence number.
    fn kernel_keys(info: &CryptoInfo) -> (aead::LessSafeKey, [u8; 12], u64) {
        let (algorithm, key, iv, seq): (_, &[u8], Vec<u8>, _) = match info {
            CryptoInfo::Aes128Gcm(i) => (&aead::AES_128_GCM, &i.key, [&i.salt[..], &i.iv].concat(), i.rec_seq),
            CryptoInfo::Aes256Gcm(i) => (&aead::AES_256_GCM, &i.key, [&i.salt[..], &i.iv].concat(), i.rec_seq),
            CryptoInfo::Chacha20Poly1305(i) => (&aead::CHACHA20_POLY1305, &i.key, i.iv.to_vec(), i.rec_seq),
        };
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(algorithm, key).unwrap());
        (key, iv.try_into().unwrap(), u64::from_be_bytes(seq))
    }

    fn nonce(iv: [u8; 12], seq: u64) -> aead::Nonce {
        let mut nonce = iv;
        for (byte, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *byte ^= s;
        }
        aead::Nonce::assume_unique_for_key(nonce)
    }

    /// What the kernel sends for `plain` as its first record.
    fn kernel_seal(info: &CryptoInfo, plain: &[u8]) -> Vec<u8> {
        let (key, iv, seq) = kernel_keys(info);
        let mut body = [plain, &[0x17]].concat();
        let len = (body.len() + key.algorithm().tag_len()) as u16;
        let header = [0x17, 3, 3, (len >> 8) as u8, len as u8];
        key.seal_in_place_append_tag(nonce(iv, seq), aead::Aad::from(header), &mut body).unwrap();
        [&header[..], &body].concat()
    }

    /// What the kernel reads from `record`, its first.
    fn kernel_open(info: &CryptoInfo, record: &[u8]) -> Vec<u8> {
        let (key, iv, seq) = kernel_keys(info);
        let (header, body) = record.split_at(5);
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        assert_eq!(body.len(), len, "one record");
        let mut body = body.to_vec();
        let plain = key.open_in_place(nonce(iv, seq), aead::Aad::from(header), &mut body).unwrap();
        let end = plain.iter().rposition(|&b| b != 0).unwrap();
        assert_eq!(plain[end], 0x17, "application data");
        plain[..end].to_vec()
    }

    #[test]
    fn the_keys_given_to_the_kernel_seal_and_open_what_a_rustls_peer_does() {
        for suite in [
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        ] {
            let (mut client, server) = pair(suite);
            client.writer().write_all(b"to the server").unwrap();
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            // The server hands over before it reads the client's record.
            let secrets = server.dangerous_extract_secrets().unwrap();
            assert!(secrets.tx.0 > 0, "the tickets used sequence numbers: {:?}", secrets.tx.0);
            let rx = CryptoInfo::new(Version::Tls13, cipher(&secrets.rx.1).unwrap(), secrets.rx.0).unwrap();
            let tx = CryptoInfo::new(Version::Tls13, cipher(&secrets.tx.1).unwrap(), secrets.tx.0).unwrap();
            assert_eq!(kernel_open(&rx, &wire), b"to the server", "{suite:?}");
            let record = kernel_seal(&tx, b"to the client");
            let mut rest = &record[..];
            client.read_tls(&mut rest).unwrap();
            client.process_new_packets().unwrap();
            let mut got = [0u8; 13];
            client.reader().read_exact(&mut got).unwrap();
            assert_eq!(&got, b"to the client", "{suite:?}");
        }
    }
}
