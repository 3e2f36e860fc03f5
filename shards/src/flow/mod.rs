//! Flow control: what keeps one greedy publisher or one slow reader from degrading
//! everyone else, and memory within what the operator allows.
//!
//! - [`load`]: each shard's load figure L from CPU, memory and network pressure.
//! - [`bucket`]: token buckets on publishers, refilled at a rate scaled by f(L); a
//!   publisher out of tokens is not read until they refill, so TCP pushes back.
//! - [`memory`]: the shard's share of `memory.budget`; above its high mark publishers are
//!   not read until it falls under the low mark.
//! - [`rules`]: per-subject rules choosing a message's slow-consumer policy, its priority
//!   and its rate limits, matched through a cached subject index.
//!
//! The policies themselves act where bytes are queued (`writer::Outbox`) and where
//! publishers pause (`writer::stall`).

pub mod bucket;
pub mod load;
pub mod memory;
pub mod rules;
pub mod throttle;

use std::time::Duration;

use crate::limits::{LimitsError, FLOW_RULES_MAX};

pub use bucket::Bucket;
pub use load::{LoadConfig, LoadMeter, Pressure, Scale, SharedLoad};
pub use memory::{Accounted, MemoryBudget, MemoryConfig};
pub use rules::{Classifier, MsgClass, Policy, Priority};
pub use throttle::{default_burst, Throttle};

/// A publisher's limits: messages and bytes per second with bursts (0 = unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub msgs_per_sec: u64,
    pub bytes_per_sec: u64,
    pub burst_msgs: u64,
    pub burst_bytes: u64,
}

impl RateLimit {
    pub fn is_unlimited(&self) -> bool {
        self.msgs_per_sec == 0 && self.bytes_per_sec == 0
    }
}

/// A rate limit on publishes to subjects matching `subjects`, per publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule {
    pub subjects: String,
    pub limit: RateLimit,
}

/// A per-subject choice: messages to subjects matching `subjects` get `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRule<T> {
    pub subjects: String,
    pub value: T,
}

/// A connection's watermarks in pending bytes: above `high` it is congested (publishers
/// pause for it, `drop_new` messages for it are dropped), and it is back to normal under
/// `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub high: usize,
    pub low: usize,
}

impl Watermarks {
    /// From the configuration: `high` defaults to `limits.stall_above`, `low` to half of
    /// `high`; `high` is at most 75% of `max_pending`, so a congested connection always has
    /// room left, and `low` at most `high`.
    pub fn new(config: &FlowConfig, stall_above_bytes: usize, pending_bytes_max: usize) -> Self {
        let high = config
            .high_watermark
            .unwrap_or(stall_above_bytes)
            .min(pending_bytes_max / 4 * 3);
        let low = config.low_watermark.unwrap_or(high / 2).min(high);
        Watermarks { high, low }
    }
}

/// Everything flow control is told by the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConfig {
    pub load: LoadConfig,
    /// Every publisher's limit (unlimited by default).
    pub rate_limit: RateLimit,
    /// Extra limits on publishes to some subjects.
    pub rate_rules: Vec<RateRule>,
    /// How the load scales the limits' refill rates.
    pub scale: Scale,
    pub memory: MemoryConfig,
    /// What happens to a message for a connection over its watermarks.
    pub policy: Policy,
    pub policy_rules: Vec<SubjectRule<Policy>>,
    /// Pending bytes above which a connection is over its high watermark (`None`: the
    /// limits' `stall_above`), and under which it is back to normal (`None`: half of it).
    pub high_watermark: Option<usize>,
    pub low_watermark: Option<usize>,
    /// How long publishers may pause, in all, for one connection under the
    /// `stall_publishers` policy before it falls back to `disconnect`.
    pub stall_max: Duration,
    pub priority_rules: Vec<SubjectRule<Priority>>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            load: LoadConfig::default(),
            rate_limit: RateLimit::default(),
            rate_rules: Vec::new(),
            scale: Scale::default(),
            memory: MemoryConfig::default(),
            policy: Policy::Disconnect,
            policy_rules: Vec::new(),
            high_watermark: None,
            low_watermark: None,
            stall_max: Duration::from_secs(2),
            priority_rules: Vec::new(),
        }
    }
}

