//! Interest bookkeeping: local SUB/UNSUB change this shard's index and queue an interest
//! item for every peer; interest items from peers change `remote`.

use std::rc::Rc;

use crate::conn::{Sub, SubRef};
use crate::ring::RingItem;
use crate::route::Router;

impl Router {
    /// Adds a local subscription and tells the other shards.
    pub fn add_local(&mut self, sub: &Rc<Sub>) {
        self.local
            .insert(&sub.subject, sub.queue.as_deref(), SubRef(Rc::clone(sub)));
        if self.shards > 1 {
            self.broadcast(|| RingItem::InterestAdd {
                subject: sub.subject.clone(),
                queue: sub.queue.clone(),
            });
        }
    }

    /// Removes a local subscription and tells the other shards. Callers call this once
    /// per subscription: when they take it out of its connection's `subs` map.
    pub fn remove_local(&mut self, sub: &Rc<Sub>) {
        sub.removed.set(true);
        let found = self
            .local
            .remove(&sub.subject, sub.queue.as_deref(), &SubRef(Rc::clone(sub)));
        debug_assert!(found, "a subscription is removed from the index once");
        if self.shards > 1 {
            self.broadcast(|| RingItem::InterestRemove {
                subject: sub.subject.clone(),
                queue: sub.queue.clone(),
            });
        }
    }

    /// Applies a peer's subscription appearing.
    pub fn add_remote(&mut self, peer: usize, subject: Box<[u8]>, queue: Option<Box<[u8]>>) {
        let peer = peer as u16;
        if let Some(q) = queue {
            self.remote.insert(&subject, Some(&q), peer);
            return;
        }
        let key = (subject, peer);
        if let Some(count) = self.remote_plain_counts.get_mut(&key) {
            *count += 1;
            return;
        }
        self.remote.insert(&key.0, None, peer);
        self.remote_plain_counts.insert(key, 1);
    }

    /// Applies a peer's subscription going away.
    pub fn remove_remote(&mut self, peer: usize, subject: Box<[u8]>, queue: Option<Box<[u8]>>) {
        let peer = peer as u16;
        if let Some(q) = queue {
            self.remote.remove(&subject, Some(&q), &peer);
            return;
        }
        let key = (subject, peer);
        let Some(count) = self.remote_plain_counts.get_mut(&key) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.remote_plain_counts.remove(&key);
            self.remote.remove(&key.0, None, &peer);
        }
    }
}

/// Takes subscriptions that reached their UNSUB limit out of their connection and the
/// index.
pub fn remove_expired(router: &mut Router, expired: &mut Vec<Rc<Sub>>) {
    for sub in expired.drain(..) {
        if sub.conn.subs.borrow_mut().remove(&sub.sid).is_some() {
            router.remove_local(&sub);
        }
    }
}
