//! The permessage-deflate codec: an [`Extension`] that inflates messages
//! whose first frame carries RSV1 and deflates outgoing ones.
//!
//! Memory: an end that sends without context (each message compressed on
//! its own) uses its thread's compressor, reset per message, and an end
//! whose peer sends without context uses its thread's decompressor: a
//! connection holds no compression state between messages (on a shard,
//! one compressor and one decompressor serve every connection). Only a
//! direction with context takeover keeps its own state, created with the
//! first message (zlib-rs: about 300 KiB to deflate, 40 KiB to inflate).
//!
//! A zlib-rs compressor allocates `4 << window` bytes for its window,
//! 128 KiB for its hash table and `448 << memory` for its symbol buffers
//! (368 KiB at window 15 and memory level 8, 131 KiB at 9 and 1); the
//! symbol buffers are touched only as far as a message fills them.
//!
//! Inflating stops as soon as the output would pass the size limit: a
//! small message that would inflate to gigabytes costs at most the limit
//! (plus a chunk) before it fails with 1009.
//!
//! Compression calls zlib-rs directly, because flate2 (used to inflate)
//! does not expose the memory level.

use std::cell::RefCell;

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{Deflate as Compress, DeflateConfig, DeflateFlush, Method, Strategy};

use super::negotiate::Negotiated;
use crate::extension::{Extension, ExtensionError};
use crate::frame::MessageKind;

/// What a compressor is made for: (level, window bits, memory level).
type Settings = (u32, u8, u8);

/// RSV1: the message is compressed.
const RSV1: u8 = 0b100;
/// What a sync flush ends with; stripped by senders, restored by receivers
/// (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// The output grows by at most this much per step while inflating.
const INFLATE_STEP: usize = 64 << 10;

thread_local! {
    /// This thread's compressors for messages sent without context, by
    /// (level, window bits, memory level).
    static DEFLATERS: RefCell<Vec<(Settings, Compress)>> = const { RefCell::new(Vec::new()) };
    /// This thread's decompressor for messages received without context.
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// Sender settings: how hard to compress and what to leave alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// zlib level, 0 (store) to 9; default 2 (see `docs/benchmarks.md`).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (default 128
    /// bytes: below it deflate saves next to nothing and costs microseconds).
    pub threshold: usize,
    /// The window (bits, 9 to 15) of messages compressed once for many
    /// connections ([`PerMessageDeflate::compress_alone`]): a connection
    /// that negotiated this window and no context can take them (default
    /// 15, the server's window unless configured smaller).
    pub window: u8,
    /// zlib's memory level, 1 to 9 (default 8): the compressor's symbol
    /// buffers are `448 << memory` bytes (112 KiB at 8, 896 B at 1).
    /// Lower saves memory where a compressor is kept per connection
    /// (context takeover) and ends deflate blocks sooner on long messages,
    /// which costs some ratio.
    pub memory: u8,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { level: 2, threshold: 128, window: 15, memory: 8 }
    }
}

/// A connection's permessage-deflate.
pub struct PerMessageDeflate {
    negotiated: Negotiated,
    server: bool,
    tuning: Tuning,
    /// Our compressor, kept between messages (context takeover only).
    own: Option<Box<Compress>>,
    /// The peer's decompressor, kept between messages (its context takeover only).
    peer: Option<Box<Decompress>>,
}

impl std::fmt::Debug for PerMessageDeflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerMessageDeflate").field("negotiated", &self.negotiated).field("server", &self.server).finish()
    }
}

impl PerMessageDeflate {
    /// The codec of a server (`server`) or client connection that agreed on
    /// `negotiated`.
    pub fn new(negotiated: Negotiated, server: bool, tuning: Tuning) -> PerMessageDeflate {
        PerMessageDeflate { negotiated, server, tuning, own: None, peer: None }
    }

    /// Compresses one message on its own (no context), as this thread's
    /// compressor does for every connection sending without context: the
    /// payload of a frame with RSV1, at `tuning`'s level and window. Used
    /// to compress a published message once for all its subscribers.
    pub fn compress_alone(payload: &[u8], tuning: &Tuning, out: &mut Vec<u8>) {
        compress_alone_with(payload, (tuning.level, tuning.window, tuning.memory), out);
    }

    /// The window (bits) of the messages this end sends.
    fn own_window(&self) -> u8 {
        if self.server {
            self.negotiated.server_max_window_bits
        } else {
            self.negotiated.client_max_window_bits
        }
    }
}

