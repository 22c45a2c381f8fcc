//! Certificates and keys from PEM files, for
//! [`ServerBuilder::tls`](crate::ServerBuilder::tls): what a server that
//! takes `--tls-cert` and `--tls-key` needs, with errors that name the file
//! and what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;

/// A certificate chain or key that could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsFileError {
    /// The certificate file could not be read or holds no certificate.
    Certificates {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The key file could not be read or holds no private key.
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The key is of a kind rustls cannot sign with, or it is not the
    /// certificate's key.
    Mismatch(String),
}

impl fmt::Display for TlsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFileError::Certificates { path, why } => write!(f, "certificate file {}: {why}", path.display()),
            TlsFileError::Key { path, why } => write!(f, "key file {}: {why}", path.display()),
            TlsFileError::Mismatch(why) => write!(f, "certificate and key do not go together: {why}"),
        }
    }
}

impl std::error::Error for TlsFileError {}

/// The crypto provider the helpers below build with: the process's
/// default provider if the application installed one
/// ([`CryptoProvider::install_default`], e.g. aws-lc-rs for post-quantum
/// key exchange), else the one this crate's rustls features name (`ring`),
/// which then becomes the process default. A build whose rustls has both
/// the `ring` and the `aws_lc_rs` features must install one itself
/// (rustls cannot choose, and says so).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    match CryptoProvider::get_default() {
        Some(installed) => installed.clone(),
        None => rustls::ServerConfig::builder().crypto_provider().clone(),
    }
}

/// Reads a PEM certificate chain (the server's certificate first, then
/// its intermediates) and its PEM private key (PKCS#8, PKCS#1 or SEC1),
/// and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsFileError> {
    let certificates = |why: String| TlsFileError::Certificates { path: cert.to_owned(), why };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| certificates(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| certificates(e.to_string()))?;
    if chain.is_empty() {
        return Err(certificates("no CERTIFICATE block".into()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsFileError::Key {
        path: key.to_owned(),
        why: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PRIVATE KEY block".into(),
            other => other.to_string(),
        },
    })?;
    let certified = CertifiedKey::from_der(chain, private_key, &crypto_provider())
        .map_err(|e| TlsFileError::Mismatch(e.to_string()))?;
    Ok(Arc::new(certified))
}

/// A rustls server configuration (TLS 1.2 and 1.3, no client
/// certificates) whose certificate comes from `resolver`: for a fixed
/// pair of files, [`server_config_from_pem`]; for certificates replaced
/// while running, a resolver of the caller's.
pub fn server_config_with_resolver(resolver: Arc<dyn ResolvesServerCert>) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver)
}

/// A rustls server configuration for the certificate chain and key in
/// these PEM files.
pub fn server_config_from_pem(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsFileError> {
    let certified = load_certified_key(cert, key)?;
    Ok(server_config_with_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn files_load_and_every_mistake_says_which_file() {
        let dir = std::env::temp_dir().join(format!("ringcast-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert_path = write(&dir, "cert.pem", &cert.pem());
        let key_path = write(&dir, "key.pem", &key.serialize_pem());
        let other_path = write(&dir, "other.pem", &other.serialize_pem());
        let empty = write(&dir, "empty.pem", "");
        assert!(server_config_from_pem(&cert_path, &key_path).is_ok());
        let missing = dir.join("missing.pem");
        let message = |r: Result<rustls::ServerConfig, TlsFileError>| r.err().map(|e| e.to_string()).unwrap();
        assert!(message(server_config_from_pem(&missing, &key_path)).starts_with("certificate file "));
        assert!(message(server_config_from_pem(&empty, &key_path)).contains("no CERTIFICATE block"));
        assert!(message(server_config_from_pem(&cert_path, &empty)).contains("no PRIVATE KEY block"));
        // The key file holds a certificate only.
        assert!(message(server_config_from_pem(&cert_path, &cert_path)).starts_with("key file "));
        assert!(message(server_config_from_pem(&cert_path, &other_path)).starts_with("certificate and key do not"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
