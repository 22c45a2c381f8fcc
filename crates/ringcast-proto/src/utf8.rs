//! UTF-8 validation with simdutf8, incremental across frames and reads.
//!
//! A text message may arrive in many pieces, and a code point may be split
//! between any two of them. [`Utf8Validator`] carries at most three bytes of
//! an unfinished code point from one piece to the next, so no piece is ever
//! copied for validation, and it fails as soon as the bytes seen so far can
//! no longer be the start of valid UTF-8 (Autobahn's "fail fast" cases).
//!
//! The fast path is `simdutf8::basic`, which only answers yes or no; the
//! slower `compat` flavour, which says where and why, runs only on input that
//! `basic` rejected (an error, or a code point cut at the end).

// The one unsafe operation here (in `MessageBuffer::text` and
// `Utf8Bytes::as_str`) turns bytes this module has already validated into
// `&str` without a second pass.
#![allow(unsafe_code)]

use bytes::Bytes;

/// Whether `bytes` is complete, valid UTF-8.
#[inline]
pub fn is_valid(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// The bytes seen so far can never become valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

/// Validates a text message piece by piece.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8Validator {
    /// The bytes of a code point cut at the end of the previous piece.
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Utf8Validator { partial: [0; 4], partial_len: 0 }
    }

    /// Forgets any unfinished code point: the next byte starts a message.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// Whether the bytes so far end in the middle of a code point.
    pub fn is_incomplete(&self) -> bool {
        self.partial_len != 0
    }

    /// Validates the next piece of the message. Fails when the bytes so far
    /// cannot be the beginning of valid UTF-8.
    pub fn feed(&mut self, mut piece: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len != 0 {
            piece = self.complete_partial(piece)?;
            if self.partial_len != 0 {
                // The piece ended before the code point did.
                return Ok(());
            }
        }
        if simdutf8::basic::from_utf8(piece).is_ok() {
            return Ok(());
        }
        match simdutf8::compat::from_utf8(piece) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(Utf8Error),
            Err(e) => {
                // A valid prefix of a code point ends the piece: keep it.
                let tail = &piece[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// Ends the message: fails if it stops in the middle of a code point.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let incomplete = self.is_incomplete();
        self.reset();
        if incomplete {
            Err(Utf8Error)
        } else {
            Ok(())
        }
    }

    /// Adds bytes from `piece` to the carried code point; returns the rest.
    fn complete_partial<'p>(&mut self, piece: &'p [u8]) -> Result<&'p [u8], Utf8Error> {
        let have = usize::from(self.partial_len);
        let width = sequence_width(self.partial[0]);
        let take = (width - have).min(piece.len());
        self.partial[have..have + take].copy_from_slice(&piece[..take]);
        let now = have + take;
        match simdutf8::compat::from_utf8(&self.partial[..now]) {
            Ok(_) => self.partial_len = 0,
            Err(e) if e.error_len().is_some() => return Err(Utf8Error),
            Err(_) => self.partial_len = now as u8,
        }
        Ok(&piece[take..])
    }
}

/// The length of the sequence a lead byte starts. Only called on a byte that
/// `compat` accepted as the valid start of a cut sequence (0xC2..=0xF4).
fn sequence_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// The buffer a message is assembled in when it spans frames or reads.
///
/// It lives here, beside the validator, because it is the only place that
/// turns bytes into `&str` without a second validation pass: every byte of a
/// text message enters through [`MessageBuffer::push`], which validates it,
/// and [`MessageBuffer::text`] answers only after [`MessageBuffer::finish`]
/// saw the message end on a whole code point.
#[derive(Debug, Default)]
pub(crate) struct MessageBuffer {
    bytes: Vec<u8>,
    validator: Utf8Validator,
    is_text: bool,
    /// `finish` succeeded and nothing was pushed since.
    finished: bool,
    /// A push or finish failed: the bytes are not a validated text any more
    /// and `text` must refuse them until the next `begin`.
    poisoned: bool,
}

impl MessageBuffer {
    /// Starts a message, keeping at most `retain` bytes of capacity from the
    /// previous one so an idle connection holds no large buffer.
    pub(crate) fn begin(&mut self, is_text: bool, retain: usize) {
        self.clear(retain);
        self.is_text = is_text;
    }

    /// Empties the buffer, keeping at most `retain` bytes of capacity.
    pub(crate) fn clear(&mut self, retain: usize) {
        self.bytes.clear();
        if self.bytes.capacity() > retain {
            self.bytes.shrink_to(retain);
        }
        self.validator.reset();
        self.finished = false;
        self.poisoned = false;
    }

