//! The IRC front-end: people in IRC clients (or `nc`) on the same subjects as NATS
//! clients. A session registers its user (CAP, NICK, USER), then turns channel commands
//! into the engine's operations: `JOIN #room.lobby` subscribes to `room.lobby` (tagged
//! with the channel's name, so the IRC wire shows deliveries as `PRIVMSG #room.lobby`),
//! `PRIVMSG #room.lobby :hi` publishes `hi` to `room.lobby` with the author in a header,
//! and presence (joins, parts, quits, nick changes) is published as JSON on
//! `$SC.PRESENCE.<subject>` for every member's wire to show. So IRC traffic crosses
//! shards over the rings like NATS traffic; nothing here routes.
//!
//! [`line`](mod@line) splits the input into lines, [`names`] says which nicks and channels are
//! valid and maps channels to subjects, [`replies`] writes numerics, [`presence`] is the
//! JSON of presence events, and [`commands`] applies each command.

pub mod cap;
pub mod commands;
pub mod line;
pub mod login;
pub mod names;
pub mod nodes;
pub mod presence;
pub mod publish;
pub mod queries;
pub mod replies;
pub mod service;
pub mod timeouts;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::close::CloseReason;
use crate::conn::{ClientInfo, Conn, ConnFlags};
use crate::flow::Bucket;
use crate::front::{Input, Session};
use crate::metrics::ShardMetrics;
use crate::route::Router;
use crate::wire::Wire;
use line::{next_line, skip_rest, Scan};
use names::Channel;
use replies::Out;

/// The IRC listener's settings (the `[irc]` section, with defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcSettings {
    /// The source of server lines and numerics.
    pub server_name: String,
    /// Shown by clients as the network's name (005 `NETWORK`).
    pub network: String,
    /// When the server started, for 003, and as Unix seconds for 329.
    pub created: String,
    pub created_unix: u64,
    pub nick_len_max: usize,
    /// Including the `#`.
    pub channel_len_max: usize,
    pub topic_len_max: usize,
    pub channels_per_user_max: usize,
    /// Members one channel may have (as this shard's copy counts them).
    pub members_per_channel_max: usize,
    /// How long a connection may take to register.
    pub registration_timeout: std::time::Duration,
    /// How long a registered user may send nothing but keepalive and queries (zero: no
    /// limit).
    pub idle_timeout: std::time::Duration,
    /// Lines per second a connection may send on average (queries and PING/PONG are
    /// free), `flood_burst` at once; more are delayed.
    pub flood_lines_per_sec: u64,
    pub flood_burst: u64,
    /// Lines that may wait for their turn; one more closes with `Excess Flood`.
    pub flood_queued_max: usize,
}

impl Default for IrcSettings {
    fn default() -> Self {
        IrcSettings {
            server_name: "shardcast".into(),
            network: "shardcast".into(),
            created: String::new(),
            created_unix: 0,
            nick_len_max: 30,
            channel_len_max: 64,
            topic_len_max: presence::TOPIC_BYTES_MAX,
            channels_per_user_max: 50,
            members_per_channel_max: 10_000,
            registration_timeout: std::time::Duration::from_secs(60),
            idle_timeout: std::time::Duration::ZERO,
            flood_lines_per_sec: 10,
            flood_burst: 20,
            flood_queued_max: 100,
        }
    }
}

/// A channel member on this shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
}

impl Member {
    pub fn mask(&self) -> String {
        format!("{}!{}@{}", self.nick, self.user, self.host)
    }

    /// The member a `nick!user@host` mask names.
    pub fn from_mask(mask: &str, realname: String) -> Option<Member> {
        let (nick, rest) = mask.split_once('!')?;
        let (user, host) = rest.split_once('@')?;
        Some(Member {
            nick: nick.to_string(),
            user: user.to_string(),
            host: host.to_string(),
            realname,
        })
    }
}

/// A channel's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub text: String,
    /// The nick that set it.
    pub setter: String,
    /// When, in Unix seconds.
    pub set_at: u64,
}

/// Who holds a nick: a connection on a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub shard: usize,
    pub cid: u64,
}

