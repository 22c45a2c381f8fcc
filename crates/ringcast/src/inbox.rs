//! A queue that other threads fill for one shard, waking it through the
//! eventfd its ring reads: how deliveries (`pubsub`) and connect requests
//! (`dialer`) reach a shard. The shard takes everything at once when it
//! wakes; one lock per post and per wake, never per message handled.

use std::sync::{Arc, Mutex};

use crate::sys::Waker;

/// Items for one shard, in the order they were posted.
pub(crate) struct Inbox<T> {
    items: Mutex<Vec<T>>,
    waker: Arc<Waker>,
}

impl<T> Inbox<T> {
    /// An empty inbox whose posts wake the shard through `waker`.
    pub fn new(waker: Arc<Waker>) -> Self {
        Inbox { items: Mutex::default(), waker }
    }

    /// Leaves an item and wakes the shard.
    pub fn post(&self, item: T) {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).push(item);
        self.waker.wake();
    }

    /// Everything posted since the last call, in order.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
