//! Every protocol violation of RFC 6455 that a client can commit, sent on a
//! real socket: the server must answer with the right close code and then
//! end the TCP stream, and tell the handler.

mod common;

use common::*;
use ringcast::ServerBuilder;

/// Sends `bytes` on a fresh connection and expects close `code` then EOF.
fn violation(server: &TestServer, name: &str, bytes: &[u8], code: u16) {
    let before = server.log.lock().unwrap().closed.len();
    let mut client = RawClient::open(server.addr());
    client.send_raw(bytes);
    let frame = loop {
        let frame = client.read_frame().unwrap_or_else(|| panic!("{name}: stream ended without a close frame"));
        if frame.opcode == 0x8 {
            break frame;
        }
    };
    assert_eq!(frame.close_code(), Some(code), "{name}: {frame:?}");
    client.expect_eof();
    let closes = server.wait_closes(before + 1);
    assert_eq!(closes[before].0, code, "{name}: the handler hears the same code");
    assert!(!closes[before].2, "{name}: the server started this close");
}

#[test]
fn each_violation_gets_its_close_code_then_tcp_close() {
    let server = TestServer::one_shard();
    let text = |fin: bool| if fin { 0x81 } else { 0x01 };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", client_frame(0x81, b"hi", false), 1002),
        ("RSV1 without an extension", masked(0x40 | 0x1, b"hi"), 1002),
        ("RSV2", client_frame(0x80 | 0x20 | 0x2, b"x", true), 1002),
        ("RSV3", client_frame(0x80 | 0x10 | 0x2, b"x", true), 1002),
        ("reserved data opcode 3", masked(0x3, b""), 1002),
        ("reserved control opcode 11", masked(0xB, b""), 1002),
        ("fragmented ping", client_frame(0x09, b"p", true), 1002),
        ("ping over 125 bytes", masked(0x9, &[b'p'; 126]), 1002),
        ("continuation with nothing started", masked(0x0, b"x"), 1002),
        (
            "new message inside a fragmented one",
            [client_frame(text(false), b"a", true), masked(0x1, b"b")].concat(),
            1002,
        ),
        ("close with a 1-byte payload", masked(0x8, &[3]), 1002),
        ("close with code 1005", masked(0x8, &close_payload(1005, "")), 1002),
        ("close with code 999", masked(0x8, &close_payload(999, "")), 1002),
        ("close with code 5000", masked(0x8, &close_payload(5000, "")), 1002),
        (
            "text that is not UTF-8",
            masked(0x1, &[0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]),
            1007,
        ),
        (
            "UTF-8 broken across fragments",
            [client_frame(text(false), &[0xe2, 0x82], true), client_frame(0x80, &[0x28], true)].concat(),
            1007,
        ),
        ("close reason that is not UTF-8", masked(0x8, &[0x03, 0xe8, 0xff, 0xfe]), 1007),
        (
            "64-bit length with its top bit set",
            [vec![0x82, 0xff], vec![0x80, 0, 0, 0, 0, 0, 0, 1], vec![1, 2, 3, 4]].concat(),
            1002,
        ),
    ];
    for (name, bytes, code) in cases {
        violation(&server, name, &bytes, code);
    }
}

#[test]
fn oversized_frames_and_messages_get_1009_before_the_payload() {
    let server = TestServer::start(ServerBuilder::new().shards(1).max_frame_size(1000).max_message_size(1500));
    // Only the header is sent: the verdict must not wait for the payload.
    violation(&server, "frame header over max_frame_size", &masked(0x2, &[0; 1001])[..8], 1009);
    let two = [client_frame(0x02, &[1; 900], true), client_frame(0x80, &[2; 700], true)].concat();
    violation(&server, "fragments adding up past max_message_size", &two, 1009);
    // At the limit is fine.
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x2, &[7; 1000]));
    let echo = client.read_frame().unwrap();
    assert_eq!(echo.payload.len(), 1000);
}

#[test]
fn a_clean_close_from_the_client_is_echoed_then_the_server_hangs_up() {
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    client.send_raw(&masked(0x8, &close_payload(4000, "done")));
    let frame = client.read_frame().unwrap();
    assert_eq!(frame.close_code(), Some(4000), "the code is echoed");
    client.expect_eof();
    let closes = server.wait_closes(1);
    assert_eq!(closes[0], (4000, "done".to_string(), true));
}

#[test]
fn data_after_a_violation_is_ignored_and_the_stream_still_ends() {
    let server = TestServer::one_shard();
    let mut client = RawClient::open(server.addr());
    // The violation, then more frames in the same write: none is echoed.
    let mut bytes = client_frame(0x81, b"unmasked", false);
    bytes.extend(masked(0x1, b"after"));
    bytes.extend(masked(0x1, b"more"));
    client.send_raw(&bytes);
    client.expect_close(1002);
}
