//! A fast pseudo-random generator for mask keys and handshake nonces.
//!
//! RFC 6455 §5.3 wants a client's masking keys to be unpredictable, so that
//! a script in a browser cannot steer the bytes an intermediary sees. A load
//! generator has no such adversary: what it needs is a fresh key on every
//! frame, so the server really unmasks varied data, at a cost of about a
//! nanosecond. wyrand, seeded once per thread from the OS, gives that; it is
//! not a cryptographic generator, and this tool is not a browser.

/// wyrand: one 64-bit state, a multiply and a xor per output.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the OS (or, without entropy, from the clock
    /// and the thread).
    pub fn from_os() -> Rng {
        let mut seed = [0u8; 8];
        if getrandom::fill(&mut seed).is_err() {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            seed = (nanos ^ (&seed as *const _ as u64)).to_le_bytes();
        }
        Rng(u64::from_le_bytes(seed))
    }

    /// A generator with a chosen seed (tests).
    #[cfg(test)]
    pub fn with_seed(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let product = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((product >> 64) ^ product) as u64
    }

    /// A masking key for one frame.
    #[inline]
    pub fn mask_key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    /// A 16-byte nonce for `Sec-WebSocket-Key`.
    pub fn nonce(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_ne_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_ne_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_vary() {
        let mut rng = Rng::with_seed(1);
        let keys: std::collections::HashSet<[u8; 4]> = (0..1000).map(|_| rng.mask_key()).collect();
        assert!(keys.len() > 990);
        assert_ne!(rng.nonce(), rng.nonce());
    }
}
