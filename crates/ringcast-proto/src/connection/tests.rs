use super::*;
use crate::error::{Error, ProtocolError};
use crate::frame::FrameHeader;
use crate::frame::{encode_frame, OpCode};
use crate::utf8::OwnedMessage;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An event with owned bytes, so tests can keep it past the next read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

/// Feeds `input` in the given pieces and collects every event, stopping at
/// the first error.
fn feed(conn: &mut Connection, pieces: &[&[u8]]) -> Result<Vec<Got>, Error> {
    let mut got = Vec::new();
    for piece in pieces {
        let mut buf = piece.to_vec();
        let mut pos = 0;
        loop {
            let read = conn.read(&mut buf[pos..])?;
            pos += read.consumed;
            let Some(event) = read.event else { break };
            got.push(match event {
                Event::Text(t) => Got::Text(t.to_owned()),
                Event::Binary(b) => Got::Binary(b.to_vec()),
                Event::Ping(b) => Got::Ping(b.to_vec()),
                Event::Pong(b) => Got::Pong(b.to_vec()),
                Event::Close(c) => Got::Close(c.code.map(|c| c.0), c.reason.to_owned()),
            });
        }
        assert_eq!(pos, buf.len(), "a read without event must consume everything");
    }
    Ok(got)
}

/// A frame as a client sends it (masked with KEY).
fn masked(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, Some(KEY));
    out
}

fn server() -> Connection {
    Connection::server(Config::default())
}

/// Decodes the frames in `bytes` (as a peer would) into (opcode, payload).
fn frames(bytes: &[u8]) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (h, n) = FrameHeader::decode(rest).unwrap().unwrap();
        let mut payload = rest[n..n + h.payload_len as usize].to_vec();
        if let Some(k) = h.mask {
            crate::mask::apply_mask(&mut payload, k, 0);
        }
        out.push((h.opcode, h.fin, payload));
        rest = &rest[n + h.payload_len as usize..];
    }
    out
}

fn pending(conn: &mut Connection) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut out = Vec::new();
    conn.take_pending(&mut out);
    frames(&out)
}

#[test]
fn rfc_examples_client_side() {
    let mut c = Connection::client_with_seed(Config::default(), [1; 32]);
    let single = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let frag = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
    let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    let got = feed(&mut c, &[&single, &frag, &ping]).unwrap();
    assert_eq!(got, [Got::Text("Hello".into()), Got::Text("Hello".into()), Got::Ping(b"Hello".to_vec())]);
    // The automatic pong from a client is masked and echoes the payload.
    let mut out = Vec::new();
    c.take_pending(&mut out);
    assert_eq!(out[0], 0x8a);
    assert_eq!(out[1], 0x85, "a client pong carries a mask");
    assert_eq!(frames(&out), [(OpCode::Pong, true, b"Hello".to_vec())]);
}

