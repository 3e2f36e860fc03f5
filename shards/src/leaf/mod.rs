//! Leaf node link: this server as a solicited leaf (a spoke) of a nats-server cluster's
//! `leafnodes {}` port (the hub), so several shardcast nodes share subjects through an
//! ordinary NATS cluster. One link per server, run on shard 0 like any connection: dialled
//! instead of accepted, served by [`crate::front::leaf::LeafSession`].
//!
//! The link connects to one of the `remotes` (tried in random order, with the cluster's
//! other leafnode ports learned from the hub's INFO), answers the hub's INFO with a leaf
//! CONNECT (credentials when configured), keeps itself alive with PING/PONG, and
//! reconnects `reconnect_delay` (plus up to 50% jitter) after it drops, 30 s after a loop.
//! The node's interest goes up (`route::watch`), the hub's interest becomes the link's
//! subscriptions (its queue groups as `$sc.leaf.<q>`, served only when the node has no
//! member of `q`), and messages cross both ways, an LMSG's queue list honoured.

pub mod dial;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::conn::tls_client::{ClientTls, ClientTlsFiles};
use crate::front::leaf::LeafSession;
use crate::shard::run_loop::{self, Door};
use crate::shard::ShardCtx;
use dial::{DialError, Link};

/// The most keys of remote interest the link tracks (LS+ beyond it are counted, not kept).
pub const REMOTE_INTEREST_MAX: usize = 1_000_000;

/// Subjects that never cross the link: the IRC service's nick events name shards and
/// connection ids of one node, meaningless (and harmful) on another.
pub const LOCAL_ONLY_PREFIX: &[u8] = b"$SC.IRC.";
/// Under [`LOCAL_ONLY_PREFIX`], what does cross: users' inboxes (`$SC.IRC.USER.<nick>`;
/// nicks are unique cluster-wide, so a direct message reaches its user on any node).
pub const CROSSING_IRC_PREFIX: &[u8] = b"$SC.IRC.USER.";

/// Whether a message on `subject` may cross the link.
#[inline]
pub fn crosses(subject: &[u8]) -> bool {
    !subject.starts_with(LOCAL_ONLY_PREFIX) || subject.starts_with(CROSSING_IRC_PREFIX)
}

/// The wait before reconnecting after a loop was detected (nats-server's own).
pub const LOOP_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// The most hub addresses learned from INFO (`leafnode_urls`) kept besides the configured
/// remotes.
pub const LEARNED_REMOTES_MAX: usize = 64;

/// `[leafnode]` as the engine takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafConfig {
    /// The hub's leafnode ports (`host:port`), tried in random order.
    pub remotes: Vec<String>,
    /// This node's name in the hub's `/leafz`.
    pub name: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Wait before reconnecting (plus up to 50% jitter).
    pub reconnect_delay: Duration,
    /// TLS to the hub (also used whenever the hub asks for it).
    pub tls: Option<ClientTlsFiles>,
    /// Subjects whose messages may go up to the hub (empty: all).
    pub export: Vec<String>,
    /// Subjects whose messages may come down from the hub, and so the local interest the
    /// hub is told of (empty: all).
    pub import: Vec<String>,
}

/// One key of the hub's interest: its weight (a queue group's member count) and the
/// link's subscriptions for it (one per `export` overlap).
#[derive(Debug, Default)]
pub struct RemoteKey {
    pub weight: u32,
    pub sids: Vec<Box<[u8]>>,
}

