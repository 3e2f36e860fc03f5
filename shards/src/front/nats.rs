//! The NATS client front-end: `INFO` on connect, then every client operation the parser
//! finds turned into the engine's: PUB/HPUB → publish, SUB → subscribe, UNSUB →
//! unsubscribe, PING → flush. CONNECT sets the connection's options (and its wire: headers
//! or not), PONG answers a keepalive, and a protocol error closes with nats-server's
//! `-ERR` text.
//!
//! When auth is on, CONNECT must come first and carry good credentials (else
//! `Authorization Violation` and close); the user's permissions then decide each PUB and
//! SUB, with nats-server's `Permissions Violation` texts (the connection stays open).

use std::rc::Rc;
use std::sync::Arc;

use crate::auth::{
    Authenticator, Credentials, DeliveryGuard, Identity, Permissions, PublishCache, Refusal,
};
use crate::close::CloseReason;
use crate::conn::ClientInfo;
use crate::conn::{Conn, ConnFlags};
use crate::front::{AuthRequest, Input, Session};
use crate::metrics::{Counter, ShardMetrics};
use crate::protocol::info::encode_info;
use crate::protocol::{self, Op as NatsOp, Parsed, Parser, ServerInfo};
use crate::route::{Op, PubSpans, Router};
use crate::trace;
use crate::wire::{MsgView, Reply, Wire};

/// A NATS client's options until its CONNECT says otherwise: those of an empty CONNECT,
/// as in nats-server (verbose, pedantic, echo, no headers).
pub fn defaults() -> (Wire, ConnFlags) {
    let opts = protocol::ConnectOptions::default();
    let wire = Wire::Nats {
        headers: opts.headers,
    };
    (wire, ConnFlags::from(&opts))
}

/// One NATS client connection's protocol state.
#[derive(Debug)]
pub struct NatsSession {
    parser: Parser,
    /// The server's part of `INFO`; the client's id and address are filled in per client.
    info: Rc<ServerInfo>,
    /// The credentials in force when the client connected.
    auth: Arc<Authenticator>,
    /// A CONNECT whose credentials wait to be checked.
    pending: Option<protocol::ConnectOptions>,
    /// The user's permissions (None: everything allowed).
    perms: Option<Arc<Permissions>>,
    /// Publish verdicts per subject.
    cache: PublishCache,
    /// INFO went out before the TLS handshake: `greet` has nothing to send.
    greeted: bool,
    /// The verified client certificate's names, when `tls.verify_and_map` maps them to
    /// users.
    cert_names: Vec<String>,
}

impl NatsSession {
    pub fn new(
        info: Rc<ServerInfo>,
        control_line_bytes_max: usize,
        auth: Arc<Authenticator>,
    ) -> Self {
        let parser = Parser::new(control_line_bytes_max, info.max_payload);
        NatsSession {
            parser,
            info,
            auth,
            pending: None,
            perms: None,
            cache: PublishCache::default(),
            greeted: false,
            cert_names: Vec::new(),
        }
    }

    /// The INFO line client `cid` at `peer` gets.
    pub fn info_line(&self, cid: u64, peer: Option<std::net::SocketAddr>) -> Vec<u8> {
        let info = ServerInfo {
            client_id: cid,
            client_ip: peer.map(|p| p.ip().to_string()),
            auth_required: self.auth.required() || self.info.tls_verify,
            ..(*self.info).clone()
        };
        let mut line = Vec::with_capacity(320);
        encode_info(&mut line, &info);
        line
    }

    /// INFO was sent already (before the TLS handshake).
    pub fn greeted(mut self) -> Self {
        self.greeted = true;
        self
    }

    /// The client certificate named these (`tls.verify_and_map`).
    pub fn with_cert_names(mut self, names: Vec<String>) -> Self {
        self.cert_names = names;
        self
    }

    /// Puts the options of an accepted CONNECT in force.
    fn connected(router: &mut Router, conn: &Rc<Conn>, opts: protocol::ConnectOptions) {
        let wire = Wire::Nats {
            headers: opts.headers,
        };
        router.set_options(conn, ConnFlags::from(&opts), wire);
        conn.set_client_info(ClientInfo {
            name: opts.name,
            lang: opts.lang,
            version: opts.version,
        });
        if opts.verbose {
            conn.reply(Reply::Ok);
        }
    }

