//! The `[leafnode]` section: this server as a leaf node of a NATS cluster (see
//! `shards::leaf`). Off while `remotes` is empty.

use std::time::Duration;

use serde::Deserialize;
use shards::leaf::LeafConfig;
use shards::subject::validate::is_valid_subject;

use super::auth::SecretText;
use super::Dur;

/// Remotes one configuration may list.
const REMOTES_MAX: usize = 64;

/// Subjects `export` or `import` may list.
const FILTERS_MAX: usize = 1024;

/// `[leafnode]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeafnodeSection {
    /// The hub's leafnode ports: `nats-leaf://host:port` or `host:port`.
    pub remotes: Vec<String>,
    /// This node's name in the hub's /leafz ("" = the server's name).
    pub name: String,
    pub user: Option<String>,
    pub password: Option<SecretText>,
    pub token: Option<SecretText>,
    /// Wait before reconnecting, plus up to 50% jitter.
    pub reconnect_delay: Dur,
    /// Subjects whose messages may go up to the hub (empty: all).
    pub export: Vec<String>,
    /// Subjects whose messages may come down from the hub (empty: all).
    pub import: Vec<String>,
}

impl Default for LeafnodeSection {
    fn default() -> Self {
        LeafnodeSection {
            remotes: Vec::new(),
            name: String::new(),
            user: None,
            password: None,
            token: None,
            reconnect_delay: Dur(Duration::from_secs(1)),
            export: Vec::new(),
            import: Vec::new(),
        }
    }
}

/// `host:port` from `nats-leaf://[user:pass@]host:port` (or `host:port`).
fn host_port(url: &str) -> Result<String, String> {
    let rest = ["nats-leaf://", "nats://"]
        .iter()
        .find_map(|p| url.strip_prefix(p))
        .unwrap_or(url);
    if rest.contains("://") {
        return Err(format!(
            "leafnode.remotes: \"{url}\" is not a nats-leaf://host:port URL"
        ));
    }
    let rest = rest.trim_end_matches('/');
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(rest.to_string())
        }
        _ if !rest.is_empty() && !rest.contains(':') => Ok(format!("{rest}:7422")),
        _ => Err(format!(
            "leafnode.remotes: \"{url}\" has no valid host:port"
        )),
    }
}

impl LeafnodeSection {
    /// The engine's view: None when off. `server_name` names the node by default.
    pub fn engine(&self, server_name: Option<&str>) -> Option<LeafConfig> {
        if self.remotes.is_empty() {
            return None;
        }
        let name = match (self.name.is_empty(), server_name) {
            (false, _) => self.name.clone(),
            (true, Some(n)) => n.to_string(),
            (true, None) => format!("shardcast-{}", std::process::id()),
        };
        Some(LeafConfig {
            remotes: self
                .remotes
                .iter()
                .filter_map(|r| host_port(r).ok())
                .collect(),
            name,
            user: self.user.clone(),
            password: self.password.as_ref().map(|p| p.0.clone()),
            token: self.token.as_ref().map(|t| t.0.clone()),
            reconnect_delay: self.reconnect_delay.0,
            export: self.export.clone(),
            import: self.import.clone(),
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.remotes.len() > REMOTES_MAX {
            return Err(format!("leafnode.remotes lists more than {REMOTES_MAX}"));
        }
        for r in &self.remotes {
            host_port(r)?;
        }
        if self.token.is_some() && (self.user.is_some() || self.password.is_some()) {
            return Err("leafnode: token and user/password cannot both be set".into());
        }
        for (key, list) in [("export", &self.export), ("import", &self.import)] {
            if list.len() > FILTERS_MAX {
                return Err(format!(
                    "leafnode.{key} lists more than {FILTERS_MAX} subjects"
                ));
            }
            if let Some(bad) = list.iter().find(|s| !is_valid_subject(s.as_bytes())) {
                return Err(format!(
                    "leafnode.{key}: \"{bad}\" is not a valid subject (tokens separated by dots, * and > as whole tokens)"
                ));
            }
        }
        if self.reconnect_delay.0 < Duration::from_millis(10) {
            return Err("leafnode.reconnect_delay must be at least 10ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{host_port, LeafnodeSection};

    #[test]
    fn filters_must_be_subjects() {
        let section = |export: &[&str], import: &[&str]| LeafnodeSection {
            remotes: vec!["hub:7422".into()],
            export: export.iter().map(|s| s.to_string()).collect(),
            import: import.iter().map(|s| s.to_string()).collect(),
            ..LeafnodeSection::default()
        };
        assert_eq!(
            section(&["up.>", "_INBOX.>"], &["down.*"]).validate(),
            Ok(())
        );
        let err = section(&["a..b"], &[]).validate().expect_err("bad export");
        assert!(
            err.contains("leafnode.export: \"a..b\" is not a valid subject"),
            "{err}"
        );
        let err = section(&[], &["a.>.b"]).validate().expect_err("bad import");
        assert!(err.contains("leafnode.import"), "{err}");
    }

    #[test]
    fn remote_urls() {
        assert_eq!(
            host_port("nats-leaf://127.0.0.1:7422"),
            Ok("127.0.0.1:7422".into())
        );
        assert_eq!(
            host_port("nats-leaf://u:p@hub.example:7000"),
            Ok("hub.example:7000".into())
        );
        assert_eq!(host_port("hub.example"), Ok("hub.example:7422".into()));
        assert!(host_port("http://x:1").is_err());
        assert!(host_port("nats-leaf://x:port").is_err());
    }
}
