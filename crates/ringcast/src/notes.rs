//! Notes for one connection, posted from any thread: the way a thread
//! that sequences a topic's publishes (a history, a bridge to another
//! system) talks to the connections it serves, in mailbox order with the
//! deliveries it posted.

use std::marker::PhantomData;

use crate::runtime::Runtime;
use crate::ws::ConnId;

/// Posts notes of type `N` (the handler's, see [`Handler`](crate::Handler))
/// to connections, from any thread; from
/// [`ServerExt::notes`](crate::broker::ServerExt::notes). Cheap to clone.
pub struct Notes<N> {
    runtime: Runtime,
    note: PhantomData<fn(N)>,
}

impl<N> Clone for Notes<N> {
    fn clone(&self) -> Self {
        Notes { runtime: self.runtime.clone(), note: PhantomData }
    }
}

impl<N> std::fmt::Debug for Notes<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notes<{}>", std::any::type_name::<N>())
    }
}

impl<N: Send + 'static> Notes<N> {
    /// Notes for `runtime`, if `N` is its handler's note type.
    pub(crate) fn of(runtime: &Runtime) -> Option<Self> {
        runtime.takes_notes::<N>().then(|| Notes { runtime: runtime.clone(), note: PhantomData })
    }

    /// Posts `note` for connection `conn`: its handler's
    /// [`Handler::notified`](crate::Handler::notified) gets it on the
    /// connection's shard, in mailbox order (after everything posted there
    /// before it, publishes included). A note for a connection that is
    /// gone is dropped.
    pub fn notify(&self, conn: ConnId, note: N) {
        self.runtime.notify(conn, Box::new(note))
    }

    /// Subscribes connection `conn` to `topic` from the place `after` on
    /// (as [`WsExt::subscribe_after`](crate::broker::WsExt::subscribe_after)), then hands
    /// it `note` ([`Handler::notified`](crate::Handler::notified)). The
    /// connection counts as a subscriber from this call on, so every
    /// message published after it reaches its shard, where the
    /// subscription takes effect in mailbox order: messages posted there
    /// before it are not delivered to it, those after it are (less those
    /// at places up to `after`). The way a thread that sequences a topic's
    /// publishes hands a connection over to live delivery with no gap. If
    /// the connection is gone or no longer open by then, nothing happens;
    /// if it already subscribes, it stays as it was, and past its limits
    /// (`max_subscriptions`, `max_topic_len`) it is not subscribed; the
    /// note comes either way.
    pub fn join(&self, conn: ConnId, topic: &str, after: u64, note: N) {
        self.runtime.join(conn, topic, after, Box::new(note))
    }
}
