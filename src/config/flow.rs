//! The flow-control sections of the configuration file: `[load]`, `[rate_limit]` (and its
//! `[[rate_limit.rule]]`s), `[memory]`, `[slow_consumer]` (and its
//! `[[slow_consumer.rule]]`s) and `[[priority.rule]]`. See `docs/flow-control.md`.

use serde::Deserialize;
use shards::flow::{
    FlowConfig, LoadConfig, MemoryConfig, Policy, Priority, RateLimit, RateRule, Scale, SubjectRule,
};

use super::{ByteSize, Dur};

fn to_usize(b: ByteSize) -> usize {
    usize::try_from(b.0).unwrap_or(usize::MAX)
}

/// How each shard works out its load figure L.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSection {
    pub sample_interval: Dur,
    pub weight_cpu: f64,
    pub weight_memory: f64,
    pub weight_network: f64,
    /// Weight of a new sample in the moving average.
    pub smoothing: f64,
}

impl Default for LoadSection {
    fn default() -> Self {
        let l = LoadConfig::default();
        LoadSection {
            sample_interval: Dur(l.sample_interval),
            weight_cpu: l.weight_cpu,
            weight_memory: l.weight_memory,
            weight_network: l.weight_network,
            smoothing: l.smoothing,
        }
    }
}

/// Every publisher's limits, how the load scales them, and per-subject rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    pub msgs_per_sec: u64,
    pub bytes_per_sec: ByteSize,
    pub burst_msgs: u64,
    pub burst_bytes: ByteSize,
    pub scale_max: f64,
    pub scale_min: f64,
    pub load_low: f64,
    pub load_high: f64,
    pub rule: Vec<RateRuleSection>,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        let s = Scale::default();
        RateLimitSection {
            msgs_per_sec: 0,
            bytes_per_sec: ByteSize(0),
            burst_msgs: 0,
            burst_bytes: ByteSize(0),
            scale_max: s.scale_max,
            scale_min: s.scale_min,
            load_low: s.load_low,
            load_high: s.load_high,
            rule: Vec::new(),
        }
    }
}

/// `[[rate_limit.rule]]`: limits on each publisher's publishes to some subjects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRuleSection {
    pub subjects: String,
    #[serde(default)]
    pub msgs_per_sec: u64,
    #[serde(default)]
    pub bytes_per_sec: ByteSize,
    #[serde(default)]
    pub burst_msgs: u64,
    #[serde(default)]
    pub burst_bytes: ByteSize,
}

/// `budget = "auto"` (a quarter of the machine's memory) or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Budget {
    #[default]
    Auto,
    Bytes(ByteSize),
}

impl<'de> Deserialize<'de> for Budget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::S(s) if s == "auto" => Ok(Budget::Auto),
            Raw::S(s) => super::units::parse_size(&s)
                .map(|n| Budget::Bytes(ByteSize(n)))
                .map_err(|e| serde::de::Error::custom(format!("\"auto\" or a size: {e}"))),
            Raw::N(n) => u64::try_from(n)
                .map(|n| Budget::Bytes(ByteSize(n)))
                .map_err(|_| {
                    serde::de::Error::custom(format!("a size cannot be negative, got {n}"))
                }),
        }
    }
}

/// The memory shards may hold queued, and where pushback starts and ends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemorySection {
    pub budget: Budget,
    pub high: f64,
    pub low: f64,
}

impl Default for MemorySection {
    fn default() -> Self {
        let m = MemoryConfig::default();
        MemorySection {
            budget: Budget::Auto,
            high: m.high,
            low: m.low,
        }
    }
}

/// A slow-consumer policy as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    #[default]
    Disconnect,
    DropNew,
    StallPublishers,
}

impl From<PolicyName> for Policy {
    fn from(p: PolicyName) -> Policy {
        match p {
            PolicyName::Disconnect => Policy::Disconnect,
            PolicyName::DropNew => Policy::DropNew,
            PolicyName::StallPublishers => Policy::StallPublishers,
        }
    }
}

/// `"auto"` or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Watermark {
    #[default]
    Auto,
    Bytes(ByteSize),
}

impl<'de> Deserialize<'de> for Watermark {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Budget::deserialize(d)? {
            Budget::Auto => Ok(Watermark::Auto),
            Budget::Bytes(b) => Ok(Watermark::Bytes(b)),
        }
    }
}

impl Watermark {
    fn bytes(self) -> Option<usize> {
        match self {
            Watermark::Auto => None,
            Watermark::Bytes(b) => Some(to_usize(b)),
        }
    }
}

/// What happens to messages for a connection that does not keep up.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlowConsumerSection {
    pub policy: PolicyName,
    /// Pending bytes above which a connection is over its high watermark ("auto":
    /// `limits.stall_above`), and under which it is back to normal ("auto": half of it).
    pub high_watermark: Watermark,
    pub low_watermark: Watermark,
    /// Longest pause, per episode, of publishers feeding a `stall_publishers` connection.
    pub stall_max: Dur,
    pub rule: Vec<PolicyRuleSection>,
}

impl Default for SlowConsumerSection {
    fn default() -> Self {
        SlowConsumerSection {
            policy: PolicyName::Disconnect,
            high_watermark: Watermark::Auto,
            low_watermark: Watermark::Auto,
            stall_max: Dur(FlowConfig::default().stall_max),
            rule: Vec::new(),
        }
    }
}

