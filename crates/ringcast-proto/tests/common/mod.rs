//! Helpers shared by the integration tests.
#![allow(dead_code)]

use ringcast_proto::frame::{encode_frame_rsv, FrameHeader, OpCode};
use ringcast_proto::{Connection, Error, Event};

/// An event with owned bytes, comparable across runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

impl Got {
    pub fn from_event(event: Event<'_>) -> Got {
        match event {
            Event::Text(t) => Got::Text(t.to_owned()),
            Event::Binary(b) => Got::Binary(b.to_vec()),
            Event::Ping(b) => Got::Ping(b.to_vec()),
            Event::Pong(b) => Got::Pong(b.to_vec()),
            Event::Close(c) => Got::Close(c.code.map(|c| c.0), c.reason.to_owned()),
            _ => unreachable!("no other events exist yet"),
        }
    }
}

/// Feeds `stream` to `conn` in pieces cut at `cuts` (sorted offsets) and
/// collects the events, or the error that ended the stream.
pub fn feed_cut(conn: &mut Connection, stream: &[u8], cuts: &[usize]) -> (Vec<Got>, Option<Error>) {
    let mut got = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        let mut piece = stream[start..end].to_vec();
        start = end;
        let mut pos = 0;
        loop {
            match conn.read(&mut piece[pos..]) {
                Ok(read) => {
                    pos += read.consumed;
                    match read.event {
                        Some(event) => got.push(Got::from_event(event)),
                        None => break,
                    }
                }
                Err(e) => return (got, Some(e)),
            }
        }
        assert_eq!(pos, piece.len());
    }
    (got, None)
}

/// A client frame with these RSV bits, masked with a fixed key.
pub fn masked_frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame_rsv(&mut out, fin, rsv, opcode, payload, Some([0x12, 0x34, 0x56, 0x78]));
    out
}

/// The close code of the close frame the connection queued.
pub fn queued_close_code(conn: &mut Connection) -> u16 {
    let mut out = Vec::new();
    conn.take_pending(&mut out);
    let (header, len) = FrameHeader::decode(&out).unwrap().expect("a close frame");
    assert_eq!(header.opcode, OpCode::Close);
    u16::from_be_bytes([out[len], out[len + 1]])
}
