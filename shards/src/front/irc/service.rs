//! The IRC service of one shard: an internal client ([`crate::service::Internal`]) that
//! keeps this shard's copy of what IRC needs to know server-wide, from events every
//! shard publishes:
//!
//! - **Nicks** (`$SC.IRC.NICK`): a session takes a nick at once if this shard's copy has
//!   it free, and publishes a `claim`; `release` gives it back. Two people on different
//!   shards can claim the same nick in the same instant; the nick's owner shard (a hash
//!   of the nick) decides: the first claim it saw wins, and it publishes a `reject` for
//!   the other, whose shard closes that connection with `ERROR :Closing Link: … (Nick
//!   collision)`, as IRC networks do after a netsplit.
//! - **Members** (`$SC.PRESENCE.>`): joins, parts, quits and nick changes, so `NAMES`,
//!   `WHO` and `LIST` show every shard's members.
//! - **`$SC.MEMBERS.<subject>`** requests from NATS clients (one service answers, a queue
//!   group): the channel's members as a JSON array.

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::close::CloseReason;
use crate::front::irc::presence::{Event, Presence, PRESENCE_PREFIX};
use crate::front::irc::{Holder, IrcShard, Member, Topic};
use crate::service::{owner_of, Internal, Received};
use crate::shard::ShardCtx;

/// Where nick events are published.
pub const NICK_SUBJECT: &str = "$SC.IRC.NICK";
/// Requests for a channel's members: `$SC.MEMBERS.<subject>`.
pub const MEMBERS_PREFIX: &str = "$SC.MEMBERS.";

/// A nick event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum NickEvent {
    Claim {
        key: String,
        shard: usize,
        cid: u64,
    },
    Release {
        key: String,
        shard: usize,
        cid: u64,
    },
    /// The owner shard gave `key` to `winner`; the claim of `shard`/`cid` lost.
    Reject {
        key: String,
        shard: usize,
        cid: u64,
        winner: Holder,
    },
}

impl NickEvent {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Runs the service of `ctx`'s shard until the shard stops.
pub async fn run(ctx: Rc<ShardCtx>, irc: Rc<IrcShard>) {
    let client = Internal::start(&ctx);
    client.subscribe("nicks", NICK_SUBJECT, None).await;
    let presence = format!("{PRESENCE_PREFIX}>");
    client.subscribe("presence", &presence, None).await;
    let members = format!("{MEMBERS_PREFIX}>");
    client
        .subscribe("members", &members, Some("sc-members"))
        .await;
    while let Some(msg) = client.next().await {
        match msg.sid.as_str() {
            "nicks" => on_nick_event(&ctx, &irc, &client, &msg).await,
            "presence" => on_presence(&irc, &msg),
            "members" => on_members_request(&irc, &client, &msg).await,
            _ => {}
        }
    }
}

async fn on_nick_event(ctx: &ShardCtx, irc: &IrcShard, client: &Internal, msg: &Received) {
    let Ok(event) = serde_json::from_slice::<NickEvent>(&msg.payload) else {
        return;
    };
    match event {
        NickEvent::Claim { key, shard, cid } => {
            let claimant = Holder { shard, cid };
            let held = irc.holder(&key);
            match held {
                None => irc.set_holder(&key, claimant),
                Some(h) if h == claimant => {}
                // Another node's claim of a nick someone holds: the node sync decides
                // (the earlier claim wins, cluster-wide).
                Some(_) if shard == crate::front::irc::nodes::registry::REMOTE_SHARD => {}
                Some(winner) => {
                    if owner_of(&key, ctx.shards()) == ctx.id {
                        let reject = NickEvent::Reject {
                            key,
                            shard,
                            cid,
                            winner,
                        };
                        client
                            .publish(NICK_SUBJECT, None, None, &reject.to_json())
                            .await;
                    }
                }
            }
        }
        NickEvent::Release { key, shard, cid } => {
            irc.clear_holder(&key, Holder { shard, cid });
        }
        NickEvent::Reject {
            key,
            shard,
            cid,
            winner,
        } => {
            irc.set_holder(&key, winner);
            if shard == ctx.id {
                let conn = ctx.conns.borrow().get(&cid).cloned();
                if let Some(conn) = conn {
                    let line = format!(
                        "ERROR :Closing Link: {} (Nick collision)\r\n",
                        conn.peer.map_or("unknown".into(), |p| p.ip().to_string())
                    );
                    conn.outbox.push_control(line.as_bytes());
                    conn.close(CloseReason::ClientClosed);
                }
            }
        }
    }
}

fn on_presence(irc: &IrcShard, msg: &Received) {
    let Some(subject) = msg.subject.strip_prefix(PRESENCE_PREFIX) else {
        return;
    };
    let Ok(p) = serde_json::from_slice::<Presence>(&msg.payload) else {
        return;
    };
    let Some(member) = Member::from_mask(&p.mask, p.realname.clone().unwrap_or_default()) else {
        return;
    };
    match p.event {
        Event::Join => irc.add_member(subject, member),
        Event::Part | Event::Quit => irc.remove_member(subject, &member.nick),
        Event::Topic => irc.set_topic(
            subject,
            Topic {
                text: p.topic.unwrap_or_default(),
                setter: member.nick,
                set_at: unix_seconds(&p.ts),
            },
        ),
        Event::Nick => {
            irc.remove_member(subject, &member.nick);
            if let Some(new) = p.new {
                irc.add_member(
                    subject,
                    Member {
                        nick: new,
                        ..member
                    },
                );
            }
        }
    }
}

/// The Unix seconds of an RFC 3339 time (0 if it does not parse).
fn unix_seconds(ts: &str) -> u64 {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp().max(0) as u64)
        .unwrap_or(0)
}

/// A member as `$SC.MEMBERS` reports it.
#[derive(Debug, Serialize)]
struct MemberJson {
    nick: String,
    mask: String,
}

async fn on_members_request(irc: &IrcShard, client: &Internal, msg: &Received) {
    let Some(reply) = &msg.reply else {
        return;
    };
    let Some(subject) = msg.subject.strip_prefix(MEMBERS_PREFIX) else {
        return;
    };
    let members: Vec<MemberJson> = irc
        .members_of(subject)
        .into_iter()
        .map(|m| MemberJson {
            mask: m.mask(),
            nick: m.nick,
        })
        .collect();
    let body = serde_json::to_vec(&members).unwrap_or_default();
    client.publish(reply, None, None, &body).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nick_events_round_trip() {
        let e = NickEvent::Reject {
            key: "al".into(),
            shard: 1,
            cid: 7,
            winner: Holder { shard: 0, cid: 3 },
        };
        let json = e.to_json();
        assert!(String::from_utf8_lossy(&json).contains(r#""op":"reject""#));
        assert_eq!(serde_json::from_slice::<NickEvent>(&json).expect("json"), e);
    }
}
