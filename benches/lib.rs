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

/// A small deterministic generator, so every run measures the same bytes.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// `len` bytes of a JSON feed like a hub carries: a stream of quote and
/// chat objects with varying numbers, names and words, cut to `len` (the
/// compressors see realistic redundancy, not one repeated line).
pub fn json_feed(len: usize) -> Vec<u8> {
    const SYMBOLS: [&str; 8] = ["ACME", "GLOBX", "INITECH", "UMBRL", "STARK", "WAYNE", "OSCRP", "TYRL"];
    const USERS: [&str; 6] = ["ann", "bob", "chidi", "dana", "eleanor", "farid"];
    let words = prose_words();
    let mut rng = Lcg(7);
    let mut out = String::with_capacity(len + 256);
    while out.len() < len {
        if rng.next(3) == 0 {
            let text: Vec<&str> = (0..3 + rng.next(8)).map(|_| words[rng.next(words.len() as u64) as usize]).collect();
            out.push_str(&format!(
                "{{\"type\":\"chat\",\"room\":\"lobby-{}\",\"from\":\"{}\",\"id\":{},\"text\":\"{}\"}}\n",
                rng.next(20),
                USERS[rng.next(6) as usize],
                100_000 + rng.next(900_000),
                text.join(" ")
            ));
        } else {
            let bid = 100 + rng.next(900);
            out.push_str(&format!(
                "{{\"type\":\"quote\",\"symbol\":\"{}\",\"bid\":{}.{:02},\"ask\":{}.{:02},\"size\":{},\"ts\":\"2026-11-30T01:{:02}:{:02}.{:03}Z\"}}\n",
                SYMBOLS[rng.next(8) as usize],
                bid,
                rng.next(100),
                bid + 1,
                rng.next(100),
                rng.next(10_000),
                rng.next(60),
                rng.next(60),
                rng.next(1000)
            ));
        }
    }
    out.truncate(len);
    out.into_bytes()
}

fn prose_words() -> Vec<&'static str> {
    "the of and to a in that is was he for it with as his on be at by had are but from or have an they which \
     one you were her all she there would their we him been has when who will more no if out so said what up its \
     about into than them can only other new some could time these two may then do first any my now such like our \
     over man me even most made after also did many before must through back years where much your way well down \
     should because each just those people how too little state good very make world still own see men work long \
     get here between both life being under never day same another know while last might us great old year off \
     come since against go came right used take three message server client socket buffer frame window compress"
        .split_whitespace()
        .collect()
}

/// `len` bytes of English-like prose: sentences of words drawn from a
/// vocabulary of about 200, cut to `len`.
pub fn prose(len: usize) -> Vec<u8> {
    let words = prose_words();
    let mut rng = Lcg(11);
    let mut out = String::with_capacity(len + 64);
    while out.len() < len {
        let sentence: Vec<&str> = (0..6 + rng.next(14)).map(|_| words[rng.next(words.len() as u64) as usize]).collect();
        let mut sentence = sentence.join(" ");
        sentence[..1].make_ascii_uppercase();
        out.push_str(&sentence);
        out.push_str(". ");
    }
    out.truncate(len);
    out.into_bytes()
}
