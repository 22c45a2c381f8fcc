//! The receive path: frames in, events out.
//!
//! [`Receiver::read`] works in two steps. `advance` walks the input,
//! unmasks in place, enforces every rule and decides which event is ready,
//! naming where its bytes lie (`Source`) rather than borrowing them, so the
//! walk can mutate both the input and the connection freely. Then the event
//! is made from that description, borrowing the input or an internal buffer
//! for the caller.

use std::ops::Range;

use super::send::Sender;
use super::shared::{Config, Role, State};
use crate::close::{self, CloseCode};
use crate::error::{Error, ProtocolError, UsageError};
use crate::extension::ExtensionError;
use crate::frame::{FrameHeader, MessageKind, OpCode, MAX_HEADER_LEN};
use crate::mask;
use crate::utf8::{MessageBuffer, OwnedMessage};

/// What the peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A whole text message, validated UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// A ping; the pong is already queued (see [`Sender::take_pending`]),
    /// unless we have sent a close.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close frame. If we had not sent a close, the reply (echoing
    /// the code) is already queued. The connection is now
    /// [`State::Closed`].
    Close(CloseFrame<'a>),
}

/// The content of a close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, or `None` when the frame had no payload (report it
    /// as 1005 if you must report a number).
    pub code: Option<CloseCode>,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

/// The result of one [`Receiver::read`] (or `Connection::read`) call.
#[derive(Debug)]
pub struct Read<'a> {
    /// How many bytes from the start of the input were used. When `event` is
    /// `None` this is the whole input (partial frames are kept inside the
    /// connection); otherwise call `read` again with the rest.
    pub consumed: usize,
    /// The event that ended this call, if any.
    pub event: Option<Event<'a>>,
    /// The event is a data message lent from the receiver's own assembly
    /// buffer, so [`Receiver::take_message`] can take it without a copy.
    assembled: bool,
}

impl Read<'_> {
    /// Whether the event is a data message held by the receiver (it spanned
    /// frames or reads) rather than a slice of the input: then, once this
    /// `Read` is dropped, [`Receiver::take_message`] hands it over owned.
    pub fn is_assembled(&self) -> bool {
        self.assembled
    }
}

/// Where the bytes of a ready event lie.
#[derive(Debug, Clone)]
enum Source {
    Input(Range<usize>),
    Assembly,
    Control,
}

/// An event decided by `advance`, not yet borrowed.
#[derive(Debug, Clone)]
enum Ready {
    Text(Source),
    Binary(Source),
    Ping(Source),
    Pong(Source),
    Close(Option<CloseCode>, Source),
}

/// A frame whose payload is still arriving.
#[derive(Debug, Clone, Copy)]
struct PartialFrame {
    opcode: OpCode,
    fin: bool,
    key: Option<[u8; 4]>,
    /// Payload bytes received so far: the masking phase of the next byte.
    received: u64,
    remaining: u64,
    /// Data that arrives after we sent close is dropped unread.
    discard: bool,
}

/// The limits of [`Config`] in 32 bits each (a connection's state is kept
/// small: servers hold many idle ones). Larger values saturate at 4 GiB - 1.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_frame_size: u32,
    max_message_size: u32,
    retain_capacity: u32,
}

impl From<Config> for Limits {
    fn from(config: Config) -> Self {
        let narrow = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Limits {
            max_frame_size: narrow(config.max_frame_size),
            max_message_size: narrow(config.max_message_size),
            retain_capacity: narrow(config.retain_capacity),
        }
    }
}

/// A control frame's payload gathered across reads.
#[derive(Debug)]
struct ControlBuf {
    len: u8,
    bytes: [u8; 125],
}

impl Default for ControlBuf {
    fn default() -> Self {
        ControlBuf { len: 0, bytes: [0; 125] }
    }
}

