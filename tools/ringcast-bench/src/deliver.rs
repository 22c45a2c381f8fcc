//! The receiving side of the pub/sub scenarios: read a subscriber's socket,
//! check every message (opcode, length, stamp, filler), answer pings, and
//! hand the stamps to the scenario.

use mio::Registry;

use crate::check::{Errors, Seen, SeqTracker};
use crate::client::Client;
use crate::frames::{describe_close, Frame, ReadEnd};
use crate::rng::Rng;
use crate::runner::{Clock, Tally};
use crate::stamp::{Payload, Stamp};
use crate::tls::Io;
use crate::wire;

/// Reads what `client` has, appending the stamp of every valid message to
/// `stamps`. Invalid messages are counted in `errors`; an `Err` means the
/// connection is dead.
#[allow(clippy::too_many_arguments)]
pub fn read_stamps(
    client: &mut Client,
    name: &dyn Fn() -> String,
    payload: &Payload,
    scratch: &mut Vec<u8>,
    until_closed: bool,
    rng: &mut Rng,
    errors: &mut Errors,
    stamps: &mut Vec<Stamp>,
) -> Result<(), String> {
    let Client { stream, tls, reader, out, .. } = client;
    let mut closed = None;
    let end = reader.read_from(&mut Io::new(stream, tls), scratch, until_closed, |frame| match frame {
        Frame::Data { text, payload: got } => match payload.open(got, text) {
            Ok(stamp) => stamps.push(stamp),
            Err(e) => errors.add(|| format!("{}: {e}", name())),
        },
        Frame::Ping(data) => wire::push_bytes(out, wire::OP_PONG, data, rng.mask_key()),
        Frame::Pong(_) => {}
        Frame::Close(data) => closed = Some(describe_close(data)),
    });
    let end = end.map_err(|e| format!("{}: {e}", name()))?;
    if let Some(close) = closed {
        return Err(format!("{}: the server closed it ({close})", name()));
    }
    if end == ReadEnd::Eof {
        return Err(format!("{}: the server closed it (end of stream, no close frame)", name()));
    }
    Ok(())
}

/// Records one delivery to local receiver `receiver`: sequence tracking,
/// and (in the window) latency from the stamp's send time. Returns what the
/// sequence number said, or `None` for an unknown sender (an error).
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn record(
    tally: &mut Tally,
    tracker: &mut SeqTracker,
    clock: &Clock,
    now: u64,
    receiver: usize,
    stamp: &Stamp,
    size: usize,
    measure_by_send_time: bool,
) -> Option<Seen> {
    let sender = stamp.sender as usize;
    if sender >= tracker.senders() {
        tally.errors.add(|| format!("a message from unknown sender {} (seq {})", stamp.sender, stamp.seq));
        return None;
    }
    tally.seen += 1;
    let seen = tracker.observe(receiver, sender, stamp.seq);
    let at = if measure_by_send_time { stamp.time_ns } else { now };
    if clock.measured(at) {
        tally.messages += 1;
        tally.bytes += size as u64;
        tally.latency.saturating_record(now.saturating_sub(stamp.time_ns).max(1));
    }
    Some(seen)
}

/// Closes a dead subscriber and counts why.
pub fn bury(client: &mut Client, registry: &Registry, errors: &mut Errors, why: String) {
    errors.add(|| why);
    client.close(registry);
}