    /// Bytes assembled so far.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends a piece, validating it first when the message is text.
    /// `more` is how many bytes the frame announced beyond this piece.
    /// Capacity grows to fit the announced rest when that at most doubles
    /// what has arrived (so a 64 KiB message arriving in two halves is
    /// copied once, while a header announcing megabytes over a trickle of
    /// bytes cannot make us allocate them), else by doubling; never past
    /// `limit`, so a message that respects the size limit never makes the
    /// buffer overshoot it.
    pub(crate) fn push(&mut self, piece: &[u8], more: u64, limit: usize) -> Result<(), Utf8Error> {
        if self.is_text {
            if let Err(e) = self.validator.feed(piece) {
                self.poisoned = true;
                return Err(e);
            }
        }
        let needed = self.bytes.len() + piece.len();
        if needed > self.bytes.capacity() {
            let doubled = (self.bytes.capacity() * 2).max(256);
            let announced = (needed as u64).saturating_add(more).min(2 * needed as u64) as usize;
            let target = needed.max(doubled.max(announced).min(limit));
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend_from_slice(piece);
        self.finished = false;
        Ok(())
    }

    /// Ends the message: a text message must not stop inside a code point.
    pub(crate) fn finish(&mut self) -> Result<(), Utf8Error> {
        if self.is_text {
            if let Err(e) = self.validator.finish() {
                self.poisoned = true;
                return Err(e);
            }
        }
        self.finished = true;
        Ok(())
    }

    /// Takes the bytes out (to be transformed by an extension), leaving
    /// the buffer empty, without capacity, and ready for the next `begin`.
    pub(crate) fn take_bytes(&mut self) -> Vec<u8> {
        let bytes = std::mem::take(&mut self.bytes);
        self.clear(0);
        bytes
    }

    /// Installs a whole message produced elsewhere (an extension's decoded
    /// payload), validating it at once when it is text.
    pub(crate) fn set_message(&mut self, bytes: Vec<u8>, is_text: bool) -> Result<(), Utf8Error> {
        self.clear(0);
        self.is_text = is_text;
        if is_text && !is_valid(&bytes) {
            self.poisoned = true;
            return Err(Utf8Error);
        }
        self.bytes = bytes;
        self.finished = true;
        Ok(())
    }

    /// Takes the finished message out, owned and shareable, leaving the
    /// buffer as [`Self::take_bytes`] does. `None` (and nothing taken) when
    /// no message is finished, or a push or finish failed since `begin`.
    pub(crate) fn take_finished(&mut self) -> Option<OwnedMessage> {
        if !self.finished || self.poisoned {
            return None;
        }
        let is_text = self.is_text;
        debug_assert!(!is_text || is_valid(&self.bytes));
        // The same proof as in `text`: the bytes are a whole validated text
        // when `is_text`. `Bytes::from` keeps the allocation (no copy).
        let bytes = Bytes::from(self.take_bytes());
        Some(if is_text { OwnedMessage::Text(Utf8Bytes(bytes)) } else { OwnedMessage::Binary(bytes) })
    }

    /// Bytes allocated, for the memory tests.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// The finished message as bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The finished text message, or `None` if it is binary or unfinished.
    pub(crate) fn text(&self) -> Option<&str> {
        if !(self.is_text && self.finished) || self.poisoned {
            return None;
        }
        debug_assert!(is_valid(&self.bytes));
        // SAFETY: every byte entered through `push`, which fed it to the
        // validator before storing it, in order, and no push or finish has
        // failed since `begin`/`clear` (`poisoned`); `finished` says `finish`
        // then confirmed the bytes end on a whole code point, and nothing
        // was pushed since. So `bytes` is exactly a validated UTF-8 text.
        Some(unsafe { std::str::from_utf8_unchecked(&self.bytes) })
    }
}

/// A whole message taken out of a connection (see
/// [`Receiver::take_message`](crate::connection::Receiver::take_message)):
/// owned, cheap to share, and sent by reference by runtimes that queue
/// [`Bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedMessage {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl OwnedMessage {
    /// The payload.
    pub fn bytes(&self) -> &Bytes {
        match self {
            OwnedMessage::Text(text) => text.as_bytes(),
            OwnedMessage::Binary(bytes) => bytes,
        }
    }
}

