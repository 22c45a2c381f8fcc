//! `--compression`: permessage-deflate negotiated with clients that offer
//! it; a publish arrives compressed for them and plain for the others.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use ringcast::proto::deflate::{Negotiated, PerMessageDeflate, Tuning};
use ringcast::proto::Extension;

/// Upgrades to `/topics/feed` (offering deflate or not) and returns the
/// stream and the 101's head.
fn join(hub: &TestHub, offer: bool) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(hub.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let extra = if offer { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    stream.write_all(upgrade("/topics/feed", extra).as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1);
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap())
}

/// One server frame: (first byte, payload).
fn frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).unwrap();
    let len = match header[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).unwrap();
            usize::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).unwrap();
            usize::try_from(u64::from_be_bytes(ext)).unwrap()
        }
        n => usize::from(n),
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    (header[0], payload)
}

#[test]
fn subscribers_that_offer_deflate_get_compressed_frames() {
    let hub = TestHub::start(2, |c| c.compression = true);
    let (mut compressed, head) = join(&hub, true);
    assert!(head.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover"), "{head}");
    let (mut plain, head) = join(&hub, false);
    assert!(!head.contains("permessage-deflate"), "{head}");
    hub.wait_subscribers("r:feed", 2);
    let text = "{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.27} ".repeat(50);
    assert_eq!(publish(hub.addr(), "feed", "application/json", text.as_bytes()), 2);

    let (first, payload) = frame(&mut compressed);
    assert_eq!(first, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
    assert!(payload.len() < text.len() / 5, "{} of {}", payload.len(), text.len());
    let negotiated = Negotiated {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut inflated = Vec::new();
    PerMessageDeflate::new(negotiated, false, Tuning::default())
        .decode(0b100, &payload, 1 << 20, &mut inflated)
        .unwrap();
    assert_eq!(inflated, text.as_bytes());
    assert_eq!(frame(&mut plain), (0x81, text.into_bytes()));
}

#[test]
fn without_the_flag_no_extension_is_negotiated() {
    let hub = TestHub::start(1, |_| {});
    let (_stream, head) = join(&hub, true);
    assert!(head.starts_with("HTTP/1.1 101") && !head.contains("permessage-deflate"), "{head}");
}

#[test]
fn context_takeover_keeps_the_window_between_messages() {
    let hub = TestHub::start(1, |c| {
        c.compression = true;
        c.compression_context_takeover = true;
    });
    let (mut stream, head) = join(&hub, true);
    let answer = head.lines().find(|l| l.starts_with("Sec-WebSocket-Extensions:")).unwrap_or_default();
    assert_eq!(answer, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover", "{head}");
    hub.wait_subscribers("r:feed", 1);
    let negotiated = Negotiated {
        server_no_context_takeover: false,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut decoder = PerMessageDeflate::new(negotiated, false, Tuning::default());
    let text = "{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.27,\"venue\":\"XNAS\",\"seq\":12345} ".repeat(4);
    let mut sizes = Vec::new();
    for _ in 0..2 {
        assert_eq!(publish(hub.addr(), "feed", "application/json", text.as_bytes()), 1);
        let (first, payload) = frame(&mut stream);
        assert_eq!(first, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
        let mut inflated = Vec::new();
        decoder.decode(0b100, &payload, 1 << 20, &mut inflated).expect("inflates with the kept window");
        assert_eq!(inflated, text.as_bytes());
        sizes.push(payload.len());
    }
    // The second copy refers back to the first: a few bytes.
    assert!(sizes[1] * 4 < sizes[0], "{sizes:?}");
}

#[test]
fn the_window_and_memory_level_flags_reach_the_compressor() {
    let hub = TestHub::start(1, |c| {
        c.compression = true;
        c.compression_window_bits = 10;
        c.compression_memory_level = 1;
    });
    let (mut stream, head) = join(&hub, true);
    assert!(head.contains("; server_max_window_bits=10\r\n"), "{head}");
    hub.wait_subscribers("r:feed", 1);
    // Over 128 symbols, so memory level 1 (blocks of 128) shows in the bytes.
    let text: String = (0..400).map(|i| format!("{{\"seq\":{i},\"bid\":{}}} ", 100 + i * 7 % 13)).collect();
    assert_eq!(publish(hub.addr(), "feed", "application/json", text.as_bytes()), 1);
    let (first, payload) = frame(&mut stream);
    assert_eq!(first, 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
    let (mut expected, mut default_memory) = (Vec::new(), Vec::new());
    let tuning = Tuning { window: 10, memory: 1, ..Tuning::default() };
    PerMessageDeflate::compress_alone(text.as_bytes(), &tuning, &mut expected);
    PerMessageDeflate::compress_alone(text.as_bytes(), &Tuning { memory: 8, ..tuning }, &mut default_memory);
    assert_ne!(expected, default_memory, "the two levels must differ for this test to mean anything");
    assert_eq!(payload, expected);
}
