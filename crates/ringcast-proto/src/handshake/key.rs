//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §4.2.2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A `Sec-WebSocket-Accept` value: base64 of a SHA-1 digest, 28 ASCII bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// The value as text.
    pub fn as_str(&self) -> &str {
        // Base64 output is ASCII; the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computes the accept value for a client key, exactly as received.
pub fn accept_key(client_key: &[u8]) -> AcceptKey {
    let mut sha = Sha1::new();
    sha.update(client_key);
    sha.update(GUID.as_bytes());
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    // 20 bytes always encode to exactly 28 base64 characters.
    let written = STANDARD.encode_slice(digest.as_slice(), &mut out).unwrap_or(0);
    debug_assert_eq!(written, 28);
    AcceptKey(out)
}

/// Whether `key` (surrounding whitespace already trimmed) is the base64 of
/// exactly 16 bytes, as RFC 6455 §4.1 requires.
pub(crate) fn is_valid_client_key(key: &[u8]) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// Encodes 16 random bytes as a client key.
pub(crate) fn encode_client_key(nonce: [u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    let written = STANDARD.encode_slice(nonce, &mut out).unwrap_or(0);
    debug_assert_eq!(written, 24);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_sample_key() {
        assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn client_key_must_be_16_bytes_of_base64() {
        assert!(is_valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ")); // unpadded
        assert!(!is_valid_client_key(b"dGhlIHNhbXBsZSBub25jZXg=")); // 17 bytes
        assert!(!is_valid_client_key(b"dGhlIHNhbXBsZSBub25j")); // 15 bytes
        assert!(!is_valid_client_key(b"dGhlIHNhbXBsZSBub25jZQ!=")); // not base64
        assert!(!is_valid_client_key(b""));
    }

    #[test]
    fn encoded_nonce_is_a_valid_key() {
        let key = encode_client_key([7; 16]);
        assert!(is_valid_client_key(&key));
    }
}
