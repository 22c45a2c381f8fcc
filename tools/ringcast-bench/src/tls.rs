//! `wss://` for the load generator: a rustls client connection per
//! socket, read and written through [`Io`] so that the frame reader and
//! the write path do not know whether the bytes are encrypted. The
//! server's certificate must verify against `--tls-ca`.

use std::io::{self, ErrorKind, Read, Write};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// A client configuration that trusts the certificates in `ca` (PEM).
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tls-ca {}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("--tls-ca {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("--tls-ca {}: no certificate", ca.display()));
    }
    // The process's default provider: ring, which this tool's rustls
    // features name.
    let config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    Ok(Arc::new(config))
}

/// A socket, and its TLS connection when the URL is `wss://`.
pub struct Io<'a> {
    stream: &'a mut TcpStream,
    tls: Option<&'a mut ClientConnection>,
}

impl<'a> Io<'a> {
    /// The socket's bytes, through TLS when there is a session.
    pub fn new(stream: &'a mut TcpStream, tls: &'a mut Option<Box<ClientConnection>>) -> Io<'a> {
        Io { stream, tls: tls.as_deref_mut() }
    }

    /// Sends what rustls holds (handshake records, encrypted data) as far
    /// as the socket takes it.
    pub fn push(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_deref_mut() else { return Ok(()) };
        while tls.wants_write() {
            match tls.write_tls(self.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Reads plaintext until `buf` is full or the socket has nothing more
/// (`WouldBlock` from the socket): a short read means the socket was
/// drained, as the frame reader assumes with edge-triggered readiness.
impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.stream.read(buf);
        }
        let mut filled = 0;
        loop {
            let Some(tls) = self.tls.as_deref_mut() else { unreachable!("checked above") };
            match tls.reader().read(&mut buf[filled..]) {
                // A clean end (close_notify), after what was read before it.
                Ok(0) if filled < buf.len() => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if filled > 0 => {
                    let _ = e; // reported at the next read
                    return Ok(filled);
                }
                Err(e) => return Err(e),
            }
            match tls.read_tls(self.stream) {
                Ok(0) => {
                    // The end of the stream: rustls says whether it was clean.
                    tls.process_new_packets().map_err(io::Error::other)?;
                    return match tls.reader().read(&mut buf[filled..]) {
                        Ok(n) => Ok(filled + n),
                        Err(_) if filled > 0 => Ok(filled),
                        Err(e) => Err(e),
                    };
                }
                Ok(_) => {
                    tls.process_new_packets().map_err(io::Error::other)?;
                    // The handshake may owe the server an answer.
                    self.push()?;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.stream.write(buf);
        }
        self.push()?;
        let Some(tls) = self.tls.as_deref_mut() else { unreachable!("checked above") };
        // rustls takes plaintext up to its buffer limit (64 KiB): the rest
        // waits in the caller's buffer, where it counts as unsent.
        let taken = tls.writer().write(buf)?;
        self.push()?;
        if taken == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push()
    }
}
