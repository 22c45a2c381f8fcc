//! Property tests: the codec round-trips, and however a byte stream is cut
//! into reads, the connection reports the same events.

mod common;

use common::{feed_cut, Got};
use proptest::prelude::*;
use ringcast_proto::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use ringcast_proto::mask::{apply_mask, apply_mask_with, mask_scalar, rotate_key, Kernel};
use ringcast_proto::utf8::Utf8Validator;
use ringcast_proto::{CloseCode, Config, Connection, MessageKind};

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong)
    ]
}

fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..=125, 126u64..=65535, 65536u64..(1 << 63)]
}

/// What a client may send: messages (whole or fragmented, with control
/// frames between fragments), then maybe a close.
#[derive(Debug, Clone)]
enum Step {
    Message { text: bool, body: Vec<u8>, cuts: Vec<usize>, ping_between: bool },
    Ping(Vec<u8>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            any::<bool>(),
            ".{0,40}",
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(0usize..300, 0..3),
            any::<bool>()
        )
            .prop_map(|(text, s, bin, mut cuts, ping_between)| {
                let body = if text { s.into_bytes() } else { bin };
                cuts.iter_mut().for_each(|c| *c %= body.len() + 1);
                cuts.sort_unstable();
                Step::Message { text, body, cuts, ping_between }
            }),
        proptest::collection::vec(any::<u8>(), 0..=125).prop_map(Step::Ping),
    ]
}

/// Encodes the steps as a client would, and returns the events a server
/// must report for them.
fn client_stream(steps: &[Step], close: Option<u16>, seed: u8) -> (Vec<u8>, Vec<Got>) {
    let mut client = Connection::client_with_seed(Config::default(), [seed; 32]);
    let mut wire = Vec::new();
    let mut expect = Vec::new();
    for step in steps {
        match step {
            Step::Ping(p) => {
                client.ping(p, &mut wire).unwrap();
                expect.push(Got::Ping(p.clone()));
            }
            Step::Message { text, body, cuts, ping_between } => {
                let kind = if *text { MessageKind::Text } else { MessageKind::Binary };
                let mut start = 0;
                for &cut in cuts {
                    client.send_fragment(kind, &body[start..cut], false, &mut wire).unwrap();
                    start = cut;
                    if *ping_between {
                        client.ping(b"between", &mut wire).unwrap();
                        expect.push(Got::Ping(b"between".to_vec()));
                    }
                }
                client.send_fragment(kind, &body[start..], true, &mut wire).unwrap();
                expect.push(if *text {
                    Got::Text(String::from_utf8(body.clone()).unwrap())
                } else {
                    Got::Binary(body.clone())
                });
            }
        }
    }
    if let Some(code) = close {
        client.close(Some(CloseCode(code)), "bye", &mut wire).unwrap();
        expect.push(Got::Close(Some(code), "bye".into()));
    }
    (wire, expect)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_round_trip(fin: bool, rsv in 0u8..8, op in opcode(), len in payload_len(), mask: Option<[u8; 4]>) {
        let len = if op.is_control() { len % 126 } else { len };
        let fin = fin || op.is_control();
        let header = FrameHeader { fin, rsv, opcode: op, mask, payload_len: len };
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut buf);
        prop_assert_eq!(FrameHeader::decode(&buf[..n]).unwrap(), Some((header, n)));
        for cut in 0..n {
            prop_assert_eq!(FrameHeader::decode(&buf[..cut]).unwrap(), None);
        }
    }

    #[test]
    fn every_kernel_equals_scalar(data in proptest::collection::vec(any::<u8>(), 0..2000), start in 0usize..64, key: [u8; 4], offset in 0usize..8) {
        let start = start.min(data.len());
        let mut expected = data.clone();
        mask_scalar(&mut expected[start..], rotate_key(key, offset));
        for kernel in Kernel::ALL {
            let mut got = data.clone();
            apply_mask_with(kernel, &mut got[start..], key, offset);
            prop_assert_eq!(&got, &expected, "{:?}", kernel);
        }
        let mut got = data.clone();
        apply_mask(&mut got[start..], key, offset);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn utf8_validator_agrees_with_std_for_any_cuts(bytes in proptest::collection::vec(any::<u8>(), 0..64), cuts in proptest::collection::vec(0usize..64, 0..4), valid_text in ".{0,20}") {
        for input in [bytes.clone(), valid_text.into_bytes()] {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            let mut v = Utf8Validator::new();
            let mut start = 0;
            let mut ok = true;
            for end in cuts.iter().copied().chain([input.len()]) {
                ok = ok && v.feed(&input[start..end]).is_ok();
                start = end;
            }
            ok = ok && v.finish().is_ok();
            prop_assert_eq!(ok, std::str::from_utf8(&input).is_ok());
        }
    }

    #[test]
    fn any_cut_of_a_client_stream_gives_the_same_events(
        steps in proptest::collection::vec(step(), 0..6),
        close in proptest::option::of(prop_oneof![Just(1000u16), Just(1001), Just(3000), Just(4999)]),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        seed: u8,
    ) {
        let (wire, expect) = client_stream(&steps, close, seed);
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let (got, err) = feed_cut(&mut Connection::server(Config::default()), &wire, &cuts);
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(got, expect);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_final(bytes in proptest::collection::vec(any::<u8>(), 0..400), cuts in proptest::collection::vec(0usize..400, 0..5)) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut conn = Connection::server(Config::default().max_message_size(1000));
        let (_, err) = feed_cut(&mut conn, &bytes, &cuts);
        if err.is_some() {
            prop_assert_eq!(conn.state(), ringcast_proto::State::Closed);
            let (more, again) = feed_cut(&mut conn, &bytes, &[]);
            prop_assert!(more.is_empty() && again.is_none());
        }
    }
}

/// Every split point of one stream, exhaustively (the property test samples
/// a few cuts of many streams; this tries all single cuts of a rich one).
#[test]
fn every_single_cut_of_a_rich_stream() {
    let steps = vec![
        Step::Message {
            text: true, body: "héllo wörld €".as_bytes().to_vec(), cuts: vec![2, 9], ping_between: true
        },
        Step::Ping(b"p".to_vec()),
        Step::Message { text: false, body: vec![0xAB; 300], cuts: vec![], ping_between: false },
        Step::Message { text: true, body: "x".repeat(70_000).into_bytes(), cuts: vec![], ping_between: false },
    ];
    let (wire, expect) = client_stream(&steps, Some(1000), 9);
    // Every cut in the first and last 2 KiB (headers, fragments, control
    // frames, the close), every 61st through the long message's body.
    let n = wire.len();
    let cuts = (0..=n).filter(|&c| c < 2048 || c + 2048 > n || c % 61 == 0);
    for cut in cuts {
        let (got, err) = feed_cut(&mut Connection::server(Config::default()), &wire, &[cut]);
        assert!(err.is_none(), "cut {cut}: {err:?}");
        assert_eq!(got, expect, "cut {cut}");
    }
}
