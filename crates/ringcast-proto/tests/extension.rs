//! The extension seam: RSV bits claimed by a negotiated extension, and
//! whole messages transformed on the way in (after assembly, before UTF-8
//! validation) and on the way out. The extension here XORs every byte with
//! 0xAA, so an encoded text is never valid UTF-8 on the wire: a message
//! that reaches the application as text proves the order of the steps.

mod common;

use common::{feed_cut, masked_frame, queued_close_code, Got};
use ringcast_proto::frame::{FrameHeader, OpCode};
use ringcast_proto::{Config, Connection, Error, Extension, ExtensionError, MessageKind, ProtocolError};

const RSV1: u8 = 0b100;
const RSV2: u8 = 0b010;

/// Claims RSV1; XORs payloads with 0xAA. `refuse` makes decode fail, and
/// `skip_text` sends text untransformed.
#[derive(Debug, Default)]
struct Xor {
    refuse: bool,
    skip_text: bool,
}

fn xor(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ 0xAA).collect()
}

impl Extension for Xor {
    fn rsv_bits(&self) -> u8 {
        RSV1
    }

    fn decode(&mut self, rsv: u8, payload: &[u8], max_size: usize, out: &mut Vec<u8>) -> Result<(), ExtensionError> {
        assert_eq!(rsv, RSV1);
        if self.refuse {
            return Err(ExtensionError::Invalid);
        }
        if payload.len() > max_size {
            return Err(ExtensionError::TooLarge);
        }
        out.extend(xor(payload));
        Ok(())
    }

    fn encode(&mut self, kind: MessageKind, payload: &[u8], out: &mut Vec<u8>) -> Option<u8> {
        if self.skip_text && kind == MessageKind::Text {
            return None;
        }
        out.extend(xor(payload));
        Some(RSV1)
    }
}

fn server(extension: Xor) -> Connection {
    Connection::server(Config::default()).with_extension(Box::new(extension))
}

#[test]
fn a_transformed_message_is_decoded_then_checked_as_text() {
    let text = "héllo, wörld ✓";
    let wire = masked_frame(true, RSV1, OpCode::Text, &xor(text.as_bytes()));
    assert!(std::str::from_utf8(&xor(text.as_bytes())).is_err(), "the encoded form must not be UTF-8");
    let (got, error) = feed_cut(&mut server(Xor::default()), &wire, &[]);
    assert_eq!((got, error), (vec![Got::Text(text.into())], None));
}

#[test]
fn fragments_and_reads_cut_anywhere_give_the_same_message() {
    let text = "fragmented ✓ message, ".repeat(20);
    let encoded = xor(text.as_bytes());
    let (a, b) = encoded.split_at(100);
    let (b, c) = b.split_at(150);
    let mut wire = masked_frame(false, RSV1, OpCode::Text, a);
    wire.extend(masked_frame(false, 0, OpCode::Continuation, b));
    wire.extend(masked_frame(true, 0, OpCode::Ping, b"between"));
    wire.extend(masked_frame(true, 0, OpCode::Continuation, c));
    wire.extend(masked_frame(true, RSV1, OpCode::Binary, &xor(&[0, 1, 2, 255])));
    for cut in [1, 2, 7, 64, 101, 300, wire.len() - 1] {
        let (got, error) = feed_cut(&mut server(Xor::default()), &wire, &[cut]);
        assert_eq!(error, None, "cut at {cut}");
        let expected = vec![Got::Ping(b"between".to_vec()), Got::Text(text.clone()), Got::Binary(vec![0, 1, 2, 255])];
        assert_eq!(got, expected, "cut at {cut}");
    }
    let every_byte: Vec<usize> = (1..wire.len()).collect();
    let (got, error) = feed_cut(&mut server(Xor::default()), &wire, &every_byte);
    assert_eq!((got.len(), error), (3, None));
}

#[test]
fn plain_messages_pass_untouched_beside_an_extension() {
    let wire = masked_frame(true, 0, OpCode::Text, b"plain");
    let (got, error) = feed_cut(&mut server(Xor::default()), &wire, &[]);
    assert_eq!((got, error), (vec![Got::Text("plain".into())], None));
}

