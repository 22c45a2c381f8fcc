//! Reading a server's frames from a non-blocking socket without a copy in
//! the usual case, and without a buffer per connection.
//!
//! Bytes are read into a scratch buffer shared by all connections of a
//! thread and parsed there. Only a frame cut by the end of a read is kept
//! (in `carry`, per connection) and put back in front of the next read.
//! Fragmented messages are assembled (rare; servers under test send whole
//! messages); control frames come out as they arrive.

use std::io::{ErrorKind, Read};

use ringcast_proto::deflate::PerMessageDeflate;
use ringcast_proto::Extension;

use crate::wire::{self, parse_head, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT};

/// Bytes asked of the kernel per read, beyond a carried partial frame.
pub const READ_CHUNK: usize = 64 << 10;

/// One complete message or control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text (`text == true`) or binary message.
    Data {
        /// A text message.
        text: bool,
        /// The whole message.
        payload: &'a [u8],
    },
    /// A ping, to be answered with a pong carrying the same bytes.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A close frame: the server is ending the connection.
    Close(&'a [u8]),
}

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket is (as far as we know) drained and still open.
    Open,
    /// The server closed the connection (end of stream).
    Eof,
}

/// Per-connection parsing state: a partial frame and a message being
/// assembled from fragments.
#[derive(Debug, Default)]
pub struct FrameReader {
    carry: Vec<u8>,
    /// Opcode of a fragmented message in progress.
    fragmented: Option<u8>,
    message: Vec<u8>,
    /// Whether the message in `message` is compressed.
    compressed: bool,
    /// permessage-deflate, when negotiated: compressed messages are
    /// inflated into `inflated` before they are handed out.
    deflate: Option<Box<PerMessageDeflate>>,
    inflated: Vec<u8>,
    /// Bytes read from the socket (what crossed the wire).
    pub wire_bytes: u64,
}

