//! What a message carries, so that every received message can be checked:
//! a stamp (sender, sequence number, intended send time) and a filler that
//! depends on both, so a stale or misrouted message cannot pass for another.
//!
//! Binary messages carry the stamp as 16 big-endian bytes; text messages as
//! 32 lowercase hex digits and an ASCII filler, so they are valid UTF-8 and
//! pass the server's validation.

use std::fmt;

/// Text or binary messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Binary frames, binary stamp.
    Binary,
    /// Text frames, hex stamp, ASCII filler.
    Text,
}

impl Mode {
    /// `Text` when `text`.
    pub fn from_text_flag(text: bool) -> Mode {
        if text {
            Mode::Text
        } else {
            Mode::Binary
        }
    }

    /// Bytes a whole stamp takes.
    pub fn stamp_len(self) -> usize {
        match self {
            Mode::Binary => 16,
            Mode::Text => 32,
        }
    }

    /// The frame opcode.
    pub fn opcode(self) -> u8 {
        match self {
            Mode::Binary => crate::wire::OP_BINARY,
            Mode::Text => crate::wire::OP_TEXT,
        }
    }

    /// `"text"` or `"binary"`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Binary => "binary",
            Mode::Text => "text",
        }
    }
}

/// Who sent a message, its number from that sender, and when it was (meant
/// to be) sent, in nanoseconds since the run began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// Connection or publisher number.
    pub sender: u32,
    /// Sequence number from that sender, from 0.
    pub seq: u32,
    /// Intended send time (0 where the sender keeps the time itself).
    pub time_ns: u64,
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sender {} seq {}", self.sender, self.seq)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Stamp {
    /// The encoded stamp (the first [`Mode::stamp_len`] bytes are used).
    #[inline]
    pub fn encode(&self, mode: Mode) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&self.sender.to_be_bytes());
        raw[4..8].copy_from_slice(&self.seq.to_be_bytes());
        raw[8..].copy_from_slice(&self.time_ns.to_be_bytes());
        match mode {
            Mode::Binary => out[..16].copy_from_slice(&raw),
            Mode::Text => {
                for (i, b) in raw.iter().enumerate() {
                    out[2 * i] = HEX[usize::from(b >> 4)];
                    out[2 * i + 1] = HEX[usize::from(b & 15)];
                }
            }
        }
        out
    }

    /// Reads a stamp from the front of a payload.
    pub fn decode(payload: &[u8], mode: Mode) -> Option<Stamp> {
        let bytes = payload.get(..mode.stamp_len())?;
        let mut raw = [0u8; 16];
        match mode {
            Mode::Binary => raw.copy_from_slice(bytes),
            Mode::Text => {
                for (i, pair) in bytes.chunks_exact(2).enumerate() {
                    raw[i] = hex_digit(pair[0])? << 4 | hex_digit(pair[1])?;
                }
            }
        }
        Some(Stamp {
            sender: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            seq: u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]),
            time_ns: u64::from_be_bytes([raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]]),
        })
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The payloads of one run: `size` bytes, a stamp (cut short if `size` is
/// smaller) and a filler shifted by sender and sequence.
#[derive(Debug, Clone)]
pub struct Payload {
    size: usize,
    mode: Mode,
    /// `size + spread` bytes; a payload's filler is a window into it.
    pattern: Vec<u8>,
    /// How many windows there are.
    spread: usize,
}

/// Windows into the JSON-like pattern: 1 MiB, so that a compressor keeping
/// its 32 KiB window between messages finds little of a message's text in
/// the previous ones (as with a real feed, it finds the keys).
const JSON_SPREAD: usize = 1 << 20;

impl Payload {
    /// Payloads of `size` bytes in `mode`, the filler ASCII letters.
    pub fn new(size: usize, mode: Mode) -> Payload {
        let pattern = (0..size + 26).map(|i| b'a' + (i % 26) as u8).collect();
        Payload { size, mode, pattern, spread: 26 }
    }

    /// Payloads whose filler reads like a JSON feed (quotes, keys that
    /// repeat, numbers that do not), each message a different window of a
    /// 1 MiB text: it compresses about as well as real market or chat JSON,
    /// where the letter filler of [`Self::new`] compresses to almost
    /// nothing.
    pub fn json_like(size: usize, mode: Mode) -> Payload {
        let spread = JSON_SPREAD;
        let symbols = ["EURUSD", "GBPUSD", "USDJPY", "BTCUSD", "ETHUSD", "XAUUSD", "AAPL", "MSFT"];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut pattern = Vec::with_capacity(size + spread + 128);
        while pattern.len() < size + spread {
            let (r, t) = (next(), next());
            let record = format!(
                r#"{{"sym":"{}","bid":{}.{:05},"ask":{}.{:05},"size":{},"ts":{}}},"#,
                symbols[(r % 8) as usize],
                r % 200,
                (r >> 8) % 100_000,
                r % 200,
                (r >> 24) % 100_000,
                (t % 50) * 100,
                1_733_500_000_000 + t % 1_000_000
            );
            pattern.extend_from_slice(record.as_bytes());
        }
        pattern.truncate(size + spread);
        Payload { size, mode, pattern, spread }
    }

    /// Payload bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Text or binary.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Stamp bytes in a payload (the whole stamp, or all of a short payload).
    fn stamp_bytes(&self) -> usize {
        self.mode.stamp_len().min(self.size)
    }

    fn filler(&self, stamp: &Stamp) -> &[u8] {
        let shift = if self.spread == 26 {
            (stamp.sender.wrapping_add(stamp.seq) % 26) as usize
        } else {
            // Consecutive messages far apart in the pattern.
            let mix = (u64::from(stamp.sender) << 32 | u64::from(stamp.seq)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (mix >> 40) as usize % self.spread
        };
        &self.pattern[shift + self.stamp_bytes()..shift + self.size]
    }

    /// Appends the payload for `stamp` (exactly [`Self::size`] bytes).
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, stamp: &Stamp) {
        out.extend_from_slice(&stamp.encode(self.mode)[..self.stamp_bytes()]);
        out.extend_from_slice(self.filler(stamp));
    }

    /// Checks that `got` is exactly the payload for `expected`.
    #[inline]
    pub fn check(&self, got: &[u8], expected: &Stamp) -> Result<(), String> {
        self.check_part(got, 0, expected)?;
        if got.len() != self.size {
            return Err(format!("{} bytes instead of {}", got.len(), self.size));
        }
        Ok(())
    }

    /// Checks that `got` equals bytes `at..at + got.len()` of the payload for
    /// `expected` (a plain TCP echo arrives in arbitrary pieces).
    pub fn check_part(&self, got: &[u8], at: usize, expected: &Stamp) -> Result<(), String> {
        if at + got.len() > self.size {
            return Err(format!("{} bytes instead of {}", at + got.len(), self.size));
        }
        let (stamp_end, end) = (self.stamp_bytes(), at + got.len());
        let mut same = true;
        if at < stamp_end {
            let to = end.min(stamp_end);
            same = got[..to - at] == expected.encode(self.mode)[at..to];
        }
        let from = at.max(stamp_end);
        if same && from < end {
            same = got[from - at..] == self.filler(expected)[from - stamp_end..end - stamp_end];
        }
        if same {
            return Ok(());
        }
        Err(self.describe(got, at, expected))
    }

    fn describe(&self, got: &[u8], at: usize, expected: &Stamp) -> String {
        if at == 0 {
            if let Some(stamp) = Stamp::decode(got, self.mode).filter(|_| self.size >= self.mode.stamp_len()) {
                if (stamp.sender, stamp.seq) != (expected.sender, expected.seq) {
                    return format!("got {stamp} instead of {expected}");
                }
            }
        }
        format!("bytes {}..{} of {expected} differ from what was sent", at, at + got.len())
    }

    /// Reads the stamp of a received pub/sub message and checks the rest:
    /// length, opcode and filler. `size` must hold a whole stamp.
    pub fn open(&self, got: &[u8], text: bool) -> Result<Stamp, String> {
        if text != (self.mode == Mode::Text) {
            return Err(format!("a {} message in a {} run", if text { "text" } else { "binary" }, self.mode.name()));
        }
        if got.len() != self.size {
            return Err(format!("a message of {} bytes instead of {}", got.len(), self.size));
        }
        let stamp = Stamp::decode(got, self.mode).ok_or("a message without a valid stamp")?;
        if got[self.stamp_bytes()..] != *self.filler(&stamp) {
            return Err(format!("the message {stamp} is corrupted"));
        }
        Ok(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_in_both_modes() {
        let stamp = Stamp { sender: 0xdead_beef, seq: 7, time_ns: 123_456_789_012 };
        for mode in [Mode::Binary, Mode::Text] {
            let bytes = stamp.encode(mode);
            assert_eq!(Stamp::decode(&bytes[..mode.stamp_len()], mode), Some(stamp));
            assert_eq!(Stamp::decode(&bytes[..mode.stamp_len() - 1], mode), None);
        }
        let text = stamp.encode(Mode::Text);
        assert_eq!(&text[..16], b"deadbeef00000007");
        assert!(Stamp::decode(b"DEADBEEF00000007000000000000000X", Mode::Text).is_none());
    }

    #[test]
    fn payloads_check_whole_and_in_parts() {
        for mode in [Mode::Binary, Mode::Text] {
            for size in [0usize, 1, 10, 16, 20, 32, 100, 5000] {
                let p = Payload::new(size, mode);
                let stamp = Stamp { sender: 3, seq: 41, time_ns: 0 };
                let mut out = Vec::new();
                p.write(&mut out, &stamp);
                assert_eq!(out.len(), size);
                if mode == Mode::Text {
                    assert!(out.is_ascii());
                }
                assert_eq!(p.check(&out, &stamp), Ok(()));
                let next = Stamp { seq: 42, ..stamp };
                if size >= mode.stamp_len() / 2 {
                    assert!(p.check(&out, &next).is_err(), "size {size} {mode:?}");
                }
                for cut in [0, 1.min(size), size / 2, size] {
                    assert_eq!(p.check_part(&out[..cut], 0, &stamp), Ok(()));
                    assert_eq!(p.check_part(&out[cut..], cut, &stamp), Ok(()));
                }
                if size > 0 {
                    let mut bad = out.clone();
                    bad[size - 1] ^= 1;
                    assert!(p.check(&bad, &stamp).is_err());
                    assert!(p.check_part(&bad[size - 1..], size - 1, &stamp).is_err());
                    assert!(p.check(&out[..size - 1], &stamp).is_err(), "short");
                }
            }
        }
    }

    #[test]
    fn received_messages_open_and_are_checked() {
        let p = Payload::new(64, Mode::Text);
        let stamp = Stamp { sender: 2, seq: 9, time_ns: 77 };
        let mut out = Vec::new();
        p.write(&mut out, &stamp);
        assert_eq!(p.open(&out, true), Ok(stamp));
        assert!(p.open(&out, false).is_err(), "opcode");
        assert!(p.open(&out[..63], true).is_err(), "length");
        out[40] = b'!';
        assert!(p.open(&out, true).is_err(), "filler");
        let mismatch = Payload::new(64, Mode::Binary);
        let mut sent = Vec::new();
        mismatch.write(&mut sent, &Stamp { sender: 1, seq: 5, time_ns: 0 });
        assert_eq!(
            mismatch.check(&sent, &Stamp { sender: 1, seq: 4, time_ns: 0 }),
            Err("got sender 1 seq 5 instead of sender 1 seq 4".into())
        );
    }

    #[test]
    fn json_like_payloads_check_and_differ_per_message() {
        let p = Payload::json_like(1024, Mode::Text);
        let (a, b) = (Stamp { sender: 0, seq: 1, time_ns: 5 }, Stamp { sender: 0, seq: 2, time_ns: 6 });
        let (mut one, mut two) = (Vec::new(), Vec::new());
        p.write(&mut one, &a);
        p.write(&mut two, &b);
        assert_eq!(one.len(), 1024);
        assert!(std::str::from_utf8(&one).is_ok());
        assert!(one.contains(&b'{') && one.contains(&b'"'));
        assert_eq!(p.open(&one, true).map(|s| s.seq), Ok(1));
        // Not a neighbour's shifted copy: little in common at any offset.
        assert!(!two.windows(64).any(|w| one.windows(64).any(|v| v == w)), "consecutive messages overlap");
        two[500] ^= 1;
        assert!(p.open(&two, true).is_err(), "a changed byte is caught");
    }
}
