//! What one node knows of every node's IRC people: for each node (this one included),
//! who is on which channel and which nicks it holds. Pure state: each method returns the
//! [`Effect`]s the service then publishes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Alive, TopicEntry, Want, ALIVE_SUBJECT, WANT_SUBJECT};
use crate::front::irc::names::nick_key;
use crate::front::irc::presence::{self, Event, Presence};
use crate::front::irc::service::NickEvent;
use crate::front::irc::Holder;

/// The shard number a nick held on another node has in the shards' copies.
pub const REMOTE_SHARD: usize = usize::MAX;
/// Nodes kept besides this one.
pub const NODES_MAX: usize = 64;
/// Entries (channel memberships and nicks) kept for all nodes together (some 150 bytes
/// each); past it, more people are not added until some leave.
pub const ENTRIES_MAX: usize = 500_000;
/// The quit reason of people on a node that went silent (what IRC clients read as a
/// netsplit).
pub const SPLIT_REASON: &str = "*.net *.split";
/// Heartbeats whose digest differs from ours before a node is asked for a snapshot
/// (one may cross events still in flight).
const MISMATCHES_BEFORE_WANT: u8 = 2;
/// The most member and nick entries in one snapshot part.
const PART_ENTRIES_MAX: usize = 256;
/// How long a live change outweighs a snapshot (two beats: a snapshot that missed it
/// is followed by a digest mismatch and a newer snapshot after that).
const RECENT: Duration = Duration::from_secs(4);
/// Live changes remembered per node.
const RECENT_MAX: usize = 10_000;

/// What the service does for the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Shown to this node only, as if it had come from the hub: a presence event on
    /// `$SC.PRESENCE.<subject>` (the shards update their copies, members' wires show it).
    Presence { subject: String, event: Presence },
    /// A nick event for this node's shards (`$SC.IRC.NICK`, which never crosses).
    Nick(NickEvent),
    /// Published to every node: `$SC.SYNC.…`.
    Announce {
        subject: &'static str,
        payload: Vec<u8>,
    },
    /// A channel's topic as another node has it: shown here (as a `topic` event) if this
    /// node has none, or an older one.
    Topic(TopicEntry),
}

/// A channel member as a node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub mask: String,
    #[serde(default)]
    pub realname: String,
}

/// A nick a node holds, since when (Unix milliseconds; the earlier claim wins a
/// collision), and, for this node's, by which connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    at: u64,
    holder: Option<Holder>,
}

/// One node's people.
#[derive(Debug, Default)]
struct NodeView {
    /// subject → nick key → member.
    channels: BTreeMap<String, BTreeMap<String, Seen>>,
    nicks: BTreeMap<String, Hold>,
    digest: u64,
    entries: usize,
    heard: Option<Instant>,
    /// A snapshot was applied (or this is us).
    synced: bool,
    mismatches: u8,
    /// A snapshot being received: (seq, next part, members, nicks).
    pending: Option<Pending>,
    /// Memberships a live event changed lately (subject, nick key): a snapshot taken
    /// before that event, crossing it, does not undo it.
    recent: BTreeMap<(String, String), Instant>,
}

#[derive(Debug, Default)]
struct Pending {
    seq: u64,
    next: u32,
    members: Vec<(String, String, Seen)>,
    nicks: Vec<(String, u64)>,
    topics: Vec<TopicEntry>,
}

/// The hash of `parts`, each ended by a 0 byte.
fn fnv(parts: &[&str]) -> u64 {
    crate::service::fnv1a(
        parts
            .iter()
            .flat_map(|p| p.bytes().chain(std::iter::once(0))),
    )
}

/// The holder a nick of node `node` has in the shards' copies.
pub fn remote_holder(node: &str) -> Holder {
    Holder {
        shard: REMOTE_SHARD,
        cid: fnv(&[node]),
    }
}

impl NodeView {
    fn add_member(&mut self, subject: &str, key: &str, seen: Seen, full: bool) -> bool {
        if let Some(had) = self.channels.get_mut(subject).and_then(|c| c.get_mut(key)) {
            *had = seen;
            return false;
        }
        if full {
            return false;
        }
        let channel = self.channels.entry(subject.to_string()).or_default();
        channel.insert(key.to_string(), seen);
        self.digest ^= fnv(&["m", subject, key]);
        self.entries += 1;
        true
    }

