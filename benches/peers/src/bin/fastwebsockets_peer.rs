//! fastwebsockets 0.10 peer: the HTTP upgrade through hyper 1, then
//! fastwebsockets on a tokio current-thread runtime (one core, like one
//! ringcast shard), mimalloc, TCP_NODELAY on accepted sockets.
//!
//! ```text
//! fastwebsockets-peer ADDR [echo|fanout]      e.g. fastwebsockets-peer 127.0.0.1:9003 fanout
//! ```
//!
//! - `echo`: one task per connection reads with `FragmentCollector` and writes
//!   each message back as it came (pings and closes answered by the library).
//! - `fanout`: every message goes to every connection, the sender included.
//!
//! What the library forces:
//! - hyper owns the HTTP/1 connection until the upgrade: one task for the
//!   HTTP connection, then a second one for the WebSocket.
//! - Reading and writing at once needs the `unstable-split` halves over
//!   `tokio::io::split` (a lock shared by the halves), a writer task per
//!   connection, and a `send_fn` through which the reader hands the pongs
//!   and the close reply it owes to that writer (here: the outbound queue).
//! - A frame is written from a `Frame`, which holds one payload: the header is
//!   encoded again for every receiver, and payloads up to 1 KiB are copied
//!   into the connection's write buffer (larger ones go out with `writev`).
//!   What is shared is the payload (`Bytes`), frozen from the read buffer
//!   without a copy; while receivers hold it, the read buffer cannot reuse
//!   that memory and allocates anew.
//! - Every `write_frame` is a `write` of its own; the fan-out writer puts a
//!   `BufWriter` under the write half and flushes once its queue is empty.

use std::io::ErrorKind;
use std::rc::Rc;

use bytes::Bytes;
use fastwebsockets::{upgrade, FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError};
use fastwebsockets::{WebSocket, WebSocketWrite};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mimalloc::MiMalloc;
use ringcast_peers::{accept_failed, announce, until_signal, Args, Mode};
use tokio::io::{BufWriter, WriteHalf};
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::spawn_local;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The name in messages.
const PROGRAM: &str = "fastwebsockets-peer";

/// A frame queued for one connection; the payload is shared by every
/// receiver of a fan-out.
#[derive(Debug, Clone)]
struct Outbound {
    opcode: OpCode,
    payload: Bytes,
}

/// The fan-out room.
type Room = ringcast_peers::Room<Outbound>;

/// The stream under a WebSocket once hyper has upgraded it.
type Stream = TokioIo<Upgraded>;

/// Echoes data messages (fragments assembled) until the peer closes; the
/// library answers pings and the close as it reads.
async fn echo(ws: WebSocket<Stream>) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}

/// Takes a payload out of a frame without copying when the library hands
/// over an owned buffer (it always does for frames it has read).
fn into_bytes(payload: Payload<'_>) -> Bytes {
    match payload {
        Payload::Bytes(bytes) => bytes.freeze(),
        Payload::Owned(vec) => Bytes::from(vec),
        other => Bytes::copy_from_slice(&other),
    }
}

/// Reads messages and publishes them to the room; a writer task drains this
/// connection's queue. The connection leaves the room when reading ends.
async fn fanout(ws: WebSocket<Stream>, room: Rc<Room>) -> Result<(), WebSocketError> {
    let (read, write) = ws.split(|stream| {
        let (read, write) = tokio::io::split(stream);
        (read, BufWriter::new(write))
    });
    let mut read = FragmentCollectorRead::new(read);
    let (member, queue) = room.join();
    spawn_local(async move {
        if let Err(e) = write_queue(write, queue).await {
            report(&e);
        }
    });
    let own = member.own_queue().clone();
    // Pongs and the close reply the reader owes go through our own queue.
    let mut owed = move |frame: Frame<'_>| {
        let _ = own.send(Outbound { opcode: frame.opcode, payload: into_bytes(frame.payload) });
        std::future::ready(Ok::<(), WebSocketError>(()))
    };
    loop {
        let frame = read.read_frame(&mut owed).await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                room.publish(&Outbound { opcode: frame.opcode, payload: into_bytes(frame.payload) })
            }
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}

/// Writes queued frames until the close reply is written or the queue ends
/// (the reader left the room); flushes whenever the queue runs dry.
async fn write_queue(
    mut write: WebSocketWrite<BufWriter<WriteHalf<Stream>>>,
    mut queue: UnboundedReceiver<Outbound>,
) -> Result<(), WebSocketError> {
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(out) = next {
            let closing = out.opcode == OpCode::Close;
            write.write_frame(Frame::new(true, out.opcode, None, Payload::Borrowed(&out.payload))).await?;
            if closing {
                return write.flush().await;
            }
            next = queue.try_recv().ok();
        }
        write.flush().await?;
    }
    Ok(())
}

/// Reports a connection's error, unless it is only the peer going away.
fn report(error: &WebSocketError) {
    let gone = match error {
        WebSocketError::UnexpectedEOF | WebSocketError::ConnectionClosed => true,
        WebSocketError::IoError(e) => matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
        _ => false,
    };
    if !gone {
        eprintln!("{PROGRAM}: {error}");
    }
}

/// Answers the upgrade request and starts the WebSocket task for `mode`.
async fn on_request(
    mut request: Request<Incoming>,
    mode: Mode,
    room: Rc<Room>,
) -> Result<Response<Empty<hyper::body::Bytes>>, WebSocketError> {
    let (response, upgraded) = upgrade::upgrade(&mut request)?;
    spawn_local(async move {
        let result = match upgraded.await {
            Ok(ws) => match mode {
                Mode::Echo => tokio::task::unconstrained(echo(ws)).await,
                Mode::Fanout => fanout(ws, room).await,
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            report(&e);
        }
    });
    Ok(response)
}

/// Accepts connections and serves each through hyper, upgrades allowed.
async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind(args.addr).await?;
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
        if stream.set_nodelay(true).is_err() {
            continue;
        }
        let room = Rc::clone(&room);
        spawn_local(async move {
            let service = service_fn(move |request| on_request(request, args.mode, Rc::clone(&room)));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
            let _ = connection.await;
        });
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::from_env(PROGRAM);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Tasks hold the `Rc` room, so they are spawned on a `LocalSet`.
    let local = tokio::task::LocalSet::new();
    runtime.block_on(local.run_until(until_signal(serve(args))))
}
