//! The log service of one shard: an internal client in the queue group `$sc.local.logs`
//! on `logs.ingest` and `logs.ingest.>`, so each log published there is parsed and
//! routed once, by the shard that received it (the group prefers local members), in the
//! order it came. A log that is not one (bad JSON, not UTF-8, over the size limit)
//! is counted, logged at debug, and answered with `{"error":"…"}` when it came as a
//! request.

use std::rc::Rc;
use std::time::SystemTime;

use crate::history::rfc3339_millis;
use crate::logs::{parse_line, LogInput, LogShard, INGEST_SUBJECT};
use crate::service::{Internal, Received};
use crate::shard::ShardCtx;

/// The queue group the shards' log services share.
pub const QUEUE: &str = "$sc.local.logs";

/// Runs `ctx`'s log service until the shard stops. Should its client be closed while the
/// shard runs (a slow consumer that stayed stuck past `slow_consumer.stall_max`), it
/// says so and starts again with a new one.
pub async fn run(ctx: Rc<ShardCtx>, logs: Rc<LogShard>) {
    loop {
        let client = Internal::start(&ctx);
        logs.set_service(Rc::clone(&client.conn));
        client
            .subscribe("ingest", INGEST_SUBJECT, Some(QUEUE))
            .await;
        client
            .subscribe("ingest.app", &format!("{INGEST_SUBJECT}.>"), Some(QUEUE))
            .await;
        while let Some(msg) = client.next().await {
            on_log(&client, &logs, &msg).await;
        }
        if ctx.stopping.get() {
            break;
        }
        tracing::warn!(
            shard = ctx.id,
            dropped = client.conn.outbox.tally().dropped_total(),
            "the log service's client was closed (it fell behind); starting a new one"
        );
    }
    let counts = logs.snapshot().inputs[LogInput::Nats as usize];
    tracing::debug!(
        shard = ctx.id,
        received = counts.received,
        malformed = counts.malformed,
        routed = counts.routed,
        dropped = counts.dropped,
        "log service stopped"
    );
}

async fn on_log(client: &Internal, logs: &LogShard, msg: &Received) {
    let now = rfc3339_millis(SystemTime::now());
    let mut record = match parse_line(&msg.payload, &now, logs.cfg.record_bytes_max) {
        Ok(r) => r,
        Err(e) => {
            logs.count(LogInput::Nats, |c| c.malformed += 1);
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
    let routed = logs.route(LogInput::Nats, &record);
    for subject in &routed.subjects {
        client
            .publish(subject, None, Some(routed.headers.as_bytes()), &routed.body)
            .await;
    }
    if let Some(reply) = &msg.reply {
        let body = serde_json::json!({ "routed": routed.subjects }).to_string();
        client.publish(reply, None, None, body.as_bytes()).await;
    }
}
