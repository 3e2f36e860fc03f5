//! `[shutdown]` (the SIGTERM grace period and lame duck mode) and `connect_urls` (the
//! deployment's other nodes, where clients go when this one leaves).

use std::time::Duration;

use serde::Deserialize;
use shards::limits::Limits;

use super::Dur;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSection {
    pub grace: Dur,
    /// Lame duck mode (SIGUSR2): how long closing every client takes in all.
    pub lame_duck_duration: Dur,
    /// Lame duck mode: the wait before the first client is closed.
    pub lame_duck_grace_period: Dur,
}

impl ShutdownSection {
    pub fn validate(&self) -> Result<(), String> {
        if self.lame_duck_grace_period.0 >= self.lame_duck_duration.0 {
            return Err(format!(
                "shutdown.lame_duck_grace_period ({:?}) must be shorter than shutdown.lame_duck_duration ({:?})",
                self.lame_duck_grace_period.0, self.lame_duck_duration.0
            ));
        }
        Ok(())
    }
}

/// The most entries `connect_urls` may list.
pub const CONNECT_URLS_MAX: usize = 64;

/// `host:port` from a `connect_urls` entry (`nats://host:port` or `host:port`).
pub fn connect_url(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("nats://").unwrap_or(url);
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(rest.to_string())
        }
        _ => Err(format!(
            "connect_urls: \"{url}\" is not host:port (or nats://host:port)"
        )),
    }
}

impl Default for ShutdownSection {
    fn default() -> Self {
        ShutdownSection {
            grace: Dur(Limits::default().shutdown_grace),
            lame_duck_duration: Dur(Duration::from_secs(120)),
            lame_duck_grace_period: Dur(Duration::from_secs(10)),
        }
    }
}
