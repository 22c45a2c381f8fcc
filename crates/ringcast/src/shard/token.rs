//! What a ring operation belongs to, packed into its 64-bit `user_data`:
//! the kind of operation, the connection's table key and its generation
//! (so a completion for a slot since reused is recognised and ignored).

/// Operation kinds, in the top byte of a token.
pub mod op {
    pub const ACCEPT: u64 = 1;
    pub const RECV: u64 = 2;
    pub const SEND: u64 = 3;
    pub const WAKE: u64 = 4;
    /// Shutdown, close, cancel: nothing to do when they complete.
    pub const IGNORE: u64 = 5;
    /// A client socket became writable: its TCP connect is done.
    pub const CONNECT: u64 = 6;
}

/// Packs an operation kind, a table key and its generation (24 bits).
pub fn token(op: u64, key: usize, generation: u32) -> u64 {
    (op << 56) | (u64::from(generation & 0xFF_FFFF) << 32) | (key as u64 & 0xFFFF_FFFF)
}

/// The kind, key and generation of a token.
pub fn untoken(user_data: u64) -> (u64, usize, u32) {
    (user_data >> 56, (user_data & 0xFFFF_FFFF) as usize, ((user_data >> 32) & 0xFF_FFFF) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_keeps_24_bits_of_generation() {
        assert_eq!(untoken(token(op::SEND, 123_456, 0x12_3456)), (op::SEND, 123_456, 0x12_3456));
        assert_eq!(untoken(token(op::RECV, 7, 0x0100_0001)), (op::RECV, 7, 1));
    }
}
