//! The `[irc]` section: the IRC listener (off unless a port is given) and its limits.

use serde::Deserialize;

use super::Dur;
use shards::front::irc::IrcSettings;
use shards::server::IrcConfig;

/// `[irc]`: people in IRC clients on the same subjects as NATS clients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IrcSection {
    /// The IRC port; unset = off, 0 = a free one (logged at start).
    pub port: Option<u16>,
    /// Address the IRC port listens on ("" = the same as `host`).
    pub host: String,
    /// The name the server gives itself in IRC replies.
    pub server_name: String,
    /// The network name clients show.
    pub network: String,
    pub max_nick_len: usize,
    /// Channel names, `#` included.
    pub max_channel_len: usize,
    pub max_channels_per_user: usize,
    pub max_members_per_channel: usize,
    /// How long a connection may take to register (NICK, USER, CAP END).
    pub registration_timeout: Dur,
    /// How long a registered user may send nothing but keepalive and queries ("0s": no
    /// limit).
    pub idle_timeout: Dur,
    /// Lines per second a connection may send on average, `flood_burst` at once; more
    /// are delayed, and past `flood_max_queued` waiting the connection is closed.
    pub flood_lines_per_sec: u64,
    pub flood_burst: u64,
    pub flood_max_queued: usize,
}

impl Default for IrcSection {
    fn default() -> Self {
        let s = IrcSettings::default();
        IrcSection {
            port: None,
            host: String::new(),
            server_name: s.server_name,
            network: s.network,
            max_nick_len: s.nick_len_max,
            max_channel_len: s.channel_len_max,
            max_channels_per_user: s.channels_per_user_max,
            max_members_per_channel: s.members_per_channel_max,
            registration_timeout: Dur(s.registration_timeout),
            idle_timeout: Dur(s.idle_timeout),
            flood_lines_per_sec: s.flood_lines_per_sec,
            flood_burst: s.flood_burst,
            flood_max_queued: s.flood_queued_max,
        }
    }
}

impl IrcSection {
    /// The engine's IRC listener, if the section turns it on; `host` is the server's.
    pub fn engine(&self, host: &str) -> Option<IrcConfig> {
        let port = self.port?;
        let host = if self.host.is_empty() {
            host
        } else {
            &self.host
        };
        Some(IrcConfig {
            host: host.to_string(),
            port,
            settings: IrcSettings {
                server_name: self.server_name.clone(),
                network: self.network.clone(),
                nick_len_max: self.max_nick_len,
                channel_len_max: self.max_channel_len,
                channels_per_user_max: self.max_channels_per_user,
                members_per_channel_max: self.max_members_per_channel,
                registration_timeout: self.registration_timeout.0,
                idle_timeout: self.idle_timeout.0,
                flood_lines_per_sec: self.flood_lines_per_sec,
                flood_burst: self.flood_burst,
                flood_queued_max: self.flood_max_queued,
                ..IrcSettings::default()
            },
        })
    }

    /// Checks values that would make IRC unusable.
    pub fn validate(&self) -> Result<(), String> {
        let names = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !names(&self.server_name) {
            return Err(format!(
                "irc.server_name must be printable ASCII without spaces or ':', got {:?}",
                self.server_name
            ));
        }
        if !names(&self.network) {
            return Err(format!(
                "irc.network must be printable ASCII without spaces or ':', got {:?}",
                self.network
            ));
        }
        let ranges = [
            ("irc.max_nick_len", self.max_nick_len, 9, 64),
            ("irc.max_channel_len", self.max_channel_len, 2, 200),
            (
                "irc.max_channels_per_user",
                self.max_channels_per_user,
                1,
                10_000,
            ),
            (
                "irc.flood_lines_per_sec",
                self.flood_lines_per_sec as usize,
                1,
                1_000_000,
            ),
            ("irc.flood_burst", self.flood_burst as usize, 1, 1_000_000),
            (
                "irc.max_members_per_channel",
                self.max_members_per_channel,
                1,
                10_000_000,
            ),
            ("irc.flood_max_queued", self.flood_max_queued, 1, 100_000),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(format!("{name} must be from {min} to {max}, got {value}"));
            }
        }
        if self.registration_timeout.0 < std::time::Duration::from_secs(1) {
            return Err(format!(
                "irc.registration_timeout must be at least 1s, got {:?}",
                self.registration_timeout.0
            ));
        }
        if !self.idle_timeout.0.is_zero() && self.idle_timeout.0 < std::time::Duration::from_secs(1)
        {
            return Err(format!(
                "irc.idle_timeout must be \"0s\" (no limit) or at least 1s, got {:?}",
                self.idle_timeout.0
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_a_port_is_given() {
        assert!(IrcSection::default().engine("0.0.0.0").is_none());
        let on = IrcSection {
            port: Some(0),
            ..IrcSection::default()
        };
        let cfg = on.engine("127.0.0.1").expect("on");
        assert_eq!((cfg.host.as_str(), cfg.port), ("127.0.0.1", 0));
        assert_eq!(cfg.settings.nick_len_max, 30);
    }

    #[test]
    fn bad_values_are_named() {
        let bad = IrcSection {
            max_nick_len: 2,
            ..IrcSection::default()
        };
        let e = bad.validate().unwrap_err();
        assert!(e.contains("irc.max_nick_len") && e.contains('2'), "{e}");
        let bad = IrcSection {
            network: "my net".into(),
            ..IrcSection::default()
        };
        assert!(bad.validate().unwrap_err().contains("irc.network"));
    }
}