    fn remove_member(&mut self, subject: &str, key: &str) -> Option<Seen> {
        let channel = self.channels.get_mut(subject)?;
        let seen = channel.remove(key)?;
        if channel.is_empty() {
            self.channels.remove(subject);
        }
        self.digest ^= fnv(&["m", subject, key]);
        self.entries -= 1;
        Some(seen)
    }

    fn add_nick(&mut self, key: &str, hold: Hold, full: bool) -> bool {
        if let Some(h) = self.nicks.get_mut(key) {
            *h = hold;
            return false;
        }
        if full {
            return false;
        }
        self.nicks.insert(key.to_string(), hold);
        self.digest ^= fnv(&["n", key]);
        self.entries += 1;
        true
    }

    /// A live event changed `subject`/`key` now.
    fn touched(&mut self, subject: &str, key: &str) {
        if self.recent.len() < RECENT_MAX {
            self.recent
                .insert((subject.to_string(), key.to_string()), Instant::now());
        }
    }

    /// A live event changed `subject`/`key` less than [`RECENT`] before `now`.
    fn is_recent(&self, subject: &str, key: &str, now: Instant) -> bool {
        self.recent
            .get(&(subject.to_string(), key.to_string()))
            .is_some_and(|t| now.saturating_duration_since(*t) < RECENT)
    }

    fn remove_nick(&mut self, key: &str) -> Option<Hold> {
        let hold = self.nicks.remove(key)?;
        self.digest ^= fnv(&["n", key]);
        self.entries -= 1;
        Some(hold)
    }
}

/// Every node's IRC people, as this node (`me`) knows them.
#[derive(Debug)]
pub struct Registry {
    me: String,
    nodes: BTreeMap<String, NodeView>,
    /// The last snapshot this node sent, and its number.
    sent: Option<Instant>,
    seq: u64,
    /// [`ENTRIES_MAX`], or less in tests.
    entries_max: usize,
}

impl Registry {
    pub fn new(me: &str) -> Registry {
        let mut nodes = BTreeMap::new();
        let view = NodeView {
            synced: true,
            ..NodeView::default()
        };
        nodes.insert(me.to_string(), view);
        Registry {
            me: me.to_string(),
            nodes,
            sent: None,
            seq: 0,
            entries_max: ENTRIES_MAX,
        }
    }

    /// A registry that keeps at most `entries_max` entries.
    #[cfg(test)]
    pub fn with_entries_max(me: &str, entries_max: usize) -> Registry {
        Registry {
            entries_max,
            ..Registry::new(me)
        }
    }

    fn mine(&mut self) -> &mut NodeView {
        self.nodes.entry(self.me.clone()).or_default()
    }

    /// The view of `node`, made if there is room.
    fn view(&mut self, node: &str) -> Option<&mut NodeView> {
        if !self.nodes.contains_key(node) && self.nodes.len() > NODES_MAX {
            return None;
        }
        // A node first heard of by an event is given a whole timeout to send its beat.
        Some(
            self.nodes
                .entry(node.to_string())
                .or_insert_with(|| NodeView {
                    heard: Some(Instant::now()),
                    ..NodeView::default()
                }),
        )
    }

    /// The entries kept now, for all nodes, and whether that is [`ENTRIES_MAX`].
    fn full(&self) -> bool {
        self.nodes.values().map(|v| v.entries).sum::<usize>() >= self.entries_max
    }

    /// Every node known, this one first, for monitoring.
    pub fn summary(&self, now: Instant) -> Vec<crate::leaf::IrcNode> {
        let mut out: Vec<crate::leaf::IrcNode> = self
            .nodes
            .iter()
            .map(|(node, v)| {
                let local = *node == self.me;
                crate::leaf::IrcNode {
                    node: node.clone(),
                    local,
                    memberships: v.entries - v.nicks.len(),
                    nicks: v.nicks.len(),
                    synced: v.synced,
                    heard_ago: v
                        .heard
                        .filter(|_| !local)
                        .map(|t| now.saturating_duration_since(t)),
                }
            })
            .collect();
        out.sort_by_key(|n| !n.local);
        out
    }

    /// Nodes other than this one that are known now.
    pub fn others(&self) -> usize {
        self.nodes.len() - 1
    }