impl ControlBuf {
    /// Appends; the header check has bounded a control payload to 125 bytes.
    fn push(&mut self, piece: &[u8]) {
        let start = usize::from(self.len);
        let end = (start + piece.len()).min(self.bytes.len());
        self.bytes[start..end].copy_from_slice(&piece[..end - start]);
        self.len = end as u8;
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Which internal buffer the last event lent out, to be emptied on the next
/// call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lent {
    Nothing,
    Message,
    Control,
}

/// The receiving half of a connection: parses frames and owns the buffers
/// that events borrow when a message could not be lent from the input.
#[derive(Debug)]
pub struct Receiver {
    limits: Limits,
    /// Header bytes of a frame whose header was cut by the end of a read.
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    frame: Option<PartialFrame>,
    /// The data message in progress, if its frames or bytes span reads.
    message: Option<MessageKind>,
    /// The RSV bits of that message's first frame: non-zero when the
    /// negotiated extension must decode it once it is complete.
    message_rsv: u8,
    assembly: MessageBuffer,
    /// Payload of a control frame that spans reads (at most 125 bytes),
    /// allocated only when one does: most connections never need it.
    control: Option<Box<ControlBuf>>,
    lent: Lent,
    /// Matches the sender of the same connection.
    pair: u32,
}

impl Receiver {
    pub(super) fn new(config: Config, pair: u32) -> Self {
        Receiver {
            pair,
            limits: Limits::from(config),
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            message_rsv: 0,
            assembly: MessageBuffer::default(),
            control: None,
            lent: Lent::Nothing,
        }
    }

    /// The limits in force (values above 4 GiB read back as 4 GiB - 1).
    pub fn config(&self) -> Config {
        Config {
            max_frame_size: self.limits.max_frame_size as usize,
            max_message_size: self.limits.max_message_size as usize,
            retain_capacity: self.limits.retain_capacity as usize,
        }
    }

    /// Bytes held by the assembly buffer, for the memory tests.
    #[cfg(test)]
    pub(super) fn assembly_capacity(&self) -> usize {
        self.assembly.capacity()
    }

    /// Reads frames from the start of `input`, unmasking them in place, and
    /// stops at the first event. Call it in a loop, advancing by
    /// [`Read::consumed`], until the event is `None`. `tx` receives the
    /// frames owed to the peer (pongs, close replies) and holds the closing
    /// state; it is free again once this returns, while the event still
    /// borrows `self` and `input`.
    ///
    /// `tx` must be this connection's own sender (from the same
    /// [`Connection::split`](super::Connection::split)); another one is refused with
    /// [`UsageError::MismatchedHalves`].
    ///
    /// On a protocol violation the connection fails: the right close frame
    /// is queued (see [`Sender::take_pending`]), the state becomes
    /// [`State::Closed`], and the error says what happened. After the
    /// connection is closed, input is consumed and ignored.
    pub fn read<'a>(&'a mut self, tx: &mut Sender, input: &'a mut [u8]) -> Result<Read<'a>, Error> {
        if tx.pair != self.pair {
            return Err(UsageError::MismatchedHalves.into());
        }
        self.return_lent();
        if tx.state() == State::Closed {
            return Ok(Read { consumed: input.len(), event: None, assembled: false });
        }
        let (consumed, ready) = match self.advance(tx, input) {
            Ok(step) => step,
            Err(e) => {
                self.fail(tx, e);
                return Err(e.into());
            }
        };
        let Some(ready) = ready else {
            return Ok(Read { consumed, event: None, assembled: false });
        };
        let assembled = matches!(ready, Ready::Text(Source::Assembly) | Ready::Binary(Source::Assembly));
        let input: &'a [u8] = input;
        let event = match ready {
            Ready::Text(Source::Input(range)) => match simdutf8::basic::from_utf8(&input[range]) {
                Ok(text) => Event::Text(text),
                Err(_) => {
                    self.fail(tx, ProtocolError::InvalidUtf8);
                    return Err(ProtocolError::InvalidUtf8.into());
                }
            },
            Ready::Text(_) => {
                self.lent = Lent::Message;
                // `advance` finished the message, so it is validated text.
                Event::Text(self.assembly.text().unwrap_or_default())
            }
            Ready::Binary(src) => Event::Binary(self.lend(src, input)),
            Ready::Ping(src) => Event::Ping(self.lend(src, input)),
            Ready::Pong(src) => Event::Pong(self.lend(src, input)),
            Ready::Close(code, src) => {
                let payload = self.lend(src, input);
                let reason = payload.get(2..).unwrap_or_default();
                // `advance` validated the reason; this cannot fall back.
                let reason = simdutf8::basic::from_utf8(reason).unwrap_or_default();
                Event::Close(CloseFrame { code, reason })
            }
        };
        Ok(Read { consumed, event: Some(event), assembled })
    }

