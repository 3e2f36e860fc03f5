//! `/connz` (connections, paged and sorted) and `/subsz` (the subscription index, and its
//! subscriptions when asked), with nats-server 2.9's field names.

use std::cmp::Reverse;
use std::time::SystemTime;

use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use shards::metrics::{ConnRow, SnapshotRequest, SublistStats};
use shards::server::Controller;
use shards::writer::DropReason;

use crate::monitor::format::{self, go_duration, rfc3339, Body};
use crate::monitor::routes::{snapshots, Failure, Query};
use crate::monitor::{CONNZ_LIMIT_MAX, SUBSZ_LIMIT_MAX};

/// The `sort` values `/connz` takes (nats-server's names).
const SORTS: [&str; 12] = [
    "cid",
    "start",
    "subs",
    "pending",
    "msgs_to",
    "msgs_from",
    "bytes_to",
    "bytes_from",
    "last",
    "idle",
    "uptime",
    "rtt",
];

pub async fn connz(controller: &Controller, query: &Query) -> Result<Response<Body>, Failure> {
    let offset = query.number("offset", 0, usize::MAX)?;
    let limit = query.number("limit", CONNZ_LIMIT_MAX, CONNZ_LIMIT_MAX)?;
    let sort = query.choice("sort", "cid", &SORTS)?;
    let subs = query.flag("subs")?;
    let auth = query.flag("auth")?;
    let request = SnapshotRequest { conns: true, subs };
    let shards = snapshots(controller, request).await?;
    let summary = controller.summary();
    let mut conns: Vec<ConnRow> = shards.into_iter().flat_map(|s| s.conns).collect();
    let now = SystemTime::now();
    sort_conns(&mut conns, sort, now);
    let total = conns.len();
    let page: Vec<Value> = conns
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| conn_json(c, subs, auth, now))
        .collect();
    let body = json!({
        "server_id": summary.server_id,
        "now": rfc3339(now),
        "num_connections": page.len(),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": page,
    });
    format::json(StatusCode::OK, &body).map_err(|never| match never {})
}

fn sort_conns(conns: &mut [ConnRow], sort: &str, now: SystemTime) {
    let idle = |c: &ConnRow| now.duration_since(c.last_activity).unwrap_or_default();
    match sort {
        "start" => conns.sort_by_key(|c| c.start),
        "subs" => conns.sort_by_key(|c| Reverse(c.subscriptions)),
        "pending" => conns.sort_by_key(|c| Reverse(c.pending_bytes)),
        "msgs_to" => conns.sort_by_key(|c| Reverse(c.out_msgs)),
        "msgs_from" => conns.sort_by_key(|c| Reverse(c.in_msgs)),
        "bytes_to" => conns.sort_by_key(|c| Reverse(c.out_bytes)),
        "bytes_from" => conns.sort_by_key(|c| Reverse(c.in_bytes)),
        "last" => conns.sort_by_key(|c| Reverse(c.last_activity)),
        "idle" => conns.sort_by_key(|c| Reverse(idle(c))),
        "uptime" => conns.sort_by_key(|c| c.start),
        "rtt" => conns.sort_by_key(|c| Reverse(c.rtt)),
        _ => conns.sort_by_key(|c| c.cid),
    }
}

fn conn_json(c: &ConnRow, subs: bool, auth: bool, now: SystemTime) -> Value {
    let uptime = now.duration_since(c.start).unwrap_or_default();
    let idle = now.duration_since(c.last_activity).unwrap_or_default();
    let mut v = json!({
        "cid": c.cid,
        "kind": "Client",
        "type": "nats",
        "ip": c.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
        "port": c.peer.map_or(0, |p| p.port()),
        "start": rfc3339(c.start),
        "last_activity": rfc3339(c.last_activity),
        "rtt": c.rtt.map(go_duration).unwrap_or_default(),
        "uptime": go_duration(uptime),
        "idle": go_duration(idle),
        "pending_bytes": c.pending_bytes,
        "in_msgs": c.in_msgs,
        "out_msgs": c.out_msgs,
        "in_bytes": c.in_bytes,
        "out_bytes": c.out_bytes,
        "subscriptions": c.subscriptions,
        "shard": c.shard,
        "matched_msgs": c.tally.matched,
        "dropped_msgs": {
            "drop_new": c.tally.dropped(DropReason::DropNew),
            "slow_consumer": c.tally.dropped(DropReason::SlowConsumer),
            "closed": c.tally.dropped(DropReason::Closed),
        },
        "dropping": c.dropping,
        "throttles": c.throttles,
        "throttled_ms": c.throttled.as_millis() as u64,
    });
    if let Some(obj) = v.as_object_mut() {
        for (key, value) in [
            ("name", &c.name),
            ("lang", &c.lang),
            ("version", &c.version),
        ] {
            if let Some(value) = value {
                obj.insert(key.into(), json!(value));
            }
        }
        if subs {
            obj.insert("subscriptions_list".into(), json!(c.subjects));
        }
        if let (true, Some(user)) = (auth, &c.user) {
            obj.insert("authorized_user".into(), json!(user));
        }
        if let Some((version, suite)) = &c.tls {
            obj.insert("tls_version".into(), json!(version));
            obj.insert("tls_cipher_suite".into(), json!(suite));
        }
    }
    v
}

pub async fn subsz(controller: &Controller, query: &Query) -> Result<Response<Body>, Failure> {
    let subs = query.flag("subs")?;
    let offset = query.number("offset", 0, usize::MAX)?;
    let limit = query.number("limit", SUBSZ_LIMIT_MAX, SUBSZ_LIMIT_MAX)?;
    let request = SnapshotRequest { conns: false, subs };
    let shards = snapshots(controller, request).await?;
    let summary = controller.summary();
    let mut stats = SublistStats::default();
    for s in &shards {
        stats.add(&s.sublist);
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut body = json!({
        "server_id": summary.server_id,
        "now": rfc3339(SystemTime::now()),
        "num_subscriptions": stats.subscriptions,
        "num_cache": stats.cache_entries,
        "num_inserts": stats.inserts,
        "num_removes": stats.removes,
        "num_matches": stats.matches,
        "cache_hit_rate": ratio(stats.cache_hits, stats.matches),
        "max_fanout": stats.max_fanout,
        "avg_fanout": ratio(stats.fanout_total, stats.matches),
    });
    if subs {
        let mut rows: Vec<_> = shards.into_iter().flat_map(|s| s.subs).collect();
        rows.sort_by(|a, b| (a.cid, &a.sid).cmp(&(b.cid, &b.sid)));
        let total = rows.len();
        let list: Vec<Value> = rows
            .iter()
            .skip(offset)
            .take(limit)
            .map(|s| {
                let mut v = json!({
                    "account": "$G",
                    "subject": s.subject,
                    "sid": s.sid,
                    "msgs": s.msgs,
                    "cid": s.cid,
                });
                if let Some(obj) = v.as_object_mut() {
                    if let Some(q) = &s.queue {
                        obj.insert("qgroup".into(), json!(q));
                    }
                    if s.max > 0 {
                        obj.insert("max".into(), json!(s.max));
                    }
                }
                v
            })
            .collect();
        if let Some(obj) = body.as_object_mut() {
            obj.insert("total".into(), json!(total));
            obj.insert("offset".into(), json!(offset));
            obj.insert("limit".into(), json!(limit));
            obj.insert("subscriptions_list".into(), json!(list));
        }
    }
    format::json(StatusCode::OK, &body).map_err(|never| match never {})
}