#[test]
fn rfc_examples_server_side() {
    let mut s = server();
    let hello = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let pong = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    let got = feed(&mut s, &[&hello, &pong]).unwrap();
    assert_eq!(got, [Got::Text("Hello".into()), Got::Pong(b"Hello".to_vec())]);
    let big = vec![0xabu8; 256];
    let mut out = Vec::new();
    s.send_binary(&big, &mut out).unwrap();
    assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
    out.clear();
    s.send_binary(&vec![0u8; 65536], &mut out).unwrap();
    assert_eq!(&out[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
}

#[test]
fn whole_frame_is_lent_from_the_input_without_copy() {
    let mut s = server();
    let mut input = masked(true, OpCode::Binary, &[5u8; 300]);
    let range = input.as_ptr_range();
    let read = s.read(&mut input).unwrap();
    let Some(Event::Binary(b)) = read.event else { panic!("binary expected") };
    assert!(range.contains(&b.as_ptr()), "payload must point into the input");
    assert_eq!(b, &[5u8; 300][..]);
}

#[test]
fn assembled_message_is_taken_owned_and_the_next_one_still_reads() {
    let mut s = server();
    let text = "é".repeat(1000);
    let (a, b) = text.as_bytes().split_at(1001);
    let mut first = masked(false, OpCode::Text, a);
    let mut second = masked(true, OpCode::Continuation, b);
    assert!(s.read(&mut first).unwrap().event.is_none());
    let read = s.read(&mut second).unwrap();
    assert!(read.is_assembled());
    assert_eq!(read.event, Some(Event::Text(&text)));
    match s.take_message() {
        Some(OwnedMessage::Text(t)) => assert_eq!(t.as_str(), text),
        other => panic!("text expected, got {other:?}"),
    }
    assert_eq!(s.take_message(), None, "taken once");
    // A frame whole in the input is lent from it: nothing to take.
    let mut whole = masked(true, OpCode::Binary, &[7u8; 50]);
    let read = s.read(&mut whole).unwrap();
    assert!(!read.is_assembled());
    assert_eq!(s.take_message(), None);
    // The receiver goes on in a new buffer.
    let mut first = masked(false, OpCode::Binary, b"ab");
    let mut second = masked(true, OpCode::Continuation, b"cd");
    let got = feed(&mut s, &[&first, &second]).unwrap();
    assert_eq!(got, [Got::Binary(b"abcd".to_vec())]);
    first.clear();
    second.clear();
}

#[test]
fn send_by_reference_writes_the_header_a_copy_would() {
    let payload = vec![9u8; 70_000];
    let mut s = server();
    let mut copied = Vec::new();
    s.send_binary(&payload, &mut copied).unwrap();
    let mut head = Vec::new();
    assert!(s.sender().send_by_reference(MessageKind::Binary, payload.len(), &mut head).unwrap());
    head.extend_from_slice(&payload);
    assert_eq!(head, copied);
    // A client masks, so its payload cannot go out as it lies.
    let mut c = Connection::client_with_seed(Config::default(), [3; 32]);
    let mut out = Vec::new();
    assert!(!c.sender().send_by_reference(MessageKind::Text, 10, &mut out).unwrap());
    assert!(out.is_empty());
    // After a close, like any send, it is refused.
    s.close(Some(CloseCode::NORMAL), "", &mut out).unwrap();
    assert_eq!(s.sender().send_by_reference(MessageKind::Binary, 1, &mut out), Err(UsageError::Closing));
}

#[test]
fn control_frames_between_fragments() {
    let mut s = server();
    let mut stream = masked(false, OpCode::Text, b"Hel");
    stream.extend(masked(true, OpCode::Ping, b"p"));
    stream.extend(masked(true, OpCode::Continuation, b"lo"));
    let got = feed(&mut s, &[&stream]).unwrap();
    assert_eq!(got, [Got::Ping(b"p".to_vec()), Got::Text("Hello".into())]);
    assert_eq!(pending(&mut s), [(OpCode::Pong, true, b"p".to_vec())]);
}

#[test]
fn byte_by_byte_gives_the_same_events() {
    let mut stream = masked(false, OpCode::Text, "κό".as_bytes());
    stream.extend(masked(true, OpCode::Ping, b"ping"));
    stream.extend(masked(true, OpCode::Continuation, "σμε".as_bytes()));
    stream.extend(masked(true, OpCode::Binary, &[9u8; 200]));
    stream.extend(masked(true, OpCode::Close, &[0x03, 0xe8, b'o', b'k']));
    let whole = feed(&mut server(), &[&stream]).unwrap();
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let split = feed(&mut server(), &bytes).unwrap();
    assert_eq!(whole, split);
    assert_eq!(whole.len(), 4);
    assert_eq!(whole[3], Got::Close(Some(1000), "ok".into()));
}

/// Feeds `stream` to a fresh server and returns the error and the close code
/// it queued.
fn violation(stream: &[u8]) -> (ProtocolError, Option<u16>) {
    let mut s = server();
    let err = match feed(&mut s, &[stream]) {
        Err(Error::Protocol(e)) => e,
        other => panic!("expected a protocol error, got {other:?}"),
    };
    assert_eq!(s.state(), State::Closed);
    let sent = pending(&mut s);
    let code = match sent.as_slice() {
        [(OpCode::Close, true, p)] => Some(u16::from_be_bytes([p[0], p[1]])),
        [] => None,
        other => panic!("unexpected output {other:?}"),
    };
    (err, code)
}

#[test]
fn violations_map_to_close_codes() {
    let mut unmasked = Vec::new();
    encode_frame(&mut unmasked, true, OpCode::Text, b"hi", None);
    assert_eq!(violation(&unmasked), (ProtocolError::UnmaskedFrame, Some(1002)));

    let mut rsv = masked(true, OpCode::Text, b"hi");
    rsv[0] |= 0x40;
    assert_eq!(violation(&rsv), (ProtocolError::ReservedBits(4), Some(1002)));

    let mut reserved = masked(true, OpCode::Text, b"hi");
    reserved[0] = 0x80 | 0x3;
    assert_eq!(violation(&reserved), (ProtocolError::ReservedOpcode(3), Some(1002)));

    let cont = masked(true, OpCode::Continuation, b"x");
    assert_eq!(violation(&cont), (ProtocolError::UnexpectedContinuation, Some(1002)));

    let mut nested = masked(false, OpCode::Text, b"a");
    nested.extend(masked(true, OpCode::Binary, b"b"));
    assert_eq!(violation(&nested), (ProtocolError::ExpectedContinuation, Some(1002)));

    let long_ping = [0x89, 0xFE, 0, 126, 1, 2, 3, 4];
    assert_eq!(violation(&long_ping), (ProtocolError::ControlTooLong, Some(1002)));

    let frag_ping = masked(false, OpCode::Ping, b"");
    assert_eq!(violation(&frag_ping), (ProtocolError::FragmentedControl, Some(1002)));

    let close1 = masked(true, OpCode::Close, &[0x03]);
    assert_eq!(violation(&close1), (ProtocolError::InvalidClosePayload, Some(1002)));

    let close_code = masked(true, OpCode::Close, &[0x03, 0xed]);
    assert_eq!(violation(&close_code), (ProtocolError::InvalidCloseCode(1005), Some(1002)));

    let close_reason = masked(true, OpCode::Close, &[0x03, 0xe8, 0xff]);
    assert_eq!(violation(&close_reason), (ProtocolError::InvalidUtf8, Some(1007)));

    let bad_text = masked(true, OpCode::Text, b"ok\xff");
    assert_eq!(violation(&bad_text), (ProtocolError::InvalidUtf8, Some(1007)));
}

#[test]
fn client_refuses_masked_frames() {
    let mut c = Connection::client_with_seed(Config::default(), [2; 32]);
    let err = feed(&mut c, &[&masked(true, OpCode::Text, b"x")]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::MaskedFrame));
    let sent = pending(&mut c);
    assert_eq!(sent.len(), 1);
    assert_eq!(&sent[0].2[..2], &1002u16.to_be_bytes());
}

#[test]
fn invalid_utf8_fails_fast_in_the_first_fragment() {
    let mut s = server();
    let first = masked(false, OpCode::Text, b"ok\xf4\x90");
    let err = feed(&mut s, &[&first]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_fails_fast_inside_a_frame_split_across_reads() {
    let mut s = server();
    let frame = masked(true, OpCode::Text, b"valid then \xc0\xaf and much more text after it");
    // Only the header and the first 14 payload bytes arrive.
    let err = feed(&mut s, &[&frame[..6 + 14]]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::InvalidUtf8));
}

#[test]
fn code_point_split_across_fragments_is_valid() {
    let text = "a€b".as_bytes();
    let mut stream = masked(false, OpCode::Text, &text[..2]);
    stream.extend(masked(false, OpCode::Continuation, &text[2..3]));
    stream.extend(masked(true, OpCode::Continuation, &text[3..]));
    assert_eq!(feed(&mut server(), &[&stream]).unwrap(), [Got::Text("a€b".into())]);
}

#[test]
fn message_ending_inside_a_code_point_is_1007() {
    let text = "a€".as_bytes();
    let mut stream = masked(false, OpCode::Text, &text[..2]);
    stream.extend(masked(true, OpCode::Continuation, &[]));
    assert_eq!(violation(&stream), (ProtocolError::InvalidUtf8, Some(1007)));
}

#[test]
fn oversized_frame_fails_on_its_header() {
    let mut s = Connection::server(Config::default().max_frame_size(1000));
    // A header declaring 1 GiB and nothing else.
    let header = [0x82, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4];
    let err = feed(&mut s, &[&header]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::FrameTooLarge));
    assert_eq!(&pending(&mut s)[0].2[..2], &1009u16.to_be_bytes());
}

#[test]
fn oversized_message_fails_when_a_fragment_would_pass_the_limit() {
    let mut s = Connection::server(Config::default().max_message_size(10));
    let mut stream = masked(false, OpCode::Binary, &[0; 6]);
    stream.extend(masked(true, OpCode::Continuation, &[0; 5]));
    let err = feed(&mut s, &[&stream]).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::MessageTooLarge));
    let mut ok = Connection::server(Config::default().max_message_size(10));
    let mut fits = masked(false, OpCode::Binary, &[0; 6]);
    fits.extend(masked(true, OpCode::Continuation, &[0; 4]));
    assert_eq!(feed(&mut ok, &[&fits]).unwrap(), [Got::Binary(vec![0; 10])]);
}

