//! The log inputs' and routing rules' counters (`[logs]`), summed over the shards for
//! `/varz` and per shard for `/metrics`.

use prometheus::proto::{MetricFamily, MetricType};
use serde_json::{json, Value};
use shards::logs::{LogCounts, LogInput, LogSnapshot, RuleCounts};
use shards::metrics::ShardSnapshot;

use crate::monitor::prom::{counter, family, label};

/// Every shard's log counters added up: by input, and by rule (the shards run the same
/// rules; right after a reload a shard may still count under the old ones).
fn total(shards: &[ShardSnapshot]) -> Option<LogSnapshot> {
    let mut each = shards.iter().filter_map(|s| s.logs.as_ref());
    let mut total = each.next()?.clone();
    for logs in each {
        for (sum, row) in total.rules.iter_mut().zip(&logs.rules) {
            sum.counts.matched += row.counts.matched;
            sum.counts.routed += row.counts.routed;
        }
        for (sum, c) in total.inputs.iter_mut().zip(&logs.inputs) {
            sum.add(c);
        }
    }
    Some(total)
}

fn counts_json(c: &LogCounts) -> Value {
    json!({
        "received": c.received,
        "malformed": c.malformed,
        "routed": c.routed,
        "dropped": c.dropped,
        "refused": c.refused,
    })
}

/// `/varz`'s `logs`: null when `[logs]` is off.
pub fn varz(shards: &[ShardSnapshot]) -> Value {
    let Some(t) = total(shards) else {
        return Value::Null;
    };
    let inputs: serde_json::Map<String, Value> = LogInput::ALL
        .iter()
        .zip(&t.inputs)
        .map(|(input, c)| (input.name().to_string(), counts_json(c)))
        .collect();
    let rules: Vec<Value> = t
        .rules
        .iter()
        .map(|r| {
            json!({
                "index": r.index,
                "to": r.to,
                "matched": r.counts.matched,
                "routed": r.counts.routed,
            })
        })
        .collect();
    json!({ "inputs": inputs, "rules": rules })
}

/// The `shardcast_logs_*` and `shardcast_log_rule_*` families (none when `[logs]` is off).
pub fn families(shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let with_logs: Vec<(String, &LogSnapshot)> = shards
        .iter()
        .filter_map(|s| Some((s.shard.to_string(), s.logs.as_ref()?)))
        .collect();
    if with_logs.is_empty() {
        return Vec::new();
    }
    let by_input = |name: &str, help: &str, value: fn(&LogCounts) -> u64| {
        let metrics = with_logs
            .iter()
            .flat_map(|(shard, logs)| {
                LogInput::ALL.iter().zip(&logs.inputs).map(|(input, c)| {
                    counter(
                        vec![label("shard", shard), label("input", input.name())],
                        value(c) as f64,
                    )
                })
            })
            .collect();
        family(name, help, MetricType::COUNTER, metrics)
    };
    let by_rule = |name: &str, help: &str, value: fn(&RuleCounts) -> u64| {
        let metrics = with_logs
            .iter()
            .flat_map(|(shard, logs)| {
                logs.rules.iter().map(|r| {
                    counter(
                        vec![
                            label("shard", shard),
                            label("rule", &r.index.to_string()),
                            label("to", &r.to),
                        ],
                        value(&r.counts) as f64,
                    )
                })
            })
            .collect();
        family(name, help, MetricType::COUNTER, metrics)
    };
    vec![
        by_input(
            "logs_received_total",
            "Logs parsed into records, by input.",
            |c| c.received,
        ),
        by_input(
            "logs_malformed_total",
            "Inputs that were not a log (bad JSON, not UTF-8, too long, a bad frame), by input.",
            |c| c.malformed,
        ),
        by_input(
            "logs_routed_total",
            "Copies of records published to their subjects, by input.",
            |c| c.routed,
        ),
        by_input(
            "logs_dropped_total",
            "Logs lost before they were read: datagrams the kernel dropped (syslog_udp), messages to logs.ingest lost with a log service cut off as a slow consumer (nats).",
            |c| c.dropped,
        ),
        by_input(
            "logs_refused_total",
            "Connections (tcp, syslog_tcp) or datagrams (syslog_udp) from addresses outside logs.allow_from.",
            |c| c.refused,
        ),
        by_rule(
            "log_rule_matched_total",
            "Records a routing rule's conditions matched, since the rules were loaded.",
            |c| c.matched,
        ),
        by_rule(
            "log_rule_routed_total",
            "Records a routing rule sent to its subject, since the rules were loaded.",
            |c| c.routed,
        ),
    ]
}