    /// Whether the user may publish to `subject`; tells the client if not.
    fn may_publish(&mut self, metrics: &ShardMetrics, conn: &Conn, subject: &[u8]) -> bool {
        let Some(rules) = self.perms.as_ref().and_then(|p| p.publish.as_ref()) else {
            return true;
        };
        if self.cache.allows(rules, subject) {
            return true;
        }
        let replied = conn
            .guard
            .borrow()
            .as_ref()
            .and_then(|g| g.replies().map(|r| r.take(subject)));
        if replied == Some(true) {
            return true;
        }
        let text = format!("Permissions Violation for Publish to {}", quoted(subject));
        violation(metrics, conn, &text);
        false
    }

    /// Whether the user may subscribe to `subject` in `queue`; tells the client if not.
    fn may_subscribe(
        &self,
        metrics: &ShardMetrics,
        conn: &Conn,
        subject: &[u8],
        queue: Option<&[u8]>,
    ) -> bool {
        let Some(perms) = &self.perms else {
            return true;
        };
        if perms.can_subscribe(subject, queue) {
            return true;
        }
        let mut text = format!(
            "Permissions Violation for Subscription to {}",
            quoted(subject)
        );
        if let Some(q) = queue {
            text.push_str(&format!(" using queue {}", quoted(q)));
        }
        violation(metrics, conn, &text);
        false
    }

    /// Applies one parsed client operation.
    fn apply(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        base: &[u8],
        op: NatsOp<'_>,
    ) {
        let op = match op {
            NatsOp::Connect(json) => {
                return match protocol::connect::parse_connect(json) {
                    // Checked by the reader before any further input (`take_credentials`).
                    Ok(opts) if self.auth.required() => self.pending = Some(opts),
                    Ok(opts) => NatsSession::connected(router, conn, opts),
                    Err(e) => close_for(metrics, conn, CloseReason::Protocol(e)),
                };
            }
            _ if self.auth.required() && !conn.is_authenticated() => {
                // Before a good CONNECT, nothing else is allowed.
                metrics.add(Counter::AuthFailures, 1);
                tracing::warn!(cid = conn.cid, peer = %conn.peer_text(), "authorization violation: an operation before CONNECT");
                return conn.close_with(CloseReason::AuthViolation);
            }
            NatsOp::Pong => return conn.pong_received(std::time::Instant::now()),
            NatsOp::Info | NatsOp::Ok | NatsOp::Err => return,
            NatsOp::Pub(p) => {
                metrics.add(Counter::MsgsIn, 1);
                metrics.add(Counter::BytesIn, p.body.len() as u64);
                conn.published(1, p.body.len() as u64);
                if !self.may_publish(metrics, conn, p.subject) {
                    return;
                }
                let msg = MsgView {
                    subject: p.subject,
                    reply: p.reply,
                    header_len: p.has_headers.then_some(p.header_len),
                    body: p.body,
                };
                let spans = PubSpans::of(base, &msg);
                Op::Publish { msg, spans }
            }
            NatsOp::Sub(s) => {
                if !self.may_subscribe(metrics, conn, s.subject, s.queue) {
                    return;
                }
                Op::Subscribe {
                    sid: s.sid,
                    subject: s.subject,
                    queue: s.queue,
                }
            }
            NatsOp::Unsub(u) => Op::Unsubscribe {
                sid: u.sid,
                max_msgs: u.max_msgs,
            },
            NatsOp::Ping => Op::Flush,
        };
        let applied = router.apply(conn, op);
        metrics.add(Counter::Forwards, applied.forwarded as u64);
    }
}

impl Session for NatsSession {
    fn start(&self) -> (Wire, ConnFlags) {
        defaults()
    }

    fn take_credentials(&mut self) -> Option<AuthRequest> {
        self.credentials()
    }

    fn authenticated(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        outcome: Result<Identity, Refusal>,
    ) {
        self.auth_outcome(router, metrics, conn, outcome);
    }

    fn auth_deadline(&self) -> Option<std::time::Duration> {
        self.auth.required().then_some(self.auth.timeout)
    }

    fn greet(&mut self, conn: &Rc<Conn>) {
        if !self.greeted {
            let line = self.info_line(conn.cid, conn.peer);
            conn.outbox.push_control(&line);
        }
    }

