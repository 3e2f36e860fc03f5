//! What a shard knows about one client connection, whatever its front-end: its id, its
//! outbox, its wire, the options it asked for, and the little state that keepalive and
//! the flush barrier need; and what one subscription is. No socket: the transport belongs
//! to the connection's tasks, and the subscriptions to the router, so routing and fan-out
//! run in tests without either.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::auth::{DeliveryGuard, SubGuard};
use crate::close::CloseReason;
use crate::flow::Throttle;
use crate::protocol::ConnectOptions;
use crate::subject::EntryId;
use crate::wire::{Reply, Wire};
use crate::writer::Outbox;

/// Options that change how the engine treats a connection's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnFlags {
    /// Acknowledge every operation (`+OK`).
    pub verbose: bool,
    /// Report publishes to invalid subjects instead of dropping them silently.
    pub pedantic: bool,
    /// Deliver the connection's own publishes back to it.
    pub echo: bool,
    /// Answer a request nobody can receive with a 503 status.
    pub no_responders: bool,
}

impl From<&ConnectOptions> for ConnFlags {
    fn from(o: &ConnectOptions) -> Self {
        ConnFlags {
            verbose: o.verbose,
            pedantic: o.pedantic,
            echo: o.echo,
            no_responders: o.no_responders,
        }
    }
}

impl ConnFlags {
    /// No acknowledgements, no strict checks, no echo, no 503s: what connections that are
    /// not NATS clients start with (IRC, log ports, the shards' own services).
    pub const QUIET: ConnFlags = ConnFlags {
        verbose: false,
        pedantic: false,
        echo: false,
        no_responders: false,
    };
}

impl Default for ConnFlags {
    /// The engine's defaults: quiet, lenient, echo on. A front-end starts its connections
    /// with its own (a NATS client without CONNECT is verbose and pedantic).
    fn default() -> Self {
        ConnFlags {
            verbose: false,
            pedantic: false,
            echo: true,
            no_responders: false,
        }
    }
}

/// One subscription of one connection. It holds the connection's outbox and wire, not the
/// connection: that is all delivery needs.
#[derive(Debug)]
pub struct Sub {
    /// The owning connection (echo suppression, one-run-per-connection checks).
    pub cid: u64,
    pub outbox: Rc<Outbox>,
    wire: Cell<Wire>,
    /// The subscription's tag on its wire (a NATS sid).
    pub sid: Box<[u8]>,
    pub subject: Box<[u8]>,
    pub queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries; 0 means none.
    max_msgs: Cell<u64>,
    delivered: Cell<u64>,
    /// Set once the subscription is gone; stale match results skip it.
    removed: Cell<bool>,
    /// Where the subscription sits in the shard's index, while it is there.
    entry: Cell<Option<EntryId>>,
    /// What its user's permissions check on each delivery, when they do.
    guard: Option<SubGuard>,
}

