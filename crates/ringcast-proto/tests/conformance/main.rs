//! Conformance tables: Autobahn|Testsuite group 6 (UTF-8 handling) run
//! against the validator and the connection, whole and fragmented.

mod autobahn_utf8_vectors;
#[path = "../common/mod.rs"]
mod common;

use autobahn_utf8_vectors::VECTORS;
use common::{feed_cut, Got};
use ringcast_proto::frame::{encode_frame, OpCode};
use ringcast_proto::utf8::Utf8Validator;
use ringcast_proto::{Config, Connection, Error, ProtocolError};

const KEY: [u8; 4] = [0xde, 0xad, 0xbe, 0xef];

#[test]
fn table_matches_the_standard_library() {
    assert!(VECTORS.len() >= 140, "the table lost entries: {}", VECTORS.len());
    for (id, bytes, valid) in VECTORS {
        assert_eq!(std::str::from_utf8(bytes).is_ok(), *valid, "case {id}: table disagrees with std");
    }
}

#[test]
fn validator_verdicts_whole_and_byte_by_byte() {
    for (id, bytes, valid) in VECTORS {
        let mut whole = Utf8Validator::new();
        let verdict = whole.feed(bytes).and_then(|()| whole.finish()).is_ok();
        assert_eq!(verdict, *valid, "case {id} whole");
        let mut split = Utf8Validator::new();
        let verdict = bytes.iter().try_for_each(|b| split.feed(std::slice::from_ref(b))).and_then(|()| split.finish());
        assert_eq!(verdict.is_ok(), *valid, "case {id} byte by byte");
    }
}

/// One text message as a single frame, then as one-byte fragments (the way
/// Autobahn 6.x.y sends it in its fragmented variants), then as one frame
/// delivered a byte per read.
#[test]
fn connection_verdicts_in_every_delivery() {
    for (id, bytes, valid) in VECTORS {
        let mut single = Vec::new();
        encode_frame(&mut single, true, OpCode::Text, bytes, Some(KEY));
        let mut fragmented = Vec::new();
        if bytes.is_empty() {
            encode_frame(&mut fragmented, true, OpCode::Text, bytes, Some(KEY));
        }
        for (i, b) in bytes.iter().enumerate() {
            let op = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            encode_frame(&mut fragmented, i + 1 == bytes.len(), op, std::slice::from_ref(b), Some(KEY));
        }
        let every_byte: Vec<usize> = (1..single.len()).collect();
        for (how, stream, cuts) in
            [("single", &single, vec![]), ("fragmented", &fragmented, vec![]), ("trickled", &single, every_byte)]
        {
            let (got, err) = feed_cut(&mut Connection::server(Config::default()), stream, &cuts);
            if *valid {
                assert!(err.is_none(), "case {id} {how}: {err:?}");
                assert_eq!(got, [Got::Text(String::from_utf8(bytes.to_vec()).unwrap())], "case {id} {how}");
            } else {
                assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)), "case {id} {how}");
                assert!(got.is_empty(), "case {id} {how}: {got:?}");
            }
        }
    }
}

/// Autobahn 6.4.x: the connection must fail on the first fragment that
/// makes the text impossible, before the rest of the message arrives.
#[test]
fn fail_fast_before_the_message_ends() {
    let payload: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
    // 6.4.1 / 6.4.3: the invalid part is in the first fragment or the first
    // bytes of a frame; nothing after byte 13 is ever delivered.
    let mut frame = Vec::new();
    encode_frame(&mut frame, true, OpCode::Text, payload, Some(KEY));
    let header = frame.len() - payload.len();
    let (_, err) = feed_cut(&mut Connection::server(Config::default()), &frame[..header + 13], &[]);
    assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    let mut first = Vec::new();
    encode_frame(&mut first, false, OpCode::Text, &payload[..13], Some(KEY));
    let (_, err) = feed_cut(&mut Connection::server(Config::default()), &first, &[]);
    assert_eq!(err, Some(Error::Protocol(ProtocolError::InvalidUtf8)));
    // One byte less is still a valid prefix and must not fail.
    let mut prefix = Vec::new();
    encode_frame(&mut prefix, false, OpCode::Text, &payload[..12], Some(KEY));
    let (_, err) = feed_cut(&mut Connection::server(Config::default()), &prefix, &[]);
    assert_eq!(err, None);
}
