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
//! - `$SC.IRC.HISTORY.<node>.<shard>.>` (with IRC on): answers to this shard's IRC joins;
//!   a request whose replay names another node (a join there: the request crossed the
//!   link like any) is left to that node.

use std::rc::Rc;
use std::time::SystemTime;

use crate::front::irc::presence::{Event, Presence, PRESENCE_PREFIX};
use crate::history::{answer, Entry, EntryJson, HistoryConfig, Store, HISTORY_PREFIX};
use crate::service::{owner_of, Internal, Received};
use crate::shard::ShardCtx;
use crate::subject::pattern::pattern_matches;
use crate::wire::irc::{encode_replay, Replayed};

/// Where IRC joins get their history:
/// `$SC.IRC.HISTORY.<node>.<shard>.<cid>.<t|p>.<subject>` (`node`: the server id, so
/// that the other nodes of a cluster, which see the request too, leave it to this one;
/// `t`: the client takes `@time=` tags; `p`: the time goes in the text).
pub const REPLAY_PREFIX: &str = "$SC.IRC.HISTORY.";

/// The reply subject an IRC join on `node`'s `shard` by connection `cid` asks history to
/// answer on.
pub fn replay_subject(
    node: &str,
    shard: usize,
    cid: u64,
    server_time: bool,
    subject: &str,
) -> String {
    let mode = if server_time { 't' } else { 'p' };
    format!("{REPLAY_PREFIX}{node}.{shard}.{cid}.{mode}.{subject}")
}

/// Who a history request's `reply` is for, as seen by `node`'s `shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyTo<'a> {
    /// An ordinary reply subject (a NATS client's inbox): answer there.
    Inbox,
    /// An IRC join on this shard (`<cid>.<t|p>.<subject>`): replay it here.
    ThisShard(&'a str),
    /// An IRC join on another shard of this node: answer on the reply subject.
    ThisNode,
    /// An IRC join on another node, which answers it itself: nothing to do.
    OtherNode,
}

fn reply_to<'a>(reply: &'a str, node: &str, shard: usize) -> ReplyTo<'a> {
    let Some(rest) = reply.strip_prefix(REPLAY_PREFIX) else {
        return ReplyTo::Inbox;
    };
    let Some(rest) = rest.strip_prefix(node).and_then(|r| r.strip_prefix('.')) else {
        return ReplyTo::OtherNode;
    };
    match rest.split_once('.') {
        Some((s, mine)) if s.parse::<usize>().ok() == Some(shard) => ReplyTo::ThisShard(mine),
        _ => ReplyTo::ThisNode,
    }
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
        let node = &svc.ctx.global.server_id;
        let replies = format!("{REPLAY_PREFIX}{node}.{}.>", svc.ctx.id);
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
        let to = reply_to(reply, &self.ctx.global.server_id, self.ctx.id);
        if to == ReplyTo::OtherNode {
            return;
        }
        let bytes_max = self.ctx.limits().payload_bytes_max;
        let body = answer(subject, self.store.entries(subject), bytes_max);
        if let ReplyTo::ThisShard(mine) = to {
            // A join on this shard: an internal client gets no echo of its own
            // publishes, so the answer is replayed here.
            return self.replay(mine, &body);
        }
        client.publish(reply, None, None, &body).await;
    }

    /// An answer to one of this shard's IRC joins: its lines go to the joiner.
    fn on_replay(&self, msg: &Received) {
        let node = &self.ctx.global.server_id;
        if let ReplyTo::ThisShard(rest) = reply_to(&msg.subject, node, self.ctx.id) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_answered_by_the_joiners_node_only() {
        let reply = replay_subject("NODEA", 1, 17, true, "room.lobby");
        assert_eq!(reply, "$SC.IRC.HISTORY.NODEA.1.17.t.room.lobby");
        assert_eq!(
            reply_to(&reply, "NODEA", 1),
            ReplyTo::ThisShard("17.t.room.lobby")
        );
        assert_eq!(reply_to(&reply, "NODEA", 0), ReplyTo::ThisNode);
        // Another node sees the request (it crosses like any), and leaves it.
        assert_eq!(reply_to(&reply, "NODEB", 1), ReplyTo::OtherNode);
        assert_eq!(reply_to(&reply, "NODE", 1), ReplyTo::OtherNode);
        assert_eq!(reply_to("_INBOX.abc.1", "NODEA", 1), ReplyTo::Inbox);
    }
}