/// What the IRC sessions of one shard share: the settings, and this shard's copy of the
/// nicks in use and of who is on which channel, on every shard (kept by [`service`]).
#[derive(Debug, Default)]
pub struct IrcShard {
    pub settings: IrcSettings,
    /// This shard's id.
    pub shard: usize,
    /// This node's id (the server id), in presence events.
    pub node: String,
    /// Nicks in use on any shard, by key (lower case), with who holds each.
    nicks: RefCell<FxHashMap<String, Holder>>,
    /// Members of each channel on any shard: subject → nick key → member.
    members: RefCell<BTreeMap<String, BTreeMap<String, Member>>>,
    /// Topics of channels with members (a channel's topic goes with its last member).
    topics: RefCell<FxHashMap<String, Topic>>,
    /// History is kept: a JOIN asks for the channel's.
    pub history: bool,
    /// What this shard's connections last did, for the timeouts.
    pub activity: timeouts::Activities,
}

impl IrcShard {
    pub fn new(settings: IrcSettings, shard: usize, node: &str, history: bool) -> Self {
        IrcShard {
            settings,
            shard,
            node: node.to_string(),
            history,
            ..IrcShard::default()
        }
    }

    /// Takes `key` for connection `cid` of this shard; false if anyone else holds it.
    /// The caller publishes the claim ([`service::NickEvent::Claim`]).
    pub fn claim_nick(&self, key: &str, cid: u64) -> bool {
        let me = Holder {
            shard: self.shard,
            cid,
        };
        let mut nicks = self.nicks.borrow_mut();
        match nicks.get(key) {
            Some(&holder) => holder == me,
            None => {
                nicks.insert(key.to_string(), me);
                true
            }
        }
    }

    /// Gives `key` up, if connection `cid` of this shard holds it; true if it did.
    pub fn release_nick(&self, key: &str, cid: u64) -> bool {
        self.clear_holder(
            key,
            Holder {
                shard: self.shard,
                cid,
            },
        )
    }

    pub fn holder(&self, key: &str) -> Option<Holder> {
        self.nicks.borrow().get(key).copied()
    }

    pub fn set_holder(&self, key: &str, holder: Holder) {
        self.nicks.borrow_mut().insert(key.to_string(), holder);
    }

    /// Removes `key` if `holder` holds it; true if it did.
    pub fn clear_holder(&self, key: &str, holder: Holder) -> bool {
        let mut nicks = self.nicks.borrow_mut();
        if nicks.get(key) == Some(&holder) {
            nicks.remove(key);
            return true;
        }
        false
    }

    pub(crate) fn add_member(&self, subject: &str, member: Member) {
        self.members
            .borrow_mut()
            .entry(subject.to_string())
            .or_default()
            .insert(names::nick_key(&member.nick), member);
    }

    pub(crate) fn remove_member(&self, subject: &str, nick: &str) {
        let mut members = self.members.borrow_mut();
        if let Some(m) = members.get_mut(subject) {
            m.remove(&names::nick_key(nick));
            if m.is_empty() {
                members.remove(subject);
                self.topics.borrow_mut().remove(subject);
            }
        }
    }

    pub fn topic_of(&self, subject: &str) -> Option<Topic> {
        self.topics.borrow().get(subject).cloned()
    }

    /// Sets (or, with an empty text, clears) `subject`'s topic.
    pub(crate) fn set_topic(&self, subject: &str, topic: Topic) {
        let mut topics = self.topics.borrow_mut();
        if topic.text.is_empty() {
            topics.remove(subject);
        } else if self.members.borrow().contains_key(subject) {
            topics.insert(subject.to_string(), topic);
        }
    }

    /// What this shard knows of the user with nick key `key`, if anyone has that nick:
    /// their member entry (None if they are on no channel) and their channels.
    pub fn whois(&self, key: &str) -> Option<(Option<Member>, Vec<String>)> {
        self.nicks.borrow().get(key)?;
        let mut member = None;
        let mut channels = Vec::new();
        for (subject, members) in self.members.borrow().iter() {
            if let Some(m) = members.get(key) {
                member.get_or_insert_with(|| m.clone());
                channels.push(format!("#{subject}"));
            }
        }
        Some((member, channels))
    }

