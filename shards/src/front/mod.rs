//! Front-ends: what the bytes of one kind of connection mean. A front-end's [`Session`]
//! greets a new connection, turns the bytes the reader collected into the engine's
//! operations (`route::Op`) and applies them through the router, and decides what a broken
//! rule costs. It encodes nothing for subscribers (its [`crate::wire::Wire`] does) and
//! routes nothing itself: a new front-end (IRC, log ingest, a leaf link) is a new module
//! here plus a wire, and `shard::run_loop` serves it like any other.

pub mod irc;
pub mod leaf;
pub mod logs;
pub mod nats;

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::auth::{Authenticator, Credentials, Identity, Refusal};
use crate::conn::{Conn, ConnFlags};
use crate::metrics::{Counter, ShardMetrics};
use crate::route::{Op, Router};
use crate::wire::{MsgView, Wire};

/// What one call of [`Session::input`] did with the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// Bytes at the front of the input that were parsed and applied.
    pub consumed: usize,
    /// Size of the operation still being received, when the front-end knows it (so the
    /// reader makes room for it at once), else 0.
    pub needed: usize,
    /// Set when the front-end stopped at a publish that does not fit the publisher's rate
    /// limits yet: how long until it does. The reader waits that long without reading,
    /// then hands the rest of the input back.
    pub throttled: Option<std::time::Duration>,
}

/// One connection's protocol state on a front-end.
pub trait Session {
    /// The wire and options a new connection of this front-end starts with.
    fn start(&self) -> (Wire, ConnFlags);

    /// Queues what the server says first (NATS: `INFO`).
    fn greet(&mut self, conn: &Rc<Conn>);

    /// Parses every complete operation at the start of `data` and applies it through
    /// `router`, stopping early if the connection starts closing.
    fn input(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        data: &[u8],
    ) -> Input;

    /// The connection is closing: last operations before its subscriptions go (IRC: the
    /// others see its QUIT).
    fn closed(&mut self, _router: &mut Router, _conn: &Rc<Conn>) {}

    /// Credentials the client presented and [`Session::input`] stopped at: the reader
    /// checks them (off the shard's thread for bcrypt, late for an address that keeps
    /// failing), hands the outcome to [`Session::authenticated`], then the rest of the
    /// input.
    fn take_credentials(&mut self) -> Option<AuthRequest> {
        None
    }

    /// The outcome of checking the credentials [`Session::take_credentials`] gave.
    fn authenticated(
        &mut self,
        _router: &mut Router,
        _metrics: &ShardMetrics,
        _conn: &Rc<Conn>,
        _outcome: Result<Identity, Refusal>,
    ) {
    }

    /// How long a new connection has to authenticate, when it must (NATS: `auth.timeout`).
    fn auth_deadline(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Counts and logs a refused login (never the secret it carried).
pub fn login_refused(metrics: &ShardMetrics, conn: &Conn, user: Option<&str>, refusal: &Refusal) {
    metrics.add(Counter::AuthFailures, 1);
    let failures = refusal.verdict.map(|v| v.failures);
    let delayed_ms = refusal.verdict.map(|v| v.delay.as_millis() as u64);
    tracing::warn!(
        cid = conn.cid,
        peer = %conn.peer_text(),
        user,
        reason = %refusal.failure,
        failures,
        delayed_ms,
        "authentication failed"
    );
    if refusal.verdict.is_some_and(|v| v.banned) {
        tracing::warn!(peer = %conn.peer_text(), "address refused for a while after repeated failed logins");
    }
}

/// Credentials to check, and the configuration to check them against (the one in force
/// when the connection arrived).
#[derive(Debug)]
pub struct AuthRequest {
    pub auth: std::sync::Arc<Authenticator>,
    pub creds: Credentials,
}

/// Publishes `payload` to `subject` from `conn`, with a reply subject and `headers` (a
/// whole NATS header block) if given, composed in a block of its own that forwards to
/// other shards share: how a front-end publishes what it made rather than read.
pub fn publish_composed(
    router: &mut Router,
    conn: &Rc<Conn>,
    subject: &str,
    reply: Option<&str>,
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let parts = Composed {
        subject: subject.as_bytes(),
        reply: reply.map(str::as_bytes),
        headers,
        payload,
    };
    let owner = parts.block();
    conn.published(1, payload.len() as u64);
    let msg = parts.view(&owner);
    router.apply(conn, Op::PublishOwned { msg, owner: &owner });
}

/// A message from the leaf link's hub, published into the local fan-out by the link:
/// plain subscriptions get it, and one member of each group in `queues`.
pub fn publish_from_hub(
    router: &mut Router,
    conn: &Rc<Conn>,
    parts: Composed<'_>,
    queues: &[&[u8]],
) {
    let owner = parts.block();
    conn.published(1, parts.payload.len() as u64);
    let msg = parts.view(&owner);
    let op = Op::PublishFromHub {
        msg,
        owner: &owner,
        queues,
    };
    router.apply(conn, op);
}

/// The parts of a message a front-end publishes, before they are put in one block.
#[derive(Debug, Clone, Copy)]
pub struct Composed<'a> {
    pub subject: &'a [u8],
    pub reply: Option<&'a [u8]>,
    /// A whole NATS header block.
    pub headers: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

impl Composed<'_> {
    /// The parts back to back (`[subject][reply][headers][payload]`): forwards to other
    /// shards share the block.
    fn block(&self) -> Bytes {
        let len = self.subject.len()
            + self.reply.map_or(0, <[u8]>::len)
            + self.headers.map_or(0, <[u8]>::len)
            + self.payload.len();
        let mut block = BytesMut::with_capacity(len);
        block.put_slice(self.subject);
        if let Some(r) = self.reply {
            block.put_slice(r);
        }
        if let Some(h) = self.headers {
            block.put_slice(h);
        }
        block.put_slice(self.payload);
        block.freeze()
    }

    /// The message as it lies in `owner`, [`Composed::block`]'s result.
    fn view<'o>(&self, owner: &'o Bytes) -> MsgView<'o> {
        let s = self.subject.len();
        let r = self.reply.map_or(0, <[u8]>::len);
        MsgView {
            subject: &owner[..s],
            reply: self.reply.map(|_| &owner[s..s + r]),
            header_len: self.headers.map(<[u8]>::len),
            body: &owner[s + r..],
        }
    }
}

/// Publishes the same `headers` and `payload` to each of `subjects` from `conn`, from one
/// block holding the subjects and the message once (`[subject…][headers][payload]`), so
/// a message that goes to several subjects is composed once, not once per subject.
pub fn publish_to_each(
    router: &mut Router,
    conn: &Rc<Conn>,
    subjects: &[String],
    headers: Option<&[u8]>,
    payload: &[u8],
) {
    let names: usize = subjects.iter().map(String::len).sum();
    let header_len = headers.map_or(0, <[u8]>::len);
    let mut block = BytesMut::with_capacity(names + header_len + payload.len());
    for s in subjects {
        block.put_slice(s.as_bytes());
    }
    if let Some(h) = headers {
        block.put_slice(h);
    }
    block.put_slice(payload);
    let owner: Bytes = block.freeze();
    let mut at = 0;
    for s in subjects {
        let msg = MsgView {
            subject: &owner[at..at + s.len()],
            reply: None,
            header_len: headers.map(<[u8]>::len),
            body: &owner[names..],
        };
        at += s.len();
        conn.published(1, payload.len() as u64);
        router.apply(conn, Op::PublishOwned { msg, owner: &owner });
    }
}
