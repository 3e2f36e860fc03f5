//! The `[auth]` section: a token or users (plain or bcrypt passwords, made with
//! `shardcast passwd`), each user's subject permissions, the CONNECT timeout, and how
//! failed logins are slowed down and refused. Written as nats-server's `authorization`
//! block is, in TOML:
//!
//! ```toml
//! [auth]
//! timeout = "2s"
//! [[auth.users]]
//! user = "alice"
//! password = "$2b$11$..."
//! permissions = { publish = { allow = ["orders.>"], deny = ["orders.secret"] }, subscribe = ["_INBOX.>"], allow_responses = true }
//! ```

use serde::Deserialize;
use shards::auth::{
    AuthConfig, Authenticator, FailurePolicy, PermissionsConfig, ResponsePermission, Secret,
    SubjectPermission, UserConfig,
};

use super::Dur;

/// Users one configuration may list.
const USERS_MAX: usize = 10_000;
/// Entries one permission list may hold.
const ENTRIES_MAX: usize = 1_000;

/// A password or token: shown as `[REDACTED]` whenever the configuration is printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// One shared token (clients send it as `auth_token`); not with users.
    pub token: Option<SecretText>,
    /// A single user, as nats-server's `--user`/`--pass` (joins `users`).
    pub user: Option<String>,
    pub password: Option<SecretText>,
    pub users: Vec<UserEntry>,
    /// Clients that send no credentials become this user.
    pub no_auth_user: Option<String>,
    /// Permissions of users that have none of their own.
    pub default_permissions: Option<PermissionsEntry>,
    /// How long a NATS client has to send CONNECT.
    pub timeout: Dur,
    /// Failures from one address after which each further one is answered late (0: never).
    pub failures_before_delay: u32,
    pub failure_delay: Dur,
    /// Failures from one address after which it is refused for `ban` (0: never).
    pub failures_before_ban: u32,
    pub ban: Dur,
    /// Failures older than this are forgotten.
    pub failure_window: Dur,
}

/// One `[[auth.users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub user: String,
    pub password: SecretText,
    #[serde(default)]
    pub permissions: Option<PermissionsEntry>,
}

/// A user's permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PermissionsEntry {
    pub publish: Option<SubjectList>,
    pub subscribe: Option<SubjectList>,
    pub allow_responses: Option<ResponsesEntry>,
}

/// A subject permission: one subject, a list (what is allowed), or allow and deny lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SubjectList {
    One(String),
    List(Vec<String>),
    Full(AllowDeny),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowDeny {
    pub allow: Option<Strings>,
    pub deny: Option<Strings>,
}

/// One string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Strings {
    One(String),
    List(Vec<String>),
}

impl Strings {
    fn to_vec(&self) -> Vec<String> {
        match self {
            Strings::One(s) => vec![s.clone()],
            Strings::List(v) => v.clone(),
        }
    }
}

/// `allow_responses = true`, or `{ max = 1, expires = "2m" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ResponsesEntry {
    Flag(bool),
    Limits {
        max: Option<u32>,
        expires: Option<Dur>,
    },
}

impl Default for AuthSection {
    fn default() -> Self {
        let a = AuthConfig::default();
        AuthSection {
            token: None,
            user: None,
            password: None,
            users: Vec::new(),
            no_auth_user: None,
            default_permissions: None,
            timeout: Dur(a.timeout),
            failures_before_delay: a.failures.delay_after,
            failure_delay: Dur(a.failures.delay),
            failures_before_ban: a.failures.ban_after,
            ban: Dur(a.failures.ban),
            failure_window: Dur(a.failures.window),
        }
    }
}

impl SubjectList {
    fn engine(&self) -> SubjectPermission {
        match self {
            SubjectList::One(s) => SubjectPermission {
                allow: Some(vec![s.clone()]),
                deny: Vec::new(),
            },
            SubjectList::List(v) => SubjectPermission {
                allow: Some(v.clone()),
                deny: Vec::new(),
            },
            SubjectList::Full(ad) => SubjectPermission {
                allow: ad.allow.as_ref().map(Strings::to_vec),
                deny: ad.deny.as_ref().map(Strings::to_vec).unwrap_or_default(),
            },
        }
    }
}

impl PermissionsEntry {
    fn engine(&self) -> PermissionsConfig {
        let defaults = ResponsePermission::default();
        PermissionsConfig {
            publish: self.publish.as_ref().map(SubjectList::engine),
            subscribe: self.subscribe.as_ref().map(SubjectList::engine),
            responses: match &self.allow_responses {
                None | Some(ResponsesEntry::Flag(false)) => None,
                Some(ResponsesEntry::Flag(true)) => Some(defaults),
                Some(ResponsesEntry::Limits { max, expires }) => Some(ResponsePermission {
                    max: max.unwrap_or(defaults.max),
                    expires: expires.map_or(defaults.expires, |d| d.0),
                }),
            },
        }
    }
}

