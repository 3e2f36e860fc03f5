//! The `[leafnode]` section: this server as a leaf node of a NATS cluster (see
//! `shards::leaf`). Off while `remotes` is empty.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use shards::conn::tls_client::{ClientTls, ClientTlsFiles};
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
    /// TLS to the hub (`[leafnode.tls]`).
    pub tls: Option<LeafTlsSection>,
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
            tls: None,
            export: Vec::new(),
            import: Vec::new(),
        }
    }
}

/// `[leafnode.tls]`: TLS to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeafTlsSection {
    /// The CAs the hub's certificate must chain to (PEM).
    pub ca_file: Option<PathBuf>,
    /// A certificate and key to present, when the hub verifies leaf nodes.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name the hub's certificate must carry, when not the host in `remotes`.
    pub server_name: Option<String>,
    /// How long the handshake may take.
    pub timeout: Dur,
}

impl Default for LeafTlsSection {
    fn default() -> Self {
        LeafTlsSection {
            ca_file: None,
            cert_file: None,
            key_file: None,
            server_name: None,
            timeout: Dur(Duration::from_secs(2)),
        }
    }
}

impl LeafTlsSection {
    fn engine(&self) -> ClientTlsFiles {
        ClientTlsFiles {
            ca_file: self.ca_file.clone().unwrap_or_default(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            server_name: self.server_name.clone(),
            timeout: self.timeout.0,
        }
    }

    /// The options together, and the files readable (read again when the link starts).
    fn validate(&self) -> Result<(), String> {
        if self.ca_file.is_none() {
            return Err(
                "leafnode.tls needs ca_file: the CA the hub's certificate chains to".into(),
            );
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err("leafnode.tls: cert_file and key_file go together".into());
        }
        if self.timeout.0.is_zero() {
            return Err("leafnode.tls.timeout must be more than 0s".into());
        }
        ClientTls::load(&self.engine())
            .map(|_| ())
            .map_err(|e| format!("leafnode.{e}"))
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
            tls: self.tls.as_ref().map(LeafTlsSection::engine),
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
        if let Some(tls) = &self.tls {
            tls.validate()?;
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