#[test]
fn peer_close_is_echoed_and_ends_reading() {
    let mut s = server();
    let mut stream = masked(true, OpCode::Close, &[0x0f, 0xa0, b'b', b'y', b'e']);
    stream.extend(masked(true, OpCode::Text, b"ignored"));
    let got = feed(&mut s, &[&stream]).unwrap();
    assert_eq!(got, [Got::Close(Some(4000), "bye".into())]);
    assert_eq!(s.state(), State::Closed);
    assert_eq!(pending(&mut s), [(OpCode::Close, true, vec![0x0f, 0xa0])]);
    let mut out = Vec::new();
    assert_eq!(s.send_text("late", &mut out), Err(UsageError::Closing));
}

#[test]
fn empty_close_is_answered_with_empty_close() {
    let mut s = server();
    let got = feed(&mut s, &[&masked(true, OpCode::Close, &[])]).unwrap();
    assert_eq!(got, [Got::Close(None, String::new())]);
    assert_eq!(pending(&mut s), [(OpCode::Close, true, vec![])]);
}

#[test]
fn our_close_then_data_is_discarded_until_their_close() {
    let mut s = server();
    let mut out = Vec::new();
    s.close(Some(CloseCode::GOING_AWAY), "shutdown", &mut out).unwrap();
    assert_eq!(frames(&out), [(OpCode::Close, true, [&[0x03, 0xe9][..], b"shutdown"].concat())]);
    assert_eq!(s.state(), State::CloseSent);
    let mut stream = masked(false, OpCode::Text, b"dropped");
    stream.extend(masked(true, OpCode::Continuation, b"\xff too"));
    stream.extend(masked(true, OpCode::Ping, b"p"));
    stream.extend(masked(true, OpCode::Close, &[0x03, 0xe9]));
    let got = feed(&mut s, &[&stream]).unwrap();
    assert_eq!(got, [Got::Ping(b"p".to_vec()), Got::Close(Some(1001), String::new())]);
    assert_eq!(s.state(), State::Closed);
    assert!(!s.has_pending(), "no pong and no second close after our close");
}

