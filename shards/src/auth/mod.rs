//! Who may connect, and what they may touch. An [`Authenticator`] holds the configured
//! token or users (passwords in plain text or as bcrypt hashes) and turns a client's
//! [`Credentials`] into an [`Identity`]: a user name and that user's [`Permissions`].
//! Every front-end asks the same one (NATS CONNECT, IRC PASS and SASL), through
//! [`authenticate`], which checks bcrypt hashes off the shard's thread, counts failures
//! per address ([`failures`]) and answers failures late when an address keeps failing.
//!
//! Secrets are compared in constant time and never printed: [`Secret`] and
//! [`Credentials`] show `[REDACTED]` in `Debug`.

pub mod failures;
pub mod guard;
pub mod permissions;
pub mod responses;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

pub use failures::{FailurePolicy, Failures, Verdict};
pub use guard::{DeliveryGuard, SubGuard};
pub use permissions::{
    PermissionError, Permissions, PermissionsConfig, PublishCache, ResponsePermission,
    SubjectPermission,
};
pub use responses::Replies;

/// bcrypt's cost for hashes made by [`hash_password`] (nats-server's tool uses 11).
pub const BCRYPT_COST: u32 = 11;

/// A password or token as configured: plain text, or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Plain(String),
    Bcrypt(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Secret::Plain(_) => "Plain([REDACTED])",
            Secret::Bcrypt(_) => "Bcrypt([REDACTED])",
        })
    }
}

impl Secret {
    /// A bcrypt hash if it looks like one (as nats-server decides), plain text otherwise.
    pub fn new(text: String) -> Secret {
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
            Secret::Bcrypt(text)
        } else {
            Secret::Plain(text)
        }
    }

    /// Whether `given` is this secret; in constant time for plain text.
    pub fn verify(&self, given: &str) -> bool {
        match self {
            Secret::Plain(p) => bool::from(p.as_bytes().ct_eq(given.as_bytes())),
            Secret::Bcrypt(h) => bcrypt::verify(given, h).unwrap_or(false),
        }
    }

    /// Checking it takes tens of milliseconds of CPU (bcrypt).
    pub fn is_slow(&self) -> bool {
        matches!(self, Secret::Bcrypt(_))
    }

    /// Whether a bcrypt hash is well formed (a plain secret always is).
    fn is_well_formed(&self) -> bool {
        match self {
            Secret::Plain(_) => true,
            Secret::Bcrypt(h) => h.parse::<bcrypt::HashParts>().is_ok(),
        }
    }
}

/// A bcrypt hash of `password`, for the configuration (`shardcast passwd`).
pub fn hash_password(password: &str, cost: u32) -> Result<String, bcrypt::BcryptError> {
    bcrypt::hash(password, cost)
}

/// One configured user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    pub name: String,
    pub password: Secret,
    /// None: `default_permissions`, if any, else everything.
    pub permissions: Option<PermissionsConfig>,
}

/// Authentication as configured. With neither a token nor users, nobody is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub token: Option<Secret>,
    pub users: Vec<UserConfig>,
    /// Clients that send no credentials become this user.
    pub no_auth_user: Option<String>,
    /// Permissions of users configured without their own.
    pub default_permissions: Option<PermissionsConfig>,
    /// How long a NATS client has to send CONNECT.
    pub timeout: Duration,
    pub failures: FailurePolicy,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: None,
            users: Vec::new(),
            no_auth_user: None,
            default_permissions: None,
            timeout: Duration::from_secs(2),
            failures: FailurePolicy::default(),
        }
    }
}

/// A configuration that cannot be used, named for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.token and auth.users cannot both be set: use one or the other")]
    TokenAndUsers,
    #[error("auth.users lists user \"{0}\" twice")]
    DuplicateUser(String),
    #[error("auth.users: a user has an empty name")]
    EmptyUser,
    #[error("auth.no_auth_user \"{0}\" is not one of auth.users")]
    UnknownNoAuthUser(String),
    #[error("the password of user \"{0}\" starts like a bcrypt hash but is not one (make one with `shardcast passwd`)")]
    BadHash(String),
    #[error(
        "auth.token starts like a bcrypt hash but is not one (make one with `shardcast passwd`)"
    )]
    BadTokenHash,
    #[error("permissions of user \"{user}\": {error}")]
    Permissions {
        user: String,
        error: PermissionError,
    },
    #[error("auth.default_permissions: {0}")]
    DefaultPermissions(PermissionError),
}

/// What a client presents.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub token: Option<String>,
    /// The names of a verified client certificate (`tls.verify_and_map`): the first that
    /// is a user's name logs in as that user, without a password.
    pub cert_names: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "[REDACTED]"))
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("cert_names", &self.cert_names)
            .finish()
    }
}

/// Who a client turned out to be.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user, when users are configured.
    pub user: Option<String>,
    /// None: everything is allowed.
    pub permissions: Option<Arc<Permissions>>,
}

/// Why credentials were refused (for the log; the client only hears
/// `Authorization Violation`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    NoCredentials,
    #[error("wrong token")]
    WrongToken,
    #[error("unknown user")]
    UnknownUser,
    #[error("wrong password")]
    WrongPassword,
    #[error("address refused after repeated failures")]
    Banned,
}