    /// A presence event on `subject` (from any node; this one's own injections too).
    pub fn on_presence(&mut self, subject: &str, p: &Presence) {
        let Some(node) = p.node.as_deref() else {
            return;
        };
        // Only a join makes a node known (the quits shown for a node that split off come
        // back here after it is gone).
        if p.event != Event::Join && !self.nodes.contains_key(node) {
            return;
        }
        let remote = node != self.me;
        // This node's own people are always counted.
        let full = remote && self.full();
        let Some(view) = self.view(node) else {
            return;
        };
        let key = nick_key(&p.nick);
        if p.event != Event::Topic && remote {
            view.touched(subject, &key);
            if let Some(new) = p.new.as_deref().filter(|_| p.event == Event::Nick) {
                view.touched(subject, &nick_key(new));
            }
        }
        match p.event {
            Event::Join => {
                let seen = Seen {
                    mask: p.mask.clone(),
                    realname: p.realname.clone().unwrap_or_default(),
                };
                view.add_member(subject, &key, seen, full);
            }
            Event::Part | Event::Quit => {
                view.remove_member(subject, &key);
            }
            Event::Nick => {
                let Some(old) = view.remove_member(subject, &key) else {
                    return;
                };
                if let Some(new) = &p.new {
                    let mask = match old.mask.split_once('!') {
                        Some((_, rest)) => format!("{new}!{rest}"),
                        None => new.clone(),
                    };
                    let seen = Seen {
                        mask,
                        realname: old.realname,
                    };
                    view.add_member(subject, &nick_key(new), seen, false);
                }
            }
            Event::Topic => {}
        }
    }

    /// A heartbeat of another node: asks for its snapshot when we have none or our view
    /// of it has drifted.
    pub fn on_alive(&mut self, alive: &Alive, now: Instant) -> Vec<Effect> {
        if alive.node == self.me {
            return Vec::new();
        }
        let full = self.full();
        let Some(view) = self.view(&alive.node) else {
            return Vec::new();
        };
        view.heard = Some(now);
        let want = if !view.synced {
            true
        } else if view.digest != alive.digest && !full {
            view.mismatches += 1;
            view.mismatches >= MISMATCHES_BEFORE_WANT
        } else {
            view.mismatches = 0;
            false
        };
        if !want {
            return Vec::new();
        }
        view.mismatches = 0;
        let msg = Want {
            node: alive.node.clone(),
            from: self.me.clone(),
        };
        vec![Effect::Announce {
            subject: WANT_SUBJECT,
            payload: serde_json::to_vec(&msg).unwrap_or_default(),
        }]
    }

    /// Once a beat: our heartbeat, and the people of nodes silent for `timeout` shown
    /// quitting (a netsplit).
    pub fn tick(&mut self, now: Instant, timeout: Duration) -> Vec<Effect> {
        let mut out = Vec::new();
        for view in self.nodes.values_mut() {
            view.recent
                .retain(|_, t| now.saturating_duration_since(*t) < RECENT);
        }
        let silent: Vec<String> = self
            .nodes
            .iter()
            .filter(|(n, v)| {
                **n != self.me
                    && v.heard
                        .map_or(true, |t| now.saturating_duration_since(t) >= timeout)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for node in silent {
            if let Some(view) = self.nodes.remove(&node) {
                tracing::info!(node = %node, people = view.entries, "IRC node silent: its people split off");
                for (subject, members) in &view.channels {
                    for seen in members.values() {
                        let reason = Some(SPLIT_REASON.to_string());
                        out.push(presence_effect(&node, subject, Event::Quit, seen, reason));
                    }
                }
                for key in view.nicks.keys() {
                    out.extend(self.released(&node, key));
                }
            }
        }
        let alive = Alive {
            node: self.me.clone(),
            digest: self.mine().digest,
        };
        out.push(Effect::Announce {
            subject: ALIVE_SUBJECT,
            payload: serde_json::to_vec(&alive).unwrap_or_default(),
        });
        out
    }
}

fn presence_effect(
    node: &str,
    subject: &str,
    event: Event,
    seen: &Seen,
    reason: Option<String>,
) -> Effect {
    let nick = seen.mask.split_once('!').map_or(&*seen.mask, |(n, _)| n);
    Effect::Presence {
        subject: subject.to_string(),
        event: Presence {
            event,
            nick: nick.to_string(),
            mask: seen.mask.clone(),
            channel: format!("#{subject}"),
            ts: presence::now_rfc3339(),
            reason,
            new: None,
            realname: (event == Event::Join).then(|| seen.realname.clone()),
            topic: None,
            node: Some(node.to_string()),
        },
    }
}

mod nicks;
mod snapshot;

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