/// [`PerMessageDeflate::compress_alone`] with this thread's compressor
/// for `(level, window bits, memory level)`.
fn compress_alone_with(payload: &[u8], key: Settings, out: &mut Vec<u8>) {
    DEFLATERS.with(|cell| {
        let mut kept = cell.borrow_mut();
        let at = match kept.iter().position(|(k, _)| *k == key) {
            Some(at) => {
                kept[at].1.reset();
                at
            }
            None => {
                kept.push((key, raw_compressor(key)));
                kept.len() - 1
            }
        };
        deflate(&mut kept[at].1, payload, out);
    });
}

/// A raw deflate compressor for `(level, window bits, memory level)`,
/// each clamped to what zlib takes (it has no 8-bit window).
fn raw_compressor((level, bits, memory): Settings) -> Compress {
    Compress::new_with_config(DeflateConfig {
        level: level.min(9) as i32,
        method: Method::Deflated,
        window_bits: -i32::from(bits.clamp(9, 15)), // negative: raw, no zlib header
        mem_level: i32::from(memory.clamp(1, 9)),
        strategy: Strategy::Default,
    })
}

/// Deflates `input` with a sync flush and strips the tail.
fn deflate(compress: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if input.is_empty() {
        // An empty stored block, whose LEN and NLEN are the stripped tail
        // (RFC 7692 §7.2.3.6). zlib would write nothing for an empty sync
        // flush right after another, and the window is unchanged.
        out.push(0x00);
        return;
    }
    // zlib-rs' safe call writes into initialised bytes: the zeroing is a
    // memset of about half the input, small beside deflating it.
    out.resize(input.len() / 2 + 64, 0);
    let (start_in, start_out) = (compress.total_in(), compress.total_out());
    loop {
        let taken = (compress.total_in() - start_in) as usize;
        let written = (compress.total_out() - start_out) as usize;
        // Infallible for a raw stream with valid arguments.
        let _ = compress.compress(&input[taken..], &mut out[written..], DeflateFlush::SyncFlush);
        let written = (compress.total_out() - start_out) as usize;
        // Done when all input is in and the flush left room (zlib: a full
        // output may hold back more).
        if (compress.total_in() - start_in) as usize == input.len() && written < out.len() {
            out.truncate(written);
            break;
        }
        out.resize(out.len() * 2, 0);
    }
    debug_assert!(out.ends_with(&TAIL), "a sync flush ends with an empty stored block");
    out.truncate(out.len().saturating_sub(TAIL.len()));
}

/// Inflates `input` into `out`, failing once `out` would pass `max`.
/// Returns true at the end of a deflate stream (a final block).
fn inflate(
    decompress: &mut Decompress,
    mut input: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<bool, ExtensionError> {
    loop {
        if out.len() == out.capacity() {
            // One byte past the limit tells "exactly the limit" from "more".
            let room = max.saturating_add(1).saturating_sub(out.len());
            if room == 0 {
                return Err(ExtensionError::TooLarge);
            }
            out.reserve_exact(room.min(INFLATE_STEP).max(input.len().min(room)));
        }
        let (in_before, out_before) = (decompress.total_in(), decompress.total_out());
        let status =
            decompress.decompress_vec(input, out, FlushDecompress::Sync).map_err(|_| ExtensionError::Invalid)?;
        input = &input[(decompress.total_in() - in_before) as usize..];
        if out.len() > max {
            return Err(ExtensionError::TooLarge);
        }
        if status == Status::StreamEnd {
            return Ok(true);
        }
        let progress = decompress.total_in() != in_before || decompress.total_out() != out_before;
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(false); // all input taken, output not cut short
        }
        if !progress && out.len() < out.capacity() {
            return Err(ExtensionError::Invalid);
        }
    }
}

/// Inflates one message: its payload, then the stripped tail.
fn inflate_message(
    decompress: &mut Decompress,
    payload: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), ExtensionError> {
    if !inflate(decompress, payload, max, out)? {
        // A message ending in a final block has no tail to restore.
        inflate(decompress, &TAIL, max, out)?;
    }
    Ok(())
}

impl Extension for PerMessageDeflate {
    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn decode(&mut self, _rsv: u8, payload: &[u8], max_size: usize, out: &mut Vec<u8>) -> Result<(), ExtensionError> {
        let peer_without_context = self.negotiated.sends_without_context(!self.server);
        if peer_without_context {
            return INFLATER.with(|cell| {
                let mut cell = cell.borrow_mut();
                let decompress = cell.get_or_insert_with(|| Decompress::new(false));
                decompress.reset(false);
                inflate_message(decompress, payload, max_size, out)
            });
        }
        let decompress = self.peer.get_or_insert_with(|| Box::new(Decompress::new(false)));
        let result = inflate_message(decompress, payload, max_size, out);
        if result.is_err() {
            decompress.reset(false); // the connection is failing anyway
        }
        result
    }