/// What the link knows, shared by its sessions (one per connection attempt).
#[derive(Debug, Default)]
pub struct LinkState {
    /// Connected to the hub now (its address), and how many times it connected.
    pub connected: RefCell<Option<SocketAddr>>,
    pub connects: std::cell::Cell<u64>,
    /// The hub's interest: key (`subject` or `subject queue`) → weight and subscriptions.
    pub remote: RefCell<FxHashMap<String, RemoteKey>>,
    /// Messages from the hub outside `import`, dropped.
    pub filtered: std::cell::Cell<u64>,
    /// The link connection's id while it is connected.
    pub cid: std::cell::Cell<Option<u64>>,
    /// The node's name (as configured).
    pub name: RefCell<String>,
    /// Other leafnode ports of the hub's cluster, learned from its INFO (`leafnode_urls`).
    pub learned: RefCell<Vec<String>>,
    /// Interest the hub advertised beyond [`REMOTE_INTEREST_MAX`] keys (not kept).
    pub interest_dropped: std::cell::Cell<u64>,
    /// A longer wait before the next attempt (after a loop), taken once.
    hold_off: std::cell::Cell<Option<Duration>>,
    /// The IRC nodes this node knows (with IRC on), as the node sync last saw them.
    pub irc_nodes: RefCell<Vec<IrcNode>>,
}

/// A node of the IRC network, as this node's sync knows it (`/leafz` `irc_nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcNode {
    /// Its server id.
    pub node: String,
    /// This node.
    pub local: bool,
    /// Channel memberships and nicks known of it.
    pub memberships: usize,
    pub nicks: usize,
    /// Its snapshot was applied (always true for this node).
    pub synced: bool,
    /// Since its last heartbeat or snapshot (None for this node).
    pub heard_ago: Option<Duration>,
}

/// The link as monitoring shows it (`/leafz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSnapshot {
    pub name: String,
    /// The hub's address while connected.
    pub hub: Option<SocketAddr>,
    /// The link connection's id while connected (its counters are in its `/connz` row).
    pub cid: Option<u64>,
    /// Times the link came up.
    pub connects: u64,
    /// Keys of interest the hub advertises, and those beyond the limit, not kept.
    pub remote_interest: usize,
    pub interest_dropped: u64,
    /// Messages from the hub outside `import`, dropped.
    pub filtered: u64,
    /// Hub addresses learned from its INFO, tried besides the configured ones.
    pub learned: Vec<String>,
    /// The IRC nodes known (empty without IRC).
    pub irc_nodes: Vec<IrcNode>,
}

impl LinkState {
    /// Waits `delay` (instead of `reconnect_delay`) before the next attempt.
    pub fn hold_off(&self, delay: Duration) {
        self.hold_off.set(Some(delay));
    }

    /// Takes in the hub's INFO: the cluster's other leafnode ports join the remotes.
    pub fn learn(&self, info: &serde_json::Value) {
        let Some(urls) = info["leafnode_urls"].as_array() else {
            return;
        };
        let mut learned = self.learned.borrow_mut();
        for url in urls.iter().filter_map(serde_json::Value::as_str) {
            let url = url.trim_start_matches("nats-leaf://");
            if !learned.iter().any(|u| u == url) && learned.len() < LEARNED_REMOTES_MAX {
                tracing::debug!(url, "leafnode: learned a hub address");
                learned.push(url.to_owned());
            }
        }
    }

    /// The configured remotes, then the learned ones not among them.
    fn pool(&self, configured: &[String]) -> Vec<String> {
        let mut pool = configured.to_vec();
        for url in self.learned.borrow().iter() {
            if !pool.contains(url) {
                pool.push(url.clone());
            }
        }
        pool
    }

    pub fn snapshot(&self) -> LeafSnapshot {
        LeafSnapshot {
            name: self.name.borrow().clone(),
            hub: *self.connected.borrow(),
            cid: self.cid.get(),
            connects: self.connects.get(),
            remote_interest: self.remote.borrow().len(),
            interest_dropped: self.interest_dropped.get(),
            filtered: self.filtered.get(),
            learned: self.learned.borrow().clone(),
            irc_nodes: self.irc_nodes.borrow().clone(),
        }
    }
}

