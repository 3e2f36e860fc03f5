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

pub use bucket::Bucket;
pub use load::{LoadConfig, LoadMeter, Pressure, Scale, SharedLoad};
pub use memory::{MemoryBudget, MemoryConfig};
pub use rules::{Classifier, MsgClass, Policy, Priority};
pub use throttle::Throttle;

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