    /// Only without context and with the window the shared frames are
    /// compressed with ([`Tuning::window`]).
    fn encodes_alone(&self) -> bool {
        self.negotiated.sends_without_context(self.server) && self.own_window() == self.tuning.window
    }

    fn encode(&mut self, _kind: MessageKind, payload: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        let bits = self.own_window();
        if payload.len() < self.tuning.threshold || bits < 9 {
            return None; // a 256-byte window is beyond zlib: sent as it is
        }
        if self.negotiated.sends_without_context(self.server) {
            compress_alone_with(payload, (self.tuning.level, bits, self.tuning.memory), out);
        } else {
            let key = (self.tuning.level, bits, self.tuning.memory);
            let compress = self.own.get_or_insert_with(|| Box::new(raw_compressor(key)));
            deflate(compress, payload, out);
        }
        Some(RSV1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiated(no_context: bool) -> Negotiated {
        Negotiated {
            server_no_context_takeover: no_context,
            client_no_context_takeover: no_context,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }

    fn pair(no_context: bool) -> (PerMessageDeflate, PerMessageDeflate) {
        let tuning = Tuning { level: 2, threshold: 0, window: 15, memory: 8 };
        (
            PerMessageDeflate::new(negotiated(no_context), true, tuning),
            PerMessageDeflate::new(negotiated(no_context), false, tuning),
        )
    }

    #[test]
    fn a_codec_without_context_is_small() {
        // All that a connection holds for permessage-deflate when neither
        // side keeps context (idle memory, docs/benchmarks.md).
        assert!(std::mem::size_of::<PerMessageDeflate>() <= 48, "{}", std::mem::size_of::<PerMessageDeflate>());
    }

    #[test]
    fn the_rfc_examples_inflate() {
        // RFC 7692 §7.2.3.1 (compressed "Hello"), §7.2.3.3 (a stored block),
        // §7.2.3.2 (context taken over: the second "Hello").
        let (mut server, _) = pair(true);
        let mut out = Vec::new();
        server.decode(RSV1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
        out.clear();
        server
            .decode(RSV1, &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00], 100, &mut out)
            .unwrap();
        assert_eq!(out, b"Hello");
        let (mut with_context, _) = pair(false);
        for wire in [&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..], &[0xf2, 0x00, 0x11, 0x00, 0x00]] {
            out.clear();
            with_context.decode(RSV1, wire, 100, &mut out).unwrap();
            assert_eq!(out, b"Hello");
        }
        // A final block (BFINAL) instead of a sync flush is read too.
        out.clear();
        server.decode(RSV1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn messages_round_trip_with_and_without_context() {
        for no_context in [true, false] {
            let (mut server, mut client) = pair(no_context);
            for round in 0..3 {
                let mut state = 1u32 + round as u32;
                // Noise deflates to more than its size: the output grows.
                let noise: Vec<u8> = (0..70_000)
                    .map(|_| {
                        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        (state >> 16) as u8
                    })
                    .collect();
                for size in [0usize, 1, 200, 5000, 300_000, usize::MAX] {
                    let message: Vec<u8> = match size {
                        usize::MAX => noise.clone(),
                        _ => (0..size).map(|i| b"abcab{\"x\":1}"[(i * 7 + round) % 12]).collect(),
                    };
                    let mut wire = Vec::new();
                    assert_eq!(server.encode(MessageKind::Text, &message, &mut wire), Some(RSV1));
                    assert!(!wire.ends_with(&TAIL), "the tail is stripped");
                    let mut back = Vec::new();
                    client.decode(RSV1, &wire, usize::MAX, &mut back).unwrap();
                    assert_eq!(back, message, "server -> client, {size} bytes, context kept: {}", !no_context);
                    let mut wire = Vec::new();
                    client.encode(MessageKind::Binary, &message, &mut wire).unwrap();
                    let mut back = Vec::new();
                    server.decode(RSV1, &wire, usize::MAX, &mut back).unwrap();
                    assert_eq!(back, message, "client -> server");
                }
            }
            assert_eq!(server.own.is_some(), !no_context, "state kept only with context takeover");
            assert_eq!(server.peer.is_some(), !no_context);
        }
    }

    #[test]
    fn a_limited_window_is_honoured_and_not_shared() {
        let message: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8 ^ (i / 700) as u8).collect();
        for (bits, compresses) in [(9u8, true), (12, true), (8, false)] {
            let mut negotiated = negotiated(true);
            negotiated.server_max_window_bits = bits;
            let mut server =
                PerMessageDeflate::new(negotiated, true, Tuning { level: 6, threshold: 0, window: 15, memory: 8 });
            assert!(!server.encodes_alone(), "window {bits}: not the shared 32 KiB frame");
            let mut wire = Vec::new();
            assert_eq!(server.encode(MessageKind::Binary, &message, &mut wire).is_some(), compresses, "window {bits}");
            if compresses {
                let mut client = PerMessageDeflate::new(negotiated, false, Tuning::default());
                let mut back = Vec::new();
                client.decode(RSV1, &wire, usize::MAX, &mut back).unwrap();
                assert_eq!(back, message, "window {bits}");
            }
        }
        assert!(PerMessageDeflate::new(negotiated(true), true, Tuning::default()).encodes_alone());
        assert!(!PerMessageDeflate::new(negotiated(false), true, Tuning::default()).encodes_alone());
    }

    #[test]
    fn every_memory_level_round_trips_and_low_ones_cut_more_blocks() {
        let message: Vec<u8> =
            (0..60_000u32).map(|i| b"{\"price\":12.5,\"id\":"[(i % 19) as usize] ^ (i / 997) as u8).collect();
        let mut sizes = Vec::new();
        for memory in 1..=9u8 {
            for context in [true, false] {
                let tuning = Tuning { level: 2, threshold: 0, window: 15, memory };
                let mut server = PerMessageDeflate::new(negotiated(!context), true, tuning);
                let mut client = PerMessageDeflate::new(negotiated(!context), false, tuning);
                for _ in 0..2 {
                    let mut wire = Vec::new();
                    server.encode(MessageKind::Binary, &message, &mut wire).unwrap();
                    let mut back = Vec::new();
                    client.decode(RSV1, &wire, usize::MAX, &mut back).unwrap();
                    assert_eq!(back, message, "memory level {memory}, context {context}");
                    if !context {
                        sizes.push(wire.len());
                    }
                }
            }
        }
        // Level 1's 128-symbol blocks each carry their own code tables.
        assert!(sizes[0] > sizes[14], "memory 1: {} B, memory 8: {} B", sizes[0], sizes[14]);
    }

    #[test]
    fn small_messages_stay_uncompressed() {
        let mut codec = PerMessageDeflate::new(negotiated(true), true, Tuning::default());
        let mut out = Vec::new();
        assert_eq!(codec.encode(MessageKind::Text, &[b'a'; 127], &mut out), None);
        assert_eq!(codec.encode(MessageKind::Text, &[b'a'; 128], &mut out), Some(RSV1));
    }

    #[test]
    fn a_decompression_bomb_fails_at_the_limit() {
        // 16 MiB of zeros deflate to about 16 KiB.
        let mut compress = raw_compressor((9, 15, 8));
        let mut wire = Vec::new();
        deflate(&mut compress, &vec![0u8; 16 << 20], &mut wire);
        assert!(wire.len() < 32 << 10, "{}", wire.len());
        let (mut server, _) = pair(true);
        let mut out = Vec::new();
        assert_eq!(server.decode(RSV1, &wire, 1 << 20, &mut out), Err(ExtensionError::TooLarge));
        assert!(out.capacity() <= (1 << 20) + INFLATE_STEP, "inflated to {} bytes of buffer", out.capacity());
        // Exactly at the limit is fine.
        let mut exact = Vec::new();
        deflate(&mut compress, &vec![7u8; 1000], &mut exact);
        out.clear();
        server.decode(RSV1, &exact, 1000, &mut out).unwrap();
        assert_eq!(out.len(), 1000);
        out.clear();
        assert_eq!(server.decode(RSV1, &exact, 999, &mut out), Err(ExtensionError::TooLarge));
    }

    #[test]
    fn corrupt_data_is_invalid() {
        let (mut server, _) = pair(true);
        let mut out = Vec::new();
        // BTYPE = 11 (reserved).
        assert_eq!(server.decode(RSV1, &[0xff, 0xff, 0xff], 100, &mut out), Err(ExtensionError::Invalid));
        // And the next message on the same thread still inflates.
        out.clear();
        server.decode(RSV1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100, &mut out).unwrap();
        assert_eq!(out, b"Hello");
    }
}
