//! Arbitrary bytes as a compressed message (permessage-deflate), and the
//! same bytes as a message to compress. The oracles:
//! - the size limit only cuts: under a small limit a message inflates to
//!   the same bytes as under a large one, or fails with `TooLarge` exactly
//!   when the large run's output is longer than the small limit, and the
//!   output buffer never grows past the limit (a bomb costs the limit, not
//!   its inflated size);
//! - the per-thread decompressor (peer without context) and a connection's
//!   own (context takeover) give the same verdict on one message;
//! - whatever is compressed, in either role, with or without context and
//!   at any window, inflates back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::deflate::{Negotiated, PerMessageDeflate, Tuning};
use ringcast_proto::{Extension, ExtensionError, MessageKind};

const LARGE: usize = 1 << 20;

fn codec(server: bool, context: bool, bits: u8) -> PerMessageDeflate {
    let negotiated = Negotiated {
        server_no_context_takeover: !context,
        client_no_context_takeover: !context,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    };
    PerMessageDeflate::new(negotiated, server, Tuning { level: 2, threshold: 0, window: 15, memory: 8 })
}

fn inflate(codec: &mut PerMessageDeflate, data: &[u8], max: usize) -> (Result<(), ExtensionError>, Vec<u8>) {
    let mut out = Vec::new();
    let result = codec.decode(0b100, data, max, &mut out);
    assert!(out.capacity() <= max + 1, "{} bytes held for a limit of {max}", out.capacity());
    (result, out)
}

fuzz_target!(|input: &[u8]| {
    let Some((&ctl, data)) = input.split_first() else { return };
    let small = 1 + usize::from(ctl >> 2) * 97; // 1 B to about 6 KiB
    let server = ctl & 1 == 1;
    let context = ctl & 2 == 2;

    let (large_result, large_out) = inflate(&mut codec(server, false, 15), data, LARGE);
    let (small_result, small_out) = inflate(&mut codec(server, false, 15), data, small);
    match large_result {
        Ok(()) if large_out.len() <= small => {
            assert_eq!(small_result, Ok(()), "fits the small limit yet refused");
            assert_eq!(small_out, large_out, "the limit changed the bytes");
        }
        Ok(()) | Err(ExtensionError::TooLarge) => assert_eq!(small_result, Err(ExtensionError::TooLarge)),
        Err(_) => assert!(small_result.is_err(), "invalid under one limit, accepted under another"),
    }
    let (kept_result, kept_out) = inflate(&mut codec(server, true, 15), data, small);
    assert_eq!(kept_result, small_result, "a kept decompressor decides otherwise");
    if kept_result.is_ok() {
        assert_eq!(kept_out, small_out);
    }

    // Round trip: `data` as the message, compressed by one end and
    // inflated by the other, twice (the second message uses the context
    // when it is kept).
    let bits = 9 + (ctl >> 2) % 7;
    let mut sender = codec(server, context, bits);
    let mut receiver = codec(!server, context, bits);
    for _ in 0..2 {
        let mut wire = Vec::new();
        let Some(rsv) = sender.encode(MessageKind::Binary, data, &mut wire) else { panic!("threshold 0 compresses") };
        assert_eq!(rsv, 0b100);
        let mut back = Vec::new();
        receiver.decode(rsv, &wire, data.len(), &mut back).expect("our own output inflates within its size");
        assert_eq!(back, data);
    }
});