    /// Takes the data message the last [`Read`] lent from this receiver's
    /// assembly buffer (see [`Read::is_assembled`]), owned: a runtime can
    /// then keep it, or queue it to be sent by reference, instead of
    /// copying it. The receiver starts its next message in a new buffer.
    /// `None` when the last event was not such a message.
    pub fn take_message(&mut self) -> Option<OwnedMessage> {
        if self.lent != Lent::Message {
            return None;
        }
        self.lent = Lent::Nothing;
        self.assembly.take_finished()
    }

    fn lend<'a>(&'a mut self, src: Source, input: &'a [u8]) -> &'a [u8] {
        match src {
            Source::Input(range) => &input[range],
            Source::Assembly => {
                self.lent = Lent::Message;
                self.assembly.bytes()
            }
            Source::Control => {
                self.lent = Lent::Control;
                self.control.as_deref().map_or(&[], ControlBuf::bytes)
            }
        }
    }

    /// Empties the buffer the previous event borrowed.
    fn return_lent(&mut self) {
        match self.lent {
            Lent::Nothing => {}
            Lent::Message => self.assembly.clear(self.limits.retain_capacity as usize),
            Lent::Control => self.control = None,
        }
        self.lent = Lent::Nothing;
    }

    /// Walks `input` until an event is ready or the input is used up.
    fn advance(&mut self, tx: &mut Sender, input: &mut [u8]) -> Result<(usize, Option<Ready>), ProtocolError> {
        let mut pos = 0;
        loop {
            if let Some(frame) = self.frame.take() {
                let (used, ready) = self.continue_frame(tx, frame, &mut input[pos..])?;
                pos += used;
                if ready.is_some() || self.frame.is_some() {
                    return Ok((pos, ready));
                }
                continue;
            }
            if pos == input.len() {
                return Ok((pos, None));
            }
            let Some((header, used)) = self.next_header(&input[pos..])? else {
                return Ok((input.len(), None));
            };
            pos += used;
            let discard = !header.opcode.is_control() && tx.state() == State::CloseSent;
            self.check_header(tx.role(), tx.claimed_rsv(), &header, discard)?;
            let len = header.payload_len;
            let whole = len <= (input.len() - pos) as u64;
            if header.opcode.is_control() {
                if whole {
                    let range = pos..pos + len as usize;
                    pos = range.end;
                    if let Some(key) = header.mask {
                        mask::apply_mask(&mut input[range.clone()], key, 0);
                    }
                    let ready = self.on_control(tx, header.opcode, &input[range.clone()], Source::Input(range))?;
                    if ready.is_some() {
                        return Ok((pos, ready));
                    }
                    continue;
                }
                self.control = None;
            } else {
                self.track_message(tx.state(), header.opcode, header.fin);
                if whole && !discard && self.message.is_none() && header.fin {
                    // The fast path: a whole one-frame message, handed over in
                    // place (or decoded from where it lies, for an extension).
                    let range = pos..pos + len as usize;
                    pos = range.end;
                    if let Some(key) = header.mask {
                        mask::apply_mask(&mut input[range.clone()], key, 0);
                    }
                    if header.rsv != 0 {
                        self.decode(tx, kind_of(header.opcode), header.rsv, &input[range])?;
                        return Ok((pos, Some(data_ready(header.opcode, Source::Assembly))));
                    }
                    let src = Source::Input(range);
                    return Ok((pos, Some(data_ready(header.opcode, src))));
                }
                if !discard && header.opcode != OpCode::Continuation {
                    self.message = Some(kind_of(header.opcode));
                    self.message_rsv = header.rsv;
                    // A message the extension transformed is checked for
                    // UTF-8 after decoding, not as it arrives.
                    let validate = header.opcode == OpCode::Text && header.rsv == 0;
                    self.assembly.begin(validate, self.limits.retain_capacity as usize);
                }
            }
            self.frame = Some(PartialFrame {
                opcode: header.opcode,
                fin: header.fin,
                key: header.mask,
                received: 0,
                remaining: len,
                discard,
            });
        }
    }

