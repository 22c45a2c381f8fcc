//! tokio-tungstenite 0.30 peer on a tokio current-thread runtime (one core,
//! like one ringcast shard), mimalloc, TCP_NODELAY on accepted sockets.
//!
//! ```text
//! tungstenite-peer ADDR [echo|fanout]      e.g. tungstenite-peer 127.0.0.1:9003 fanout
//! ```
//!
//! - `echo`: one task per connection sends every message back as it came.
//! - `fanout`: every message goes to every connection, the sender included;
//!   one task per connection selects between its socket and its queue.
//!
//! What the library forces:
//! - Messages are owned: a received message is its own buffer (the payload
//!   is cut from the read buffer, fragments are copied together), so a
//!   fan-out can share it (`Message` clones are reference counts).
//! - Sending encodes a whole frame per connection: the header, and a copy of
//!   the payload into that connection's write buffer. A frame cannot be
//!   encoded once and shared.
//! - Pongs and the close reply are queued inside the connection and leave
//!   with its next read or write; the loops below always read again.

use std::io::ErrorKind;
use std::rc::Rc;

use futures_util::{SinkExt, StreamExt};
use mimalloc::MiMalloc;
use ringcast_peers::{accept_failed, announce, until_signal, Args, Mode};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::spawn_local;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// The name in messages.
const PROGRAM: &str = "tungstenite-peer";

/// The fan-out room; a queued `Message` shares its payload.
type Room = ringcast_peers::Room<Message>;

/// Sends every data message back until the stream ends (after the close
/// reply has been written).
async fn echo(mut ws: WebSocketStream<TcpStream>) -> Result<(), Error> {
    while let Some(message) = ws.next().await {
        let message = message?;
        if message.is_text() || message.is_binary() {
            ws.send(message).await?;
        }
    }
    Ok(())
}

/// Publishes every data message to the room and writes what the room queues
/// for this connection, flushing once the queue is empty. Reading stops only
/// between messages (`next` keeps its state in the stream), so dropping it
/// when the queue wins the `select!` loses nothing.
async fn fanout(mut ws: WebSocketStream<TcpStream>, room: Rc<Room>) -> Result<(), Error> {
    let (_member, mut queue) = room.join();
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                None => return Ok(()),
                Some(message) => {
                    let message = message?;
                    if message.is_text() || message.is_binary() {
                        room.publish(&message);
                    }
                }
            },
            Some(first) = queue.recv() => {
                ws.feed(first).await?;
                while let Ok(message) = queue.try_recv() {
                    ws.feed(message).await?;
                }
                ws.flush().await?;
            }
        }
    }
}

/// Runs the handshake (any path accepted), then the mode's loop.
async fn connection(stream: TcpStream, mode: Mode, room: Rc<Room>) -> Result<(), Error> {
    let ws = tokio_tungstenite::accept_async(stream).await?;
    match mode {
        Mode::Echo => echo(ws).await,
        Mode::Fanout => fanout(ws, room).await,
    }
}

/// Accepts connections, one task each.
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
            match connection(stream, args.mode, room).await {
                // The peer going away is not worth a line.
                Ok(()) | Err(Error::ConnectionClosed | Error::AlreadyClosed) => {}
                Err(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)) => {}
                Err(Error::Io(e)) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
                Err(e) => eprintln!("{PROGRAM}: {e}"),
            }
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
