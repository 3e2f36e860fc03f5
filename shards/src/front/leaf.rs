//! The leaf link's side of the leafnode protocol, as a solicited leaf: the hub's INFO (read
//! by [`crate::leaf`] when it dials, before TLS) is answered with a leaf CONNECT and a
//! PING; PING gets PONG; `-ERR` is logged and ends the
//! connection (the link reconnects).
//!
//! The hub's interest (`LS+`/`LS-`) becomes the link connection's own subscriptions (its
//! sid is the interest's key), so a local publish on any shard that someone behind the
//! hub wants reaches the link like any subscriber, and goes up as one `LMSG`/`HMSG`
//! ([`crate::wire::leaf`]). The hub's messages (`LMSG`/`HMSG`) are published into the
//! local fan-out by the link connection (never back up: it has no echo). The node's own
//! interest goes up through [`crate::route::watch`]. The hub's queue group `q` becomes the
//! link's group `$sc.leaf.q`, used only when the node has no member of `q`
//! ([`crate::route::Scope`]); an LMSG's queue list names the node's groups that may take
//! it, and an LMSG without one reaches plain subscriptions only, as in nats-server.
//!
//! Loops: our `$LDS.<server id>` interest coming back from the hub, or a hub that is this
//! server, is a loop (`-ERR 'Loop detected'`, link dropped, 30 s before the next attempt);
//! so is the hub's own `Loop detected` error.

use std::net::SocketAddr;
use std::rc::Rc;

use crate::close::CloseReason;
use crate::conn::{Conn, ConnFlags};
use crate::front::{Input, Session};
use crate::leaf::{LeafConfig, LinkState, RemoteKey, LOOP_RECONNECT_DELAY, REMOTE_INTEREST_MAX};
use crate::metrics::ShardMetrics;
use crate::protocol::leaf_ops::{parse_leaf_op, LeafDelivery, LeafOp, LeafParsed};
use crate::protocol::{ProtoError, ServerOp};
use crate::route::{Op, Router, LINK_QUEUE_PREFIX};
use crate::subject::pattern::intersect;
use crate::subject::pattern_matches;
use crate::wire::Wire;

/// The longest line the hub may send (INFO carries the cluster's URLs).
const LINE_BYTES_MAX: usize = 64 * 1024;

/// One connection of the leaf link.
#[derive(Debug)]
pub struct LeafSession {
    cfg: LeafConfig,
    state: Rc<LinkState>,
    hub: SocketAddr,
    server_id: String,
    /// The hub's INFO, read before the session began (TLS may follow it).
    info: serde_json::Value,
    /// The link runs over TLS.
    tls: bool,
    /// The node's interest is written to this connection (from its first input on).
    attached: bool,
    /// The last sid given to one of the link's subscriptions.
    next_sid: u64,
}

/// Where one connection of the link goes, and what the hub said first.
#[derive(Debug)]
pub struct Dialled {
    pub hub: SocketAddr,
    /// The hub's INFO.
    pub info: serde_json::Value,
    pub tls: bool,
}

impl LeafSession {
    pub fn new(cfg: LeafConfig, state: Rc<LinkState>, dialled: Dialled, server_id: String) -> Self {
        LeafSession {
            cfg,
            state,
            hub: dialled.hub,
            server_id,
            info: dialled.info,
            tls: dialled.tls,
            attached: false,
            next_sid: 0,
        }
    }

    /// The subject this node advertises so that a cycle of leaf links shows (`$LDS.<id>`).
    fn loop_subject(&self) -> String {
        format!("$LDS.{}", self.server_id)
    }

    /// A loop: tell the hub, drop the link, and wait [`LOOP_RECONNECT_DELAY`] before the
    /// next attempt, as nats-server does.
    fn loop_detected(&mut self, conn: &Rc<Conn>, why: &str) {
        self.state.hold_off(LOOP_RECONNECT_DELAY);
        tracing::error!(hub = %self.hub, why, delay_s = LOOP_RECONNECT_DELAY.as_secs(), "leafnode loop detected; check [leafnode] remotes");
        conn.outbox.push_control(b"-ERR 'Loop detected'\r\n");
        conn.close(CloseReason::Protocol(ProtoError::BadArguments(
            "leafnode loop",
        )));
    }

