//! The `[leafnode]` section: this server as a leaf node of a NATS cluster (see
//! `shards::leaf`). Off while `remotes` is empty.

use std::time::Duration;

use serde::Deserialize;
use shards::leaf::LeafConfig;

use super::auth::SecretText;
use super::Dur;

/// Remotes one configuration may list.
const REMOTES_MAX: usize = 64;

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
        if self.reconnect_delay.0 < Duration::from_millis(10) {
            return Err("leafnode.reconnect_delay must be at least 10ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

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
