//! Inputs shared by the criterion benches: realistic payloads and frame
//! streams, built once so every bench measures the same bytes.

use ringcast_proto::frame::{encode_frame, OpCode};

/// A mask key like a browser's.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// `len` bytes of ASCII text.
pub fn ascii(len: usize) -> Vec<u8> {
    b"The quick brown fox jumps over the lazy dog. ".iter().copied().cycle().take(len).collect()
}

/// `len` bytes of mixed-script UTF-8 (Greek, CJK, emoji, ASCII), cut on a
/// character boundary.
pub fn mixed(len: usize) -> Vec<u8> {
    let unit = "κόσμε 世界 😀 naïve café — ".as_bytes();
    let mut out: Vec<u8> = unit.iter().copied().cycle().take(len).collect();
    while std::str::from_utf8(&out).is_err() {
        out.pop();
    }
    out
}

/// `count` masked client frames of `size` bytes each, as one stream.
pub fn client_stream(count: usize, size: usize, opcode: OpCode) -> Vec<u8> {
    let payload = ascii(size);
    let mut out = Vec::with_capacity(count * (size + 14));
    for _ in 0..count {
        encode_frame(&mut out, true, opcode, &payload, Some(KEY));
    }
    out
}

/// The RFC 6455 sample upgrade request.
pub const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";
