//! Handing connect requests to shards, and the CONNECTING rule.
//!
//! RFC 6455 §4.1: a client may have at most one connection in the
//! CONNECTING state (TCP connect and opening handshake) to the same remote
//! host and port; further ones wait until it opens or fails. Shards connect
//! independently, so the rule is kept here, across shards: the first
//! request for an address goes to its shard at once and marks the address
//! busy; later ones queue behind it; each time a shard's connection to the
//! address leaves CONNECTING, the next request in the queue is handed to
//! its shard. The lock is taken once per connection set-up, never per
//! message.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ringcast_proto::handshake::ClientHandshake;

use crate::inbox::Inbox;
use crate::sys::Waker;

/// One connection to open, as a shard receives it, with the handler's
/// per-connection value.
pub(crate) struct DialRequest<C> {
    /// The server's resolved address (the key of the CONNECTING rule).
    pub addr: SocketAddr,
    /// The local address to bind first, if any.
    pub local: Option<SocketAddr>,
    pub handshake: ClientHandshake,
    pub data: C,
}

/// A request sealed for its trip to a shard thread. It can only be made
/// from a request that may cross threads, so the queues that hold it may
/// be shared whatever the handler's per-connection type is (a server's
/// handler may keep values that never leave their shard; it never dials).
struct Sealed<C>(Box<dyn FnOnce() -> DialRequest<C> + Send>);

impl<C: Send + 'static> Sealed<C> {
    fn new(request: DialRequest<C>) -> Self {
        Sealed(Box::new(move || request))
    }
}

/// A request waiting for its address to be free.
struct Queued<C> {
    shard: usize,
    request: Sealed<C>,
}

/// Routes connect requests to shards (round robin unless one is chosen).
pub(crate) struct Dialer<C> {
    /// The requests handed to each shard.
    queues: Vec<Inbox<Sealed<C>>>,
    next: AtomicUsize,
    /// Enforce one connection in CONNECTING per remote address.
    one_connecting: bool,
    /// Addresses with a connection in CONNECTING, and who waits behind it.
    busy: Mutex<HashMap<SocketAddr, VecDeque<Queued<C>>>>,
}

impl<C> Dialer<C> {
    /// A dialer for shards woken by `wakers` (one per shard, in order).
    pub fn new(wakers: &[Arc<Waker>], one_connecting: bool) -> Self {
        let queues = wakers.iter().map(|waker| Inbox::new(waker.clone())).collect();
        Dialer { queues, next: AtomicUsize::new(0), one_connecting, busy: Mutex::new(HashMap::new()) }
    }

    /// The shard a request goes to: `chosen` (modulo the shard count) or
    /// the next in turn.
    pub fn pick(&self, chosen: Option<usize>) -> usize {
        chosen.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed)) % self.queues.len()
    }

    /// Starts `request` on `shard` now, or queues it behind the connection
    /// in CONNECTING to the same address.
    pub fn submit(&self, shard: usize, request: DialRequest<C>)
    where
        C: Send + 'static,
    {
        let addr = request.addr;
        let request = Sealed::new(request);
        if self.one_connecting {
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            match busy.entry(addr) {
                Entry::Occupied(mut waiting) => {
                    waiting.get_mut().push_back(Queued { shard, request });
                    return;
                }
                Entry::Vacant(free) => {
                    free.insert(VecDeque::new());
                }
            }
        }
        self.hand_over(shard, request);
    }

    /// A connection to `addr` left CONNECTING (opened or failed): the next
    /// request for the address, if any, starts.
    pub fn release(&self, addr: SocketAddr) {
        if !self.one_connecting {
            return;
        }
        let next = {
            let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
            match busy.get_mut(&addr).map(VecDeque::pop_front) {
                Some(Some(next)) => Some(next),
                Some(None) => {
                    busy.remove(&addr);
                    None
                }
                None => None,
            }
        };
        if let Some(next) = next {
            self.hand_over(next.shard, next.request);
        }
    }

    /// Requests queued behind a connection in CONNECTING, over all
    /// addresses.
    pub fn queued(&self) -> usize {
        self.busy.lock().unwrap_or_else(|e| e.into_inner()).values().map(VecDeque::len).sum()
    }

    /// The requests handed to `shard` since its last call, in order.
    pub fn take(&self, shard: usize) -> Vec<DialRequest<C>> {
        self.queues[shard].take().into_iter().map(|Sealed(open)| open()).collect()
    }

    fn hand_over(&self, shard: usize, request: Sealed<C>) {
        self.queues[shard].post(request);
    }
}