    /// The leaf CONNECT: who we are, and our credentials (never logged).
    fn connect_line(&self) -> Vec<u8> {
        let mut o = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "tls": self.tls,
            "id": self.server_id,
            "name": self.cfg.name,
            "hub": false,
            "headers": true,
            "jetstream": false,
        });
        if let Some(map) = o.as_object_mut() {
            if let Some(u) = &self.cfg.user {
                map.insert("user".into(), u.as_str().into());
            }
            if let Some(p) = &self.cfg.password {
                map.insert("pass".into(), p.as_str().into());
            }
            if let Some(t) = &self.cfg.token {
                map.insert("auth_token".into(), t.as_str().into());
            }
        }
        let mut line = b"CONNECT ".to_vec();
        line.extend_from_slice(o.to_string().as_bytes());
        line.extend_from_slice(b"\r\nPING\r\n");
        line
    }

    /// The hub's interest in `subject` (and `queue`) appeared (`weight`: Some) or went.
    fn interest(
        &mut self,
        router: &mut Router,
        conn: &Rc<Conn>,
        subject: &[u8],
        queue: Option<&[u8]>,
        weight: Option<u32>,
    ) {
        let key = match queue {
            Some(q) => format!(
                "{} {}",
                String::from_utf8_lossy(subject),
                String::from_utf8_lossy(q)
            ),
            None => String::from_utf8_lossy(subject).into_owned(),
        };
        if weight.is_some() && subject == self.loop_subject().as_bytes() {
            // Our own interest came back round: the hubs form a cycle through us.
            self.loop_detected(conn, "our loop-detection subject came back from the hub");
            return;
        }
        // The hub's group `q` is joined as `$sc.leaf.q`: it backs up the node's own
        // members of `q`, never competes with them.
        let group = queue.map(|q| [LINK_QUEUE_PREFIX, q].concat());
        let mut remote = self.state.remote.borrow_mut();
        let Some(weight) = weight else {
            for sid in remote.remove(&key).map(|k| k.sids).unwrap_or_default() {
                let op = Op::Unsubscribe {
                    sid: &sid,
                    max_msgs: None,
                };
                router.apply(conn, op);
            }
            return;
        };
        if let Some(known) = remote.get_mut(&key) {
            known.weight = weight; // a queue key's new member count
        } else if remote.len() < REMOTE_INTEREST_MAX {
            // What may go up: the hub's interest within `export` (all of it when `export`
            // is empty), one subscription per overlap.
            let mut subjects = exported(&self.cfg.export, subject);
            subjects.dedup();
            let mut sids = Vec::with_capacity(subjects.len());
            for s in &subjects {
                self.next_sid += 1;
                let sid: Box<[u8]> = itoa::Buffer::new().format(self.next_sid).as_bytes().into();
                let op = Op::Subscribe {
                    sid: &sid,
                    subject: s,
                    queue: group.as_deref(),
                };
                router.apply(conn, op);
                sids.push(sid);
            }
            remote.insert(key, RemoteKey { weight, sids });
        } else {
            self.state
                .interest_dropped
                .set(self.state.interest_dropped.get() + 1);
        }
    }

    /// A message from the hub: into the local fan-out as the link's own publish (plain
    /// subscriptions and the groups the hub listed; never back up the link).
    fn message(&mut self, router: &mut Router, conn: &Rc<Conn>, d: &LeafDelivery<'_>) {
        if !imported(&self.cfg.import, d.subject) || !crate::leaf::crosses(d.subject) {
            // Not ours to take (the hub should not have sent it): counted.
            self.state.filtered.set(self.state.filtered.get() + 1);
            return;
        }
        let parts = crate::front::Composed {
            subject: d.subject,
            reply: d.reply,
            headers: d.headers,
            payload: d.payload,
        };
        crate::front::publish_from_hub(router, conn, parts, &d.queues);
    }

    /// The operations a client connection also gets.
    fn server_op(&mut self, conn: &Rc<Conn>, op: ServerOp<'_>) {
        match op {
            ServerOp::Info(json) => {
                let info: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
                self.state.learn(&info);
            }
            ServerOp::Ok => {}
            ServerOp::Ping => {
                conn.outbox.push_control(b"PONG\r\n");
            }
            ServerOp::Pong => conn.pong_received(std::time::Instant::now()),
            ServerOp::Err(text) => {
                let text = String::from_utf8_lossy(text);
                if text.contains("Loop detected") {
                    self.state.hold_off(LOOP_RECONNECT_DELAY);
                    tracing::error!(hub = %self.hub, error = %text, delay_s = LOOP_RECONNECT_DELAY.as_secs(), "leafnode hub detected a loop through this node; check the hubs' leafnode remotes");
                } else {
                    tracing::error!(hub = %self.hub, error = %text, "leafnode hub refused the link");
                }
                conn.close(CloseReason::ClientClosed);
            }
            ServerOp::Msg(_) => {
                // parse_leaf_op never gives a client's MSG.
                conn.close(CloseReason::Protocol(ProtoError::UnknownOp));
            }
        }
    }
}

