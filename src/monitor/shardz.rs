//! `/shardz` (per shard and in total: CPU, connections, subscriptions, flow control (the
//! load figure, the memory budget, pushback), every counter, latency and write-size
//! percentiles over the lifetime and the last interval) and
//! `/channelz` (the busiest subjects, added up over the shards).

use std::collections::HashMap;
use std::time::SystemTime;

use hdrhistogram::Histogram;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};
use shards::limits::MONITOR_INTERVAL;
use shards::metrics::{
    Counter, CounterValues, FlowSnapshot, Hist, ShardSnapshot, SnapshotRequest, SubjectStats,
};
use shards::server::Controller;

use crate::monitor::format::{self, rfc3339, Body};
use crate::monitor::routes::{snapshots, Failure, Query};

/// Percentiles of one histogram.
pub fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({ "count": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0, "mean": 0.0 });
    }
    json!({
        "count": h.len(),
        "p50": h.value_at_quantile(0.5),
        "p90": h.value_at_quantile(0.9),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "max": h.max(),
        "mean": (h.mean() * 10.0).round() / 10.0,
    })
}

/// The fields of one shard (or of all): counters, gauges, histograms.
fn figures(
    counters: &CounterValues,
    connections: u64,
    subscriptions: u64,
    cpu: f64,
    cpu_seconds: f64,
    hists: &[(Hist, Histogram<u64>, Histogram<u64>)],
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("cpu".into(), json!((cpu * 1000.0).round() / 1000.0));
    m.insert(
        "cpu_busy_seconds".into(),
        json!((cpu_seconds * 1000.0).round() / 1000.0),
    );
    m.insert("connections".into(), json!(connections));
    m.insert("subscriptions".into(), json!(subscriptions));
    for &c in Counter::ALL {
        m.insert(c.name().into(), json!(counters.get(c)));
    }
    let closed: Map<String, Value> = counters
        .closed()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    m.insert("closed".into(), Value::Object(closed));
    for (h, life, last) in hists {
        m.insert(
            h.name().into(),
            json!({ "lifetime": summary(life), "interval": summary(last) }),
        );
    }
    m
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A shard's flow control (or all shards': load averaged, the rest summed).
pub fn flow_json(f: &FlowSnapshot) -> Value {
    json!({
        "load": round3(f.load),
        "load_cpu": round3(f.cpu),
        "load_memory": round3(f.memory),
        "load_network": round3(f.network),
        "rate_scale": round3(f.rate_scale),
        "memory_held_bytes": f.memory_held_bytes,
        "memory_budget_bytes": f.memory_share_bytes,
        "pushback": f.pushback,
        "pushback_episodes": f.pushback_episodes,
        "pushback_ms": f.pushback_time.as_millis() as u64,
        "connections_above_high_watermark": f.conns_above_high,
        "connections_dropping": f.conns_dropping,
    })
}

/// The flow control of all shards: the load figures averaged (the process-wide L), the
/// rest added up.
pub fn flow_total(shards: &[ShardSnapshot]) -> FlowSnapshot {
    let mut t = FlowSnapshot::default();
    for s in shards {
        let f = &s.flow;
        t.load += f.load;
        t.cpu += f.cpu;
        t.memory += f.memory;
        t.network += f.network;
        t.rate_scale += f.rate_scale;
        t.memory_held_bytes += f.memory_held_bytes;
        t.memory_share_bytes += f.memory_share_bytes;
        t.pushback |= f.pushback;
        t.pushback_episodes += f.pushback_episodes;
        t.pushback_time += f.pushback_time;
        t.conns_above_high += f.conns_above_high;
        t.conns_dropping += f.conns_dropping;
    }
    let n = shards.len().max(1) as f64;
    t.load /= n;
    t.cpu /= n;
    t.memory /= n;
    t.network /= n;
    t.rate_scale /= n;
    t
}

pub async fn shardz(controller: &Controller, _query: &Query) -> Result<Response<Body>, Failure> {
    let shards = snapshots(controller, SnapshotRequest::default()).await?;
    let summary = controller.summary();
    let rows: Vec<Value> = shards
        .iter()
        .map(|s| {
            let mut m = figures(
                &s.counters,
                s.connections,
                s.sublist.subscriptions,
                s.cpu_busy,
                s.cpu_busy_total.as_secs_f64(),
                &s.hists,
            );
            m.insert("shard".into(), json!(s.shard));
            m.insert("flow".into(), flow_json(&s.flow));
            Value::Object(m)
        })
        .collect();
    let body = json!({
        "server_id": summary.server_id,
        "now": rfc3339(SystemTime::now()),
        "interval_ms": MONITOR_INTERVAL.as_millis() as u64,
        "shards": rows,
        "total": Value::Object(total(&shards)),
    });
    format::json(StatusCode::OK, &body).map_err(|never| match never {})
}

/// All shards added up: counters summed, CPU averaged, histograms merged.
fn total(shards: &[ShardSnapshot]) -> Map<String, Value> {
    let mut counters = CounterValues::default();
    let (mut conns, mut subs, mut cpu, mut cpu_seconds) = (0, 0, 0.0, 0.0);
    let mut hists: Vec<(Hist, Histogram<u64>, Histogram<u64>)> = Vec::new();
    for s in shards {
        counters.add(&s.counters);
        conns += s.connections;
        subs += s.sublist.subscriptions;
        cpu += s.cpu_busy;
        cpu_seconds += s.cpu_busy_total.as_secs_f64();
        for (h, life, last) in &s.hists {
            match hists.iter_mut().find(|(k, _, _)| k == h) {
                Some((_, l, i)) => {
                    // Same bounds on every shard, so adding cannot fail.
                    let _ = l.add(life);
                    let _ = i.add(last);
                }
                None => hists.push((*h, life.clone(), last.clone())),
            }
        }
    }
    let cpu = if shards.is_empty() {
        0.0
    } else {
        cpu / shards.len() as f64
    };
    let mut m = figures(&counters, conns, subs, cpu, cpu_seconds, &hists);
    m.insert("flow".into(), flow_json(&flow_total(shards)));
    m
}

/// The busiest subjects over all shards.
pub fn merged_subjects(shards: &[ShardSnapshot], top: usize) -> Vec<(String, SubjectStats)> {
    let mut merged: HashMap<&str, SubjectStats> = HashMap::new();
    for s in shards {
        for (subject, stats) in &s.subjects {
            merged.entry(subject.as_str()).or_default().add(stats);
        }
    }
    let mut rows: Vec<(String, SubjectStats)> = merged
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    rows.sort_by(|a, b| b.1.activity().cmp(&a.1.activity()).then(a.0.cmp(&b.0)));
    rows.truncate(top);
    rows
}

pub async fn channelz(controller: &Controller, query: &Query) -> Result<Response<Body>, Failure> {
    let summary = controller.summary();
    let top = summary.metrics.top_subjects;
    let limit = query.number("limit", top, top.max(1))?;
    let shards = snapshots(controller, SnapshotRequest::default()).await?;
    let rows: Vec<Value> = merged_subjects(&shards, limit)
        .into_iter()
        .map(|(subject, s)| {
            json!({
                "subject": subject,
                "in_msgs": s.in_msgs,
                "in_bytes": s.in_bytes,
                "out_msgs": s.out_msgs,
                "out_bytes": s.out_bytes,
                "subscribers": s.subscribers,
            })
        })
        .collect();
    let body = json!({
        "server_id": summary.server_id,
        "now": rfc3339(SystemTime::now()),
        "top": top,
        "subjects": rows,
    });
    format::json(StatusCode::OK, &body).map_err(|never| match never {})
}