/// [`Bytes`] known to be valid UTF-8. Only this module makes them, from
/// text it validated, so [`Utf8Bytes::as_str`] needs no second pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// The text.
    pub fn as_str(&self) -> &str {
        debug_assert!(is_valid(&self.0));
        // SAFETY: the only constructor is `MessageBuffer::take_finished`,
        // which wraps bytes only when they are a finished, unpoisoned text
        // message: validated in full by `push` and `finish`. `Bytes` never
        // changes its contents.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], at: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in at {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn code_point_split_anywhere_is_valid() {
        let text = "aé€😀z".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(feed_split(text, &[i, j]), Ok(()), "cuts {i},{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte_is_valid() {
        let text = "κόσμε 😀 ✓".as_bytes();
        let cuts: Vec<usize> = (1..text.len()).collect();
        assert_eq!(feed_split(text, &cuts), Ok(()));
    }

    #[test]
    fn fails_fast_on_impossible_prefix() {
        let mut v = Utf8Validator::new();
        // U+110000 and above: 0xF4 0x90 is wrong at the second byte.
        assert_eq!(v.feed(b"ok\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(Utf8Error));
        // Surrogates: 0xED 0xA0 is wrong at the second byte.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed\xa0"), Err(Utf8Error));
        // A bare continuation byte.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\x80"), Err(Utf8Error));
    }

    #[test]
    fn cut_code_point_at_end_of_message_fails() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed("é".as_bytes().split_at(1).0), Ok(()));
        assert!(v.is_incomplete());
        assert_eq!(v.finish(), Err(Utf8Error));
        assert!(!v.is_incomplete());
    }

    #[test]
    fn message_buffer_gives_text_only_when_finished() {
        let mut m = MessageBuffer::default();
        m.begin(true, 0);
        let bytes = "héllo".as_bytes();
        m.push(&bytes[..2], 0, 1 << 20).unwrap();
        assert_eq!(m.text(), None);
        m.push(&bytes[2..], 0, 1 << 20).unwrap();
        m.finish().unwrap();
        assert_eq!(m.text(), Some("héllo"));
        m.begin(true, 0);
        m.push(&bytes[..2], 0, 1 << 20).unwrap();
        assert_eq!(m.finish(), Err(Utf8Error));
        assert_eq!(m.text(), None);
        m.begin(false, 0);
        m.push(b"\xff", 0, 1 << 20).unwrap();
        m.finish().unwrap();
        assert_eq!((m.text(), m.bytes()), (None, &b"\xff"[..]));
    }

    #[test]
    fn failed_push_poisons_the_buffer() {
        // The first byte of the second piece completes the carried code
        // point; the rest of that piece is invalid and is not stored.
        let mut m = MessageBuffer::default();
        m.begin(true, 0);
        m.push(b"\xe2\x82", 0, 1 << 20).unwrap();
        assert_eq!(m.push(b"\xac\x58\xff", 0, 1 << 20), Err(Utf8Error));
        let _ = m.push(b"A", 0, 1 << 20);
        let _ = m.finish();
        assert_eq!(m.text(), None, "a failed push must never yield text");
        m.begin(true, 0);
        m.push(b"ok", 0, 1 << 20).unwrap();
        m.finish().unwrap();
        assert_eq!(m.text(), Some("ok"));
    }

    #[test]
    fn message_buffer_growth_respects_limit_and_retain() {
        let mut m = MessageBuffer::default();
        m.begin(false, 0);
        for _ in 0..10 {
            m.push(&[0u8; 1000], 0, 10_000).unwrap();
        }
        assert_eq!(m.len(), 10_000);
        assert!(m.bytes.capacity() <= 10_000, "capacity {}", m.bytes.capacity());
        m.clear(4096);
        assert!(m.bytes.capacity() <= 4096);
    }

    #[test]
    fn message_buffer_reserves_the_announced_rest_only_within_twice_what_arrived() {
        let mut m = MessageBuffer::default();
        m.begin(false, 0);
        // Half of a 64 KiB frame: room for the other half at once.
        m.push(&[1u8; 32 << 10], 32 << 10, 1 << 20).unwrap();
        assert_eq!(m.bytes.capacity(), 64 << 10);
        let before = m.bytes.as_ptr();
        m.push(&[2u8; 32 << 10], 0, 1 << 20).unwrap();
        assert_eq!(m.bytes.as_ptr(), before, "no second copy");
        // A header announcing 16 MiB over ten bytes gets no 16 MiB buffer.
        let mut t = MessageBuffer::default();
        t.begin(false, 0);
        t.push(&[0u8; 10], 16 << 20, 32 << 20).unwrap();
        assert!(t.bytes.capacity() <= 256, "capacity {}", t.bytes.capacity());
    }

    #[test]
    fn take_finished_gives_only_whole_validated_messages() {
        let mut m = MessageBuffer::default();
        m.begin(true, 0);
        m.push("héllo".as_bytes(), 0, 1 << 20).unwrap();
        assert_eq!(m.take_finished(), None, "not finished");
        m.finish().unwrap();
        let before = m.bytes.as_ptr();
        match m.take_finished() {
            Some(OwnedMessage::Text(text)) => {
                assert_eq!(text.as_str(), "héllo");
                assert_eq!(text.as_bytes().as_ptr(), before, "taken, not copied");
            }
            other => panic!("expected text, got {other:?}"),
        }
        assert_eq!((m.len(), m.capacity()), (0, 0));
        assert_eq!(m.take_finished(), None, "taken once");
        m.begin(true, 0);
        m.push(b"\xe2\x82", 0, 1 << 20).unwrap();
        assert!(m.finish().is_err());
        assert_eq!(m.take_finished(), None, "a failed text is never taken");
        m.begin(false, 0);
        m.push(b"\xff", 0, 1 << 20).unwrap();
        m.finish().unwrap();
        assert_eq!(m.take_finished(), Some(OwnedMessage::Binary(Bytes::from_static(b"\xff"))));
    }

    #[test]
    fn partial_then_invalid_continuation() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert_eq!(v.feed(b"A"), Err(Utf8Error));
    }
}