    /// Keeps the fragmentation state when frames are discarded after our
    /// close, so a later continuation is still judged correctly.
    fn track_message(&mut self, state: State, opcode: OpCode, fin: bool) {
        if state == State::CloseSent {
            match opcode {
                OpCode::Text | OpCode::Binary if !fin => self.message = Some(kind_of(opcode)),
                OpCode::Continuation if fin => self.message = None,
                _ => {}
            }
            // A message cut short by our close will never be delivered.
            self.assembly.clear(self.limits.retain_capacity as usize);
        }
    }

    /// Takes the next header, from `input` alone or completing one cut by the
    /// previous read. Returns the header and how many bytes of `input` it
    /// used, or `None` (having kept the bytes) when it is still incomplete.
    fn next_header(&mut self, input: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let have = usize::from(self.header_len);
        if have == 0 {
            if let Some(found) = FrameHeader::decode(input)? {
                return Ok(Some(found));
            }
            // Shorter than the longest header, or decode would have finished.
            self.header[..input.len()].copy_from_slice(input);
            self.header_len = input.len() as u8;
            return Ok(None);
        }
        let take = (MAX_HEADER_LEN - have).min(input.len());
        self.header[have..have + take].copy_from_slice(&input[..take]);
        match FrameHeader::decode(&self.header[..have + take])? {
            Some((header, len)) => {
                self.header_len = 0;
                Ok(Some((header, len - have)))
            }
            None => {
                self.header_len = (have + take) as u8;
                Ok(None)
            }
        }
    }

