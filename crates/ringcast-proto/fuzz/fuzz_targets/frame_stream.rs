//! Arbitrary bytes into the connection state machine. The oracle: the same
//! stream cut into different reads must give the same events and the same
//! verdict, and a failed connection must be closed with a close frame queued.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_proto::frame::{FrameHeader, OpCode};
use ringcast_proto::{Config, Connection, Error, Event, State};

#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

fn run(conn: &mut Connection, stream: &[u8], step: usize) -> (Vec<Got>, Option<Error>) {
    let mut got = Vec::new();
    for piece in stream.chunks(step.max(1)) {
        let mut piece = piece.to_vec();
        let mut pos = 0;
        loop {
            let left = piece.len() - pos;
            match conn.read(&mut piece[pos..]) {
                Ok(read) => {
                    assert!(read.consumed <= left);
                    pos += read.consumed;
                    let Some(event) = read.event else { break };
                    got.push(match event {
                        Event::Text(t) => Got::Text(t.to_owned()),
                        Event::Binary(b) => Got::Binary(b.to_vec()),
                        Event::Ping(b) => Got::Ping(b.to_vec()),
                        Event::Pong(b) => Got::Pong(b.to_vec()),
                        Event::Close(c) => Got::Close(c.code.map(|c| c.0), c.reason.to_owned()),
                        _ => unreachable!(),
                    });
                }
                Err(e) => return (got, Some(e)),
            }
        }
        assert_eq!(pos, piece.len(), "a read without an event consumes everything");
    }
    (got, None)
}

fn make(client: bool) -> Connection {
    let config = Config::default().max_frame_size(4096).max_message_size(8192).retain_capacity(512);
    if client {
        Connection::client_with_seed(config, [7; 32])
    } else {
        Connection::server(config)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, stream)) = data.split_first() else { return };
    let client = ctl & 1 == 1;
    let step = usize::from(ctl >> 1) + 1;
    let mut whole = make(client);
    let mut split = make(client);
    let (a, ea) = run(&mut whole, stream, stream.len());
    let (b, eb) = run(&mut split, stream, step);
    assert_eq!(a, b, "events depend on how the stream was cut");
    assert_eq!(ea, eb, "the verdict depends on how the stream was cut");
    if let Some(Error::Protocol(e)) = ea {
        assert_eq!(whole.state(), State::Closed);
        let mut out = Vec::new();
        whole.take_pending(&mut out);
        // The last frame queued is the close carrying the violation's code.
        let mut rest = &out[..];
        let mut last = None;
        while let Ok(Some((h, n))) = FrameHeader::decode(rest) {
            let end = n + h.payload_len as usize;
            last = Some((h, rest[n..end].to_vec()));
            rest = &rest[end..];
        }
        if let Some((h, mut payload)) = last {
            assert_eq!(h.opcode, OpCode::Close);
            if let Some(key) = h.mask {
                ringcast_proto::mask::apply_mask(&mut payload, key, 0);
            }
            if payload.len() >= 2 {
                assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), e.close_code().0);
            }
        }
    }
});
