//! permessage-deflate through a whole connection: negotiated offers and
//! answers, RFC 7692's example frames, compressed sends, and hostile input
//! (a decompression bomb, corrupt data, RSV1 where it may not be).

mod common;

use common::{feed_cut, masked_frame, queued_close_code, Got};
use ringcast_proto::deflate::{client_accept, client_offer, server_accept, DeflateConfig, PerMessageDeflate, Tuning};
use ringcast_proto::frame::OpCode;
use ringcast_proto::handshake::parse_extension_header;
use ringcast_proto::{Config, Connection, Error, Extension, MessageKind, ProtocolError};

const RSV1: u8 = 0b100;

/// A server and a client connection that negotiated with the default
/// settings, through the real offer and answer.
fn negotiated_pair(config: Config) -> (Connection, Connection) {
    let deflate = DeflateConfig::default();
    let offer = client_offer(&deflate);
    let (server_side, answer) = server_accept(&parse_extension_header(offer.as_bytes()), &deflate).unwrap();
    let client_side = client_accept(&parse_extension_header(answer.as_bytes()), &deflate).unwrap().unwrap();
    let tuning = Tuning { level: 2, threshold: 16, window: 15, memory: 8 };
    let server = Connection::server(config).with_extension(Box::new(PerMessageDeflate::new(server_side, true, tuning)));
    let client = Connection::client(Config::default()).with_extension(Box::new(PerMessageDeflate::new(
        client_side,
        false,
        tuning,
    )));
    (server, client)
}

fn server(config: Config) -> Connection {
    negotiated_pair(config).0
}

/// Compressed the way a peer without context would send it.
fn compressed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PerMessageDeflate::compress_alone(payload, &Tuning { level: 6, ..Tuning::default() }, &mut out);
    out
}

#[test]
fn the_rfc_examples_arrive_whole_and_fragmented() {
    // RFC 7692 §7.2.3.1: "Hello" compressed, in one frame and in two.
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let mut wire = masked_frame(true, RSV1, OpCode::Text, &hello);
    wire.extend(masked_frame(false, RSV1, OpCode::Text, &hello[..3]));
    wire.extend(masked_frame(true, 0, OpCode::Continuation, &hello[3..]));
    for cut in [0, 1, 5, 9, wire.len() - 1] {
        let cuts: Vec<usize> = if cut == 0 { vec![] } else { vec![cut] };
        let (got, error) = feed_cut(&mut server(Config::default()), &wire, &cuts);
        assert_eq!((got, error), (vec![Got::Text("Hello".into()), Got::Text("Hello".into())], None), "cut {cut}");
    }
}

#[test]
fn both_ends_compress_what_they_send_and_read_what_they_get() {
    let (mut server, mut client) = negotiated_pair(Config::default());
    let text = "{\"type\":\"quote\",\"symbol\":\"ACME\",\"bid\":101.25} ".repeat(40);
    let mut wire = Vec::new();
    client.send_text(&text, &mut wire).unwrap();
    assert_eq!(wire[0], 0x80 | 0x40 | 0x1, "FIN, RSV1, text");
    assert!(wire.len() < text.len() / 4, "compressed: {} of {}", wire.len(), text.len());
    let (got, error) = feed_cut(&mut server, &wire, &[]);
    assert_eq!((got, error), (vec![Got::Text(text.clone())], None));
    let mut reply = Vec::new();
    server.send_binary(text.as_bytes(), &mut reply).unwrap();
    assert_eq!(reply[0], 0x80 | 0x40 | 0x2);
    let (got, error) = feed_cut(&mut client, &reply, &[]);
    assert_eq!((got, error), (vec![Got::Binary(text.into_bytes())], None));
    // Under the threshold: sent as it is, RSV1 clear.
    let mut small = Vec::new();
    server.send_text("tiny", &mut small).unwrap();
    assert_eq!(small[0], 0x81);
}

#[test]
fn a_decompression_bomb_closes_with_1009() {
    // 16 MiB of zeros in about 16 KiB, against a 1 MiB limit.
    let bomb = compressed(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 64 << 10);
    let mut conn = server(Config::default().max_message_size(1 << 20));
    let (got, error) = feed_cut(&mut conn, &masked_frame(true, RSV1, OpCode::Binary, &bomb), &[]);
    assert_eq!((got, error), (vec![], Some(Error::Protocol(ProtocolError::MessageTooLarge))));
    assert_eq!(queued_close_code(&mut conn), 1009);
}

#[test]
fn corrupt_data_closes_with_1007_and_bad_bits_with_1002() {
    let mut conn = server(Config::default());
    let (_, error) = feed_cut(&mut conn, &masked_frame(true, RSV1, OpCode::Binary, &[0xff, 0xff, 0xff]), &[]);
    assert_eq!(error, Some(Error::Protocol(ProtocolError::ExtensionData)));
    assert_eq!(queued_close_code(&mut conn), 1007);

    // Compressed text that inflates to invalid UTF-8.
    let mut conn = server(Config::default());
    let (_, error) = feed_cut(&mut conn, &masked_frame(true, RSV1, OpCode::Text, &compressed(&[b'a', 0xff])), &[]);
    assert_eq!(error, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(queued_close_code(&mut conn), 1007);

    // RSV1 on a control frame, on a continuation, and RSV2.
    for wire in [
        masked_frame(true, RSV1, OpCode::Ping, b""),
        [masked_frame(false, 0, OpCode::Text, b"a"), masked_frame(true, RSV1, OpCode::Continuation, b"b")].concat(),
        masked_frame(true, 0b010, OpCode::Text, b"a"),
    ] {
        let mut conn = server(Config::default());
        let (_, error) = feed_cut(&mut conn, &wire, &[]);
        assert!(matches!(error, Some(Error::Protocol(_))), "{error:?}");
        assert_eq!(queued_close_code(&mut conn), 1002);
    }

    // Without the extension, RSV1 is a protocol error too.
    let mut plain = Connection::server(Config::default());
    let (_, error) = feed_cut(&mut plain, &masked_frame(true, RSV1, OpCode::Text, &compressed(b"hi")), &[]);
    assert!(matches!(error, Some(Error::Protocol(ProtocolError::ReservedBits(_)))), "{error:?}");
    assert_eq!(queued_close_code(&mut plain), 1002);
}

#[test]
fn compress_alone_matches_what_a_connection_without_context_sends() {
    let payload = "the same bytes for every subscriber ".repeat(10);
    let mut codec = PerMessageDeflate::new(
        client_accept(
            &parse_extension_header(b"permessage-deflate; server_no_context_takeover"),
            &DeflateConfig::default(),
        )
        .unwrap()
        .unwrap(),
        true,
        Tuning { level: 2, threshold: 0, window: 15, memory: 8 },
    );
    let mut from_codec = Vec::new();
    codec.encode(MessageKind::Text, payload.as_bytes(), &mut from_codec).unwrap();
    let mut alone = Vec::new();
    PerMessageDeflate::compress_alone(payload.as_bytes(), &Tuning::default(), &mut alone);
    assert_eq!(from_codec, alone, "one compression serves every subscriber");
}