impl FlowConfig {
    /// Checks every flow-control setting, so a bad one fails at start-up (or a reload is
    /// refused) with a message naming it.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let bad = |name: &str, why: String| {
            Err(LimitsError::Invalid {
                name: name.to_string(),
                why,
            })
        };
        let l = &self.load;
        let interval = l.sample_interval;
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(10) {
            return bad(
                "load.sample_interval",
                format!("must be between 10ms and 10s (got {interval:?})"),
            );
        }
        let weights = [l.weight_cpu, l.weight_memory, l.weight_network];
        if weights.iter().any(|w| !(0.0..=1000.0).contains(w)) || weights.iter().sum::<f64>() <= 0.0
        {
            return bad(
                "load.weights",
                format!("must be non-negative with a positive sum (got {weights:?})"),
            );
        }
        if !(l.smoothing > 0.0 && l.smoothing <= 1.0) {
            return bad(
                "load.smoothing",
                format!("must be in (0, 1] (got {})", l.smoothing),
            );
        }
        let c = &self.scale;
        if !(0.0 < c.scale_min && c.scale_min <= c.scale_max && c.scale_max <= 1.0) {
            return bad(
                "rate_limit.scale_min/scale_max",
                format!(
                    "need 0 < scale_min <= scale_max <= 1 (got {} and {})",
                    c.scale_min, c.scale_max
                ),
            );
        }
        if !(0.0 <= c.load_low && c.load_low < c.load_high && c.load_high <= 1.0) {
            return bad(
                "rate_limit.load_low/load_high",
                format!(
                    "need 0 <= load_low < load_high <= 1 (got {} and {})",
                    c.load_low, c.load_high
                ),
            );
        }
        let m = &self.memory;
        if m.budget_bytes < MEMORY_BUDGET_MIN {
            return bad(
                "memory.budget",
                format!(
                    "must be at least {} bytes (got {})",
                    MEMORY_BUDGET_MIN, m.budget_bytes
                ),
            );
        }
        if !(0.0 < m.low && m.low < m.high && m.high <= 1.0) {
            return bad(
                "memory.high/low",
                format!("need 0 < low < high <= 1 (got {} and {})", m.low, m.high),
            );
        }
        if self.stall_max > Duration::from_secs(60) {
            return bad(
                "slow_consumer.stall_max",
                format!("must be at most 60s (got {:?})", self.stall_max),
            );
        }
        let patterns = [
            (
                "rate_limit.rule",
                self.rate_rules
                    .iter()
                    .map(|r| &r.subjects)
                    .collect::<Vec<_>>(),
            ),
            (
                "slow_consumer.rule",
                self.policy_rules.iter().map(|r| &r.subjects).collect(),
            ),
            (
                "priority.rule",
                self.priority_rules.iter().map(|r| &r.subjects).collect(),
            ),
        ];
        for (name, subjects) in patterns {
            if subjects.len() > FLOW_RULES_MAX {
                return bad(
                    name,
                    format!("at most {FLOW_RULES_MAX} rules (got {})", subjects.len()),
                );
            }
            if let Some(s) = subjects
                .iter()
                .find(|s| !crate::subject::validate::is_valid_subject(s.as_bytes()))
            {
                return bad(
                    name,
                    format!("{s:?} is not a subject pattern (tokens separated by '.', '*' and a final '>' as wildcards)"),
                );
            }
        }
        if let Some(r) = self.rate_rules.iter().find(|r| r.limit.is_unlimited()) {
            return bad(
                "rate_limit.rule",
                format!(
                    "the rule for {:?} sets neither msgs_per_sec nor bytes_per_sec",
                    r.subjects
                ),
            );
        }
        Ok(())
    }
}

/// The smallest `memory.budget` accepted: below it a shard could not hold one message
/// of the default `max_payload` for a handful of connections.
pub const MEMORY_BUDGET_MIN: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_default_from_the_limits_and_leave_room_below_max_pending() {
        let c = FlowConfig::default();
        assert_eq!(
            Watermarks::new(&c, 64 << 10, 64 << 20),
            Watermarks {
                high: 64 << 10,
                low: 32 << 10
            }
        );
        assert_eq!(Watermarks::new(&c, 1 << 30, 4000).high, 3000);
        let c = FlowConfig {
            high_watermark: Some(1000),
            low_watermark: Some(5000),
            ..FlowConfig::default()
        };
        assert_eq!(
            Watermarks::new(&c, 64 << 10, 64 << 20),
            Watermarks {
                high: 1000,
                low: 1000
            },
            "low is at most high"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(FlowConfig::default().validate(), Ok(()));
        let c = FlowConfig {
            policy_rules: vec![SubjectRule {
                subjects: "logs..x".into(),
                value: Policy::DropNew,
            }],
            ..FlowConfig::default()
        };
        let e = c.validate().expect_err("an empty token").to_string();
        assert!(e.starts_with("slow_consumer.rule: \"logs..x\""), "{e}");
        let c = FlowConfig {
            scale: Scale {
                load_low: 0.9,
                load_high: 0.5,
                ..Scale::default()
            },
            ..FlowConfig::default()
        };
        assert!(c.validate().is_err());
        let c = FlowConfig {
            rate_rules: vec![RateRule {
                subjects: "a.>".into(),
                limit: RateLimit::default(),
            }],
            ..FlowConfig::default()
        };
        assert!(c
            .validate()
            .expect_err("no rate")
            .to_string()
            .contains("neither"));
    }
}