#[test]
fn burst_of_pings_gets_every_pong() {
    // Autobahn 2.10: nine pings in one read, each answered in order.
    let mut s = server();
    let mut stream = Vec::new();
    for i in 1..=9 {
        stream.extend(masked(true, OpCode::Ping, format!("payload-{i}").as_bytes()));
    }
    assert_eq!(feed(&mut s, &[&stream]).unwrap().len(), 9);
    let pongs: Vec<Vec<u8>> = pending(&mut s)
        .into_iter()
        .map(|(op, _, p)| {
            assert_eq!(op, OpCode::Pong);
            p
        })
        .collect();
    let expected: Vec<Vec<u8>> = (1..=9).map(|i| format!("payload-{i}").into_bytes()).collect();
    assert_eq!(pongs, expected);
}

#[test]
fn ping_flood_keeps_a_bounded_queue_ending_with_the_latest() {
    let mut s = server();
    let mut stream = Vec::new();
    for i in 0..1000u32 {
        stream.extend(masked(true, OpCode::Ping, &i.to_be_bytes()));
    }
    assert_eq!(feed(&mut s, &[&stream]).unwrap().len(), 1000);
    let sent = pending(&mut s);
    let max = usize::from(super::send::MAX_QUEUED_PONGS);
    assert_eq!(sent.len(), max);
    assert_eq!(sent[0].2, 0u32.to_be_bytes());
    assert_eq!(sent[max - 2].2, (max as u32 - 2).to_be_bytes());
    assert_eq!(sent[max - 1].2, 999u32.to_be_bytes(), "the newest ping is answered");
    // Once taken, the budget starts again.
    feed(&mut s, &[&masked(true, OpCode::Ping, b"again")]).unwrap();
    assert_eq!(pending(&mut s), [(OpCode::Pong, true, b"again".to_vec())]);
}

