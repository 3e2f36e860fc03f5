//! The log service of one shard: an internal client in the queue group `$sc.local.logs`
//! on `logs.ingest` and `logs.ingest.>`, so each log published there is parsed and
//! routed once, by the shard that received it (the group prefers local members), in the
//! order it came. A log that is not one (bad JSON, not UTF-8, over the size limit)
//! is counted, logged at debug, and answered with `{"error":"…"}` when it came as a
//! request.

use std::rc::Rc;
use std::time::SystemTime;

use crate::history::rfc3339_millis;
use crate::logs::{is_ingest, parse_line, LogsConfig, Rules, INGEST_SUBJECT, LEVEL_HEADER};
use crate::service::{Internal, Received};
use crate::shard::ShardCtx;

/// The queue group the shards' log services share.
pub const QUEUE: &str = "$sc.local.logs";

/// What one shard's log service did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogCounts {
    pub received: u64,
    pub malformed: u64,
    /// Copies published (a record routed to three subjects counts three).
    pub routed: u64,
}

/// Runs `ctx`'s log service with `rules` until the shard stops.
pub async fn run(ctx: Rc<ShardCtx>, cfg: LogsConfig, rules: Rules) {
    let client = Internal::start(&ctx);
    client
        .subscribe("ingest", INGEST_SUBJECT, Some(QUEUE))
        .await;
    client
        .subscribe("ingest.app", &format!("{INGEST_SUBJECT}.>"), Some(QUEUE))
        .await;
    let mut counts = LogCounts::default();
    let mut matched = Vec::new();
    while let Some(msg) = client.next().await {
        on_log(&client, &cfg, &rules, &msg, &mut counts, &mut matched).await;
    }
    tracing::debug!(
        shard = ctx.id,
        received = counts.received,
        malformed = counts.malformed,
        routed = counts.routed,
        "log service stopped"
    );
}

async fn on_log(
    client: &Internal,
    cfg: &LogsConfig,
    rules: &Rules,
    msg: &Received,
    counts: &mut LogCounts,
    matched: &mut Vec<bool>,
) {
    counts.received += 1;
    let now = rfc3339_millis(SystemTime::now());
    let mut record = match parse_line(&msg.payload, &now, cfg.record_bytes_max) {
        Ok(r) => r,
        Err(e) => {
            counts.malformed += 1;
            tracing::debug!(subject = %msg.subject, error = %e, "malformed log");
            if let Some(reply) = &msg.reply {
                let body = serde_json::json!({ "error": e.to_string() }).to_string();
                client.publish(reply, None, None, body.as_bytes()).await;
            }
            return;
        }
    };
    if record.app.is_none() {
        record.app = msg
            .subject
            .strip_prefix(INGEST_SUBJECT)
            .and_then(|rest| rest.strip_prefix('.'))
            .map(str::to_string);
    }
    let subjects = rules.route(&record, matched);
    let Ok(body) = serde_json::to_vec(&record) else {
        return;
    };
    let headers = format!("NATS/1.0\r\n{LEVEL_HEADER}: {}\r\n\r\n", record.level);
    for subject in subjects.iter().filter(|s| !is_ingest(s)) {
        client
            .publish(subject, None, Some(headers.as_bytes()), &body)
            .await;
        counts.routed += 1;
    }
    if let Some(reply) = &msg.reply {
        let body = serde_json::json!({ "routed": subjects }).to_string();
        client.publish(reply, None, None, body.as_bytes()).await;
    }
}
