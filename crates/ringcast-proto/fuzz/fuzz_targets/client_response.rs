//! The client's response checks on arbitrary bytes, delivered in two reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::handshake::{accept_key, ClientHandshake, WsUri};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else { return };
    let uri = WsUri::parse("ws://127.0.0.1:9001/chat").unwrap();
    // The RFC's sample nonce, so inputs can carry its accept value.
    let mut hs = ClientHandshake::with_nonce(uri, *b"the sample nonce")
        .protocol("chat")
        .extension("permessage-deflate; client_max_window_bits")
        .max_head_bytes(4096);
    let cut = usize::from(cut).min(data.len());
    if !matches!(hs.read_response(&data[..cut]), Ok(None)) {
        return;
    }
    if let Ok(Some(response)) = hs.read_response(data) {
        assert_eq!(response.status(), 101);
        assert!(response.head_len() <= data.len());
        let expected = accept_key(hs.key().as_bytes());
        assert_eq!(response.header("Sec-WebSocket-Accept"), Some(expected.as_str().as_bytes()));
        assert!(response.protocol().is_none_or(|p| p == "chat"));
        assert!(response.extensions().iter().all(|e| e.name.eq_ignore_ascii_case("permessage-deflate")));
    }
});