#[test]
fn take_pending_never_keeps_the_callers_large_buffer() {
    let mut s = server();
    let mut out = Vec::with_capacity(1 << 20);
    s.take_pending(&mut out);
    assert_eq!(out.capacity(), 1 << 20, "nothing pending: the caller keeps its buffer");
    feed(&mut s, &[&masked(true, OpCode::Ping, b"x")]).unwrap();
    s.take_pending(&mut out);
    assert_eq!(out.capacity(), 1 << 20);
    assert_eq!(frames(&out), [(OpCode::Pong, true, b"x".to_vec())]);
}

#[test]
fn message_cut_by_our_close_does_not_count_against_limits() {
    let mut s = Connection::server(Config::default().max_message_size(1000));
    let mut first = masked(false, OpCode::Text, &[b'a'; 900]);
    assert_eq!(feed(&mut s, &[&first]).unwrap(), []);
    let mut out = Vec::new();
    s.close(Some(CloseCode::NORMAL), "", &mut out).unwrap();
    first.clear();
    first.extend(masked(true, OpCode::Continuation, &[b'a'; 50]));
    first.extend(masked(true, OpCode::Binary, &[0; 200]));
    first.extend(masked(true, OpCode::Close, &[0x03, 0xe8]));
    assert_eq!(feed(&mut s, &[&first]).unwrap(), [Got::Close(Some(1000), String::new())]);
    assert!(!s.has_pending());
}

#[test]
fn close_goes_after_pending_pong() {
    let mut s = server();
    feed(&mut s, &[&masked(true, OpCode::Ping, b"x")]).unwrap();
    let mut out = Vec::new();
    s.close(Some(CloseCode::NORMAL), "", &mut out).unwrap();
    let sent = frames(&out);
    assert_eq!(sent.iter().map(|f| f.0).collect::<Vec<_>>(), [OpCode::Pong, OpCode::Close]);
}

#[test]
fn client_frames_are_masked_and_read_back_by_a_server() {
    let mut c = Connection::client_with_seed(Config::default(), [3; 32]);
    let mut s = server();
    let mut wire = Vec::new();
    c.send_text("hello", &mut wire).unwrap();
    c.send_fragment(MessageKind::Binary, b"ab", false, &mut wire).unwrap();
    c.ping(b"mid", &mut wire).unwrap();
    c.send_fragment(MessageKind::Binary, b"cd", true, &mut wire).unwrap();
    c.close(Some(CloseCode::NORMAL), "done", &mut wire).unwrap();
    let (first, second) = (FrameHeader::decode(&wire).unwrap().unwrap().0, wire.clone());
    assert!(first.mask.is_some());
    let got = feed(&mut s, &[&second]).unwrap();
    assert_eq!(
        got,
        [
            Got::Text("hello".into()),
            Got::Ping(b"mid".to_vec()),
            Got::Binary(b"abcd".to_vec()),
            Got::Close(Some(1000), "done".into())
        ]
    );
}

