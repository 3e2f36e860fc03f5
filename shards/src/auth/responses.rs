//! `allow_responses`: the reply subjects of the requests delivered to a connection, which
//! it may then publish to (at most `max` times each, within `expires`), whatever its
//! publish permissions say. Recorded on delivery, consumed on publish, both on the
//! connection's shard; bounded by [`REPLIES_MAX`].

use std::cell::RefCell;
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::permissions::ResponsePermission;

/// Reply subjects one connection remembers (nats-server's `replyPermLimit`).
pub const REPLIES_MAX: usize = 4096;

/// One connection's open replies.
#[derive(Debug)]
pub struct Replies {
    limits: ResponsePermission,
    open: RefCell<FxHashMap<Box<[u8]>, Open>>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    since: Instant,
    used: u32,
}

impl Replies {
    pub fn new(limits: ResponsePermission) -> Self {
        Replies {
            limits,
            open: RefCell::new(FxHashMap::default()),
        }
    }

    /// A request with reply subject `reply` was delivered to the connection.
    pub fn record(&self, reply: &[u8]) {
        let now = Instant::now();
        let mut open = self.open.borrow_mut();
        if open.len() >= REPLIES_MAX && !open.contains_key(reply) {
            let expires = self.limits.expires;
            if !expires.is_zero() {
                open.retain(|_, o| now.duration_since(o.since) <= expires);
            }
            if open.len() >= REPLIES_MAX {
                // Still full of live replies: forget the oldest half.
                let mut ages: Vec<Instant> = open.values().map(|o| o.since).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                open.retain(|_, o| o.since > cut);
            }
        }
        open.insert(
            reply.into(),
            Open {
                since: now,
                used: 0,
            },
        );
    }

    /// Whether the connection may publish to `subject` as a reply; counts the use.
    pub fn take(&self, subject: &[u8]) -> bool {
        let mut open = self.open.borrow_mut();
        let Some(o) = open.get_mut(subject) else {
            return false;
        };
        o.used += 1;
        let expired = !self.limits.expires.is_zero() && o.since.elapsed() > self.limits.expires;
        let over = self.limits.max > 0 && o.used > self.limits.max;
        if expired || over {
            open.remove(subject);
            return false;
        }
        if self.limits.max > 0 && o.used == self.limits.max {
            open.remove(subject);
        }
        true
    }

    /// Replies remembered now.
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_reply_is_allowed_max_times() {
        let r = Replies::new(ResponsePermission {
            max: 2,
            expires: Duration::ZERO,
        });
        assert!(!r.take(b"_INBOX.1"));
        r.record(b"_INBOX.1");
        assert!(r.take(b"_INBOX.1"));
        assert!(r.take(b"_INBOX.1"));
        assert!(!r.take(b"_INBOX.1"));
        assert!(r.is_empty());
    }

    #[test]
    fn an_expired_reply_is_refused() {
        let r = Replies::new(ResponsePermission {
            max: 0,
            expires: Duration::from_millis(1),
        });
        r.record(b"_INBOX.2");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!r.take(b"_INBOX.2"));
    }

    #[test]
    fn the_table_stays_bounded() {
        let r = Replies::new(ResponsePermission {
            max: 1,
            expires: Duration::ZERO,
        });
        for i in 0..3 * REPLIES_MAX {
            r.record(format!("_INBOX.{i}").as_bytes());
            assert!(r.len() <= REPLIES_MAX);
        }
        // The newest are still there.
        assert!(r.take(format!("_INBOX.{}", 3 * REPLIES_MAX - 1).as_bytes()));
    }
}
