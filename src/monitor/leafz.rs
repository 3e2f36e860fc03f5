//! `/leafz`: the leaf node link, as nats-server shows its leaf connections (`leafnodes`,
//! and per link `name`, `is_spoke`, `account`, `ip`, `port`, `rtt`, the message counters
//! and `subscriptions`), plus ours: `connects` (times the link came up) and
//! `remote_interest` (keys of interest the hub advertises), `interest_dropped` (keys beyond
//! the limit) and `learned_remotes` (the cluster's other leafnode ports, from its INFO);
//! and `irc_nodes`, the IRC nodes the node sync knows.

use std::time::SystemTime;

use hyper::{Response, StatusCode};
use prometheus::proto::{MetricFamily, MetricType};
use serde_json::{json, Value};
use shards::metrics::{ShardSnapshot, SnapshotRequest};
use shards::server::Controller;

use crate::monitor::format::{self, go_duration, rfc3339, Body};
use crate::monitor::prom::{counter, family, gauge, label};
use crate::monitor::routes::{snapshots, Failure};

pub async fn leafz(controller: &Controller) -> Result<Response<Body>, Failure> {
    let request = SnapshotRequest {
        conns: true,
        subs: false,
    };
    let shards = snapshots(controller, request).await?;
    let summary = controller.summary();
    let mut leafs: Vec<Value> = Vec::new();
    for s in &shards {
        let Some(link) = &s.leaf else { continue };
        let row = link
            .cid
            .and_then(|cid| s.conns.iter().find(|c| c.cid == cid));
        let (Some(hub), Some(row)) = (link.hub, row) else {
            continue;
        };
        leafs.push(json!({
            "name": link.name,
            "is_spoke": true,
            "account": "$G",
            "ip": hub.ip().to_string(),
            "port": hub.port(),
            "rtt": row.rtt.map(go_duration).unwrap_or_default(),
            "in_msgs": row.in_msgs,
            "out_msgs": row.out_msgs,
            "in_bytes": row.in_bytes,
            "out_bytes": row.out_bytes,
            "subscriptions": row.subscriptions,
            "connects": link.connects,
            "remote_interest": link.remote_interest,
            "interest_dropped": link.interest_dropped,
            "import_filtered": link.filtered,
            "learned_remotes": link.learned,
        }));
    }
    let configured = shards.iter().any(|s| s.leaf.is_some());
    let irc_nodes: Vec<Value> = shards
        .iter()
        .filter_map(|s| s.leaf.as_ref())
        .flat_map(|link| &link.irc_nodes)
        .map(|n| {
            json!({
                "node": n.node,
                "local": n.local,
                "memberships": n.memberships,
                "nicks": n.nicks,
                "synced": n.synced,
                "heard_ago": n.heard_ago.map(go_duration),
            })
        })
        .collect();
    let body = json!({
        "server_id": summary.server_id,
        "now": rfc3339(SystemTime::now()),
        "leafnodes": leafs.len(),
        "leafs": leafs,
        "configured": configured,
        "irc_nodes": irc_nodes,
    });
    format::json(StatusCode::OK, &body).map_err(|never| match never {})
}

/// The leaf link in `/metrics` (when `[leafnode]` is on): `shardcast_leafnode_connected`,
/// `…_connects_total`, `…_remote_interest`, `…_import_filtered_total`, labelled by name.
pub fn families(shards: &[ShardSnapshot]) -> Vec<MetricFamily> {
    let Some(link) = shards.iter().find_map(|s| s.leaf.as_ref()) else {
        return Vec::new();
    };
    let name = || vec![label("name", &link.name)];
    let up = if link.hub.is_some() { 1.0 } else { 0.0 };
    vec![
        family(
            "leafnode_connected",
            "1 while the leaf link to the hub is up.",
            MetricType::GAUGE,
            vec![gauge(name(), up)],
        ),
        family(
            "leafnode_connects_total",
            "Times the leaf link came up.",
            MetricType::COUNTER,
            vec![counter(name(), link.connects as f64)],
        ),
        family(
            "leafnode_remote_interest",
            "Keys of interest the hub advertises to this node.",
            MetricType::GAUGE,
            vec![gauge(name(), link.remote_interest as f64)],
        ),
        family(
            "leafnode_import_filtered_total",
            "Messages from the hub outside [leafnode] import, dropped.",
            MetricType::COUNTER,
            vec![counter(name(), link.filtered as f64)],
        ),
        family(
            "leafnode_irc_nodes",
            "IRC nodes this node knows, itself included (0 without IRC).",
            MetricType::GAUGE,
            vec![gauge(name(), link.irc_nodes.len() as f64)],
        ),
    ]
}