#[derive(Debug)]
struct User {
    password: Secret,
    permissions: Option<Arc<Permissions>>,
}

/// The configured credentials, ready to check; shared by all shards, replaced whole on
/// reload.
#[derive(Debug, Default)]
pub struct Authenticator {
    token: Option<Secret>,
    users: HashMap<String, User>,
    no_auth_user: Option<String>,
    pub timeout: Duration,
    pub failures: FailurePolicy,
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Authenticator, AuthConfigError> {
        if cfg.token.is_some() && !cfg.users.is_empty() {
            return Err(AuthConfigError::TokenAndUsers);
        }
        if cfg.token.as_ref().is_some_and(|t| !t.is_well_formed()) {
            return Err(AuthConfigError::BadTokenHash);
        }
        let default = cfg
            .default_permissions
            .as_ref()
            .map(Permissions::compile)
            .transpose()
            .map_err(AuthConfigError::DefaultPermissions)?
            .map(Arc::new);
        let mut users = HashMap::new();
        for u in &cfg.users {
            if u.name.is_empty() {
                return Err(AuthConfigError::EmptyUser);
            }
            if !u.password.is_well_formed() {
                return Err(AuthConfigError::BadHash(u.name.clone()));
            }
            let permissions = match &u.permissions {
                Some(p) => Some(Arc::new(Permissions::compile(p).map_err(|error| {
                    AuthConfigError::Permissions {
                        user: u.name.clone(),
                        error,
                    }
                })?)),
                None => default.clone(),
            };
            let user = User {
                password: u.password.clone(),
                permissions,
            };
            if users.insert(u.name.clone(), user).is_some() {
                return Err(AuthConfigError::DuplicateUser(u.name.clone()));
            }
        }
        if let Some(name) = &cfg.no_auth_user {
            if !users.contains_key(name) {
                return Err(AuthConfigError::UnknownNoAuthUser(name.clone()));
            }
        }
        Ok(Authenticator {
            token: cfg.token.clone(),
            users,
            no_auth_user: cfg.no_auth_user.clone(),
            timeout: cfg.timeout,
            failures: cfg.failures,
        })
    }

    /// Whether clients must authenticate.
    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }

    /// Whether users (names) are configured, rather than one token.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether checking `creds` runs bcrypt.
    fn is_slow(&self, creds: &Credentials) -> bool {
        if let Some(t) = &self.token {
            return t.is_slow();
        }
        creds
            .user
            .as_ref()
            .and_then(|u| self.users.get(u))
            .is_some_and(|u| u.password.is_slow())
    }

    /// Checks `creds` (blocking for a bcrypt hash: see [`authenticate`]).
    pub fn check(&self, creds: &Credentials) -> Result<Identity, AuthFailure> {
        if let Some(token) = &self.token {
            return match &creds.token {
                Some(given) if token.verify(given) => Ok(Identity::default()),
                Some(_) => Err(AuthFailure::WrongToken),
                None => Err(AuthFailure::NoCredentials),
            };
        }
        if self.users.is_empty() {
            return Ok(Identity::default());
        }
        let anonymous = creds.user.is_none() && creds.pass.is_none() && creds.token.is_none();
        if anonymous && !creds.cert_names.is_empty() {
            // verify_and_map: the certificate names the user.
            return creds
                .cert_names
                .iter()
                .find_map(|n| self.users.get_key_value(n))
                .map(|(name, user)| Identity {
                    user: Some(name.clone()),
                    permissions: user.permissions.clone(),
                })
                .ok_or(AuthFailure::UnknownUser);
        }
        if anonymous {
            return match self
                .no_auth_user
                .as_ref()
                .and_then(|n| self.users.get_key_value(n))
            {
                Some((name, user)) => Ok(Identity {
                    user: Some(name.clone()),
                    permissions: user.permissions.clone(),
                }),
                None => Err(AuthFailure::NoCredentials),
            };
        }
        let name = creds.user.as_deref().unwrap_or_default();
        let Some(user) = self.users.get(name) else {
            return Err(AuthFailure::UnknownUser);
        };
        if !user
            .password
            .verify(creds.pass.as_deref().unwrap_or_default())
        {
            return Err(AuthFailure::WrongPassword);
        }
        Ok(Identity {
            user: Some(name.to_string()),
            permissions: user.permissions.clone(),
        })
    }
}

/// A refusal, with what it cost the client's address.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub failure: AuthFailure,
    /// None when the client's address is unknown.
    pub verdict: Option<Verdict>,
}

