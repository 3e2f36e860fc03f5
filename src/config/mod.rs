//! The configuration file: TOML in, plain engine types out. Every option has a default
//! (the embedded `tuning/shardcast.toml` documents them all), unknown keys are refused,
//! and errors name the key and the bad value.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use shards::limits::SHARDS_MAX;
use shards::metrics::MetricsConfig;
use shards::server::{ServerConfig, ShardCount};
use shards::Limits;

use crate::units;

pub mod auth;
pub mod flow;
pub mod history;
pub mod irc;
pub mod leafnode;
pub mod logs;
pub mod shutdown;
pub mod tls;
mod values;

pub use values::{ByteSize, Dur};

use auth::AuthSection;
use flow::{LoadSection, MemorySection, PrioritySection, RateLimitSection, SlowConsumerSection};
use history::HistorySection;
use irc::IrcSection;
use leafnode::LeafnodeSection;
use logs::LogsSection;
use shutdown::{connect_url, ShutdownSection, CONNECT_URLS_MAX};
use tls::TlsSection;

/// The commented default configuration, built into the binary (`shardcast config`).
pub const DEFAULT_TOML: &str = include_str!("../../tuning/shardcast.toml");

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    pub port: u16,
    /// "auto" (one per allowed CPU) or a number.
    pub shards: Shards,
    /// Name announced to clients; defaults to the generated server id.
    pub server_name: Option<String>,
    /// How long an idle shard polls before parking its thread.
    pub spin_before_park: Dur,
    /// File the server writes its process id to ("" = none).
    pub pid_file: String,
    /// The deployment's other nodes (`host:port`), told to clients in INFO.
    pub connect_urls: Vec<String>,
    pub limits: LimitsSection,
    pub keepalive: KeepaliveSection,
    pub batch: BatchSection,
    pub ring: RingSection,
    pub shutdown: ShutdownSection,
    pub log: LogSection,
    pub monitoring: MonitoringSection,
    pub load: LoadSection,
    pub rate_limit: RateLimitSection,
    pub memory: MemorySection,
    pub slow_consumer: SlowConsumerSection,
    pub priority: PrioritySection,
    pub irc: IrcSection,
    pub history: HistorySection,
    pub logs: LogsSection,
    pub auth: AuthSection,
    pub tls: TlsSection,
    pub leafnode: LeafnodeSection,
}

/// The HTTP monitoring endpoint and what the shards measure for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitoringSection {
    /// HTTP port for /varz, /connz, /metrics, the dashboard…; unset = off, 0 = a free one.
    pub port: Option<u16>,
    /// Address the monitoring port listens on ("" = the same as `host`).
    pub host: String,
    /// Time every delivery: end-to-end latency, queue wait, write sizes.
    pub latency: bool,
    /// Busiest subjects each shard reports in /channelz (0 = none tracked).
    pub top_subjects: usize,
    /// Each shard logs a one-line summary this often ("0s" = never).
    pub stats_log_interval: Dur,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shards {
    Auto,
    Count(usize),
}