    fn input(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        data: &[u8],
    ) -> Input {
        let mut consumed = 0;
        let mut needed = 0;
        let mut throttled = None;
        while consumed < data.len() && !conn.is_closing() {
            match self.parser.parse(&data[consumed..]) {
                Ok(Parsed::Op { op, consumed: n }) => {
                    if let NatsOp::Pub(p) = &op {
                        let wait = router.admit(conn, p.subject, p.body.len());
                        if !wait.is_zero() {
                            // Not now: left unconsumed, parsed again after the wait.
                            throttled = Some(wait);
                            break;
                        }
                    }
                    if trace::enabled() {
                        trace_op(conn.cid, &data[consumed..consumed + n], &op);
                    }
                    self.apply(router, metrics, conn, data, op);
                    consumed += n;
                    if self.pending.is_some() {
                        // Nothing more until the credentials are checked.
                        break;
                    }
                }
                Ok(Parsed::NeedMore { needed_bytes }) => {
                    needed = needed_bytes;
                    break;
                }
                Err(e) => {
                    tracing::debug!(cid = conn.cid, error = %e, "protocol error");
                    close_for(metrics, conn, CloseReason::Protocol(e));
                    break;
                }
            }
        }
        Input {
            consumed,
            needed,
            throttled,
        }
    }
}

impl NatsSession {
    fn credentials(&self) -> Option<AuthRequest> {
        let opts = self.pending.as_ref()?;
        Some(AuthRequest {
            auth: Arc::clone(&self.auth),
            creds: Credentials {
                user: opts.user.clone(),
                pass: opts.pass.clone(),
                token: opts.auth_token.clone(),
                cert_names: self.cert_names.clone(),
            },
        })
    }

    fn auth_outcome(
        &mut self,
        router: &mut Router,
        metrics: &ShardMetrics,
        conn: &Rc<Conn>,
        outcome: Result<Identity, Refusal>,
    ) {
        let Some(opts) = self.pending.take() else {
            return;
        };
        match outcome {
            Ok(identity) => {
                tracing::debug!(cid = conn.cid, user = ?identity.user, "client authenticated");
                *conn.guard.borrow_mut() =
                    identity.permissions.as_ref().and_then(DeliveryGuard::new);
                self.perms = identity.permissions;
                self.cache = PublishCache::default();
                conn.set_authenticated(identity.user);
                NatsSession::connected(router, conn, opts);
            }
            Err(refusal) => {
                crate::front::login_refused(metrics, conn, opts.user.as_deref(), &refusal);
                conn.close_with(CloseReason::AuthViolation);
            }
        }
    }
}

/// Tells the client a permission refused its operation, and counts it.
fn violation(metrics: &ShardMetrics, conn: &Conn, text: &str) {
    metrics.add(Counter::PermissionViolations, 1);
    tracing::debug!(cid = conn.cid, user = ?conn.user(), "{text}");
    conn.reply(Reply::Err(text));
}

/// `s` in double quotes, as Go's `%q` shows it (nats-server's permission texts).
fn quoted(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&c.escape_default().to_string()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Traces one client operation: its control line (after any empty lines the parser
/// skipped) and, for PUB/HPUB, its payload.
fn trace_op(cid: u64, raw: &[u8], op: &NatsOp<'_>) {
    let start = raw
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(raw.len());
    let payload = match op {
        NatsOp::Pub(p) => Some(p.body),
        _ => None,
    };
    if let NatsOp::Connect(json) = op {
        // As nats-server does: credentials never reach the log.
        let line = format!("CONNECT {}", redacted(json));
        return trace::incoming(cid, line.as_bytes(), None);
    }
    trace::incoming(cid, trace::first_line(&raw[start..]), payload);
}

/// CONNECT's JSON with the values of its secret fields replaced.
fn redacted(json: &[u8]) -> String {
    const SECRETS: [&str; 4] = ["pass", "auth_token", "sig", "jwt"];
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for key in SECRETS {
                if let Some(v) = fields.get_mut(key) {
                    *v = serde_json::Value::String("[REDACTED]".into());
                }
            }
            serde_json::Value::Object(fields).to_string()
        }
        // Not an object: it will be refused; show nothing of it.
        _ => "(malformed)".into(),
    }
}

/// Closes `conn` for a protocol error, with its `-ERR` (if nats-server sends one).
fn close_for(metrics: &ShardMetrics, conn: &Conn, reason: CloseReason) {
    metrics.add(Counter::ProtocolErrors, 1);
    conn.close_with(reason);
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn secrets_are_redacted_from_the_trace() {
        let shown =
            redacted(br#"{"user":"u","pass":"hunter2","auth_token":"t0k","verbose":false}"#);
        assert!(
            !shown.contains("hunter2") && !shown.contains("t0k"),
            "{shown}"
        );
        assert!(shown.contains(r#""user":"u""#), "{shown}");
        assert_eq!(redacted(b"[1,2]"), "(malformed)");
    }
}
