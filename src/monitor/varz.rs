//! `/varz`: the server's identity, configuration and totals, with nats-server 2.9's field
//! names and types (durations in nanoseconds where nats-server gives nanoseconds, and as
//! Go duration strings where it gives strings), plus `shards`.

use std::sync::PoisonError;
use std::time::SystemTime;

use hyper::{Response, StatusCode};
use serde_json::json;
use shards::metrics::{Counter, CounterValues, SnapshotRequest};
use shards::server::Controller;

use crate::bench::procfs;
use crate::monitor::format::{self, go_duration, rfc3339, Body};
use crate::monitor::routes::{snapshots, Failure, Query};
use crate::monitor::State;

pub async fn varz(
    state: &State,
    controller: &Controller,
    _query: &Query,
) -> Result<Response<Body>, Failure> {
    let shards = snapshots(controller, SnapshotRequest::default()).await?;
    let summary = controller.summary();
    let mut totals = CounterValues::default();
    let (mut connections, mut subscriptions, mut cpu) = (0, 0, 0.0);
    for s in &shards {
        totals.add(&s.counters);
        connections += s.connections;
        subscriptions += s.sublist.subscriptions;
        cpu += s.cpu_busy;
    }
    let flow = crate::monitor::shardz::flow_total(&shards);
    let flow_json = json!({
        "slow_consumer_policy": summary.limits.flow.policy.name(),
        "memory_budget_bytes": summary.limits.flow.memory.budget_bytes,
        "memory_held_bytes": flow.memory_held_bytes,
        "pushback": flow.pushback,
        "matched_msgs": totals.get(Counter::MsgsMatched),
        "dropped_msgs": {
            "drop_new": totals.get(Counter::DroppedDropNew),
            "slow_consumer": totals.get(Counter::DroppedSlowConsumer),
            "closed": totals.get(Counter::DroppedClosed),
        },
        "throttles": totals.get(Counter::Throttles),
        "throttled_ms": totals.get(Counter::ThrottledUs) / 1000,
        "stalls": totals.get(Counter::Stalls),
        "stalled_ms": totals.get(Counter::StalledUs) / 1000,
    });
    let now = SystemTime::now();
    let uptime = now.duration_since(summary.started).unwrap_or_default();
    let limits = &summary.limits;
    let requests = state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let config_load_time = *state
        .config_load_time
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let body = json!({
        "server_id": summary.server_id,
        "server_name": summary.server_name,
        "version": shards::protocol::info::NATS_COMPAT_VERSION,
        "proto": 1,
        "go": concat!("shardcast/", env!("CARGO_PKG_VERSION")),
        "host": summary.addr.ip().to_string(),
        "port": summary.addr.port(),
        "max_connections": limits.connections_max,
        "ping_interval": limits.ping_interval.as_nanos() as u64,
        "ping_max": limits.pings_out_max,
        "http_host": state.addr.ip().to_string(),
        "http_port": state.addr.port(),
        "max_control_line": limits.control_line_bytes_max,
        "max_payload": limits.payload_bytes_max,
        "max_pending": limits.pending_bytes_max,
        "write_deadline": limits.write_deadline.as_nanos() as u64,
        "start": rfc3339(summary.started),
        "now": rfc3339(now),
        "uptime": go_duration(uptime),
        "mem": procfs::rss_bytes(std::process::id()).unwrap_or(0),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu": (cpu * 1000.0).round() / 10.0,
        "connections": connections,
        "total_connections": totals.get(Counter::ConnsAccepted),
        "routes": 0,
        "remotes": 0,
        "leafnodes": 0,
        "in_msgs": totals.get(Counter::MsgsIn),
        "out_msgs": totals.get(Counter::MsgsOut),
        "in_bytes": totals.get(Counter::BytesIn),
        "out_bytes": totals.get(Counter::BytesOut),
        "slow_consumers": totals.get(Counter::SlowConsumers),
        "subscriptions": subscriptions,
        "http_req_stats": requests,
        "config_load_time": rfc3339(config_load_time),
        "shards": summary.shards,
        "load": (flow.load * 1000.0).round() / 1000.0,
        "flow": flow_json,
        "logs": crate::monitor::logs::varz(&shards),
    });
    format::json(StatusCode::OK, &body).map_err(|never| match never {})
}
