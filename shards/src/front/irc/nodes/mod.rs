//! IRC across nodes: when shardcast nodes hang off one NATS cluster as leaf nodes, the
//! people of every node are in each node's channel lists and nicknames are unique
//! cluster-wide. Presence events (`$SC.PRESENCE.>`) cross the link like any subject, so
//! joins and parts made while nodes are linked show everywhere; this service, on shard 0
//! of each node with a `[leafnode]` and IRC, covers what events cannot:
//!
//! - **Heartbeats** (`$SC.SYNC.ALIVE`, every [`BEAT`]): this node's id and a digest of
//!   its people (channel memberships and nicks). A node whose digest we do not match
//!   (twice), or do not know, is asked for a snapshot (`$SC.SYNC.WANT`).
//! - **Snapshots** (`$SC.SYNC.MEMBERS`, in parts): a node's people. The last part
//!   replaces what we knew of that node: people new to us are shown joining (a
//!   netjoin), people gone are shown parting. So a node that links finds who was already
//!   on the others' channels, and the others find its people.
//! - **Silence**: a node not heard for [`NODE_TIMEOUT`] (killed, or this node's link
//!   down) has its people shown quitting with `*.net *.split`, as IRC networks show a
//!   netsplit; they come back (joining) when it is heard again.
//! - **Nicks** (`$SC.SYNC.NICK`): this node's claims and releases, with when. A nick
//!   held on another node cannot be taken here (`433`); two people who took one nick on
//!   two nodes at once are sorted out as IRC networks do after a netsplit: the earlier
//!   claim keeps it, the later one is closed (`Nick collision`).
//!
//! What this node shows for another node's people it injects locally, as if it had come
//! from the hub (`publish_from_hub`): the shards' copies and the members' wires take it
//! like any presence event, and it never goes back up the link.

pub mod registry;

use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::front::irc::presence::{Event, Presence, PRESENCE_PREFIX};
use crate::front::irc::service::{NickEvent, NICK_SUBJECT};
use crate::front::irc::IrcShard;
use crate::front::{publish_from_hub, Composed};
use crate::service::{Internal, Received};
use crate::shard::ShardCtx;
use registry::{Effect, Registry};

/// Heartbeats: `{"node":…,"digest":…}`.
pub const ALIVE_SUBJECT: &str = "$SC.SYNC.ALIVE";
/// Snapshot requests: `{"node":<asked>,"from":<asking>}`.
pub const WANT_SUBJECT: &str = "$SC.SYNC.WANT";
/// Snapshot parts ([`SnapshotPart`]).
pub const MEMBERS_SUBJECT: &str = "$SC.SYNC.MEMBERS";
/// Nick claims and releases ([`NickOp`]).
pub const NICK_SYNC_SUBJECT: &str = "$SC.SYNC.NICK";
/// How often a node says it is alive.
pub const BEAT: Duration = Duration::from_secs(2);
/// A node silent this long has split off.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(10);
/// Snapshots go out at most this often (one answers every asker).
const SNAPSHOT_GAP: Duration = Duration::from_secs(1);

/// A heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alive {
    pub node: String,
    pub digest: u64,
}

/// A snapshot request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    pub node: String,
    pub from: String,
}

/// A channel member in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub subject: String,
    pub mask: String,
    #[serde(default)]
    pub realname: String,
}

/// A nick in a snapshot, with when it was claimed (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NickEntry {
    pub nick: String,
    pub at: u64,
}

/// A channel's topic in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicEntry {
    pub subject: String,
    pub text: String,
    /// The nick that set it, and when (Unix seconds).
    pub setter: String,
    pub set_at: u64,
}

/// One part of a node's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPart {
    pub node: String,
    pub seq: u64,
    pub part: u32,
    pub last: bool,
    #[serde(default)]
    pub members: Vec<MemberEntry>,
    #[serde(default)]
    pub nicks: Vec<NickEntry>,
    #[serde(default)]
    pub topics: Vec<TopicEntry>,
}

/// A nick claim or release of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NickOp {
    pub node: String,
    /// `claim` or `release`.
    pub op: String,
    /// The nick's key (lower case).
    pub nick: String,
    pub at: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What woke the service.
enum Wake {
    Msg(Option<Received>),
    Beat,
}

