//! The `[logs]` section: routing what is published to `logs.ingest(.>)` into subjects by
//! rules (`[[logs.route]]`).

use serde::Deserialize;
use shards::flow::{FlowConfig, Policy, Priority, SubjectRule};
use shards::logs::{LogsConfig, RouteConfig, Rules};

use super::ByteSize;

/// Networks `logs.allow_from` may list.
const NETWORKS_MAX: usize = 1_000;

/// A network (`10.0.0.0/8`) or one address (`192.0.2.7`, `::1`).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            format!("logs.allow_from: \"{text}\" is not a network (10.0.0.0/8) or an address")
        })
}

/// `[logs]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsSection {
    /// Route logs published to `logs.ingest` and `logs.ingest.<app>`.
    pub enabled: bool,
    /// Where every record also goes; "" for nowhere.
    pub all_subject: String,
    /// The largest log accepted.
    pub max_record_bytes: ByteSize,
    /// The plain TCP port taking one log per line; unset = off, 0 = a free one.
    pub tcp_port: Option<u16>,
    /// Syslog over TCP and over UDP; unset = off, 0 = a free one.
    pub syslog_tcp_port: Option<u16>,
    pub syslog_udp_port: Option<u16>,
    /// The syslog UDP sockets' receive buffer (each shard has one); unset = the kernel's
    /// default (`net.core.rmem_default`). What overflows it is dropped and counted.
    pub syslog_udp_buffer: Option<ByteSize>,
    /// IRC watchers see a record's level in its mIRC colour.
    pub irc_colours: bool,
    /// The networks the log ports take logs from ("10.0.0.0/8", "192.0.2.7"); empty: any.
    pub allow_from: Vec<String>,
    /// The rules, in order.
    pub route: Vec<RouteSection>,
}

/// One `[[logs.route]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    pub to: String,
    #[serde(default)]
    pub level: Vec<String>,
    #[serde(default)]
    pub category: Vec<String>,
    #[serde(default)]
    pub keyword: Vec<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub stop: bool,
}

impl Default for LogsSection {
    fn default() -> Self {
        let d = LogsConfig::default();
        LogsSection {
            enabled: d.enabled,
            all_subject: d.all_subject.unwrap_or_default(),
            max_record_bytes: ByteSize(d.record_bytes_max as u64),
            tcp_port: d.tcp_port,
            syslog_tcp_port: d.syslog_tcp_port,
            syslog_udp_port: d.syslog_udp_port,
            syslog_udp_buffer: None,
            irc_colours: d.irc_colours,
            allow_from: Vec::new(),
            route: Vec::new(),
        }
    }
}

impl LogsSection {
    /// The engine's view.
    pub fn engine(&self) -> LogsConfig {
        LogsConfig {
            enabled: self.enabled,
            routes: self
                .route
                .iter()
                .map(|r| RouteConfig {
                    to: r.to.clone(),
                    level: r.level.clone(),
                    category: r.category.clone(),
                    keyword: r.keyword.clone(),
                    regex: r.regex.clone(),
                    stop: r.stop,
                })
                .collect(),
            all_subject: (!self.all_subject.is_empty()).then(|| self.all_subject.clone()),
            record_bytes_max: usize::try_from(self.max_record_bytes.0).unwrap_or(usize::MAX),
            tcp_port: self.tcp_port,
            syslog_tcp_port: self.syslog_tcp_port,
            syslog_udp_port: self.syslog_udp_port,
            syslog_udp_buffer_bytes: self
                .syslog_udp_buffer
                .map(|b| usize::try_from(b.0).unwrap_or(usize::MAX)),
            irc_colours: self.irc_colours,
            allow_from: self
                .allow_from
                .iter()
                .filter_map(|n| parse_network(n).ok())
                .collect(),
        }
    }

    /// `flow` with the log subjects' default treatment after the configured rules (the
    /// first matching rule wins, so the file's own rules for these subjects come first):
    /// `logs.error` and `logs.security` at high priority, never shed and written at once;
    /// `logs.debug.>` and `logs.all` shed (`drop_new`) for a watcher that falls behind;
    /// `logs.ingest(.>)` under `stall_publishers`, so a publisher flooding the log service
    /// is paced to the rate it parses and routes, and no log is shed before its level is
    /// known.
    pub fn with_default_flow(&self, mut flow: FlowConfig) -> FlowConfig {
        if !self.enabled {
            return flow;
        }
        for subjects in ["logs.error", "logs.security"] {
            flow.priority_rules.push(SubjectRule {
                subjects: subjects.into(),
                value: Priority::High,
            });
        }
        for subjects in ["logs.debug.>", "logs.all"] {
            flow.policy_rules.push(SubjectRule {
                subjects: subjects.into(),
                value: Policy::DropNew,
            });
        }
        for subjects in ["logs.ingest", "logs.ingest.>"] {
            flow.policy_rules.push(SubjectRule {
                subjects: subjects.into(),
                value: Policy::StallPublishers,
            });
        }
        flow
    }

    /// Compiles the rules (so a bad one stops the start, named with its index) and
    /// checks the size limit.
    pub fn validate(&self) -> Result<(), String> {
        if self.allow_from.len() > NETWORKS_MAX {
            return Err(format!(
                "logs.allow_from lists {} networks; at most {NETWORKS_MAX}",
                self.allow_from.len()
            ));
        }
        for n in &self.allow_from {
            parse_network(n)?;
        }
        let size = self.max_record_bytes.0;
        if !(64..=1024 * 1024).contains(&size) {
            return Err(format!(
                "logs.max_record_bytes must be from 64B to 1MiB, got {size}"
            ));
        }
        if let Some(b) = self.syslog_udp_buffer {
            if !(4096..=256 * 1024 * 1024).contains(&b.0) {
                return Err(format!(
                    "logs.syslog_udp_buffer must be from 4KiB to 256MiB, got {}",
                    b.0
                ));
            }
        }
        let engine = self.engine();
        Rules::compile(&engine.routes, engine.all_subject.as_deref())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LogsSection, String> {
        let s: LogsSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map(|()| s)
    }

    #[test]
    fn rules_from_toml() {
        let s = parse(
            "enabled = true\n\
             [[route]]\nto = \"logs.error\"\nlevel = [\"ERROR\", \"FATAL\"]\n\
             [[route]]\nto = \"logs.{app}.{level}\"\nregex = 'timeout after \\d+ms'\nstop = true\n",
        )
        .expect("valid");
        let e = s.engine();
        assert_eq!(e.routes.len(), 2);
        assert!(e.routes[1].stop);
        assert_eq!(e.all_subject.as_deref(), Some("logs.all"));
    }

    #[test]
    fn a_bad_rule_is_named() {
        let e = parse("[[route]]\nto = \"ok\"\n[[route]]\nto = \"a\"\nregex = \"(\"\n")
            .expect_err("bad");
        assert!(e.starts_with("logs.route[1]: regex"), "{e}");
        let e = parse("[[route]]\nto = \"a\"\nlevl = [\"x\"]\n").expect_err("unknown key");
        assert!(e.contains("levl"), "{e}");
    }
}