impl Session for LeafSession {
    fn start(&self) -> (Wire, ConnFlags) {
        // Never gets back what it publishes (messages from the hub go nowhere upstream).
        (Wire::Leaf, ConnFlags::QUIET)
    }

    fn greet(&mut self, conn: &Rc<Conn>) {
        // The hub spoke first (its INFO, read when the link was dialled): CONNECT now; the
        // node's interest follows on the first input (the PONG).
        conn.outbox.push_control(&self.connect_line());
        *self.state.connected.borrow_mut() = Some(self.hub);
        self.state.connects.set(self.state.connects.get() + 1);
        self.state.learn(&self.info);
        tracing::info!(
            hub = %self.hub,
            hub_name = self.info["server_name"].as_str().unwrap_or(""),
            cluster = self.info["cluster"].as_str().unwrap_or(""),
            tls = self.tls,
            "leafnode link up"
        );
    }

    fn input(
        &mut self,
        router: &mut Router,
        _metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        data: &[u8],
    ) -> Input {
        if !self.attached {
            // Our interest: the whole table now, every change from now on.
            self.attached = true;
            if let Some(w) = &mut router.watch {
                w.attach(conn.cid, Rc::clone(&conn.outbox));
            }
        }
        let mut consumed = 0;
        let mut needed = 0;
        while consumed < data.len() && !conn.is_closing() {
            let rest = &data[consumed..];
            match parse_leaf_op(rest, LINE_BYTES_MAX, LEAF_MSG_BYTES_MAX) {
                Ok(LeafParsed::Op { op, consumed: n }) => {
                    consumed += n;
                    match op {
                        LeafOp::Msg(d) => self.message(router, conn, &d),
                        LeafOp::Interest {
                            subject,
                            queue,
                            weight,
                        } => self.interest(router, conn, subject, queue, Some(weight)),
                        LeafOp::NoInterest { subject, queue } => {
                            self.interest(router, conn, subject, queue, None)
                        }
                        LeafOp::Server(op) => self.server_op(conn, op),
                    }
                }
                Ok(LeafParsed::NeedMore { needed_bytes }) => {
                    needed = needed_bytes;
                    break;
                }
                Err(e) => {
                    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
                    let shown = String::from_utf8_lossy(&line[..line.len().min(80)]);
                    if e == ProtoError::UnknownOp {
                        tracing::warn!(hub = %self.hub, line = %shown, "leafnode: unknown operation from the hub");
                    } else {
                        tracing::warn!(hub = %self.hub, line = %shown, error = %e, "leafnode: a malformed operation from the hub");
                    }
                    conn.close(CloseReason::Protocol(e));
                    break;
                }
            }
        }
        Input {
            consumed,
            needed,
            throttled: None,
        }
    }

    fn closed(&mut self, router: &mut Router, _conn: &Rc<Conn>) {
        if let Some(w) = &mut router.watch {
            w.detach();
        }
    }
}

/// The largest message the hub may send (nats-server's own ceiling is 64 MiB).
const LEAF_MSG_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The parts of the hub's interest `subject` that `export` lets up: all of it when
/// `export` is empty, else its overlap with each entry.
fn exported(export: &[String], subject: &[u8]) -> Vec<Vec<u8>> {
    if export.is_empty() {
        return vec![subject.to_vec()];
    }
    export
        .iter()
        .filter_map(|e| intersect(e.as_bytes(), subject))
        .collect()
}

/// Whether a message on `subject` from the hub may come in (`import` empty: all may).
fn imported(import: &[String], subject: &[u8]) -> bool {
    import.is_empty()
        || import
            .iter()
            .any(|i| pattern_matches(i.as_bytes(), subject))
}
