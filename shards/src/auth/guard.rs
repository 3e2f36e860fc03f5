//! What a user's permissions ask of each delivery to its connection: messages on denied
//! subjects kept from its wildcard subscriptions that reach into them, and the reply
//! subjects of requests remembered for `allow_responses`. Only subscriptions that need
//! it carry a [`SubGuard`]; the others are delivered to as before.

use std::rc::Rc;
use std::sync::Arc;

use super::permissions::Permissions;
use super::responses::Replies;

/// One connection's delivery-time checks.
#[derive(Debug)]
pub struct DeliveryGuard {
    permissions: Arc<Permissions>,
    replies: Option<Replies>,
}

impl DeliveryGuard {
    /// The guard a connection with `permissions` needs, if any.
    pub fn new(permissions: &Arc<Permissions>) -> Option<Rc<DeliveryGuard>> {
        let denies = permissions.subscribe.as_ref().is_some_and(|r| r.has_deny());
        let replies = permissions.responses.map(Replies::new);
        (denies || replies.is_some()).then(|| {
            Rc::new(DeliveryGuard {
                permissions: Arc::clone(permissions),
                replies,
            })
        })
    }

    /// The open replies, when the user has `allow_responses`.
    pub fn replies(&self) -> Option<&Replies> {
        self.replies.as_ref()
    }

    /// What a subscription to `pattern` must check on delivery, if anything.
    pub fn for_subscription(self: &Rc<Self>, pattern: &[u8]) -> Option<SubGuard> {
        let filter = self.permissions.filters_deliveries(pattern);
        (filter || self.replies.is_some()).then(|| SubGuard {
            guard: Rc::clone(self),
            filter,
        })
    }
}

/// One subscription's delivery-time checks.
#[derive(Debug)]
pub struct SubGuard {
    guard: Rc<DeliveryGuard>,
    /// Check each subject against the subscribe deny list.
    filter: bool,
}

impl SubGuard {
    /// Whether a message on `subject` may be delivered; remembers its reply subject for
    /// `allow_responses`.
    pub fn admits(&self, subject: &[u8], reply: Option<&[u8]>) -> bool {
        if self.filter
            && self
                .guard
                .permissions
                .subscribe
                .as_ref()
                .is_some_and(|r| r.denies(subject))
        {
            return false;
        }
        if let (Some(replies), Some(reply)) = (&self.guard.replies, reply) {
            replies.record(reply);
        }
        true
    }
}
