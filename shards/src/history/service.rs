//! The history service of one shard: an internal client that keeps the history of the
//! subjects this shard owns ([`super::Store`]), answers `$SC.HISTORY.<subject>` requests
//! for them, and replays answers to this shard's IRC connections after their `JOIN`.
//!
//! Its subscriptions:
//! - `$SC.HISTORY.>`: requests; only the subject's owner answers (one answer each);
//! - `$SC.PRESENCE.>` (with IRC on): a `join` to a channel whose subject this shard owns
//!   starts keeping that subject, with a subscription of its own (`k.<subject>`);
//! - each `history.subjects` pattern (`p.<i>`), on every shard: each keeps the subjects
//!   it owns;
//! - `$SC.IRC.HISTORY.<shard>.>` (with IRC on): answers to this shard's IRC joins.

use std::rc::Rc;
use std::time::SystemTime;

use crate::front::irc::presence::{Event, Presence, PRESENCE_PREFIX};
use crate::history::{answer, Entry, EntryJson, HistoryConfig, Store, HISTORY_PREFIX};
use crate::service::{owner_of, Internal, Received};
use crate::shard::ShardCtx;
use crate::subject::pattern::pattern_matches;
use crate::wire::irc::{encode_replay, Replayed};

/// Where a shard's IRC joins get their history: `$SC.IRC.HISTORY.<shard>.<cid>.<t|p>.<subject>`
/// (`t`: the client takes `@time=` tags; `p`: the time goes in the text).
pub const REPLAY_PREFIX: &str = "$SC.IRC.HISTORY.";

/// The reply subject an IRC join on `shard` by connection `cid` asks history to answer on.
pub fn replay_subject(shard: usize, cid: u64, server_time: bool, subject: &str) -> String {
    let mode = if server_time { 't' } else { 'p' };
    format!("{REPLAY_PREFIX}{shard}.{cid}.{mode}.{subject}")
}

/// Runs `ctx`'s history service until the shard stops.
pub async fn run(ctx: Rc<ShardCtx>, cfg: HistoryConfig) {
    let client = Internal::start(&ctx);
    let irc = ctx.irc.is_some();
    let mut svc = Service {
        store: Store::new(&cfg, ctx.shards()),
        ctx,
        cfg,
    };
    client
        .subscribe("req", &format!("{HISTORY_PREFIX}>"), None)
        .await;
    if irc {
        client
            .subscribe("presence", &format!("{PRESENCE_PREFIX}>"), None)
            .await;
        let replies = format!("{REPLAY_PREFIX}{}.>", svc.ctx.id);
        client.subscribe("replay", &replies, None).await;
    }
    for (i, pattern) in svc.cfg.subjects.iter().enumerate() {
        client.subscribe(&format!("p.{i}"), pattern, None).await;
    }
    while let Some(msg) = client.next().await {
        match msg.sid.as_str() {
            "req" => svc.on_request(&client, &msg).await,
            "presence" => svc.on_presence(&client, &msg).await,
            "replay" => svc.on_replay(&msg),
            sid if sid.starts_with("k.") || sid.starts_with("p.") => {
                svc.on_message(&client, &msg).await
            }
            _ => {}
        }
    }
    if !svc.ctx.stopping.get() {
        tracing::warn!(
            shard = svc.ctx.id,
            "history service stopped: its internal client was closed (a slow consumer?)"
        );
    }
}

struct Service {
    ctx: Rc<ShardCtx>,
    cfg: HistoryConfig,
    store: Store,
}

impl Service {
    fn owns(&self, subject: &str) -> bool {
        owner_of(subject, self.ctx.shards()) == self.ctx.id
    }

    fn in_patterns(&self, subject: &str) -> bool {
        self.cfg
            .subjects
            .iter()
            .any(|p| pattern_matches(p.as_bytes(), subject.as_bytes()))
    }