#[test]
fn invalid_utf8_after_decoding_closes_with_1007() {
    let mut conn = server(Xor::default());
    let wire = masked_frame(true, RSV1, OpCode::Text, &xor(&[b'a', 0xff, b'b']));
    let (_, error) = feed_cut(&mut conn, &wire, &[]);
    assert_eq!(error, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    assert_eq!(queued_close_code(&mut conn), 1007);
}

#[test]
fn a_payload_the_extension_refuses_closes_with_1007() {
    let mut conn = server(Xor { refuse: true, ..Xor::default() });
    let (_, error) = feed_cut(&mut conn, &masked_frame(true, RSV1, OpCode::Binary, b"junk"), &[]);
    assert_eq!(error, Some(Error::Protocol(ProtocolError::ExtensionData)));
    assert_eq!(queued_close_code(&mut conn), 1007);
}

#[test]
fn a_decoded_message_over_the_size_limit_closes_with_1009() {
    let config = Config::default().max_message_size(64);
    let mut conn = Connection::server(config).with_extension(Box::new(Xor::default()));
    let (_, error) = feed_cut(&mut conn, &masked_frame(true, RSV1, OpCode::Binary, &[7; 65]), &[]);
    assert_eq!(error, Some(Error::Protocol(ProtocolError::MessageTooLarge)));
    assert_eq!(queued_close_code(&mut conn), 1009);
}

#[test]
fn bits_the_extension_does_not_claim_or_misplaced_bits_close_with_1002() {
    let cases = [
        ("RSV1 without an extension", None, masked_frame(true, RSV1, OpCode::Text, b"x")),
        ("RSV2, unclaimed", Some(Xor::default()), masked_frame(true, RSV2, OpCode::Text, b"x")),
        ("RSV1 on a ping", Some(Xor::default()), masked_frame(true, RSV1, OpCode::Ping, b"x")),
        ("RSV1 on a continuation", Some(Xor::default()), {
            let mut w = masked_frame(false, 0, OpCode::Text, b"a");
            w.extend(masked_frame(true, RSV1, OpCode::Continuation, b"b"));
            w
        }),
    ];
    for (what, extension, wire) in cases {
        let mut conn = match extension {
            Some(x) => server(x),
            None => Connection::server(Config::default()),
        };
        let (_, error) = feed_cut(&mut conn, &wire, &[]);
        assert!(matches!(error, Some(Error::Protocol(ProtocolError::ReservedBits(_)))), "{what}: {error:?}");
        assert_eq!(queued_close_code(&mut conn), 1002, "{what}");
    }
}

#[test]
fn outgoing_messages_are_encoded_with_the_bits_the_extension_names() {
    let mut conn = server(Xor::default());
    let mut out = Vec::new();
    conn.send_binary(b"abc", &mut out).unwrap();
    let (header, len) = FrameHeader::decode(&out).unwrap().unwrap();
    assert_eq!((header.rsv, header.opcode, &out[len..]), (RSV1, OpCode::Binary, &xor(b"abc")[..]));

    let mut conn = server(Xor { skip_text: true, ..Xor::default() });
    let mut out = Vec::new();
    conn.send_text("as is", &mut out).unwrap();
    let (header, len) = FrameHeader::decode(&out).unwrap().unwrap();
    assert_eq!((header.rsv, &out[len..]), (0, &b"as is"[..]));
}

#[test]
fn a_client_and_a_server_with_the_extension_understand_each_other() {
    let mut client = Connection::client(Config::default()).with_extension(Box::new(Xor::default()));
    let mut wire = Vec::new();
    client.send_text("round trip ✓", &mut wire).unwrap();
    let (header, _) = FrameHeader::decode(&wire).unwrap().unwrap();
    assert_eq!(header.rsv, RSV1);
    assert!(header.mask.is_some());
    let (got, error) = feed_cut(&mut server(Xor::default()), &wire, &[3]);
    assert_eq!((got, error), (vec![Got::Text("round trip ✓".into())], None));
}