/// Checks `creds` from `peer`: bcrypt runs on glommio's blocking pool, not on the shard's
/// thread; a failure is counted against the address and, when the address keeps
/// failing, answered only after the policy's delay.
pub async fn authenticate(
    auth: &Arc<Authenticator>,
    failures: &Failures,
    peer: Option<IpAddr>,
    creds: Credentials,
) -> Result<Identity, Refusal> {
    let checked = if auth.is_slow(&creds) {
        let auth = Arc::clone(auth);
        glommio::executor()
            .spawn_blocking(move || auth.check(&creds))
            .await
    } else {
        auth.check(&creds)
    };
    match checked {
        Ok(identity) => {
            if let Some(ip) = peer {
                failures.succeeded(ip);
            }
            Ok(identity)
        }
        Err(failure) => {
            let verdict = peer.map(|ip| failures.failed(ip, &auth.failures));
            if let Some(v) = verdict.filter(|v| !v.delay.is_zero()) {
                glommio::timer::sleep(v.delay).await;
            }
            Err(Refusal { failure, verdict })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, password: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            password: Secret::new(password.into()),
            permissions: None,
        }
    }

    fn creds(user: Option<&str>, pass: Option<&str>, token: Option<&str>) -> Credentials {
        Credentials {
            user: user.map(Into::into),
            pass: pass.map(Into::into),
            token: token.map(Into::into),
            cert_names: Vec::new(),
        }
    }

    #[test]
    fn nothing_configured_lets_everyone_in() {
        let a = Authenticator::new(&AuthConfig::default()).expect("valid");
        assert!(!a.required());
        assert!(a.check(&Credentials::default()).is_ok());
    }

    #[test]
    fn token() {
        let a = Authenticator::new(&AuthConfig {
            token: Some(Secret::new("s3cr3t".into())),
            ..AuthConfig::default()
        })
        .expect("valid");
        assert!(a.required());
        assert!(a.check(&creds(None, None, Some("s3cr3t"))).is_ok());
        assert_eq!(
            a.check(&creds(None, None, Some("s3cr3"))).unwrap_err(),
            AuthFailure::WrongToken
        );
        assert_eq!(
            a.check(&creds(Some("u"), Some("p"), None)).unwrap_err(),
            AuthFailure::NoCredentials
        );
    }

    #[test]
    fn users_plain_and_bcrypt_and_no_auth_user() {
        let hash = hash_password("pa55", 4).expect("hash");
        let a = Authenticator::new(&AuthConfig {
            users: vec![
                user("alice", "wonder"),
                user("bob", &hash),
                user("guest", "x"),
            ],
            no_auth_user: Some("guest".into()),
            ..AuthConfig::default()
        })
        .expect("valid");
        let who = |c: Credentials| a.check(&c).map(|i| i.user);
        assert_eq!(
            who(creds(Some("alice"), Some("wonder"), None)),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            who(creds(Some("alice"), Some("wonde"), None)),
            Err(AuthFailure::WrongPassword)
        );
        assert_eq!(
            who(creds(Some("bob"), Some("pa55"), None)),
            Ok(Some("bob".into()))
        );
        assert!(a.is_slow(&creds(Some("bob"), None, None)));
        assert_eq!(
            who(creds(Some("bob"), Some(&hash), None)),
            Err(AuthFailure::WrongPassword),
            "the hash itself is not the password"
        );
        assert_eq!(
            who(creds(Some("carol"), Some("x"), None)),
            Err(AuthFailure::UnknownUser)
        );
        assert_eq!(who(Credentials::default()), Ok(Some("guest".into())));
    }

    #[test]
    fn a_certificate_names_the_user() {
        let a = Authenticator::new(&AuthConfig {
            users: vec![user("alice@example.com", "unused")],
            ..AuthConfig::default()
        })
        .expect("valid");
        let by_cert = |names: &[&str]| {
            a.check(&Credentials {
                cert_names: names.iter().map(|n| n.to_string()).collect(),
                ..Credentials::default()
            })
            .map(|i| i.user)
        };
        assert_eq!(
            by_cert(&["alice", "alice@example.com", "CN=alice"]),
            Ok(Some("alice@example.com".into()))
        );
        assert_eq!(by_cert(&["mallory"]), Err(AuthFailure::UnknownUser));
    }

    #[test]
    fn bad_configurations_are_named() {
        let both = AuthConfig {
            token: Some(Secret::new("t".into())),
            users: vec![user("a", "b")],
            ..AuthConfig::default()
        };
        assert_eq!(
            Authenticator::new(&both).unwrap_err(),
            AuthConfigError::TokenAndUsers
        );
        let twice = AuthConfig {
            users: vec![user("a", "b"), user("a", "c")],
            ..AuthConfig::default()
        };
        assert_eq!(
            Authenticator::new(&twice).unwrap_err(),
            AuthConfigError::DuplicateUser("a".into())
        );
        let nobody = AuthConfig {
            users: vec![user("a", "b")],
            no_auth_user: Some("z".into()),
            ..AuthConfig::default()
        };
        assert_eq!(
            Authenticator::new(&nobody).unwrap_err(),
            AuthConfigError::UnknownNoAuthUser("z".into())
        );
        let broken = AuthConfig {
            users: vec![user("a", "$2b$11$notahash")],
            ..AuthConfig::default()
        };
        assert_eq!(
            Authenticator::new(&broken).unwrap_err(),
            AuthConfigError::BadHash("a".into())
        );
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let shown = format!(
            "{:?} {:?}",
            Secret::new("hunter2".into()),
            creds(Some("u"), Some("hunter2"), Some("hunter2"))
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