    /// Starts keeping `subject`; a subject dropped for room stops being recorded.
    async fn keep(&mut self, client: &Internal, subject: &str, subscribe: bool) {
        let (new, dropped) = self.store.keep(subject);
        if let Some(d) = dropped {
            if !self.in_patterns(&d) {
                client.unsubscribe(&format!("k.{d}")).await;
            }
            tracing::debug!(shard = self.ctx.id, subject = %d, "history dropped a subject");
        }
        if new && subscribe {
            client
                .subscribe(&format!("k.{subject}"), subject, None)
                .await;
        }
    }

    async fn on_presence(&mut self, client: &Internal, msg: &Received) {
        let Some(subject) = msg.subject.strip_prefix(PRESENCE_PREFIX) else {
            return;
        };
        if !self.owns(subject) || self.store.is_kept(subject) {
            return;
        }
        let joined =
            serde_json::from_slice::<Presence>(&msg.payload).is_ok_and(|p| p.event == Event::Join);
        if joined {
            let exact = !self.in_patterns(subject);
            self.keep(client, subject, exact).await;
        }
    }

    async fn on_message(&mut self, client: &Internal, msg: &Received) {
        let subject = msg.subject.as_str();
        if subject.starts_with('$') || !self.owns(subject) {
            return;
        }
        if !self.store.is_kept(subject) {
            // Only patterns bring subjects not kept yet.
            self.keep(client, subject, false).await;
        }
        self.store.record(
            subject,
            Entry {
                at: SystemTime::now(),
                headers: msg.headers.clone(),
                payload: msg.payload.clone(),
            },
        );
    }

    async fn on_request(&mut self, client: &Internal, msg: &Received) {
        let (Some(reply), Some(subject)) = (&msg.reply, msg.subject.strip_prefix(HISTORY_PREFIX))
        else {
            return;
        };
        if !self.owns(subject) {
            return;
        }
        let bytes_max = self.ctx.limits().payload_bytes_max;
        let body = answer(subject, self.store.entries(subject), bytes_max);
        if let Some(mine) = reply
            .strip_prefix(REPLAY_PREFIX)
            .and_then(|r| r.strip_prefix(&format!("{}.", self.ctx.id)))
        {
            // A join on this shard: an internal client gets no echo of its own
            // publishes, so the answer is replayed here.
            return self.replay(mine, &body);
        }
        client.publish(reply, None, None, &body).await;
    }

    /// An answer to one of this shard's IRC joins: its lines go to the joiner.
    fn on_replay(&self, msg: &Received) {
        let mine = format!("{REPLAY_PREFIX}{}.", self.ctx.id);
        if let Some(rest) = msg.subject.strip_prefix(&mine) {
            self.replay(rest, &msg.payload);
        }
    }

    /// Replays `answer` to the joiner `to` names (`<cid>.<t|p>.<subject>`).
    fn replay(&self, to: &str, answer: &[u8]) {
        let mut parts = to.splitn(3, '.');
        let (cid, mode, subject) = (parts.next(), parts.next(), parts.next());
        let (Some(cid), Some(mode), Some(subject)) =
            (cid.and_then(|c| c.parse::<u64>().ok()), mode, subject)
        else {
            return;
        };
        let Ok(entries) = serde_json::from_slice::<Vec<EntryJson>>(answer) else {
            return;
        };
        let conn = self.ctx.conns.borrow().get(&cid).cloned();
        let Some(conn) = conn else {
            return;
        };
        let tag = format!("#{subject}");
        let mut out = Vec::new();
        for e in &entries {
            let payload = e.payload_bytes();
            encode_replay(
                &mut out,
                &Replayed {
                    subject: subject.as_bytes(),
                    source: e.mask.as_deref().map(str::as_bytes),
                    payload: &payload,
                    ts: &e.ts,
                    tagged: mode == "t",
                },
                tag.as_bytes(),
            );
        }
        if !out.is_empty() {
            conn.outbox.push_control(&out);
        }
    }
}