impl<'de> Deserialize<'de> for Shards {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(i64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "auto" => Ok(Shards::Auto),
            Raw::Count(n) => match usize::try_from(n) {
                Ok(n) if (1..=SHARDS_MAX).contains(&n) => Ok(Shards::Count(n)),
                _ => Err(serde::de::Error::custom(format!(
                    "shards must be \"auto\" or a number from 1 to {SHARDS_MAX}, got {n}"
                ))),
            },
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "shards must be \"auto\" or a number from 1 to {SHARDS_MAX}, got \"{w}\""
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    pub max_connections: usize,
    /// Per connection; 0 = unlimited.
    pub max_subscriptions: usize,
    /// Connections from one IP address at once; 0 = unlimited.
    pub max_connections_per_ip: usize,
    /// New connections per second, whole server; 0 = unlimited.
    pub accept_rate: u32,
    /// Connections accepted at once before accept_rate applies.
    pub accept_burst: u32,
    pub max_control_line: ByteSize,
    pub max_payload: ByteSize,
    pub max_pending: ByteSize,
    pub write_deadline: Dur,
    /// Pending output above which a subscriber is congested and its publishers pause.
    pub stall_above: ByteSize,
    /// Publisher pause for a congested subscriber that makes no progress; "0ms" disables.
    pub stall_budget: Dur,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeepaliveSection {
    pub ping_interval: Dur,
    pub max_pings_out: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSection {
    pub max_bytes: ByteSize,
    pub flush_delay_us: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingSection {
    pub slots: usize,
    pub overflow_batches_max: usize,
    pub pool_chunks_max: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter: "info", "debug", "shards=debug,info"… RUST_LOG overrides it.
    pub level: String,
    /// Log file ("" = standard error); reopened on SIGUSR1.
    pub file: String,
    /// Timestamp every line.
    pub time: bool,
    /// Line format.
    pub format: LogFormat,
    /// Protocol trace: every client operation and server reply, at TRACE level.
    pub trace: bool,
    /// Payload bytes shown per traced message.
    pub trace_payload_max: ByteSize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "0.0.0.0".into(),
            port: 4222,
            shards: Shards::Auto,
            server_name: None,
            spin_before_park: Dur(Limits::default().spin_before_park),
            pid_file: String::new(),
            connect_urls: Vec::new(),
            limits: LimitsSection::default(),
            keepalive: KeepaliveSection::default(),
            batch: BatchSection::default(),
            ring: RingSection::default(),
            shutdown: ShutdownSection::default(),
            log: LogSection::default(),
            monitoring: MonitoringSection::default(),
            load: LoadSection::default(),
            rate_limit: RateLimitSection::default(),
            memory: MemorySection::default(),
            slow_consumer: SlowConsumerSection::default(),
            priority: PrioritySection::default(),
            irc: IrcSection::default(),
            history: HistorySection::default(),
            logs: LogsSection::default(),
            auth: AuthSection::default(),
            tls: TlsSection::default(),
            leafnode: LeafnodeSection::default(),
        }
    }
}

impl Default for MonitoringSection {
    fn default() -> Self {
        let m = MetricsConfig::default();
        MonitoringSection {
            port: None,
            host: String::new(),
            latency: m.latency,
            top_subjects: m.top_subjects,
            stats_log_interval: Dur(m.stats_log_interval),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        let l = Limits::default();
        LimitsSection {
            max_connections: l.connections_max,
            max_subscriptions: l.subscriptions_max,
            max_connections_per_ip: l.connections_per_ip_max,
            accept_rate: l.accept_rate,
            accept_burst: l.accept_burst,
            max_control_line: ByteSize(l.control_line_bytes_max as u64),
            max_payload: ByteSize(l.payload_bytes_max as u64),
            max_pending: ByteSize(l.pending_bytes_max as u64),
            write_deadline: Dur(l.write_deadline),
            stall_above: ByteSize(l.stall_above_bytes as u64),
            stall_budget: Dur(l.stall_budget),
        }
    }
}

impl Default for KeepaliveSection {
    fn default() -> Self {
        let l = Limits::default();
        KeepaliveSection {
            ping_interval: Dur(l.ping_interval),
            max_pings_out: l.pings_out_max,
        }
    }
}

impl Default for BatchSection {
    fn default() -> Self {
        let l = Limits::default();
        BatchSection {
            max_bytes: ByteSize(l.write_bytes_max as u64),
            flush_delay_us: l.flush_delay.as_micros() as u64,
        }
    }
}

impl Default for RingSection {
    fn default() -> Self {
        let l = Limits::default();
        RingSection {
            slots: l.ring_slots,
            overflow_batches_max: l.ring_overflow_batches_max,
            pool_chunks_max: l.pool_chunks_max,
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            file: String::new(),
            time: true,
            format: LogFormat::Text,
            trace: false,
            trace_payload_max: ByteSize(64),
        }
    }
}

impl Config {
    /// Parses TOML text; `path` names the source in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.server_config()
            .limits
            .validate()
            .map_err(|e| ConfigError::Invalid {
                path: path.into(),
                message: e.to_string(),
            })?;
        cfg.irc.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        cfg.logs
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.into(),
                message,
            })?;
        cfg.auth
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.into(),
                message,
            })?;
        cfg.tls.validate().map_err(|message| ConfigError::Invalid {
            path: path.into(),
            message,
        })?;
        cfg.leafnode
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.into(),
                message,
            })?;
        cfg.history
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.into(),
                message,
            })?;
        let invalid = |message| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        cfg.shutdown.validate().map_err(invalid)?;
        if cfg.connect_urls.len() > CONNECT_URLS_MAX {
            return Err(invalid(format!(
                "connect_urls lists more than {CONNECT_URLS_MAX}"
            )));
        }
        for url in &cfg.connect_urls {
            connect_url(url).map_err(invalid)?;
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// The engine's view of this configuration.
    pub fn server_config(&self) -> ServerConfig {
        let to_usize = |b: ByteSize| usize::try_from(b.0).unwrap_or(usize::MAX);
        ServerConfig {
            host: self.host.clone(),
            port: self.port,
            shards: match self.shards {
                Shards::Auto => ShardCount::Auto,
                Shards::Count(n) => ShardCount::Fixed(n),
            },
            server_name: self.server_name.clone(),
            limits: Limits {
                control_line_bytes_max: to_usize(self.limits.max_control_line),
                payload_bytes_max: to_usize(self.limits.max_payload),
                pending_bytes_max: to_usize(self.limits.max_pending),
                write_deadline: self.limits.write_deadline.0,
                connections_max: self.limits.max_connections,
                subscriptions_max: self.limits.max_subscriptions,
                connections_per_ip_max: self.limits.max_connections_per_ip,
                accept_rate: self.limits.accept_rate,
                accept_burst: self.limits.accept_burst,
                ping_interval: self.keepalive.ping_interval.0,
                pings_out_max: self.keepalive.max_pings_out,
                stall_above_bytes: to_usize(self.limits.stall_above),
                stall_budget: self.limits.stall_budget.0,
                write_bytes_max: to_usize(self.batch.max_bytes),
                flush_delay: Duration::from_micros(self.batch.flush_delay_us),
                ring_slots: self.ring.slots,
                ring_overflow_batches_max: self.ring.overflow_batches_max,
                pool_chunks_max: self.ring.pool_chunks_max,
                shutdown_grace: self.shutdown.grace.0,
                spin_before_park: self.spin_before_park.0,
                flow: self.logs.with_default_flow(flow::flow_config(
                    &self.load,
                    &self.rate_limit,
                    &self.memory,
                    &self.slow_consumer,
                    &self.priority,
                )),
            },
            metrics: MetricsConfig {
                latency: self.monitoring.latency,
                top_subjects: self.monitoring.top_subjects,
                stats_log_interval: self.monitoring.stats_log_interval.0,
            },
            irc: self.irc.engine(&self.host),
            history: self.history.engine(),
            logs: self.logs.engine(),
            auth: self.auth.engine(),
            tls: self.tls.engine(),
            leaf: self.leafnode.engine(self.server_name.as_deref()),
            connect_urls: self
                .connect_urls
                .iter()
                .filter_map(|u| connect_url(u).ok())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_example_equals_the_defaults() {
        let parsed = Config::from_toml(DEFAULT_TOML, "tuning/shardcast.toml").expect("valid");
        assert_eq!(parsed, Config::default());
        assert_eq!(parsed.server_config().limits, Limits::default());
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(
            Config::from_toml("", "x").expect("valid"),
            Config::default()
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[limits]\nmax_pendng = 5\n", "f.toml").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("max_pendng"), "{msg}");
        assert!(msg.contains("f.toml"), "{msg}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::from_toml("shards = \"many\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"many\"") && e.contains("shards"), "{e}");
        let e = Config::from_toml("[limits]\nwrite_deadline = \"10 parsecs\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10 parsecs") && e.contains("write_deadline"),
            "{e}"
        );
        let e = Config::from_toml("[limits]\nmax_pending = \"lots\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lots") && e.contains("max_pending"), "{e}");
    }

    #[test]
    fn shards_beyond_the_engine_maximum_are_refused() {
        let most = format!("shards = {SHARDS_MAX}\n");
        let c = Config::from_toml(&most, "f").expect("the maximum is allowed");
        assert_eq!(c.shards, Shards::Count(SHARDS_MAX));
        for n in [0, SHARDS_MAX as i64 + 1, -1] {
            let e = Config::from_toml(&format!("shards = {n}\n"), "f")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("from 1 to {SHARDS_MAX}, got {n}")),
                "{e}"
            );
        }
    }

    #[test]
    fn spin_before_park_is_bounded() {
        let ok = Config::from_toml("spin_before_park = \"200us\"\n", "f").expect("valid");
        assert_eq!(
            ok.server_config().limits.spin_before_park,
            Duration::from_micros(200)
        );
        let e = Config::from_toml("spin_before_park = \"1s\"\n", "f")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("spin_before_park (us) must be at most 10000"),
            "{e}"
        );
    }

    #[test]
    fn limits_are_cross_checked() {
        let e = Config::from_toml(
            "[limits]\nmax_payload = \"2MiB\"\nmax_pending = \"1MiB\"\n",
            "f",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("max_payload") && e.contains("max_pending"),
            "{e}"
        );
    }

    #[test]
    fn durations_and_sizes_take_the_shared_grammar() {
        let c = Config::from_toml(
            "[limits]\nwrite_deadline = \"1.5s\"\nmax_control_line = \"2 KiB\"\n",
            "f",
        )
        .expect("valid");
        assert_eq!(c.limits.write_deadline, Dur(Duration::from_millis(1500)));
        assert_eq!(c.limits.max_control_line, ByteSize(2048));
        let c = Config::from_toml("shards = 3\n[batch]\nflush_delay_us = 50\n", "f").expect("ok");
        assert_eq!(c.shards, Shards::Count(3));
        assert_eq!(
            c.server_config().limits.flush_delay,
            Duration::from_micros(50)
        );
    }

    #[test]
    fn a_duration_without_a_unit_is_refused_as_string_or_number() {
        for value in ["\"10\"", "10", "1.5"] {
            let e = Config::from_toml(&format!("[shutdown]\ngrace = {value}\n"), "f")
                .unwrap_err()
                .to_string();
            assert!(e.contains("grace") && e.contains("has no unit"), "{e}");
        }
        let e = Config::from_toml("[shutdown]\ngrace = true\n", "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a duration with a unit"), "{e}");
    }
}
