//! Reading a server's frames incrementally, and the numbered, timestamped
//! payload the pub/sub scenarios send.

use std::io::{ErrorKind, Read};
use std::time::Instant;

/// What the pub/sub scenarios put in a message: who sent it, its number,
/// and when it was (meant to be) sent, in nanoseconds since the run began.
/// The rest of the payload is filler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub seq: u32,
    pub sent_ns: u64,
}

/// Payload bytes a stamp needs.
pub const STAMP_LEN: usize = 16;

impl Stamp {
    /// A payload of `size` bytes (at least [`STAMP_LEN`]) carrying the stamp.
    pub fn payload(&self, size: usize) -> Vec<u8> {
        let mut out = vec![b'.'; size.max(STAMP_LEN)];
        out[..4].copy_from_slice(&self.sender.to_be_bytes());
        out[4..8].copy_from_slice(&self.seq.to_be_bytes());
        out[8..16].copy_from_slice(&self.sent_ns.to_be_bytes());
        out
    }

    /// Reads the stamp at the front of a payload.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let bytes = payload.get(..STAMP_LEN)?;
        Some(Stamp {
            sender: u32::from_be_bytes(bytes[..4].try_into().ok()?),
            seq: u32::from_be_bytes(bytes[4..8].try_into().ok()?),
            sent_ns: u64::from_be_bytes(bytes[8..16].try_into().ok()?),
        })
    }
}

/// Nanoseconds since `start`.
pub fn since(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

/// Accumulates bytes from a socket and yields whole server frames.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Start of the unparsed bytes.
    at: usize,
}

/// A frame: opcode and payload range in the reader's buffer.
pub struct Frame<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
}

/// What a read turned up.
pub enum Fill {
    /// Some bytes (possibly no whole frame yet).
    Data,
    /// Nothing more for now.
    WouldBlock,
    /// The server closed the connection.
    Eof,
}

impl FrameReader {
    /// Reads what the socket has (one `read` call).
    pub fn fill(&mut self, stream: &mut impl Read, scratch: &mut [u8]) -> Result<Fill, String> {
        loop {
            return match stream.read(scratch) {
                Ok(0) => Ok(Fill::Eof),
                Ok(n) => {
                    if self.at == self.buf.len() {
                        self.buf.clear();
                        self.at = 0;
                    }
                    self.buf.extend_from_slice(&scratch[..n]);
                    Ok(Fill::Data)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(Fill::WouldBlock),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(format!("read: {e}")),
            };
        }
    }

    /// The next whole frame, if buffered.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let rest = &self.buf[self.at..];
        if rest.len() < 2 {
            return self.compact();
        }
        let (len, header) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
            127 if rest.len() >= 10 => (u64::from_be_bytes(rest[2..10].try_into().ok()?) as usize, 10),
            126 | 127 => return self.compact(),
            n => (usize::from(n), 2),
        };
        if rest.len() < header + len {
            return self.compact();
        }
        let start = self.at;
        self.at += header + len;
        Some(Frame { opcode: self.buf[start] & 0x0f, payload: &self.buf[start + header..start + header + len] })
    }

    /// Moves a partial frame to the front so the buffer does not grow.
    fn compact(&mut self) -> Option<Frame<'_>> {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut wire = Vec::new();
        for (i, len) in [0usize, 5, 125, 126, 300, 70000].into_iter().enumerate() {
            wire.push(0x82);
            match len {
                n if n < 126 => wire.push(n as u8),
                n if n <= 0xffff => {
                    wire.push(126);
                    wire.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    wire.push(127);
                    wire.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            wire.extend(std::iter::repeat_n(i as u8, len));
        }
        for chunk in [1, 3, 7, 1000, 100_000] {
            let mut reader = FrameReader::default();
            let mut seen = Vec::new();
            let mut scratch = vec![0u8; chunk];
            let mut source = &wire[..];
            while !source.is_empty() {
                let _ = reader.fill(&mut source, &mut scratch).unwrap();
                while let Some(frame) = reader.next_frame() {
                    seen.push((frame.opcode, frame.payload.len(), frame.payload.first().copied()));
                }
            }
            let lens: Vec<usize> = seen.iter().map(|s| s.1).collect();
            assert_eq!(lens, [0, 5, 125, 126, 300, 70000], "chunk {chunk}");
            assert_eq!(seen[5].2, Some(5));
        }
    }

    #[test]
    fn stamps_round_trip() {
        let stamp = Stamp { sender: 7, seq: 9, sent_ns: 123_456_789 };
        let payload = stamp.payload(64);
        assert_eq!(payload.len(), 64);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(Stamp::read(&payload[..10]), None);
    }
}
