//! tokio-uring 0.5 peer speaking WebSocket through our sans-IO core
//! `ringcast-proto`: the baseline for building ringcast's runtime on the
//! io-uring crate directly. One thread (a tokio current-thread runtime with
//! a ring underneath, like one ringcast shard), mimalloc, TCP_NODELAY on
//! accepted sockets.
//!
//! ```text
//! tokio-uring-peer ADDR [echo|fanout]      e.g. tokio-uring-peer 127.0.0.1:9003 fanout
//! ```
//!
//! One task per connection, each owning a 64 KiB read buffer and an output
//! buffer that go to the kernel and come back with every operation and are
//! reused. Messages are read in place (unmasked where they lie).
//!
//! - `echo`: read, answer everything the read held into one output buffer,
//!   one `write` per read.
//! - `fanout`: a frame is encoded once into `Bytes` and queued for every
//!   member; a connection writes its whole queue with one `writev`, without
//!   copying. Its read stays in flight while it writes.
//!
//! What the library forces:
//! - Owned buffers: a pending read holds its connection's buffer, so every
//!   idle connection keeps one (no shared buffer ring in tokio-uring 0.5), and
//!   a message must be copied out of it (into the frame to send) before the
//!   buffer goes back to the kernel.
//! - The ring is driven from tokio's reactor: its fd sits in epoll, SQEs are
//!   submitted when the thread is about to park, and completions reach a
//!   task through a waker and tokio's scheduler; each write is an operation
//!   to wait for, not a call that returns done.

use std::io;
use std::pin::pin;
use std::rc::Rc;

use bytes::{Buf, Bytes};
use mimalloc::MiMalloc;
use ringcast_peers::{accept_failed, announce, until_signal, Args, Member, Mode};
use ringcast_proto::handshake::{write_response, RequestReader};
use ringcast_proto::{Config, Connection, Event, MessageKind, State};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The name in messages.
const PROGRAM: &str = "tokio-uring-peer";
/// Read buffer per connection, and the output capacity kept between writes.
const BUFFER: usize = 64 << 10;
/// Most frames in one `writev` (the kernel's IOV_MAX).
const MAX_IOVECS: usize = 1024;

/// The fan-out room: encoded frames, shared by every receiver.
type Room = ringcast_peers::Room<Bytes>;

/// Reads more bytes after the end of `buf`, up to its capacity; 0 at EOF.
async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let start = buf.len();
    let (result, slice) = stream.read(std::mem::take(buf).slice(start..)).await;
    *buf = slice.into_inner();
    result
}

/// Writes all of `out`, then empties it, keeping a bounded capacity.
async fn write_out(stream: &TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    let (result, returned) = stream.write_all(std::mem::take(out)).await;
    *out = returned;
    out.clear();
    out.shrink_to(BUFFER);
    result
}

/// Writes every frame of `batch` with vectored writes, without copying them,
/// and leaves `batch` empty for reuse.
async fn write_batch(stream: &TcpStream, batch: &mut Vec<Bytes>) -> io::Result<()> {
    while !batch.is_empty() {
        let (result, mut frames) = stream.writev(std::mem::take(batch)).await;
        let mut written = match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < frames.len() && frames[done].len() <= written {
            written -= frames[done].len();
            done += 1;
        }
        frames.drain(..done);
        if let Some(partial) = frames.first_mut() {
            partial.advance(written);
        }
        *batch = frames;
    }
    Ok(())
}

/// Reads the upgrade request into `buf` and answers it (any path). Returns
/// where the WebSocket bytes start in `buf`, or `None` once a refused or
/// vanished client has been dealt with.
async fn handshake(stream: &TcpStream, buf: &mut Vec<u8>, out: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut reader = RequestReader::default();
    loop {
        if read_more(stream, buf).await? == 0 {
            return Ok(None);
        }
        let outcome = match reader.poll(buf) {
            Ok(None) => continue,
            Ok(Some(request)) => request.validate().map(|upgrade| (upgrade, request.head_len())),
            Err(e) => Err(e),
        };
        let start = match outcome {
            Ok((upgrade, head_len)) => {
                upgrade.write_response(None, &[], out).map_err(io::Error::other)?;
                Some(head_len)
            }
            Err(e) => {
                write_response(e.status(), &[], format!("{e}\n").as_bytes(), out).map_err(io::Error::other)?;
                None
            }
        };
        write_out(stream, out).await?;
        return Ok(start);
    }
}

