//! What the peer servers share: the command line (`ADDR [echo|fanout]`), the
//! start-up line, exiting on SIGINT/SIGTERM, and the fan-out room.
//!
//! Each peer is one binary in `src/bin`, single-threaded so that it compares
//! with one ringcast shard. Every binary must run inside a tokio runtime
//! (tokio-uring runs one underneath) for [`until_signal`].

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use slab::Slab;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// What a peer does with the messages it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every text or binary message goes back to its sender, type kept.
    Echo,
    /// Every text or binary message goes to every connection, the sender
    /// included, type kept.
    Fanout,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Echo => "echo",
            Mode::Fanout => "fanout",
        })
    }
}

/// The command line shared by every peer: `<binary> ADDR [echo|fanout]`.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    /// Where to listen, e.g. `127.0.0.1:9003`.
    pub addr: SocketAddr,
    /// `echo` unless told otherwise.
    pub mode: Mode,
}

impl Args {
    /// Parses the process arguments; prints the usage and exits with status
    /// 2 if they do not fit.
    pub fn from_env(program: &str) -> Args {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let addr = args.first().and_then(|a| a.parse().ok());
        let mode = match args.get(1).map(String::as_str) {
            None | Some("echo") => Some(Mode::Echo),
            Some("fanout") => Some(Mode::Fanout),
            Some(_) => None,
        };
        match (addr, mode, args.len()) {
            (Some(addr), Some(mode), 1..=2) => Args { addr, mode },
            _ => {
                eprintln!("usage: {program} ADDR [echo|fanout]   e.g. {program} 127.0.0.1:9003 fanout");
                std::process::exit(2);
            }
        }
    }
}

/// Prints the start-up line the benchmark scripts wait for and flushes it.
pub fn announce(local: SocketAddr, mode: Mode) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening on {local} mode {mode}");
    let _ = out.flush();
}

/// Runs `serve` until it fails, or exits the process with status 0 on
/// SIGINT or SIGTERM. Open connections are dropped, not closed gracefully.
/// The handlers are installed before `serve` first runs, so a signal sent
/// after the start-up line is always caught.
pub async fn until_signal(serve: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = serve => result,
        _ = interrupt.recv() => std::process::exit(0),
        _ = terminate.recv() => std::process::exit(0),
    }
}

/// Reports a failed `accept` and pauses briefly, so that running out of
/// file descriptors does not turn the accept loop into a busy loop.
pub async fn accept_failed(program: &str, error: io::Error) {
    eprintln!("{program}: accept: {error}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The one fan-out room of a peer: every connection's outbound queue. Single
/// threaded, so a `RefCell` suffices; queues are unbounded because a bounded
/// one would make a publisher wait for a slow member on the same thread.
#[derive(Debug)]
pub struct Room<T> {
    members: RefCell<Slab<UnboundedSender<T>>>,
}

impl<T> Default for Room<T> {
    fn default() -> Self {
        Room { members: RefCell::new(Slab::new()) }
    }
}

impl<T: Clone> Room<T> {
    /// Adds a connection; it leaves when the returned [`Member`] is dropped.
    /// The receiver yields what is published, in order, and ends once the
    /// member has left and every clone of its sender is gone.
    pub fn join(self: &Rc<Self>) -> (Member<T>, UnboundedReceiver<T>) {
        let (tx, rx) = unbounded_channel();
        let key = self.members.borrow_mut().insert(tx.clone());
        (Member { room: Rc::clone(self), key, own: tx }, rx)
    }

    /// Queues `message` for every member, the publisher included. `T` should
    /// be cheap to clone (a shared buffer): this is the only copy per member.
    pub fn publish(&self, message: &T) {
        for (_, member) in self.members.borrow().iter() {
            // A member whose writer already ended is about to leave.
            let _ = member.send(message.clone());
        }
    }

    /// How many connections are in the room.
    pub fn len(&self) -> usize {
        self.members.borrow().len()
    }

    /// Whether the room is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A connection's place in a [`Room`]; leaving is dropping it.
#[derive(Debug)]
pub struct Member<T> {
    room: Rc<Room<T>>,
    key: usize,
    own: UnboundedSender<T>,
}

impl<T> Member<T> {
    /// The member's own queue, for frames owed to this connection only
    /// (pongs, the close reply), ordered after what was published before.
    pub fn own_queue(&self) -> &UnboundedSender<T> {
        &self.own
    }
}

impl<T> Drop for Member<T> {
    fn drop(&mut self) {
        self.room.members.borrow_mut().remove(self.key);
    }
}
