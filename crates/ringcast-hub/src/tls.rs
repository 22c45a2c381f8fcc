//! `--tls-cert` / `--tls-key`: the hub's certificate, replaced while
//! running when the files change and the hub is told (SIGHUP). Open
//! connections keep the session they have; new handshakes get the new
//! certificate.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use ringcast::tls::rustls::server::{ClientHello, ResolvesServerCert};
use ringcast::tls::rustls::sign::CertifiedKey;
use ringcast::tls::TlsFileError;

/// The hub's certificate and where it came from.
#[derive(Debug)]
pub struct Certificate {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificate {
    /// Loads the pair, or says which file is wrong and why.
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<Certificate, TlsFileError> {
        let current = ringcast::tls::load_certified_key(&cert, &key)?;
        Ok(Certificate { cert, key, current: RwLock::new(current) })
    }

    /// Reads the files again. On an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsFileError> {
        let fresh = ringcast::tls::load_certified_key(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The certificate in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The resolver rustls asks at every handshake.
#[derive(Debug)]
pub struct Resolver(pub Arc<Certificate>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current())
    }
}