impl Sub {
    pub fn new(conn: &Conn, sid: &[u8], subject: &[u8], queue: Option<&[u8]>) -> Self {
        Sub {
            cid: conn.cid,
            outbox: Rc::clone(&conn.outbox),
            wire: Cell::new(conn.wire()),
            sid: sid.into(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            max_msgs: Cell::new(0),
            delivered: Cell::new(0),
            removed: Cell::new(false),
            entry: Cell::new(None),
            guard: conn
                .guard
                .borrow()
                .as_ref()
                .and_then(|g| g.for_subscription(subject)),
        }
    }

    /// Whether its user's permissions let `m` through (always, for most subscriptions).
    #[inline]
    pub fn admits(&self, m: &crate::wire::MsgView<'_>) -> bool {
        match &self.guard {
            None => true,
            Some(g) => g.admits(m.subject, m.reply),
        }
    }

    /// Whether deliveries to it are checked one by one (no shared runs).
    pub fn is_guarded(&self) -> bool {
        self.guard.is_some()
    }

    pub fn wire(&self) -> Wire {
        self.wire.get()
    }

    /// Follows its connection's wire (the client changed its options).
    pub(crate) fn set_wire(&self, wire: Wire) {
        self.wire.set(wire);
    }

    /// Counts one delivery; returns true when it reached its auto-unsubscribe limit.
    pub fn count_delivery(&self) -> bool {
        self.count_deliveries(1)
    }

    /// Counts `n` deliveries; returns true when it reached its auto-unsubscribe limit.
    pub fn count_deliveries(&self, n: u64) -> bool {
        let d = self.delivered.get() + n;
        self.delivered.set(d);
        let max = self.max_msgs.get();
        max != 0 && d >= max
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.get()
    }

    /// The auto-unsubscribe limit (0: none).
    pub fn max_msgs(&self) -> u64 {
        self.max_msgs.get()
    }

    pub fn set_max_msgs(&self, max: u64) {
        self.max_msgs.set(max);
    }

    pub fn is_live(&self) -> bool {
        !self.removed.get() && !self.outbox.is_closing()
    }

    pub fn is_removed(&self) -> bool {
        self.removed.get()
    }

    /// Takes no more deliveries (it is leaving the index, or reached its limit).
    pub fn mark_removed(&self) {
        self.removed.set(true);
    }

    pub fn entry(&self) -> Option<EntryId> {
        self.entry.get()
    }

    pub fn set_entry(&self, entry: Option<EntryId>) {
        self.entry.set(entry);
    }
}

/// A client connection owned by one shard.
#[derive(Debug)]
pub struct Conn {
    pub cid: u64,
    pub peer: Option<SocketAddr>,
    pub outbox: Rc<Outbox>,
    wire: Cell<Wire>,
    flags: Cell<ConnFlags>,
    /// Inbound traffic since the last keepalive tick (traffic stands in for PONGs).
    pub active: Cell<bool>,
    /// Keepalive probes sent and not answered.
    pub pings_out: Cell<u32>,
    /// Flushes (NATS PINGs) answered once a cross-shard barrier completes.
    flushes_held: Cell<u32>,
    /// Something this connection did crossed to other shards since its last flush.
    cross_dirty: Cell<bool>,
    /// When it connected (wall clock, for `/connz`).
    pub started: SystemTime,
    /// When it was last read from.
    last_activity: Cell<Instant>,
    /// When the keepalive PING now unanswered was sent, and the last round trip measured.
    ping_sent: Cell<Option<Instant>>,
    rtt: Cell<Option<Duration>>,
    /// Messages and payload bytes it published.
    in_msgs: Cell<u64>,
    in_bytes: Cell<u64>,
    /// Its rate-limit buckets, and the time it spent not read because of them.
    throttle: RefCell<Throttle>,
    /// What it said about itself (NATS CONNECT name, lang, version).
    client: RefCell<ClientInfo>,
    /// It authenticated (or nothing asks it to).
    authenticated: Cell<bool>,
    /// The user it authenticated as.
    user: RefCell<Option<String>>,
    /// Its permissions' delivery-time checks, which its new subscriptions take.
    pub guard: RefCell<Option<Rc<DeliveryGuard>>>,
    /// TLS version and cipher suite, for a TLS connection.
    pub tls: RefCell<Option<(String, String)>>,
}

/// What a client says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
}

impl Conn {
    pub fn new(
        cid: u64,
        peer: Option<SocketAddr>,
        outbox: Rc<Outbox>,
        wire: Wire,
        flags: ConnFlags,
    ) -> Self {
        Conn {
            cid,
            peer,
            outbox,
            wire: Cell::new(wire),
            flags: Cell::new(flags),
            active: Cell::new(false),
            pings_out: Cell::new(0),
            flushes_held: Cell::new(0),
            cross_dirty: Cell::new(false),
            started: SystemTime::now(),
            last_activity: Cell::new(Instant::now()),
            ping_sent: Cell::new(None),
            rtt: Cell::new(None),
            in_msgs: Cell::new(0),
            in_bytes: Cell::new(0),
            throttle: RefCell::new(Throttle::default()),
            client: RefCell::new(ClientInfo::default()),
            authenticated: Cell::new(false),
            user: RefCell::new(None),
            guard: RefCell::new(None),
            tls: RefCell::new(None),
        }
    }

    /// Its address for log lines (`127.0.0.1:40112`, or `unknown`).
    pub fn peer_text(&self) -> String {
        self.peer
            .map_or_else(|| "unknown".to_string(), |p| p.to_string())
    }