/// Runs the node sync of `ctx`'s shard (shard 0 of a node with a leaf link and IRC).
pub async fn run(ctx: Rc<ShardCtx>, node: String) {
    let client = Internal::start(&ctx);
    client
        .subscribe("presence", &format!("{PRESENCE_PREFIX}>"), None)
        .await;
    client.subscribe("nicks", NICK_SUBJECT, None).await;
    client.subscribe("sync", "$SC.SYNC.>", None).await;
    let Some(irc) = ctx.irc.clone() else {
        return;
    };
    let mut registry = Registry::new(&node);
    let mut next_beat = Instant::now();
    while !ctx.stopping.get() {
        // The beat comes first when it is due: a steady stream of events must not keep
        // this node silent (the others would split it off).
        let wait = next_beat.saturating_duration_since(Instant::now());
        let wake = if wait.is_zero() {
            Wake::Beat
        } else {
            futures_lite::future::or(async { Wake::Msg(client.next().await) }, async {
                glommio::timer::sleep(wait).await;
                Wake::Beat
            })
            .await
        };
        let effects = match wake {
            Wake::Msg(None) => break,
            Wake::Msg(Some(msg)) => on_message(&mut registry, &irc, &msg),
            Wake::Beat => {
                next_beat = Instant::now() + BEAT;
                let effects = registry.tick(Instant::now(), NODE_TIMEOUT);
                if let Some(link) = ctx.leaf.borrow().as_ref() {
                    *link.irc_nodes.borrow_mut() = registry.summary(Instant::now());
                }
                effects
            }
        };
        apply(&client, &irc, effects).await;
    }
    if !ctx.stopping.get() {
        tracing::warn!("IRC node sync stopped: its internal client was closed (a slow consumer?)");
    }
}

fn on_message(registry: &mut Registry, irc: &IrcShard, msg: &Received) -> Vec<Effect> {
    let now = Instant::now();
    match (msg.sid.as_str(), msg.subject.as_str()) {
        ("presence", subject) => {
            let subject = subject.strip_prefix(PRESENCE_PREFIX).unwrap_or(subject);
            if let Ok(p) = serde_json::from_slice::<Presence>(&msg.payload) {
                registry.on_presence(subject, &p);
            }
            Vec::new()
        }
        ("nicks", _) => match serde_json::from_slice::<NickEvent>(&msg.payload) {
            Ok(e) => registry.on_local_nick(&e, now_ms()),
            Err(_) => Vec::new(),
        },
        (_, ALIVE_SUBJECT) => match serde_json::from_slice::<Alive>(&msg.payload) {
            Ok(a) => registry.on_alive(&a, now),
            Err(_) => Vec::new(),
        },
        (_, WANT_SUBJECT) => match serde_json::from_slice::<Want>(&msg.payload) {
            Ok(w) => {
                let topic_of = |subject: &str| {
                    irc.topic_of(subject).map(|t| TopicEntry {
                        subject: subject.to_string(),
                        text: t.text,
                        setter: t.setter,
                        set_at: t.set_at,
                    })
                };
                registry.on_want(&w, now, SNAPSHOT_GAP, &topic_of)
            }
            Err(_) => Vec::new(),
        },
        (_, MEMBERS_SUBJECT) => match serde_json::from_slice::<SnapshotPart>(&msg.payload) {
            Ok(p) => registry.on_snapshot_part(p, now),
            Err(_) => Vec::new(),
        },
        (_, NICK_SYNC_SUBJECT) => match serde_json::from_slice::<NickOp>(&msg.payload) {
            Ok(op) => registry.on_nick_op(&op),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Publishes what the registry asked for, in one turn.
async fn apply(client: &Internal, irc: &IrcShard, effects: Vec<Effect>) {
    if effects.is_empty() {
        return;
    }
    let effects: Vec<Effect> = effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Topic(t) => newer_topic(irc, t),
            e => Some(e),
        })
        .collect();
    client
        .turn(|router, conn| {
            for effect in &effects {
                match effect {
                    Effect::Presence { subject, event } => {
                        let subject = format!("{PRESENCE_PREFIX}{subject}");
                        let payload = event.to_json();
                        let parts = Composed {
                            subject: subject.as_bytes(),
                            reply: None,
                            headers: None,
                            payload: &payload,
                        };
                        publish_from_hub(router, conn, parts, &[]);
                    }
                    Effect::Nick(e) => {
                        let payload = e.to_json();
                        crate::front::publish_composed(
                            router,
                            conn,
                            NICK_SUBJECT,
                            None,
                            None,
                            &payload,
                        );
                    }
                    Effect::Announce { subject, payload } => {
                        crate::front::publish_composed(router, conn, subject, None, None, payload);
                    }
                    Effect::Topic(_) => {}
                }
            }
        })
        .await;
}

/// Another node's topic as a `topic` event for this node, if it is newer than this
/// node's (or this node has none). Its source is the setter's nick (the mask is not
/// kept with a topic).
fn newer_topic(irc: &IrcShard, t: TopicEntry) -> Option<Effect> {
    if t.text.is_empty()
        || irc
            .topic_of(&t.subject)
            .is_some_and(|mine| mine.set_at >= t.set_at)
    {
        return None;
    }
    let setter = &t.setter;
    let event = Presence {
        event: Event::Topic,
        nick: setter.clone(),
        mask: format!("{setter}!~{setter}@{}", irc.settings.server_name),
        channel: format!("#{}", t.subject),
        ts: crate::history::rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_secs(t.set_at)),
        reason: None,
        new: None,
        realname: None,
        topic: Some(t.text),
        node: None,
    };
    Some(Effect::Presence {
        subject: t.subject,
        event,
    })
}