    /// How many members `subject`'s channel has (this shard's copy).
    pub fn member_count(&self, subject: &str) -> usize {
        self.members.borrow().get(subject).map_or(0, BTreeMap::len)
    }

    /// The members of `subject`'s channel on this shard, sorted by nick key.
    pub fn members_of(&self, subject: &str) -> Vec<Member> {
        self.members
            .borrow()
            .get(subject)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Channels with members on this shard, with their member counts.
    pub fn channels(&self) -> Vec<(String, usize)> {
        self.members
            .borrow()
            .iter()
            .map(|(s, m)| (s.clone(), m.len()))
            .collect()
    }
}

/// One IRC connection's protocol state.
#[derive(Debug)]
pub struct IrcSession {
    shard: Rc<IrcShard>,
    nick: Option<String>,
    /// `~` and the user name USER gave.
    user: Option<String>,
    realname: String,
    host: String,
    registered: bool,
    /// CAP LS was sent: registration waits for CAP END.
    cap_negotiating: bool,
    server_time: bool,
    away: bool,
    joined: BTreeSet<Channel>,
    /// Dropping the rest of an over-long line.
    skipping: bool,
    /// The flood limit: lines that cost (see [`commands::costs`]) take a token each.
    flood: Bucket,
    out: Out,
    /// Logging in with the server's users (PASS, SASL) and the permissions it gave.
    login: login::Login,
}

impl IrcSession {
    pub fn new(shard: Rc<IrcShard>, auth: std::sync::Arc<crate::auth::Authenticator>) -> Self {
        IrcSession {
            login: login::Login::new(auth),
            nick: None,
            user: None,
            realname: String::new(),
            host: "unknown".into(),
            registered: false,
            cap_negotiating: false,
            server_time: false,
            away: false,
            joined: BTreeSet::new(),
            skipping: false,
            flood: Bucket::new(
                shard.settings.flood_lines_per_sec,
                shard.settings.flood_burst,
                std::time::Instant::now(),
            ),
            out: Out::default(),
            shard,
        }
    }

    fn settings(&self) -> &IrcSettings {
        &self.shard.settings
    }

    /// The nick numerics address: the client's, or `*` before it has one.
    fn target(&self) -> String {
        self.nick.clone().unwrap_or_else(|| "*".into())
    }

    fn member(&self) -> Member {
        Member {
            nick: self.target(),
            user: self.user.clone().unwrap_or_else(|| "~unknown".into()),
            host: self.host.clone(),
            realname: self.realname.clone(),
        }
    }

    fn mask(&self) -> String {
        self.member().mask()
    }

    /// Queues a numeric to this client.
    fn numeric(&mut self, code: &str, params: &[&str], trailing: &str) {
        let nick = self.target();
        let shard = Rc::clone(&self.shard);
        self.out
            .numeric(&shard.settings, code, &nick, params, trailing);
    }

    /// Registration completes once NICK and USER are in and CAP negotiation (if any)
    /// has ended.
    fn try_register(&mut self, conn: &Rc<Conn>, router: &mut Router) {
        if self.registered || self.cap_negotiating {
            return;
        }
        let (Some(nick), Some(_)) = (self.nick.clone(), self.user.as_ref()) else {
            return;
        };
        if !self.login.is_done() {
            // The reader checks the credentials, then calls back (`login::outcome`).
            self.login.check_pass(&nick);
            return;
        }
        self.registered = true;
        self.shard
            .activity
            .registered(conn.cid, std::time::Instant::now());
        let mask = self.mask();
        let shard = Rc::clone(&self.shard);
        self.out.welcome(&shard.settings, &nick, &mask);
        conn.set_client_info(ClientInfo {
            name: Some(nick.clone()),
            lang: Some("irc".into()),
            version: None,
        });
        commands::subscribe_inbox(router, conn, &nick);
    }

