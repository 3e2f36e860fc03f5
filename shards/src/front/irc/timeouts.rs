//! The IRC timeouts: a connection that has not registered within
//! `irc.registration_timeout`, or (when `irc.idle_timeout` is set) a registered one that
//! has sent nothing but keepalive and queries for that long, is closed with
//! `ERROR :Closing Link: … (Registration timeout)` / `(Idle timeout)`, and the others see
//! it quit with that reason. A dead peer is the keepalive's (`Ping timeout`).
//!
//! Sessions note what they do in their shard's [`Activities`]; one task per shard looks
//! at them every [`CHECK_INTERVAL`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::close::CloseReason;
use crate::front::irc::IrcShard;
use crate::shard::ShardCtx;

/// How often the timeouts are checked (so they are kept to within this).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a connection last did that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// When it connected, registered, or last sent a line that is not keepalive or a query.
    pub since: Instant,
    pub registered: bool,
}

/// The activity of every IRC connection of one shard, by connection id.
#[derive(Debug, Default)]
pub struct Activities(RefCell<FxHashMap<u64, Activity>>);

impl Activities {
    pub fn connected(&self, cid: u64, now: Instant) {
        let a = Activity {
            since: now,
            registered: false,
        };
        self.0.borrow_mut().insert(cid, a);
    }

    pub fn registered(&self, cid: u64, now: Instant) {
        self.0.borrow_mut().insert(
            cid,
            Activity {
                since: now,
                registered: true,
            },
        );
    }

    /// The connection sent a line that counts as activity.
    pub fn spoke(&self, cid: u64, now: Instant) {
        if let Some(a) = self.0.borrow_mut().get_mut(&cid) {
            a.since = now;
        }
    }

    pub fn closed(&self, cid: u64) {
        self.0.borrow_mut().remove(&cid);
    }

    /// The connections whose timeout has passed at `now`, with the reason.
    fn due(&self, now: Instant, registration: Duration, idle: Duration) -> Vec<(u64, CloseReason)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|(&cid, a)| due(a, now, registration, idle).map(|r| (cid, r)))
            .collect()
    }
}

/// Why `a` is closed at `now`, if it is; an `idle` of zero is no idle timeout.
pub fn due(
    a: &Activity,
    now: Instant,
    registration: Duration,
    idle: Duration,
) -> Option<CloseReason> {
    let quiet = now.saturating_duration_since(a.since);
    if !a.registered && quiet > registration {
        Some(CloseReason::RegistrationTimeout)
    } else if a.registered && !idle.is_zero() && quiet > idle {
        Some(CloseReason::IdleTimeout)
    } else {
        None
    }
}

/// Closes `ctx`'s IRC connections whose timeout passed, until the shard stops.
pub async fn run(ctx: Rc<ShardCtx>, irc: Rc<IrcShard>) {
    while !ctx.stopping.get() {
        glommio::timer::sleep(CHECK_INTERVAL).await;
        let (registration, idle) = (irc.settings.registration_timeout, irc.settings.idle_timeout);
        for (cid, reason) in irc.activity.due(Instant::now(), registration, idle) {
            irc.activity.closed(cid);
            let conn = ctx.conns.borrow().get(&cid).cloned();
            if let Some(conn) = conn {
                tracing::debug!(shard = ctx.id, cid, reason = reason.name(), "irc timeout");
                conn.close_with(reason);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn registration_then_idle() {
        let t0 = Instant::now();
        let fresh = Activity {
            since: t0,
            registered: false,
        };
        assert_eq!(due(&fresh, t0 + 59 * S, 60 * S, Duration::ZERO), None);
        assert_eq!(
            due(&fresh, t0 + 61 * S, 60 * S, Duration::ZERO),
            Some(CloseReason::RegistrationTimeout)
        );
        let user = Activity {
            registered: true,
            ..fresh
        };
        // No idle timeout: never.
        assert_eq!(due(&user, t0 + 100_000 * S, 60 * S, Duration::ZERO), None);
        assert_eq!(due(&user, t0 + 9 * S, 60 * S, 10 * S), None);
        assert_eq!(
            due(&user, t0 + 11 * S, 60 * S, 10 * S),
            Some(CloseReason::IdleTimeout)
        );
    }

    #[test]
    fn speaking_resets_the_clock() {
        let t0 = Instant::now();
        let a = Activities::default();
        a.connected(1, t0);
        a.registered(1, t0);
        a.connected(2, t0);
        a.spoke(1, t0 + 8 * S);
        let due = a.due(t0 + 12 * S, 10 * S, 10 * S);
        assert_eq!(due, [(2, CloseReason::RegistrationTimeout)]);
        a.closed(2);
        assert!(a.due(t0 + 12 * S, 10 * S, 10 * S).is_empty());
    }
}