/// `[[slow_consumer.rule]]`: the policy for messages to some subjects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleSection {
    pub subjects: String,
    pub policy: PolicyName,
}

/// A priority as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LevelName {
    Normal,
    High,
}

/// `[priority]`: only its rules.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrioritySection {
    pub rule: Vec<PriorityRuleSection>,
}

/// `[[priority.rule]]`: the priority of messages to some subjects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityRuleSection {
    pub subjects: String,
    pub level: LevelName,
}

/// The engine's flow configuration from the five sections.
pub fn flow_config(
    load: &LoadSection,
    rate: &RateLimitSection,
    memory: &MemorySection,
    slow: &SlowConsumerSection,
    priority: &PrioritySection,
) -> FlowConfig {
    let limit = |msgs: u64, bytes: ByteSize, burst_msgs: u64, burst_bytes: ByteSize| RateLimit {
        msgs_per_sec: msgs,
        bytes_per_sec: bytes.0,
        burst_msgs,
        burst_bytes: burst_bytes.0,
    };
    FlowConfig {
        load: LoadConfig {
            sample_interval: load.sample_interval.0,
            weight_cpu: load.weight_cpu,
            weight_memory: load.weight_memory,
            weight_network: load.weight_network,
            smoothing: load.smoothing,
        },
        rate_limit: limit(
            rate.msgs_per_sec,
            rate.bytes_per_sec,
            rate.burst_msgs,
            rate.burst_bytes,
        ),
        rate_rules: rate
            .rule
            .iter()
            .map(|r| RateRule {
                subjects: r.subjects.clone(),
                limit: limit(r.msgs_per_sec, r.bytes_per_sec, r.burst_msgs, r.burst_bytes),
            })
            .collect(),
        scale: Scale {
            scale_max: rate.scale_max,
            scale_min: rate.scale_min,
            load_low: rate.load_low,
            load_high: rate.load_high,
        },
        memory: MemoryConfig {
            budget_bytes: match memory.budget {
                Budget::Auto => shards::flow::memory::default_budget_bytes(),
                Budget::Bytes(b) => to_usize(b),
            },
            high: memory.high,
            low: memory.low,
        },
        policy: slow.policy.into(),
        policy_rules: slow
            .rule
            .iter()
            .map(|r| SubjectRule {
                subjects: r.subjects.clone(),
                value: r.policy.into(),
            })
            .collect(),
        high_watermark: slow.high_watermark.bytes(),
        low_watermark: slow.low_watermark.bytes(),
        stall_max: slow.stall_max.0,
        priority_rules: priority
            .rule
            .iter()
            .map(|r| SubjectRule {
                subjects: r.subjects.clone(),
                value: match r.level {
                    LevelName::Normal => Priority::Normal,
                    LevelName::High => Priority::High,
                },
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use shards::flow::{Policy, Priority};

    #[test]
    fn the_issue_examples_parse() {
        let text = r#"
[rate_limit]
msgs_per_sec = 1000
bytes_per_sec = "1MiB"

[[rate_limit.rule]]
subjects = "logs.>"
msgs_per_sec = 5000

[memory]
budget = "512MiB"

[slow_consumer]
policy = "stall_publishers"
high_watermark = "1MiB"

[[slow_consumer.rule]]
subjects = "logs.debug.>"
policy = "drop_new"

[[priority.rule]]
subjects = "alerts.>"
level = "high"
"#;
        let flow = Config::from_toml(text, "f")
            .expect("valid")
            .server_config()
            .limits
            .flow;
        assert_eq!(flow.rate_limit.msgs_per_sec, 1000);
        assert_eq!(flow.rate_limit.bytes_per_sec, 1 << 20);
        assert_eq!(flow.rate_rules[0].subjects, "logs.>");
        assert_eq!(flow.rate_rules[0].limit.msgs_per_sec, 5000);
        assert_eq!(flow.memory.budget_bytes, 512 << 20);
        assert_eq!(flow.policy, Policy::StallPublishers);
        assert_eq!(flow.high_watermark, Some(1 << 20));
        assert_eq!(flow.low_watermark, None);
        assert_eq!(flow.policy_rules[0].value, Policy::DropNew);
        assert_eq!(flow.priority_rules[0].value, Priority::High);
    }

    #[test]
    fn bad_flow_settings_are_named() {
        for (text, expect) in [
            ("[slow_consumer]\npolicy = \"drop_old\"\n", "drop_old"),
            ("[memory]\nbudget = \"lots\"\n", "lots"),
            ("[memory]\nbudget = \"1KiB\"\n", "memory.budget"),
            ("[memory]\nhigh = 0.5\nlow = 0.7\n", "memory.high/low"),
            (
                "[[priority.rule]]\nsubjects = \"a.>\"\nlevel = \"urgent\"\n",
                "urgent",
            ),
            (
                "[[rate_limit.rule]]\nsubjects = \"a b\"\nmsgs_per_sec = 1\n",
                "rate_limit.rule",
            ),
            ("[load]\nsmoothing = 0.0\n", "load.smoothing"),
        ] {
            let e = Config::from_toml(text, "f").unwrap_err().to_string();
            assert!(e.contains(expect), "{text:?}: {e}");
        }
    }
}