    /// Over the flood limit: the rest of the input waits `wait` (the socket is not read
    /// meanwhile), unless too many lines are waiting already.
    fn flood_wait(
        &mut self,
        conn: &Rc<Conn>,
        rest: &[u8],
        consumed: usize,
        wait: std::time::Duration,
    ) -> Input {
        self.flush_out(conn);
        let waiting = rest.iter().filter(|&&b| b == b'\n').count();
        if waiting > self.settings().flood_queued_max {
            conn.close_with(CloseReason::ExcessFlood);
            return Input {
                consumed: consumed + rest.len(),
                needed: 0,
                throttled: None,
            };
        }
        Input {
            consumed,
            needed: 0,
            throttled: Some(wait),
        }
    }

    /// Sends what was queued to the client.
    fn flush_out(&mut self, conn: &Rc<Conn>) {
        if !self.out.is_empty() {
            let bytes = self.out.take();
            conn.outbox.push_control(&bytes);
        }
    }
}

impl Session for IrcSession {
    fn start(&self) -> (Wire, ConnFlags) {
        // A person does not get their own lines back; the rest of the NATS options have
        // no IRC meaning.
        let flags = ConnFlags::QUIET;
        (Wire::Irc, flags)
    }

    fn greet(&mut self, conn: &Rc<Conn>) {
        // The server speaks only when spoken to; the client's address names its host.
        if let Some(peer) = conn.peer {
            self.host = peer.ip().to_string();
        }
        // After the dropped backlog, the last line written may be cut: end it first.
        let farewell = format!("\r\nERROR :Closing Link: {} (Slow consumer)\r\n", self.host);
        conn.outbox.set_farewell(farewell.as_bytes());
        self.shard
            .activity
            .connected(conn.cid, std::time::Instant::now());
    }

    fn input(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        data: &[u8],
    ) -> Input {
        let mut consumed = 0;
        while consumed < data.len() && !conn.is_closing() {
            let rest = &data[consumed..];
            if self.skipping {
                let (n, ended) = skip_rest(rest);
                consumed += n;
                if ended {
                    self.skipping = false;
                    self.numeric("417", &[], "Input line was too long");
                }
                continue;
            }
            match next_line(rest) {
                Scan::Line(line, n) => {
                    if commands::costs(&line) {
                        let now = std::time::Instant::now();
                        let wait = self.flood.wait_for(1, now, 1.0);
                        if !wait.is_zero() {
                            return self.flood_wait(conn, rest, consumed, wait);
                        }
                        self.flood.take(1);
                        self.shard.activity.spoke(conn.cid, now);
                    }
                    commands::apply(self, router, metrics, conn, &line);
                    consumed += n;
                    if self.login.is_pending() {
                        // Nothing more until the credentials are checked.
                        break;
                    }
                }
                Scan::Blank(n) => consumed += n,
                Scan::NeedMore => break,
                Scan::TooLong(n) => {
                    consumed += n;
                    if rest[..n].ends_with(b"\n") {
                        self.numeric("417", &[], "Input line was too long");
                    } else {
                        self.skipping = true;
                    }
                }
            }
            self.flush_out(conn);
        }
        self.flush_out(conn);
        Input {
            consumed,
            needed: 0,
            throttled: None,
        }
    }

    fn take_credentials(&mut self) -> Option<crate::front::AuthRequest> {
        self.login.request()
    }

    fn authenticated(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        outcome: Result<crate::auth::Identity, crate::auth::Refusal>,
    ) {
        login::outcome(self, router, metrics, conn, outcome);
    }

    fn closed(&mut self, router: &mut Router, conn: &Rc<Conn>) {
        let reason = match conn.outbox.close_reason() {
            Some(r) if r.is_slow_consumer() => "Slow consumer",
            Some(CloseReason::StaleConnection) => "Ping timeout",
            Some(CloseReason::ExcessFlood) => "Excess Flood",
            Some(CloseReason::IdleTimeout) => "Idle timeout",
            _ => "Connection closed",
        };
        self.shard.activity.closed(conn.cid);
        commands::leave_all(self, router, conn, reason);
    }
}
