//! Which rules a subject falls under: its slow-consumer policy, its priority, and the
//! rate rules that limit publishes to it. Rules are subject patterns (`logs.debug.>`);
//! the first matching rule in file order wins (rate rules all apply). Matching goes
//! through a subject index with its own match cache, so a subject costs one cached lookup
//! per message, and nothing at all when there are no rules.

use std::rc::Rc;

use crate::flow::{FlowConfig, SubjectRule};
use crate::limits::MATCH_CACHE_ENTRIES_MAX;
use crate::subject::Sublist;

/// What happens to a message for a connection over its high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Queue it; past `max_pending` (or a stuck write past `write_deadline`) the
    /// connection is closed as a slow consumer (nats-server's behaviour).
    #[default]
    Disconnect,
    /// Drop it (counted) until the connection drains under its low watermark; the
    /// connection stays.
    DropNew,
    /// Pause whoever publishes it, up to `slow_consumer.stall_max` per episode, then
    /// fall back to `Disconnect`.
    StallPublishers,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Disconnect => "disconnect",
            Policy::DropNew => "drop_new",
            Policy::StallPublishers => "stall_publishers",
        }
    }
}

/// How important a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum Priority {
    #[default]
    Normal,
    /// Never dropped by `drop_new`; flushed at once even with `batch.flush_delay_us`.
    High,
}

/// A message's treatment, from its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MsgClass {
    pub policy: Policy,
    pub priority: Priority,
}

/// The rules of a shard, indexed by subject.
pub struct Classifier {
    default_policy: Policy,
    policies: Option<Indexed<Policy>>,
    priorities: Option<Indexed<Priority>>,
    /// Rate rules by index into `FlowConfig::rate_rules`.
    rates: Option<Sublist<u32>>,
}

/// Rules of one kind: their values, and their patterns in a subject index.
struct Indexed<T> {
    values: Vec<T>,
    index: Sublist<u32>,
}

impl<T: Copy> Indexed<T> {
    fn new(rules: &[SubjectRule<T>]) -> Option<Self> {
        if rules.is_empty() {
            return None;
        }
        let mut index = Sublist::new(MATCH_CACHE_ENTRIES_MAX);
        for (i, r) in rules.iter().enumerate() {
            index.insert(r.subjects.as_bytes(), None, i as u32);
        }
        Some(Indexed {
            values: rules.iter().map(|r| r.value).collect(),
            index,
        })
    }

    /// The value of the first rule (in file order) matching `subject`.
    fn first(&mut self, subject: &[u8]) -> Option<T> {
        let m = self.index.matches(subject);
        let first = m.plain.iter().min()?;
        self.values.get(*first as usize).copied()
    }
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("default_policy", &self.default_policy)
            .finish_non_exhaustive()
    }
}

impl Classifier {
    pub fn new(config: &FlowConfig) -> Self {
        let rates = (!config.rate_rules.is_empty()).then(|| {
            let mut index = Sublist::new(MATCH_CACHE_ENTRIES_MAX);
            for (i, r) in config.rate_rules.iter().enumerate() {
                index.insert(r.subjects.as_bytes(), None, i as u32);
            }
            index
        });
        Classifier {
            default_policy: config.policy,
            policies: Indexed::new(&config.policy_rules),
            priorities: Indexed::new(&config.priority_rules),
            rates,
        }
    }

    /// The treatment of a message to `subject`.
    #[inline]
    pub fn classify(&mut self, subject: &[u8]) -> MsgClass {
        let policy = match &mut self.policies {
            None => self.default_policy,
            Some(p) => p.first(subject).unwrap_or(self.default_policy),
        };
        let priority = match &mut self.priorities {
            None => Priority::Normal,
            Some(p) => p.first(subject).unwrap_or_default(),
        };
        MsgClass { policy, priority }
    }

    /// Whether any rate rule exists.
    pub fn has_rate_rules(&self) -> bool {
        self.rates.is_some()
    }

    /// The rate rules (indexes into `FlowConfig::rate_rules`) publishes to `subject`
    /// fall under.
    pub fn rate_rules(&mut self, subject: &[u8]) -> Rc<crate::subject::Match<u32>> {
        match &mut self.rates {
            Some(index) => index.matches(subject),
            None => Rc::new(crate::subject::Match::default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{RateLimit, RateRule};

    fn config() -> FlowConfig {
        FlowConfig {
            policy: Policy::Disconnect,
            policy_rules: vec![
                SubjectRule {
                    subjects: "logs.debug.>".into(),
                    value: Policy::DropNew,
                },
                SubjectRule {
                    subjects: "logs.>".into(),
                    value: Policy::StallPublishers,
                },
            ],
            priority_rules: vec![SubjectRule {
                subjects: "alerts.*".into(),
                value: Priority::High,
            }],
            rate_rules: vec![RateRule {
                subjects: "logs.>".into(),
                limit: RateLimit {
                    msgs_per_sec: 5000,
                    ..RateLimit::default()
                },
            }],
            ..FlowConfig::default()
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let mut c = Classifier::new(&config());
        assert_eq!(c.classify(b"logs.debug.db").policy, Policy::DropNew);
        assert_eq!(c.classify(b"logs.error").policy, Policy::StallPublishers);
        assert_eq!(c.classify(b"orders.new").policy, Policy::Disconnect);
        assert_eq!(c.classify(b"alerts.disk").priority, Priority::High);
        assert_eq!(c.classify(b"alerts.disk.full").priority, Priority::Normal);
        assert_eq!(c.rate_rules(b"logs.x").plain.as_slice(), &[0]);
        assert!(c.rate_rules(b"orders.x").plain.is_empty());
    }

    #[test]
    fn no_rules_cost_nothing_and_give_the_default() {
        let mut c = Classifier::new(&FlowConfig {
            policy: Policy::DropNew,
            ..FlowConfig::default()
        });
        assert_eq!(
            c.classify(b"anything"),
            MsgClass {
                policy: Policy::DropNew,
                priority: Priority::Normal
            }
        );
        assert!(!c.has_rate_rules());
    }
}