impl FrameReader {
    /// Reads what the socket has and calls `on_frame` for every complete
    /// frame.
    ///
    /// One `read` per call in the usual case: with edge-triggered epoll a
    /// read that returns fewer bytes than asked has drained a TCP socket,
    /// and Linux signals every later arrival again, so the `read` that
    /// would only return `EAGAIN` (as mio's documentation suggests, to be
    /// portable) is skipped. It reads again only when the buffer came back
    /// full, or when `until_closed` (the event said the peer closed its
    /// side: data and FIN may have come in the same wake-up, and no later
    /// event would announce the end).
    pub fn read_from(
        &mut self,
        src: &mut impl Read,
        scratch: &mut Vec<u8>,
        until_closed: bool,
        mut on_frame: impl FnMut(Frame<'_>),
    ) -> Result<ReadEnd, String> {
        loop {
            let carried = self.carry.len();
            let want = carried + READ_CHUNK.max(self.missing());
            if scratch.len() < want {
                scratch.resize(want, 0);
            }
            scratch[..carried].copy_from_slice(&self.carry);
            let space = scratch.len() - carried;
            match src.read(&mut scratch[carried..]) {
                Ok(0) => return Ok(ReadEnd::Eof),
                Ok(n) => {
                    self.wire_bytes += n as u64;
                    self.carry.clear();
                    self.parse(&scratch[..carried + n], &mut on_frame)?;
                    if n < space && !until_closed {
                        return Ok(ReadEnd::Open);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(ReadEnd::Open),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Parses bytes received some other way (after the handshake's head).
    pub fn feed(&mut self, bytes: &[u8], mut on_frame: impl FnMut(Frame<'_>)) -> Result<(), String> {
        let mut joined = std::mem::take(&mut self.carry);
        joined.extend_from_slice(bytes);
        self.parse(&joined, &mut on_frame)
    }

    /// Inflates the messages that carry RSV1 from now on.
    pub fn set_deflate(&mut self, codec: PerMessageDeflate) {
        self.deflate = Some(Box::new(codec));
    }

    /// Whether permessage-deflate was negotiated ([`Self::set_deflate`]).
    pub fn deflates(&self) -> bool {
        self.deflate.is_some()
    }

    /// Bytes still needed to complete the carried frame (0 if unknown).
    fn missing(&self) -> usize {
        match parse_head(&self.carry, self.deflates()) {
            Ok(Some(head)) => head.frame_len().saturating_sub(self.carry.len()),
            _ => 0,
        }
    }

    fn parse(&mut self, mut buf: &[u8], on_frame: &mut impl FnMut(Frame<'_>)) -> Result<(), String> {
        while let Some(head) = parse_head(buf, self.deflates())? {
            let Some(payload) = buf.get(head.header_len..head.frame_len()) else { break };
            buf = &buf[head.frame_len()..];
            match (head.opcode, self.fragmented) {
                (OP_PING, _) => on_frame(Frame::Ping(payload)),
                (OP_PONG, _) => on_frame(Frame::Pong(payload)),
                (OP_CLOSE, _) => on_frame(Frame::Close(payload)),
                (OP_TEXT | OP_BINARY, Some(_)) => return Err("a new message inside a fragmented one".into()),
                (OP_TEXT | OP_BINARY, None) if head.fin && head.rsv1 => {
                    let inflated = inflate(self.deflate.as_deref_mut(), payload, &mut self.inflated)?;
                    on_frame(Frame::Data { text: head.opcode == OP_TEXT, payload: inflated });
                }
                (OP_TEXT | OP_BINARY, None) if head.fin => {
                    on_frame(Frame::Data { text: head.opcode == OP_TEXT, payload });
                }
                (OP_TEXT | OP_BINARY, None) => {
                    self.fragmented = Some(head.opcode);
                    self.compressed = head.rsv1;
                    self.message.clear();
                    self.message.extend_from_slice(payload);
                }
                (OP_CONTINUATION, None) => return Err("a continuation frame outside a message".into()),
                (OP_CONTINUATION, Some(opcode)) => {
                    if self.message.len() + payload.len() > wire::MAX_FRAME {
                        return Err("a fragmented message over the size limit".into());
                    }
                    self.message.extend_from_slice(payload);
                    if head.fin {
                        self.fragmented = None;
                        let text = opcode == OP_TEXT;
                        if self.compressed {
                            let inflated = inflate(self.deflate.as_deref_mut(), &self.message, &mut self.inflated)?;
                            on_frame(Frame::Data { text, payload: inflated });
                        } else {
                            on_frame(Frame::Data { text, payload: &self.message });
                        }
                    }
                }
                (other, _) => return Err(format!("unknown opcode 0x{other:x}")),
            }
        }
        self.carry.extend_from_slice(buf);
        Ok(())
    }
}

/// Inflates a compressed message into `out` (cleared first).
fn inflate<'o>(
    codec: Option<&mut PerMessageDeflate>,
    payload: &[u8],
    out: &'o mut Vec<u8>,
) -> Result<&'o [u8], String> {
    let codec = codec.ok_or("a compressed message without permessage-deflate")?;
    out.clear();
    codec.decode(0b100, payload, wire::MAX_FRAME, out).map_err(|e| format!("a compressed message: {e}"))?;
    Ok(out)
}

/// The status code and reason of a close frame, for messages.
pub fn describe_close(payload: &[u8]) -> String {
    match payload {
        [a, b, reason @ ..] => {
            format!("code {} {:?}", u16::from_be_bytes([*a, *b]), String::from_utf8_lossy(reason))
        }
        _ => "no code".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::server_frame;

    /// A reader that hands out at most `chunk` bytes per call.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.data.is_empty() {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// (opcode, length, first byte) of a frame.
    type Summary = (u8, usize, Option<u8>);

    fn stream() -> (Vec<u8>, Vec<Summary>) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for (i, len) in [0usize, 5, 125, 126, 300, 70000, 200_000].into_iter().enumerate() {
            let payload = vec![i as u8; len];
            wire.extend(server_frame(true, if i % 2 == 0 { OP_BINARY } else { OP_TEXT }, &payload));
            expected.push((if i % 2 == 0 { 2 } else { 1 }, len, payload.first().copied()));
        }
        wire.extend(server_frame(true, OP_PING, b"hi"));
        expected.push((9, 2, Some(b'h')));
        // A fragmented binary message with a pong in the middle.
        wire.extend(server_frame(false, OP_BINARY, b"ab"));
        wire.extend(server_frame(true, OP_PONG, b"p"));
        wire.extend(server_frame(false, OP_CONTINUATION, b"cd"));
        wire.extend(server_frame(true, OP_CONTINUATION, b"e"));
        expected.push((10, 1, Some(b'p')));
        expected.push((2, 5, Some(b'a')));
        wire.extend(server_frame(true, OP_CLOSE, &[3, 232]));
        expected.push((8, 2, Some(3)));
        (wire, expected)
    }

    fn summary(frame: Frame<'_>) -> Summary {
        match frame {
            Frame::Data { text, payload } => (if text { 1 } else { 2 }, payload.len(), payload.first().copied()),
            Frame::Ping(p) => (9, p.len(), p.first().copied()),
            Frame::Pong(p) => (10, p.len(), p.first().copied()),
            Frame::Close(p) => (8, p.len(), p.first().copied()),
        }
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let (wire, expected) = stream();
        for chunk in [1, 2, 3, 7, 13, 1000, 65536, 1 << 20] {
            let mut reader = FrameReader::default();
            let mut scratch = Vec::new();
            let mut src = Trickle { data: &wire, chunk };
            let mut seen = Vec::new();
            while !src.data.is_empty() {
                let end = reader.read_from(&mut src, &mut scratch, false, |f| seen.push(summary(f))).unwrap();
                assert_eq!(end, ReadEnd::Open);
            }
            assert_eq!(seen, expected, "chunk {chunk}");
        }
    }

    #[test]
    fn feeding_splits_anywhere() {
        let (wire, expected) = stream();
        for cut in [0, 1, 2, 3, 50, 1000, wire.len() - 1, wire.len()] {
            let mut reader = FrameReader::default();
            let mut seen = Vec::new();
            reader.feed(&wire[..cut], |f| seen.push(summary(f))).unwrap();
            reader.feed(&wire[cut..], |f| seen.push(summary(f))).unwrap();
            assert_eq!(seen, expected, "cut {cut}");
        }
    }

    #[test]
    fn end_of_stream_and_protocol_errors() {
        let mut reader = FrameReader::default();
        let mut empty: &[u8] = &[];
        assert_eq!(reader.read_from(&mut empty, &mut Vec::new(), false, |_| {}), Ok(ReadEnd::Eof));
        assert!(FrameReader::default().feed(&server_frame(true, OP_CONTINUATION, b"x"), |_| {}).is_err());
        let mut two = server_frame(false, OP_TEXT, b"a");
        two.extend(server_frame(true, OP_TEXT, b"b"));
        assert!(FrameReader::default().feed(&two, |_| {}).is_err());
        assert_eq!(describe_close(&[3, 232, b'b', b'y']), "code 1000 \"by\"");
    }

    #[test]
    fn compressed_messages_are_inflated_once_negotiated() {
        use ringcast_proto::deflate::{Negotiated, Tuning};
        // RFC 7692 §7.2.3.1: "Hello" compressed, whole and in two fragments.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut wire = server_frame(true, OP_TEXT, &hello);
        wire[0] |= 0x40;
        let mut first = server_frame(false, OP_TEXT, &hello[..3]);
        first[0] |= 0x40;
        wire.extend(first);
        wire.extend(server_frame(true, OP_CONTINUATION, &hello[3..]));
        assert!(FrameReader::default().feed(&wire, |_| {}).is_err(), "RSV1 without deflate");
        let negotiated = Negotiated {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        let mut reader = FrameReader::default();
        reader.set_deflate(PerMessageDeflate::new(negotiated, false, Tuning::default()));
        let mut seen = Vec::new();
        reader.feed(&wire, |f| seen.push(format!("{f:?}"))).unwrap();
        let want = format!("{:?}", Frame::Data { text: true, payload: b"Hello" });
        assert_eq!(seen, [want.clone(), want]);
    }
}
