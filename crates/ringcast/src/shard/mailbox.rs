//! A shard's pub/sub side: the publishes its own callbacks made, and its
//! mailbox (other shards' and the handle's publishes, notes for one
//! connection), delivered in the order they came.

use super::notify::with_ws;
use super::slot::Phase;
use super::Shard;
use crate::callbacks::Callbacks;
use crate::pubsub::{Delivery, Post};
use crate::transport::Transport;
use crate::ws::{offer_frame, ConnId, Offer};

impl<H: Callbacks, T: Transport> Shard<H, T> {
    /// Delivers what the callbacks of the completion just handled
    /// published, in publish order.
    pub(super) fn deliver_pending(&mut self) {
        if !self.local.topics.pending.is_empty() {
            let pending = std::mem::take(&mut self.local.topics.pending);
            for delivery in &pending {
                self.deliver(delivery);
            }
        }
    }

    /// Handles everything posted to the mailbox, in order.
    pub(super) fn read_mailbox(&mut self) {
        for post in self.mailbox.take() {
            match post {
                Post::Delivery(delivery) => self.deliver(&delivery),
                Post::Note((key, generation), note) => {
                    let id = self.id(key as usize, generation);
                    let Some(slot) = self.conns.get_mut(key as usize).filter(|s| s.generation == generation) else {
                        continue;
                    };
                    with_ws(&mut self.handler, slot, id, &mut self.local, "notified", |h, ws| h.notified(ws, note));
                    self.review(key as usize);
                }
                Post::Join { conn: (key, generation), topic, after, note } => {
                    let id = self.id(key as usize, generation);
                    let slot = self.conns.get_mut(key as usize).filter(|s| s.generation == generation);
                    let Some(slot) = slot.filter(|s| matches!(s.phase, Phase::Open { .. })) else {
                        // Gone (or closing): its count goes back.
                        self.local.topics.exchange().unjoin(&topic, self.index as usize);
                        continue;
                    };
                    self.local.topics.joined(&topic, (key, generation), &mut slot.subs, after);
                    with_ws(&mut self.handler, slot, id, &mut self.local, "notified", |h, ws| h.notified(ws, note));
                    self.review(key as usize);
                }
            }
        }
    }

    /// Queues a published frame on every open local subscriber of its
    /// topic (but the publisher). The frame was built once; each
    /// connection's cork buffer gets a copy, which for the small messages
    /// of pub/sub costs less than a reference and an extra iovec per send.
    fn deliver(&mut self, delivery: &Delivery) {
        let (budget, policy) = (self.local.budget, self.local.policy);
        let mut drops = 0;
        let mut delivered = 0;
        let mut shared = 0;
        let fenced = self.local.topics.fenced(&delivery.topic, delivery.seq);
        for slot_ref in self.local.topics.subscribers(&delivery.topic) {
            if Some(slot_ref) == delivery.exclude || fenced.contains(&slot_ref) {
                continue;
            }
            let key = slot_ref.0 as usize;
            let Some(slot) = self.conns.get_mut(key).filter(|c| c.generation == slot_ref.1) else { continue };
            let Phase::Open { proto, .. } = &mut slot.phase else { continue };
            let id = ConnId { shard: self.index, key: slot_ref.0, generation: slot_ref.1 };
            match offer_frame(&delivery.frame, proto.sender(), &mut slot.out, &mut slot.subs, id, budget, policy) {
                Offer::Queued { by_reference, compressed } => {
                    delivered += 1;
                    shared += u64::from(by_reference);
                    self.local.stats.publishes_deflated += u64::from(compressed);
                }
                Offer::Closing => {}
                Offer::Dropped => {
                    drops += 1;
                    continue;
                }
                Offer::NotOpen => continue,
            }
            self.touched.push(key);
        }
        self.local.stats.dropped += drops;
        self.local.stats.messages_out += delivered;
        self.local.stats.messages_by_reference += shared;
        let touched = std::mem::take(&mut self.touched);
        for &key in &touched {
            self.review(key);
        }
        self.touched = touched;
        self.touched.clear();
    }
}