    /// It authenticated as `user` (None: no users are configured).
    pub fn set_authenticated(&self, user: Option<String>) {
        self.authenticated.set(true);
        *self.user.borrow_mut() = user;
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.get()
    }

    /// The user it authenticated as.
    pub fn user(&self) -> Option<String> {
        self.user.borrow().clone()
    }

    /// It sent something at `at` (a read).
    pub fn touched(&self, at: Instant) {
        self.last_activity.set(at);
        self.active.set(true);
    }

    pub fn last_activity(&self) -> Instant {
        self.last_activity.get()
    }

    /// Its rate-limit state (shard-local; never borrowed across an await).
    pub fn throttle(&self) -> std::cell::RefMut<'_, Throttle> {
        self.throttle.borrow_mut()
    }

    /// Times it was not read because of its rate limits, and for how long in all.
    pub fn throttled(&self) -> (u64, Duration) {
        self.throttle.borrow().throttled()
    }

    /// Whether it has published anything (the memory budget pauses only publishers).
    pub fn has_published(&self) -> bool {
        self.in_msgs.get() > 0
    }

    /// It published `msgs` messages of `bytes` payload bytes.
    pub fn published(&self, msgs: u64, bytes: u64) {
        self.in_msgs.set(self.in_msgs.get() + msgs);
        self.in_bytes.set(self.in_bytes.get() + bytes);
    }

    /// Messages and payload bytes it published.
    pub fn in_totals(&self) -> (u64, u64) {
        (self.in_msgs.get(), self.in_bytes.get())
    }

    /// A keepalive PING goes out now (the first unanswered one is timed).
    pub fn ping_sent(&self, at: Instant) {
        if self.ping_sent.get().is_none() {
            self.ping_sent.set(Some(at));
        }
    }

    /// It answered the server's PINGs (a PONG) at `at`.
    pub fn pong_received(&self, at: Instant) {
        self.pings_out.set(0);
        if let Some(sent) = self.ping_sent.take() {
            self.rtt.set(Some(at.saturating_duration_since(sent)));
        }
    }

    /// The round trip of the last keepalive PING it answered.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.get()
    }

    pub fn set_client_info(&self, info: ClientInfo) {
        *self.client.borrow_mut() = info;
    }

    pub fn client_info(&self) -> ClientInfo {
        self.client.borrow().clone()
    }

    pub fn wire(&self) -> Wire {
        self.wire.get()
    }

    pub fn flags(&self) -> ConnFlags {
        self.flags.get()
    }

    /// Applies options the client sent; returns whether the wire changed (then the
    /// router moves its subscriptions to the new wire, see `Router::set_options`).
    pub(crate) fn set_options(&self, flags: ConnFlags, wire: Wire) -> bool {
        self.flags.set(flags);
        self.wire.replace(wire) != wire
    }

    /// Queues a reply encoded by this connection's wire.
    pub fn reply(&self, reply: Reply<'_>) -> bool {
        self.outbox.push_reply(self.wire(), reply)
    }

    pub fn is_closing(&self) -> bool {
        self.outbox.is_closing()
    }

    pub fn close(&self, reason: CloseReason) {
        self.outbox.close(reason);
    }

    /// Tells the client why (in its wire's words, if it has any), then closes.
    pub fn close_with(&self, reason: CloseReason) {
        self.reply(Reply::Closing(reason));
        self.outbox.close(reason);
    }

    pub fn flushes_held(&self) -> u32 {
        self.flushes_held.get()
    }

    pub(crate) fn hold_flushes(&self, n: u32) {
        self.flushes_held.set(self.flushes_held.get() + n);
    }

    pub(crate) fn release_flushes(&self, n: u32) {
        debug_assert!(
            n <= self.flushes_held.get(),
            "released more flushes than held"
        );
        self.flushes_held
            .set(self.flushes_held.get().saturating_sub(n));
    }

    pub fn is_cross_dirty(&self) -> bool {
        self.cross_dirty.get()
    }

    pub(crate) fn set_cross_dirty(&self, dirty: bool) {
        self.cross_dirty.set(dirty);
    }
}
