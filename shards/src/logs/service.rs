//! The log service of one shard: an internal client in the queue group `$sc.local.logs`
//! on `logs.ingest` and `logs.ingest.>`, so each log published there is parsed and
//! routed once, by the shard that received it (the group prefers local members), in the
//! order it came. A log that is not one (bad JSON, not UTF-8, over the size limit)
//! is counted, logged at debug, and answered with `{"error":"…"}` when it came as a
//! request.
//!
//! The logs already delivered are taken together (up to [`BATCH_MAX`]) and their copies
//! published in one turn, so the other shards get one ring batch for them all rather than
//! a wake-up per copy.

use std::rc::Rc;
use std::time::SystemTime;

use crate::front::publish_composed;
use crate::history::rfc3339_millis;
use crate::logs::{parse_line, LogInput, LogShard, Routed, INGEST_SUBJECT};
use crate::service::{Internal, Received};
use crate::shard::ShardCtx;

/// The queue group the shards' log services share.
pub const QUEUE: &str = "$sc.local.logs";
/// The most logs published in one turn.
pub const BATCH_MAX: usize = 256;

/// What one log becomes: its copies (if it was a log) and the answer to its request.
struct Outcome {
    routed: Option<Routed>,
    reply: Option<(String, String)>,
}

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
        let mut batch = Vec::with_capacity(BATCH_MAX);
        while let Some(first) = client.next().await {
            let now = rfc3339_millis(SystemTime::now());
            batch.push(on_log(&logs, &first, &now));
            while batch.len() < BATCH_MAX {
                let Some(msg) = client.try_next() else { break };
                batch.push(on_log(&logs, &msg, &now));
            }
            client
                .turn(|router, conn| {
                    for outcome in batch.drain(..) {
                        if let Some(routed) = &outcome.routed {
                            routed.publish(router, conn);
                        }
                        if let Some((reply, body)) = &outcome.reply {
                            publish_composed(router, conn, reply, None, None, body.as_bytes());
                        }
                    }
                })
                .await;
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

/// Parses and routes `msg`, received at `now`.
fn on_log(logs: &LogShard, msg: &Received, now: &str) -> Outcome {
    let mut record = match parse_line(&msg.payload, now, logs.cfg.record_bytes_max) {
        Ok(r) => r,
        Err(e) => {
            logs.count(LogInput::Nats, |c| c.malformed += 1);
            tracing::debug!(subject = %msg.subject, error = %e, "malformed log");
            let answer = serde_json::json!({ "error": e.to_string() }).to_string();
            return Outcome {
                routed: None,
                reply: msg.reply.clone().map(|r| (r, answer)),
            };
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
    let reply = msg.reply.clone().map(|r| {
        let answer = serde_json::json!({ "routed": routed.subjects }).to_string();
        (r, answer)
    });
    Outcome {
        routed: Some(routed),
        reply,
    }
}
