//! Nicknames across nodes: this node's claims and releases go out with when they were
//! made; another node's are held in the shards' copies ([`remote_holder`]); of two
//! claims of one nick, the earlier (then the lower node id) wins.

use super::{remote_holder, Effect, Hold, Registry, REMOTE_SHARD};
use crate::front::irc::nodes::{NickOp, NICK_SYNC_SUBJECT};
use crate::front::irc::service::NickEvent;
use crate::front::irc::Holder;

impl Registry {
    /// A nick event of this node's shards: claims and releases of this node's people go
    /// to the other nodes; a claim of a nick another node held first loses.
    pub fn on_local_nick(&mut self, e: &NickEvent, now_ms: u64) -> Vec<Effect> {
        let mut out = Vec::new();
        match e {
            NickEvent::Claim { key, shard, cid } if *shard != REMOTE_SHARD => {
                let me = Holder {
                    shard: *shard,
                    cid: *cid,
                };
                if self.mine().nicks.contains_key(key) {
                    return out;
                }
                if let Some((node, _)) = self.older_elsewhere(key, now_ms) {
                    out.push(Effect::Nick(NickEvent::Reject {
                        key: key.clone(),
                        shard: *shard,
                        cid: *cid,
                        winner: remote_holder(&node),
                    }));
                    return out;
                }
                let hold = Hold {
                    at: now_ms,
                    holder: Some(me),
                };
                // This node's own people are always counted.
                if self.mine().add_nick(key, hold, false) {
                    out.push(self.nick_op("claim", key, now_ms));
                }
            }
            NickEvent::Release { key, shard, cid } if *shard != REMOTE_SHARD => {
                let holder = Holder {
                    shard: *shard,
                    cid: *cid,
                };
                let held = self.mine().nicks.get(key).and_then(|h| h.holder);
                if held == Some(holder) {
                    self.mine().remove_nick(key);
                    out.push(self.nick_op("release", key, now_ms));
                }
            }
            NickEvent::Reject { key, winner, .. } => {
                if winner.shard == REMOTE_SHARD {
                    if self.mine().remove_nick(key).is_some() {
                        out.push(self.nick_op("release", key, now_ms));
                    }
                } else if let Some(h) = self.mine().nicks.get_mut(key) {
                    h.holder = Some(*winner);
                }
            }
            _ => {}
        }
        out
    }

    /// The node other than this one holding `key` since before `at`, if any.
    fn older_elsewhere(&self, key: &str, at: u64) -> Option<(String, u64)> {
        self.nodes
            .iter()
            .filter(|(n, _)| **n != self.me)
            .filter_map(|(n, v)| v.nicks.get(key).map(|h| (n.clone(), h.at)))
            .filter(|(n, t)| (*t, n.as_str()) < (at, self.me.as_str()))
            .min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)))
    }

    fn nick_op(&self, op: &str, key: &str, at: u64) -> Effect {
        let msg = NickOp {
            node: self.me.clone(),
            op: op.to_string(),
            nick: key.to_string(),
            at,
        };
        Effect::Announce {
            subject: NICK_SYNC_SUBJECT,
            payload: serde_json::to_vec(&msg).unwrap_or_default(),
        }
    }

    /// A nick claim or release of another node.
    pub fn on_nick_op(&mut self, op: &NickOp) -> Vec<Effect> {
        if op.node == self.me {
            return Vec::new();
        }
        match op.op.as_str() {
            "claim" => self.remote_claim(&op.node, &op.nick, op.at),
            "release" => self.remote_release(&op.node, &op.nick),
            _ => Vec::new(),
        }
    }

    pub(super) fn remote_claim(&mut self, node: &str, key: &str, at: u64) -> Vec<Effect> {
        let full = self.full();
        let Some(view) = self.view(node) else {
            return Vec::new();
        };
        let hold = Hold { at, holder: None };
        if !view.add_nick(key, hold, full) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let remote = remote_holder(node);
        let local = self.mine().nicks.get(key).copied();
        match local {
            Some(Hold {
                at: mine,
                holder: Some(h),
            }) if (at, node) < (mine, self.me.as_str()) => {
                // Theirs is older: ours loses (the other node keeps its own).
                self.mine().remove_nick(key);
                out.push(Effect::Nick(NickEvent::Reject {
                    key: key.to_string(),
                    shard: h.shard,
                    cid: h.cid,
                    winner: remote,
                }));
            }
            Some(_) => {}
            None => out.push(Effect::Nick(NickEvent::Claim {
                key: key.to_string(),
                shard: remote.shard,
                cid: remote.cid,
            })),
        }
        out
    }

    pub(super) fn remote_release(&mut self, node: &str, key: &str) -> Vec<Effect> {
        let Some(view) = self.nodes.get_mut(node) else {
            return Vec::new();
        };
        if view.remove_nick(key).is_none() {
            return Vec::new();
        }
        self.released(node, key)
    }

    /// The shards' copies after `node` gave `key` up (or went silent): released, and
    /// held by the next node that claimed it too, if any (the earliest claim).
    pub(super) fn released(&self, node: &str, key: &str) -> Vec<Effect> {
        let remote = remote_holder(node);
        let mut out = vec![Effect::Nick(NickEvent::Release {
            key: key.to_string(),
            shard: remote.shard,
            cid: remote.cid,
        })];
        let next = self
            .nodes
            .iter()
            .filter(|(n, _)| **n != self.me && n.as_str() != node)
            .filter_map(|(n, v)| v.nicks.get(key).map(|h| (h.at, n)))
            .min();
        if let Some((_, n)) = next {
            let holder = remote_holder(n);
            out.push(Effect::Nick(NickEvent::Claim {
                key: key.to_string(),
                shard: holder.shard,
                cid: holder.cid,
            }));
        }
        out
    }
}