    /// The rules that depend on role, extensions, fragmentation and limits.
    /// RSV bits are allowed only when the negotiated extension claims them
    /// (`claimed`), and only on the first frame of a data message. Size
    /// limits do not apply to data we discard unread.
    fn check_header(&self, role: Role, claimed: u8, header: &FrameHeader, discard: bool) -> Result<(), ProtocolError> {
        match (role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        let first_data_frame = matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & !claimed != 0 || (header.rsv != 0 && !first_data_frame) {
            return Err(ProtocolError::ReservedBits(header.rsv));
        }
        match header.opcode {
            OpCode::Continuation if self.message.is_none() => Err(ProtocolError::UnexpectedContinuation),
            OpCode::Text | OpCode::Binary if self.message.is_some() => Err(ProtocolError::ExpectedContinuation),
            op if op.is_control() => Ok(()),
            _ if discard => Ok(()),
            _ if header.payload_len > u64::from(self.limits.max_frame_size) => Err(ProtocolError::FrameTooLarge),
            _ if (self.assembly.len() as u64).saturating_add(header.payload_len)
                > u64::from(self.limits.max_message_size) =>
            {
                Err(ProtocolError::MessageTooLarge)
            }
            _ => Ok(()),
        }
    }

    /// Feeds `input` to the frame whose payload is arriving. Returns how much
    /// it used and the event, if the frame completed one.
    fn continue_frame(
        &mut self,
        tx: &mut Sender,
        mut frame: PartialFrame,
        input: &mut [u8],
    ) -> Result<(usize, Option<Ready>), ProtocolError> {
        let n = frame.remaining.min(input.len() as u64) as usize;
        let piece = &mut input[..n];
        if let Some(key) = frame.key {
            mask::apply_mask(piece, key, (frame.received & 3) as usize);
        }
        frame.received += n as u64;
        frame.remaining -= n as u64;
        if frame.opcode.is_control() {
            self.control.get_or_insert_with(Default::default).push(piece);
        } else if !frame.discard {
            let limit = self.limits.max_message_size as usize;
            self.assembly.push(piece, frame.remaining, limit).map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if frame.remaining > 0 {
            self.frame = Some(frame);
            return Ok((n, None));
        }
        if frame.opcode.is_control() {
            let mut payload = [0u8; 125];
            let bytes = self.control.as_deref().map_or(&[][..], ControlBuf::bytes);
            let len = bytes.len();
            payload[..len].copy_from_slice(bytes);
            return Ok((n, self.on_control(tx, frame.opcode, &payload[..len], Source::Control)?));
        }
        if !frame.fin || frame.discard {
            return Ok((n, None));
        }
        self.assembly.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        let kind = self.message.take().unwrap_or(MessageKind::Binary);
        let rsv = std::mem::take(&mut self.message_rsv);
        if rsv != 0 {
            let encoded = self.assembly.take_bytes();
            self.decode(tx, kind, rsv, &encoded)?;
        }
        Ok((n, Some(data_ready(kind.opcode(), Source::Assembly))))
    }

    /// The extension seam, inbound: a whole message whose first frame
    /// carried `rsv` is decoded by the negotiated extension into the
    /// assembly buffer, then checked for UTF-8 if it is text.
    fn decode(&mut self, tx: &mut Sender, kind: MessageKind, rsv: u8, encoded: &[u8]) -> Result<(), ProtocolError> {
        let max = self.limits.max_message_size as usize;
        // `check_header` let the bits through, so there is an extension.
        let extension = tx.extension().ok_or(ProtocolError::ReservedBits(rsv))?;
        let mut decoded = Vec::new();
        extension.decode(rsv, encoded, max, &mut decoded).map_err(|e| match e {
            ExtensionError::TooLarge => ProtocolError::MessageTooLarge,
            _ => ProtocolError::ExtensionData,
        })?;
        if decoded.len() > max {
            return Err(ProtocolError::MessageTooLarge);
        }
        self.assembly.set_message(decoded, kind == MessageKind::Text).map_err(|_| ProtocolError::InvalidUtf8)
    }

    /// Acts on a whole control frame.
    fn on_control(
        &mut self,
        tx: &mut Sender,
        opcode: OpCode,
        payload: &[u8],
        src: Source,
    ) -> Result<Option<Ready>, ProtocolError> {
        match opcode {
            OpCode::Ping => {
                if tx.state() == State::Open {
                    tx.queue_pong(payload);
                }
                Ok(Some(Ready::Ping(src)))
            }
            OpCode::Pong => Ok(Some(Ready::Pong(src))),
            _ => {
                let code = close::parse_payload(payload)?;
                if tx.state() == State::Open {
                    // Echo the peer's code (RFC 6455 §5.5.1), without its reason.
                    tx.queue_close(code, &[]);
                }
                tx.set_closed();
                self.frame = None;
                self.message = None;
                Ok(Some(Ready::Close(code, src)))
            }
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): sends a close with the code
    /// the violation calls for, unless a close was already sent, and stops
    /// reading.
    fn fail(&mut self, tx: &mut Sender, error: ProtocolError) {
        if tx.state() == State::Open {
            let reason = error.to_string();
            let reason = &reason.as_bytes()[..reason.len().min(close::MAX_REASON_LEN)];
            tx.queue_close(Some(error.close_code()), reason);
        }
        tx.set_closed();
        self.frame = None;
        self.message = None;
        self.message_rsv = 0;
        self.header_len = 0;
        self.assembly.clear(0);
        self.control = None;
    }
}

fn kind_of(opcode: OpCode) -> MessageKind {
    if opcode == OpCode::Text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

fn data_ready(opcode: OpCode, src: Source) -> Ready {
    match kind_of(opcode) {
        MessageKind::Text => Ready::Text(src),
        MessageKind::Binary => Ready::Binary(src),
    }
}
