//! Logging in on IRC with the server's users: SASL PLAIN (`CAP REQ :sasl`, then
//! `AUTHENTICATE PLAIN`) before registration, or the `PASS` line (`user:password`, or the
//! password of the user named like the nick, or the token). The credentials are checked
//! by the same authenticator as NATS clients' (see `crate::auth`); registration waits for
//! the outcome. A refused PASS gets `464` and the connection closes; a refused SASL
//! attempt gets `904` and may be retried.
//!
//! Once in, the user's permissions apply to the subjects its commands map to: JOIN
//! subscribes to the channel's subject, PRIVMSG and NOTICE publish to the channel's
//! subject or to the recipient's inbox.

use std::rc::Rc;
use std::sync::Arc;

use base64::Engine;

use crate::auth::{
    Authenticator, Credentials, DeliveryGuard, Identity, Permissions, PublishCache, Refusal,
};
use crate::close::CloseReason;
use crate::conn::Conn;
use crate::front::AuthRequest;
use crate::metrics::ShardMetrics;

use super::IrcSession;

/// SASL PLAIN's most bytes (a whole `AUTHENTICATE` argument).
const SASL_BYTES_MAX: usize = 400;

/// Where credentials came from, which decides what a refusal costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Sasl,
    Pass,
}

/// One IRC connection's login state.
#[derive(Debug)]
pub struct Login {
    auth: Arc<Authenticator>,
    /// What PASS said.
    pub pass: Option<String>,
    /// The client enabled the `sasl` capability.
    pub sasl: bool,
    /// `AUTHENTICATE PLAIN` was answered with `+`: the credentials come next.
    awaiting_plain: bool,
    pending: Option<(Credentials, Via)>,
    /// Logged in (or nothing asks it to).
    done: bool,
    perms: Option<Arc<Permissions>>,
    cache: PublishCache,
}

impl Login {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        let done = !auth.required();
        Login {
            auth,
            pass: None,
            sasl: false,
            awaiting_plain: false,
            pending: None,
            done,
            perms: None,
            cache: PublishCache::default(),
        }
    }

    /// Whether users must log in.
    pub fn required(&self) -> bool {
        self.auth.required()
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Registration is complete but for the login: check what PASS gave (or nothing,
    /// for `no_auth_user`).
    pub fn check_pass(&mut self, nick: &str) {
        if self.done || self.pending.is_some() {
            return;
        }
        let creds = match self.pass.take() {
            None => Credentials::default(),
            Some(p) if !self.auth.has_users() => Credentials {
                token: Some(p),
                ..Credentials::default()
            },
            Some(p) => match p.split_once(':') {
                Some((user, pass)) => Credentials {
                    user: Some(user.to_string()),
                    pass: Some(pass.to_string()),
                    ..Credentials::default()
                },
                None => Credentials {
                    user: Some(nick.to_string()),
                    pass: Some(p),
                    ..Credentials::default()
                },
            },
        };
        self.pending = Some((creds, Via::Pass));
    }

    /// The credentials waiting to be checked.
    pub fn request(&self) -> Option<AuthRequest> {
        let (creds, _) = self.pending.as_ref()?;
        Some(AuthRequest {
            auth: Arc::clone(&self.auth),
            creds: creds.clone(),
        })
    }

    /// Whether the user may join a channel on `subject`.
    pub fn may_subscribe(&self, subject: &str) -> bool {
        self.perms
            .as_ref()
            .map_or(true, |p| p.can_subscribe(subject.as_bytes(), None))
    }

    /// Whether the user may send to `subject`.
    pub fn may_publish(&mut self, _conn: &Conn, subject: &str) -> bool {
        match self.perms.as_ref().and_then(|p| p.publish.as_ref()) {
            None => true,
            Some(rules) => self.cache.allows(rules, subject.as_bytes()),
        }
    }
}

/// `AUTHENTICATE`: `PLAIN` starts, then one base64 line `authzid\0user\0password`
/// (or `*` to abort).
pub fn authenticate(s: &mut IrcSession, arg: Option<String>) {
    if !s.login.sasl || s.login.done || s.registered {
        let why = if s.login.done || s.registered {
            "You have already authenticated"
        } else {
            "SASL authentication failed"
        };
        let code = if s.login.done || s.registered {
            "907"
        } else {
            "904"
        };
        return s.numeric(code, &[], why);
    }
    let arg = arg.unwrap_or_default();
    if arg == "*" {
        s.login.awaiting_plain = false;
        return s.numeric("906", &[], "SASL authentication aborted");
    }
    if !s.login.awaiting_plain {
        if arg.eq_ignore_ascii_case("PLAIN") {
            s.login.awaiting_plain = true;
            s.out.line(&["AUTHENTICATE", "+"], None);
        } else {
            s.numeric("908", &["PLAIN"], "are available SASL mechanisms");
            s.numeric("904", &[], "SASL authentication failed");
        }
        return;
    }
    s.login.awaiting_plain = false;
    let decoded = (arg.len() <= SASL_BYTES_MAX)
        .then(|| {
            base64::engine::general_purpose::STANDARD
                .decode(arg.as_bytes())
                .ok()
        })
        .flatten();
    let parts: Option<(String, String)> = decoded.and_then(|d| {
        let mut fields = d.split(|&b| b == 0);
        let (_authzid, user, pass) = (fields.next()?, fields.next()?, fields.next()?);
        Some((
            String::from_utf8(user.to_vec()).ok()?,
            String::from_utf8(pass.to_vec()).ok()?,
        ))
    });
    let Some((user, pass)) = parts else {
        return s.numeric("904", &[], "SASL authentication failed");
    };
    let creds = if s.login.auth.has_users() {
        Credentials {
            user: Some(user),
            pass: Some(pass),
            ..Credentials::default()
        }
    } else {
        Credentials {
            token: Some(pass),
            ..Credentials::default()
        }
    };
    s.login.pending = Some((creds, Via::Sasl));
}

/// The outcome of the check: logged in (permissions in force, registration goes on), or
/// refused (`904` for SASL, `464` and close for PASS).
pub fn outcome(
    s: &mut IrcSession,
    router: &mut crate::route::Router,
    metrics: &ShardMetrics,
    conn: &Rc<Conn>,
    outcome: Result<Identity, Refusal>,
) {
    let Some((creds, via)) = s.login.pending.take() else {
        return;
    };
    match outcome {
        Ok(identity) => {
            let account = identity.user.clone().unwrap_or_else(|| s.target());
            *conn.guard.borrow_mut() = identity.permissions.as_ref().and_then(DeliveryGuard::new);
            s.login.perms = identity.permissions;
            s.login.cache = PublishCache::default();
            s.login.done = true;
            conn.set_authenticated(identity.user);
            if via == Via::Sasl {
                let mask = s.mask();
                let nick = s.target();
                let text = format!("You are now logged in as {account}");
                let shard = Rc::clone(&s.shard);
                s.out
                    .numeric(&shard.settings, "900", &nick, &[&mask, &account], &text);
                s.numeric("903", &[], "SASL authentication successful");
            }
            s.try_register(conn, router);
        }
        Err(refusal) => {
            crate::front::login_refused(metrics, conn, creds.user.as_deref(), &refusal);
            match via {
                Via::Sasl => s.numeric("904", &[], "SASL authentication failed"),
                Via::Pass => {
                    s.numeric("464", &[], "Password incorrect");
                    s.flush_out(conn);
                    conn.close_with(CloseReason::AuthViolation);
                }
            }
        }
    }
    s.flush_out(conn);
}