/// Runs the link until the shard stops: connect, serve, wait, again. A remote that cannot
/// be reached moves the attempt on to the next at once; the wait (`reconnect_delay` plus
/// jitter) comes after the link drops or after every remote failed once.
pub async fn run(ctx: Rc<ShardCtx>, cfg: LeafConfig, state: Rc<LinkState>) {
    *state.name.borrow_mut() = cfg.name.clone();
    let tls = match cfg.tls.as_ref().map(ClientTls::load).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            // Checked when the configuration was loaded; files can change since.
            tracing::error!(error = %e, "leafnode.tls: the link stays down");
            return;
        }
    };
    let mut attempt: u64 = 0;
    let mut failed_in_a_row = 0;
    while !ctx.stopping.get() {
        let pool = state.pool(&cfg.remotes);
        let remote = pick(&pool, attempt).to_owned();
        attempt = attempt.wrapping_add(1);
        let id = ctx.global.server_id.clone();
        let deadline = ctx.limits().write_deadline;
        match dial::dial(&remote, tls.as_ref(), deadline, &id).await {
            Ok(link) => {
                failed_in_a_row = 0;
                let cid = ctx.next_cid();
                state.cid.set(Some(cid));
                let hub = match link {
                    Link::Plain(tcp, d) => {
                        let hub = d.hub;
                        let session = LeafSession::new(cfg.clone(), Rc::clone(&state), d, id);
                        run_loop::serve_conn(Rc::clone(&ctx), cid, tcp, session, Door::Dialled)
                            .await;
                        hub
                    }
                    Link::Tls(tls, d) => {
                        let hub = d.hub;
                        let session = LeafSession::new(cfg.clone(), Rc::clone(&state), d, id);
                        run_loop::serve_conn(Rc::clone(&ctx), cid, tls, session, Door::Dialled)
                            .await;
                        hub
                    }
                };
                state.cid.set(None);
                *state.connected.borrow_mut() = None;
                state.remote.borrow_mut().clear();
                tracing::warn!(remote = %hub, "leafnode link down; reconnecting");
            }
            Err(DialError::Unreachable(e)) => {
                failed_in_a_row += 1;
                tracing::warn!(remote, error = %e, "leafnode remote unreachable");
                if failed_in_a_row < pool.len() {
                    continue; // the next remote, now
                }
                failed_in_a_row = 0;
            }
            Err(DialError::Loop) => {
                state.hold_off(LOOP_RECONNECT_DELAY);
                tracing::error!(
                    remote,
                    why = "the remote is this server itself",
                    delay_s = LOOP_RECONNECT_DELAY.as_secs(),
                    "leafnode loop detected; check [leafnode] remotes"
                );
            }
            Err(e @ DialError::Refused(_)) => {
                tracing::error!(remote, error = %e, "leafnode link refused");
            }
        }
        if ctx.stopping.get() {
            return;
        }
        let wait = state
            .hold_off
            .take()
            .unwrap_or_else(|| jittered(cfg.reconnect_delay, attempt));
        glommio::timer::sleep(wait).await;
    }
}

/// The remote for attempt `n`: a random start, then round robin.
fn pick(remotes: &[String], n: u64) -> &str {
    let start = (std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let i = (start.wrapping_add(n) % remotes.len().max(1) as u64) as usize;
    remotes.get(i).map_or("", String::as_str)
}

/// `delay` plus up to half of it, varying with `n`.
fn jittered(delay: Duration, n: u64) -> Duration {
    let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    let frac = (x >> 40) as f64 / (1u64 << 24) as f64;
    delay + delay.mul_f64(0.5 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_the_delay() {
        let d = Duration::from_secs(1);
        for n in 0..1000 {
            let j = jittered(d, n);
            assert!(j >= d && j <= d + d / 2, "{j:?}");
        }
    }

    #[test]
    fn nick_events_and_replays_stay_while_inboxes_and_sync_cross() {
        assert!(!crosses(b"$SC.IRC.NICK"));
        assert!(!crosses(b"$SC.IRC.HISTORY.NODEA.0.7.t.lobby"));
        assert!(crosses(b"$SC.IRC.USER.alice"));
        assert!(crosses(b"$SC.SYNC.ALIVE"));
        assert!(crosses(b"$SC.PRESENCE.lobby"));
        assert!(crosses(b"lobby"));
    }

    #[test]
    fn every_remote_is_tried() {
        let r: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let seen: std::collections::BTreeSet<&str> = (0..3).map(|n| pick(&r, n)).collect();
        assert_eq!(seen.len(), 3);
    }
}
