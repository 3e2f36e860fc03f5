//! Interest bookkeeping: a connection's SUB/UNSUB change its subscriptions and this
//! shard's index and queue an interest item for every peer; interest items from peers
//! change `remote`. Every removal is O(tokens of the subject), however many subscribers
//! share it.

use std::rc::Rc;

use crate::close::CloseReason;
use crate::conn::{Conn, Sub};
use crate::limits::SID_BYTES_MAX;
use crate::protocol::ProtoError;
use crate::ring::RingItem;
use crate::route::LINK_QUEUE_PREFIX;
use crate::route::{Outcome, Router, SubsByConn};
use crate::subject::validate::{is_valid_queue_name, is_valid_subject};
use crate::wire::{Refusal, Wire};

impl Router {
    /// SUB: adds a subscription for `conn` unless a rule refuses it.
    pub(super) fn subscribe(
        &mut self,
        conn: &Rc<Conn>,
        sid: &[u8],
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> Outcome {
        if !is_valid_subject(subject) || queue.is_some_and(|q| !is_valid_queue_name(q)) {
            return Outcome::Refused(Refusal::InvalidSubject);
        }
        if queue.is_some_and(|q| q.starts_with(LINK_QUEUE_PREFIX)) && conn.wire() != Wire::Leaf {
            // Reserved for the hub's groups, which the leaf link joins.
            return Outcome::Refused(Refusal::InvalidSubject);
        }
        if sid.len() > SID_BYTES_MAX {
            let reason = CloseReason::Protocol(ProtoError::BadArguments("SUB sid too long"));
            conn.close(reason);
            return Outcome::Closed(reason);
        }
        let subs = self.subs.entry(conn.cid).or_default();
        if subs.contains_key(sid) {
            // Re-using an active sid is a silent no-op, as in nats-server.
            return Outcome::Done;
        }
        // The leaf link holds the hub's interest, bounded by `leaf::REMOTE_INTEREST_MAX`,
        // not by the per-client limit.
        let limited = self.subscriptions_max != 0 && conn.wire() != Wire::Leaf;
        if limited && subs.len() >= self.subscriptions_max {
            return Outcome::Refused(Refusal::TooManySubscriptions);
        }
        let sub = Rc::new(Sub::new(conn, sid, subject, queue));
        subs.insert(sub.sid.clone(), Rc::clone(&sub));
        self.add_local(&sub);
        conn.set_cross_dirty(self.shards > 1);
        Outcome::Done
    }

    /// UNSUB: removes subscription `sid` now, or once it has `max_msgs` deliveries.
    pub(super) fn unsubscribe(&mut self, conn: &Conn, sid: &[u8], max_msgs: Option<u64>) {
        let Some(subs) = self.subs.get_mut(&conn.cid) else {
            return;
        };
        let Some(sub) = subs.get(sid) else {
            return;
        };
        match max_msgs {
            Some(max) if max > sub.delivered() => sub.set_max_msgs(max),
            _ => {
                let sub = subs.remove(sid).expect("looked up just above");
                forget_if_empty(&mut self.subs, conn.cid);
                self.remove_local(&sub);
                conn.set_cross_dirty(self.shards > 1);
            }
        }
    }

    /// The subscriptions of connection `cid` (for no-responders replies and tests).
    pub fn subs_of(&self, cid: u64) -> impl Iterator<Item = &Rc<Sub>> {
        self.subs.get(&cid).into_iter().flat_map(|s| s.values())
    }

    /// Whether a subscription on any shard matches `subject` (as far as this shard
    /// knows: other shards' interest arrives over the rings).
    pub fn has_interest(&mut self, subject: &[u8]) -> bool {
        let local = self.local.matches(subject);
        if !local.plain.is_empty() || !local.queues.is_empty() {
            return true;
        }
        let remote = self.remote.matches(subject);
        !remote.plain.is_empty() || !remote.queues.is_empty()
    }

    /// Subscriptions connection `cid` holds.
    pub fn sub_count(&self, cid: u64) -> usize {
        self.subs.get(&cid).map_or(0, |s| s.len())
    }

    /// Adds a local subscription to the index and tells the other shards.
    fn add_local(&mut self, sub: &Rc<Sub>) {
        debug_assert!(sub.entry().is_none(), "a subscription is indexed once");
        let entry = self
            .local
            .insert(&sub.subject, sub.queue.as_deref(), Rc::clone(sub));
        sub.set_entry(Some(entry));
        self.inserts += 1;
        if let Some(w) = &mut self.watch {
            w.changed(Some(sub.cid), &sub.subject, sub.queue.as_deref(), 1);
        }
        if self.shards > 1 {
            self.broadcast(|| RingItem::InterestAdd {
                subject: sub.subject.clone(),
                queue: sub.queue.clone(),
            });
        }
    }

    /// Takes a local subscription out of the index and tells the other shards. Called
    /// once per subscription, when it leaves its connection's map.
    pub(super) fn remove_local(&mut self, sub: &Rc<Sub>) {
        sub.mark_removed();
        let Some(entry) = sub.entry() else {
            debug_assert!(false, "a subscription leaves the index once");
            return;
        };
        sub.set_entry(None);
        let found = self.local.remove(&sub.subject, sub.queue.as_deref(), entry);
        debug_assert!(found.is_some(), "an indexed subscription is in the index");
        self.removes += 1;
        if let Some(w) = &mut self.watch {
            w.changed(Some(sub.cid), &sub.subject, sub.queue.as_deref(), -1);
        }
        if self.shards > 1 {
            self.broadcast(|| RingItem::InterestRemove {
                subject: sub.subject.clone(),
                queue: sub.queue.clone(),
            });
        }
    }

    /// Removes the subscriptions that reached their delivery limit during the last
    /// operation from their connections and the index.
    pub(super) fn remove_expired(&mut self) {
        while let Some(sub) = self.expired.pop() {
            let Some(subs) = self.subs.get_mut(&sub.cid) else {
                continue; // the connection left meanwhile
            };
            if subs.get(&sub.sid).is_some_and(|s| Rc::ptr_eq(s, &sub)) {
                subs.remove(&sub.sid);
                forget_if_empty(&mut self.subs, sub.cid);
                self.remove_local(&sub);
            }
        }
    }

    /// Applies a peer's subscription appearing.
    pub(super) fn add_remote(&mut self, peer: usize, subject: &[u8], queue: Option<&[u8]>) {
        if let Some(w) = &mut self.watch {
            w.changed(None, subject, queue, 1);
        }
        let peer = peer as u16;
        if let Some(q) = queue {
            let entry = self.remote.insert(subject, Some(q), peer);
            self.remote_queue
                .entry((subject.into(), q.into(), peer))
                .or_default()
                .push(entry);
            return;
        }
        if let Some((count, _)) = self.remote_plain.get_mut(&(subject.into(), peer)) {
            *count += 1;
            return;
        }
        let entry = self.remote.insert(subject, None, peer);
        self.remote_plain.insert((subject.into(), peer), (1, entry));
    }

    /// Applies a peer's subscription going away.
    pub(super) fn remove_remote(&mut self, peer: usize, subject: &[u8], queue: Option<&[u8]>) {
        if let Some(w) = &mut self.watch {
            w.changed(None, subject, queue, -1);
        }
        let peer = peer as u16;
        if let Some(q) = queue {
            let key = (Box::<[u8]>::from(subject), Box::<[u8]>::from(q), peer);
            let Some(entries) = self.remote_queue.get_mut(&key) else {
                debug_assert!(false, "a peer removes only what it added");
                return;
            };
            if let Some(entry) = entries.pop() {
                let found = self.remote.remove(subject, Some(q), entry);
                debug_assert!(found.is_some(), "remote queue entries are indexed");
            }
            if entries.is_empty() {
                self.remote_queue.remove(&key);
            }
            return;
        }
        let key = (Box::<[u8]>::from(subject), peer);
        let Some((count, entry)) = self.remote_plain.get_mut(&key) else {
            debug_assert!(false, "a peer removes only what it added");
            return;
        };
        *count -= 1;
        if *count == 0 {
            let entry = *entry;
            self.remote_plain.remove(&key);
            let found = self.remote.remove(subject, None, entry);
            debug_assert!(found.is_some(), "remote plain entries are indexed");
        }
    }
}

/// Drops a connection's subscription map once it is empty, so idle connections cost none.
fn forget_if_empty(subs: &mut SubsByConn, cid: u64) {
    if subs.get(&cid).is_some_and(|s| s.is_empty()) {
        subs.remove(&cid);
    }
}

impl Router {
    /// Applies options a client sent (NATS CONNECT) and moves its subscriptions to its
    /// new wire if that changed (headers turned on or off).
    pub fn set_options(
        &mut self,
        conn: &Conn,
        flags: crate::conn::ConnFlags,
        wire: crate::wire::Wire,
    ) {
        if conn.set_options(flags, wire) {
            for sub in self.subs_of(conn.cid) {
                sub.set_wire(wire);
            }
        }
    }
}