impl AuthSection {
    /// The engine's view (check it with [`AuthSection::validate`] first).
    pub fn engine(&self) -> AuthConfig {
        let user = |name: &str, password: &SecretText, p: Option<&PermissionsEntry>| UserConfig {
            name: name.to_string(),
            password: Secret::new(password.0.clone()),
            permissions: p.map(PermissionsEntry::engine),
        };
        let mut users: Vec<UserConfig> = self
            .users
            .iter()
            .map(|u| user(&u.user, &u.password, u.permissions.as_ref()))
            .collect();
        if let Some(name) = &self.user {
            let empty = SecretText(String::new());
            users.push(user(name, self.password.as_ref().unwrap_or(&empty), None));
        }
        AuthConfig {
            token: self.token.as_ref().map(|t| Secret::new(t.0.clone())),
            users,
            no_auth_user: self.no_auth_user.clone(),
            default_permissions: self
                .default_permissions
                .as_ref()
                .map(PermissionsEntry::engine),
            timeout: self.timeout.0,
            failures: FailurePolicy {
                delay_after: self.failures_before_delay,
                delay: self.failure_delay.0,
                ban_after: self.failures_before_ban,
                ban: self.ban.0,
                window: self.failure_window.0,
            },
        }
    }

    /// Checks everything the engine would refuse, and the bounds.
    pub fn validate(&self) -> Result<(), String> {
        if self.password.is_some() && self.user.is_none() {
            return Err("auth.password is set without auth.user".into());
        }
        if self.users.len() > USERS_MAX {
            return Err(format!(
                "auth.users lists {} users; at most {USERS_MAX}",
                self.users.len()
            ));
        }
        if self.timeout.0.is_zero() {
            return Err("auth.timeout must be more than 0s".into());
        }
        let perms = self
            .users
            .iter()
            .filter_map(|u| u.permissions.as_ref().map(|p| (u.user.as_str(), p)))
            .chain(
                self.default_permissions
                    .as_ref()
                    .map(|p| ("default_permissions", p)),
            );
        for (who, p) in perms {
            let p = p.engine();
            for list in [&p.publish, &p.subscribe].into_iter().flatten() {
                let n = list.allow.as_ref().map_or(0, Vec::len) + list.deny.len();
                if n > ENTRIES_MAX {
                    return Err(format!(
                        "permissions of {who}: {n} entries; at most {ENTRIES_MAX} per direction"
                    ));
                }
            }
        }
        Authenticator::new(&self.engine())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn nats_style_permissions_in_toml() {
        let c = Config::from_toml(
            r#"
[auth]
timeout = "1s"
[[auth.users]]
user = "alice"
password = "wonder"
permissions = { publish = { allow = ["orders.>"], deny = "orders.secret" }, subscribe = ["_INBOX.>", "jobs.* workers"], allow_responses = { max = 2, expires = "1m" } }
[[auth.users]]
user = "bob"
password = "builder"
"#,
            "f",
        )
        .expect("valid");
        let a = c.auth.engine();
        assert_eq!(a.users.len(), 2);
        let p = a.users[0]
            .permissions
            .as_ref()
            .expect("alice has permissions");
        let publish = p.publish.as_ref().expect("publish");
        assert_eq!(publish.allow, Some(vec!["orders.>".to_string()]));
        assert_eq!(publish.deny, vec!["orders.secret".to_string()]);
        assert_eq!(p.responses.map(|r| r.max), Some(2));
        assert!(a.users[1].permissions.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        for (toml, want) in [
            ("[auth]\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"\n", "cannot both be set"),
            ("[auth]\npassword = \"p\"\n", "without auth.user"),
            ("[auth]\nno_auth_user = \"x\"\nuser = \"u\"\npassword = \"p\"\n", "not one of auth.users"),
            (
                "[[auth.users]]\nuser = \"u\"\npassword = \"p\"\npermissions = { publish = [\"a..b\"] }\n",
                "\"a..b\" is not a valid subject",
            ),
            ("[[auth.users]]\nuser = \"u\"\npasword = \"p\"\n", "pasword"),
            ("[auth]\ntimeout = \"0s\"\n", "auth.timeout"),
        ] {
            let e = Config::from_toml(toml, "f").unwrap_err().to_string();
            assert!(e.contains(want), "{toml} gave {e}");
        }
    }

    #[test]
    fn secrets_do_not_show_when_the_config_is_printed() {
        let c = Config::from_toml("[auth]\nuser = \"u\"\npassword = \"hunter2\"\n", "f")
            .expect("valid");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