#[test]
fn masking_keys_differ_per_frame() {
    let mut c = Connection::client_with_seed(Config::default(), [4; 32]);
    let mut keys = std::collections::HashSet::new();
    for _ in 0..100 {
        let mut out = Vec::new();
        c.send_binary(b"x", &mut out).unwrap();
        keys.insert(FrameHeader::decode(&out).unwrap().unwrap().0.mask.unwrap());
    }
    assert!(keys.len() > 95, "keys repeat: {}", keys.len());
}

#[test]
fn usage_errors() {
    let mut s = server();
    let mut out = Vec::new();
    assert_eq!(s.ping(&[0; 126], &mut out), Err(UsageError::ControlTooLong));
    assert_eq!(s.close(Some(CloseCode(1006)), "", &mut out), Err(UsageError::InvalidCloseCode(1006)));
    s.send_fragment(MessageKind::Text, b"a", false, &mut out).unwrap();
    assert_eq!(s.send_text("b", &mut out), Err(UsageError::FragmentState));
    assert_eq!(s.send_fragment(MessageKind::Binary, b"b", true, &mut out), Err(UsageError::FragmentState));
    s.send_fragment(MessageKind::Text, b"c", true, &mut out).unwrap();
    assert_eq!(frames(&out), [(OpCode::Text, false, b"a".to_vec()), (OpCode::Continuation, true, b"c".to_vec())]);
}

#[test]
fn large_assembled_message_does_not_keep_its_buffer() {
    let mut s = Connection::server(Config::default().retain_capacity(1024));
    let payload = vec![7u8; 100_000];
    let frame = masked(true, OpCode::Binary, &payload);
    let (a, b) = frame.split_at(5000);
    let got = feed(&mut s, &[a, b]).unwrap();
    assert_eq!(got, [Got::Binary(payload)]);
    // The next read returns the lent buffer and shrinks it.
    feed(&mut s, &[&masked(true, OpCode::Ping, b"")]).unwrap();
    let (rx, _) = s.split();
    assert!(rx.assembly_capacity() <= 1024, "kept {} bytes", rx.assembly_capacity());
}

#[test]
fn split_halves_echo_without_copying() {
    let mut s = server();
    let mut input = masked(false, OpCode::Text, b"assem");
    input.extend(masked(true, OpCode::Continuation, b"bled"));
    input.extend(masked(true, OpCode::Binary, b"in place"));
    let mut out = Vec::new();
    let (rx, tx) = s.split();
    let mut pos = 0;
    loop {
        let read = rx.read(tx, &mut input[pos..]).unwrap();
        pos += read.consumed;
        match read.event {
            Some(Event::Text(t)) => tx.send_text(t, &mut out).unwrap(),
            Some(Event::Binary(b)) => tx.send_binary(b, &mut out).unwrap(),
            Some(other) => panic!("unexpected {other:?}"),
            None => break,
        }
    }
    assert_eq!(
        frames(&out),
        [(OpCode::Text, true, b"assembled".to_vec()), (OpCode::Binary, true, b"in place".to_vec())]
    );
}

#[test]
fn connection_state_stays_small() {
    // The runtime budgets 256 bytes per idle connection in all; the protocol
    // state is most of it, and an idle connection allocates nothing else.
    let size = std::mem::size_of::<Connection>();
    assert!(size <= 192, "Connection grew to {size} bytes");
    let conn = server();
    assert_eq!(conn.rx.assembly_capacity(), 0, "an idle connection holds no buffer");
}

#[test]
fn a_receiver_refuses_another_connections_sender() {
    let mut a = server();
    let mut b = server();
    let (rx, _) = a.split();
    let mut input = masked(true, OpCode::Ping, b"x");
    let err = rx.read(b.sender(), &mut input).unwrap_err();
    assert_eq!(err, Error::Usage(UsageError::MismatchedHalves));
    assert!(!b.has_pending(), "no pong may go to the wrong peer");
}