/// Feeds `input` to the connection, handing every text or binary message to
/// `on_message` with a sender to frame it. What the connection owes the peer
/// (pongs, the close reply) then waits in `take_pending`. Returns whether the
/// connection is over (closed, or failed with its close frame pending).
fn feed(
    conn: &mut Connection,
    input: &mut [u8],
    mut on_message: impl FnMut(&mut ringcast_proto::connection::Sender, MessageKind, &[u8]),
) -> bool {
    let (rx, tx) = conn.split();
    let mut pos = 0;
    let failed = loop {
        match rx.read(tx, &mut input[pos..]) {
            Ok(read) => {
                pos += read.consumed;
                match read.event {
                    Some(Event::Text(text)) => on_message(tx, MessageKind::Text, text.as_bytes()),
                    Some(Event::Binary(data)) => on_message(tx, MessageKind::Binary, data),
                    Some(_) => {}
                    None => break false,
                }
            }
            Err(_) => break true,
        }
    };
    failed || tx.state() == State::Closed
}

/// Echo: every message framed into `out`, one write per read.
async fn echo(stream: &TcpStream, mut buf: Vec<u8>, start: usize, mut out: Vec<u8>) -> io::Result<()> {
    let mut conn = Connection::server(Config::default());
    let mut start = start;
    loop {
        // Sending fails only once we are closing: nothing to echo then.
        let over = feed(&mut conn, &mut buf[start..], |tx, kind, payload| {
            let _ = tx.send(kind, payload, &mut out);
        });
        conn.take_pending(&mut out);
        if !out.is_empty() {
            write_out(stream, &mut out).await?;
        }
        if over {
            return Ok(());
        }
        buf.clear();
        start = 0;
        if read_more(stream, &mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// Fan-out: publishes every message, encoded once, and writes this
/// connection's queue while its next read is in flight.
async fn fanout(stream: &TcpStream, mut buf: Vec<u8>, start: usize, room: Rc<Room>) -> io::Result<()> {
    let mut conn = Connection::server(Config::default());
    let (member, mut queue) = room.join();
    let mut batch: Vec<Bytes> = Vec::new();
    let mut over = on_input(&mut conn, &mut buf[start..], &room, &member);
    buf.clear();
    let mut reading = pin!(stream.read(buf));
    while !over {
        tokio::select! {
            (result, mut input) = &mut reading => {
                if result? == 0 {
                    return Ok(());
                }
                over = on_input(&mut conn, &mut input, &room, &member);
                input.clear();
                reading.set(stream.read(input));
            }
            Some(first) = queue.recv() => {
                batch.push(first);
                while batch.len() < MAX_IOVECS {
                    let Ok(frame) = queue.try_recv() else { break };
                    batch.push(frame);
                }
                write_batch(stream, &mut batch).await?;
            }
        }
    }
    // Closing: write what is queued (the close last), then leave.
    queue.close();
    while let Ok(frame) = queue.try_recv() {
        batch.push(frame);
        if batch.len() == MAX_IOVECS {
            write_batch(stream, &mut batch).await?;
        }
    }
    write_batch(stream, &mut batch).await
}

/// Publishes the messages in `input`; queues what the connection owes its
/// own peer. Returns whether the connection is over.
fn on_input(conn: &mut Connection, input: &mut [u8], room: &Room, member: &Member<Bytes>) -> bool {
    let over = feed(conn, input, |tx, kind, payload| {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        if tx.send(kind, payload, &mut frame).is_ok() {
            room.publish(&Bytes::from(frame));
        }
    });
    let mut owed = Vec::new();
    conn.take_pending(&mut owed);
    if !owed.is_empty() {
        let _ = member.own_queue().send(Bytes::from(owed));
    }
    over
}

/// Serves one accepted connection.
async fn connection(stream: TcpStream, mode: Mode, room: Rc<Room>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(BUFFER);
    let mut out = Vec::new();
    let Some(start) = handshake(&stream, &mut buf, &mut out).await? else { return Ok(()) };
    match mode {
        Mode::Echo => echo(&stream, buf, start, out).await,
        Mode::Fanout => fanout(&stream, buf, start, room).await,
    }
}

/// Accepts connections, one task each.
async fn serve(args: Args) -> io::Result<()> {
    let listener = TcpListener::bind(args.addr)?;
    announce(listener.local_addr()?, args.mode);
    let room = Rc::new(Room::default());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(PROGRAM, e).await;
                continue;
            }
        };
        let room = Rc::clone(&room);
        tokio_uring::spawn(async move {
            if let Err(e) = connection(stream, args.mode, room).await {
                if !matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
                    eprintln!("{PROGRAM}: {e}");
                }
            }
        });
    }
}

fn main() -> io::Result<()> {
    let args = Args::from_env(PROGRAM);
    // A deeper ring than the default 256 entries: many connections each keep
    // a read in flight, and completions are reaped in bigger batches. One
    // thread submits and reaps, so completions need not interrupt it
    // (COOP_TASKRUN, as ringcast's own ring asks for). DEFER_TASKRUN is out
    // of reach: its completions run only in an enter with GETEVENTS, and
    // tokio-uring submits without it and waits in epoll.
    let ring = tokio_uring::uring_builder().setup_coop_taskrun().setup_single_issuer().clone();
    tokio_uring::builder().entries(1024).uring_builder(&ring).start(until_signal(serve(args)))
}
