//! Snapshots: a node's people in parts, sent when asked (at most once per gap), and
//! another node's applied when its last part is in: the difference from what we knew is
//! shown as a netjoin, except for memberships a live event changed lately.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{presence_effect, Effect, Pending, Registry, Seen, PART_ENTRIES_MAX};
use crate::front::irc::names::nick_key;
use crate::front::irc::nodes::{
    MemberEntry, NickEntry, SnapshotPart, TopicEntry, Want, MEMBERS_SUBJECT,
};
use crate::front::irc::presence::Event;

impl Registry {
    /// A snapshot request: this node's, unless one went out less than `min_gap` ago
    /// (everyone got that one).
    pub fn on_want(
        &mut self,
        want: &Want,
        now: Instant,
        min_gap: Duration,
        topic_of: &dyn Fn(&str) -> Option<TopicEntry>,
    ) -> Vec<Effect> {
        if want.node != self.me
            || self
                .sent
                .is_some_and(|t| now.saturating_duration_since(t) < min_gap)
        {
            return Vec::new();
        }
        self.sent = Some(now);
        self.snapshot(topic_of)
    }

    /// This node's people, in parts, with the topics (`topic_of`) of their channels.
    pub fn snapshot(&mut self, topic_of: &dyn Fn(&str) -> Option<TopicEntry>) -> Vec<Effect> {
        self.seq += 1;
        let (me, seq) = (self.me.clone(), self.seq);
        let view = self.mine();
        let topics: Vec<TopicEntry> = view.channels.keys().filter_map(|s| topic_of(s)).collect();
        let members: Vec<(String, Seen)> = view
            .channels
            .iter()
            .flat_map(|(s, m)| m.values().map(move |seen| (s.clone(), seen.clone())))
            .collect();
        let nicks: Vec<(String, u64)> = view.nicks.iter().map(|(k, h)| (k.clone(), h.at)).collect();
        let parts = members
            .len()
            .max(nicks.len())
            .max(topics.len())
            .div_ceil(PART_ENTRIES_MAX)
            .max(1);
        let mut members = members.chunks(PART_ENTRIES_MAX);
        let mut nicks = nicks.chunks(PART_ENTRIES_MAX);
        let mut topics = topics.chunks(PART_ENTRIES_MAX);
        (0..parts)
            .map(|i| {
                let part = SnapshotPart {
                    node: me.clone(),
                    seq,
                    part: i as u32,
                    last: i + 1 == parts,
                    members: members
                        .next()
                        .unwrap_or_default()
                        .iter()
                        .map(|(subject, seen)| MemberEntry {
                            subject: subject.clone(),
                            mask: seen.mask.clone(),
                            realname: seen.realname.clone(),
                        })
                        .collect(),
                    nicks: nicks
                        .next()
                        .unwrap_or_default()
                        .iter()
                        .map(|(nick, at)| NickEntry {
                            nick: nick.clone(),
                            at: *at,
                        })
                        .collect(),
                    topics: topics.next().unwrap_or_default().to_vec(),
                };
                Effect::Announce {
                    subject: MEMBERS_SUBJECT,
                    payload: serde_json::to_vec(&part).unwrap_or_default(),
                }
            })
            .collect()
    }

    /// A part of another node's snapshot; the last part replaces what we knew of it: who
    /// is new is shown joining, who is gone parting.
    pub fn on_snapshot_part(&mut self, part: SnapshotPart, now: Instant) -> Vec<Effect> {
        if part.node == self.me {
            return Vec::new();
        }
        let entries_max = self.entries_max;
        let Some(view) = self.view(&part.node) else {
            return Vec::new();
        };
        view.heard = Some(now);
        let pending = match view.pending.take() {
            _ if part.part == 0 => Pending {
                seq: part.seq,
                ..Pending::default()
            },
            Some(p) if p.seq == part.seq && p.next == part.part => p,
            _ => return Vec::new(),
        };
        let mut pending = pending;
        pending.next += 1;
        for m in part.members {
            let Some((nick, _)) = m.mask.split_once('!') else {
                continue;
            };
            if pending.members.len() < entries_max {
                let seen = Seen {
                    mask: m.mask.clone(),
                    realname: m.realname,
                };
                pending.members.push((m.subject, nick_key(nick), seen));
            }
        }
        for n in part.nicks {
            if pending.nicks.len() < entries_max {
                pending.nicks.push((n.nick, n.at));
            }
        }
        for t in part.topics {
            if pending.topics.len() < entries_max {
                pending.topics.push(t);
            }
        }
        if !part.last {
            view.pending = Some(pending);
            return Vec::new();
        }
        self.replace(&part.node, pending)
    }

    fn replace(&mut self, node: &str, new: Pending) -> Vec<Effect> {
        let mut out = Vec::new();
        let mut total: usize = self.nodes.values().map(|v| v.entries).sum();
        let entries_max = self.entries_max;
        let Some(view) = self.nodes.get_mut(node) else {
            return out;
        };
        view.synced = true;
        view.mismatches = 0;
        let wanted: BTreeMap<(String, String), Seen> = new
            .members
            .into_iter()
            .map(|(s, k, seen)| ((s, k), seen))
            .collect();
        let had: Vec<(String, String, Seen)> = view
            .channels
            .iter()
            .flat_map(|(s, m)| {
                m.iter()
                    .map(move |(k, v)| (s.clone(), k.clone(), v.clone()))
            })
            .collect();
        let now = Instant::now();
        for (subject, key, seen) in had {
            let recent = view.is_recent(&subject, &key, now);
            if !recent && !wanted.contains_key(&(subject.clone(), key.clone())) {
                view.remove_member(&subject, &key);
                total -= 1;
                out.push(presence_effect(node, &subject, Event::Part, &seen, None));
            }
        }
        for ((subject, key), seen) in wanted {
            if view.is_recent(&subject, &key, now) {
                continue;
            }
            if view.add_member(&subject, &key, seen.clone(), total >= entries_max) {
                total += 1;
                out.push(presence_effect(node, &subject, Event::Join, &seen, None));
            }
        }
        let wanted: BTreeMap<String, u64> = new.nicks.into_iter().collect();
        let had: Vec<String> = view.nicks.keys().cloned().collect();
        for key in had {
            if !wanted.contains_key(&key) {
                out.extend(self.remote_release(node, &key));
            }
        }
        for (key, at) in wanted {
            out.extend(self.remote_claim(node, &key, at));
        }
        out.extend(new.topics.into_iter().map(Effect::Topic));
        out
    }
}
