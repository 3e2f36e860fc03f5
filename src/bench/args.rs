//! The `shardcast bench` command line: scenarios and their options. Flag names are part of
//! the interface (`benches/compare.sh` and users' scripts call them).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::units::parse_duration;

/// What the load generator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Publishers only (pair with `sub` in another process, or measure ingest).
    Pub,
    /// Subscribers only: wait for `--msgs` messages per subject from publishers elsewhere.
    Sub,
    /// P publishers and S subscribers on one subject, or spread over `--subjects K`.
    #[value(alias = "fanout")]
    Pubsub,
    /// S subscribers in one queue group: each message goes to exactly one of them.
    Queue,
    /// Request/reply round trips: `--pubs` requesters, `--subs` responders (one queue group).
    Reqrep,
    /// Open `--subs` idle subscribed connections and hold them for `--duration`.
    Conns,
    /// Publish at a fixed `--rate` and measure end-to-end latency (coordinated-omission corrected).
    Latency,
    /// `--subs` IRC clients in one channel (`#PREFIX`, at `--irc-url`) and one publisher into
    /// it: a NATS client publishing to the subject PREFIX, or an IRC client (`--irc-publisher`).
    Irc,
    /// Log ingest: `--msgs` logs sent over `--log-input` and routed by 20 rules, each
    /// channel watched by `--watchers` NATS subscribers (or counted at `--log-sink`).
    Logs,
}

/// Where the `logs` scenario sends its logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogInputArg {
    /// Published to `logs.ingest.bench` over NATS (`--url`).
    Nats,
    /// The plain TCP line port (`--log-addr`).
    Tcp,
    /// RFC 5424 over TCP, one per line (`--log-addr`).
    SyslogTcp,
    /// RFC 5424 over UDP, one per datagram (`--log-addr`).
    SyslogUdp,
}

/// What `logs --print-config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogConfigKind {
    /// The `[logs]` section with the 20 rules, for shardcast.
    Shardcast,
    /// The same routing for rsyslog (imtcp on `--log-addr`'s port, omfwd to `--log-sink`).
    Rsyslog,
}

/// Who publishes into the channel in the `irc` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IrcPublisher {
    /// One NATS connection (`--url`) publishing to the channel's subject (shardcast only).
    Nats,
    /// One IRC connection (`--irc-url`) sending PRIVMSG to the channel (any IRC server).
    Irc,
}

/// The shortest `irc` payload: a sequence number and a timestamp in ASCII.
pub const IRC_PAYLOAD_BYTES_MIN: usize = 40;
/// The longest: a PRIVMSG line with the channel and a server's prefix stays under 512 bytes.
pub const IRC_PAYLOAD_BYTES_MAX: usize = 400;

/// `shardcast bench <scenario> [options]`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Server to measure: nats://HOST:PORT or HOST:PORT (any NATS-protocol server).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// Publishing connections (requesters for `reqrep`).
    #[arg(long, default_value_t = 1)]
    pub pubs: usize,
    /// Subscribing connections (responders for `reqrep`, idle connections for `conns`).
    #[arg(long, default_value_t = 1)]
    pub subs: usize,
    /// Subjects to spread over: publishers cycle through them, subscriber i takes subject i mod K.
    #[arg(long, default_value_t = 1)]
    pub subjects: usize,
    /// Extra subscribers that subscribe to the same subjects and never read (slow-consumer test).
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Messages to publish in total, over all publishers (requests for `reqrep`).
    #[arg(long, default_value_t = 100_000)]
    pub msgs: u64,
    /// Publish for this long instead of counting messages (e.g. 5s); for `conns`, how long to hold.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Payload bytes per message. 8 or more carries a timestamp, so latency is measured.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Total messages per second over all publishers; 0 publishes as fast as possible.
    /// `latency` defaults to 10000.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Publish (and discard) for this long before measuring, e.g. 1s.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Generator threads (one executor each); default: the CPUs this process may use.
    #[arg(long)]
    pub threads: Option<usize>,
    /// The server's process id: report its CPU time per delivered message and its memory.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// The server's HTTP monitoring address (`http://127.0.0.1:8222`): report what it
    /// dropped during the run (from /varz: slow consumers, and shardcast's drops by reason).
    #[arg(long, value_name = "URL")]
    pub monitor: Option<String>,
    /// Subject prefix; subjects are PREFIX.0 … PREFIX.K-1.
    #[arg(long, default_value = "bench")]
    pub subject: String,
    /// Connect over TLS (started after INFO, as NATS clients do), trusting --tls-ca.
    #[arg(long, requires = "tls_ca")]
    pub tls: bool,
    /// The CA (PEM) that signed the server's certificate, for --tls.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// After the publishers finish, how long a subscriber may go without receiving before the
    /// missing messages are counted as lost.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// A free-text label written into --json and --csv output (e.g. the server's name).
    #[arg(long, default_value = "")]
    pub label: String,
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Append one CSV row to FILE (a header is written first when the file is new or empty).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the latency percentile distribution (HdrHistogram text format, µs) to FILE.
    #[arg(long, value_name = "FILE")]
    pub hist: Option<PathBuf>,
    /// `irc`: the IRC server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub irc_url: Option<String>,
    /// `irc`: who publishes into the channel.
    #[arg(long, value_enum, default_value = "nats")]
    pub irc_publisher: IrcPublisher,
    /// `irc`: the IRC publisher becomes an IRC operator (`OPER NAME PASSWORD`) and sets user
    /// mode +F, which lifts flood throttling on servers that have it (ngircd).
    #[arg(long, value_name = "NAME:PASSWORD")]
    pub irc_oper: Option<String>,
    /// `logs`: the input the logs are sent over.
    #[arg(long, value_enum, default_value = "tcp")]
    pub log_input: LogInputArg,
    /// `logs`: the input's address, HOST:PORT (all inputs but `nats`).
    #[arg(long, value_name = "HOST:PORT")]
    pub log_addr: Option<String>,
    /// `logs`: NATS subscribers per routed subject.
    #[arg(long, default_value_t = 3)]
    pub watchers: usize,
    /// `logs`: instead of NATS watchers, listen on 127.0.0.1:PORT and count the lines a
    /// relay (rsyslog) forwards there, one connection per watcher.
    #[arg(long, value_name = "PORT")]
    pub log_sink: Option<u16>,
    /// `logs`: print the routing configuration the scenario expects and exit.
    #[arg(long, value_enum)]
    pub print_config: Option<LogConfigKind>,
}

impl BenchArgs {
    /// Checks combinations clap cannot express. The message names the flag and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.subjects == 0 {
            return Err("--subjects must be at least 1".into());
        }
        if self.size > 64 * 1024 * 1024 {
            return Err("--size is limited to 64 MiB".into());
        }
        if !self.warmup.is_zero() && self.size < 8 {
            return Err(
                "--warmup needs --size 8 or more (warm-up messages are marked in the payload)"
                    .into(),
            );
        }
        let needs = |pubs: bool, subs: bool| -> Result<(), String> {
            if pubs && self.pubs == 0 {
                return Err(format!("{:?} needs --pubs 1 or more", self.scenario).to_lowercase());
            }
            if subs && self.subs == 0 {
                return Err(format!("{:?} needs --subs 1 or more", self.scenario).to_lowercase());
            }
            Ok(())
        };
        match self.scenario {
            Scenario::Pub => needs(true, false)?,
            Scenario::Sub | Scenario::Conns => needs(false, true)?,
            Scenario::Pubsub | Scenario::Queue | Scenario::Reqrep => needs(true, true)?,
            Scenario::Irc => self.validate_irc()?,
            Scenario::Logs => {}
            Scenario::Latency => {
                needs(true, true)?;
                if self.size < 8 {
                    return Err(
                        "latency needs --size 8 or more (the payload carries a timestamp)".into(),
                    );
                }
                if self.rate == Some(0) {
                    return Err("latency needs a fixed --rate (messages per second), not 0".into());
                }
            }
        }
        if self.scenario == Scenario::Reqrep && self.size < 8 {
            return Err("reqrep needs --size 8 or more (the payload carries a timestamp)".into());
        }
        Ok(())
    }

    /// The `irc` scenario's own rules: one publisher, short text payloads, no warm-up.
    fn validate_irc(&self) -> Result<(), String> {
        if self.irc_url.is_none() {
            return Err("irc needs --irc-url HOST:PORT (the IRC server)".into());
        }
        if self.subs == 0 {
            return Err("irc needs --subs 1 or more".into());
        }
        if self.pubs != 1 || self.subjects != 1 || self.stalled != 0 {
            return Err(
                "irc runs one publisher into one channel: --pubs 1, --subjects 1, no --stalled"
                    .into(),
            );
        }
        if !self.warmup.is_zero() {
            return Err("irc has no warm-up (--warmup)".into());
        }
        if !(IRC_PAYLOAD_BYTES_MIN..=IRC_PAYLOAD_BYTES_MAX).contains(&self.size) {
            return Err(format!(
                "irc sends text lines: --size must be {IRC_PAYLOAD_BYTES_MIN}–{IRC_PAYLOAD_BYTES_MAX} bytes"
            ));
        }
        if self.irc_oper.as_deref().is_some_and(|o| !o.contains(':')) {
            return Err("--irc-oper takes NAME:PASSWORD".into());
        }
        if self.irc_oper.is_some() && self.irc_publisher != IrcPublisher::Irc {
            return Err("--irc-oper is for --irc-publisher irc".into());
        }
        Ok(())
    }

    /// Messages per second over all publishers; 0 means as fast as possible.
    pub fn rate_total(&self) -> u64 {
        match (self.scenario, self.rate) {
            (_, Some(r)) => r,
            (Scenario::Latency, None) => 10_000,
            _ => 0,
        }
    }

    /// The credentials in `--url` (`nats://user:password@host`, `nats://token@host`) as
    /// CONNECT fields (`,"user":…,"pass":…`); "" when it has none.
    pub fn connect_auth(&self) -> String {
        let rest = self.url.strip_prefix("nats://").unwrap_or(&self.url);
        let json = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        match rest.rsplit_once('@').map(|(creds, _)| creds) {
            None => String::new(),
            Some(creds) => match creds.split_once(':') {
                Some((user, pass)) => format!(",\"user\":{},\"pass\":{}", json(user), json(pass)),
                None => format!(",\"auth_token\":{}", json(creds)),
            },
        }
    }

    /// The TLS client setup for `--tls`: the CA trusted, the host name checked.
    pub fn tls_target(
        &self,
    ) -> Result<Option<(std::sync::Arc<rustls::ClientConfig>, String)>, String> {
        let (true, Some(ca)) = (self.tls, &self.tls_ca) else {
            return Ok(None);
        };
        let config = super::stream::client_config(ca)?;
        let host_port = self.host_port()?;
        let host = host_port
            .rsplit_once(':')
            .map_or(host_port.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Some((config, host)))
    }

    /// `HOST:PORT` from `--url`.
    pub fn host_port(&self) -> Result<String, String> {
        let rest = self.url.strip_prefix("nats://").unwrap_or(&self.url);
        if rest.contains("://") {
            return Err(format!(
                "unsupported URL scheme in \"{}\" (use nats://HOST:PORT)",
                self.url
            ));
        }
        let rest = rest.trim_end_matches('/');
        // Credentials (user:password@ or token@) go in CONNECT; see `connect_auth`.
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        Ok(if rest.contains(':') {
            rest.to_string()
        } else {
            format!("{rest}:4222")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn duration_flags_take_the_shared_grammar() {
        let args = |extra: &[&str]| {
            let mut argv = vec!["shardcast", "bench", "pub"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv)?.command {
                Command::Bench(args) => Ok::<BenchArgs, clap::Error>(*args),
                other => panic!("bench expected, got {other:?}"),
            }
        };
        let a = args(&["--duration", "1.5s", "--warmup", "250ms", "--timeout", "1m"])
            .expect("valid durations");
        assert_eq!(a.duration, Some(Duration::from_millis(1500)));
        assert_eq!(a.warmup, Duration::from_millis(250));
        assert_eq!(a.timeout, Duration::from_secs(60));
        let d = args(&[]).expect("defaults");
        assert_eq!(
            (d.warmup, d.timeout),
            (Duration::ZERO, Duration::from_secs(5))
        );
        let e = args(&["--duration", "5"]).unwrap_err().to_string();
        assert!(e.contains("--duration") && e.contains("has no unit"), "{e}");
        let e = args(&["--timeout", "5 parsecs"]).unwrap_err().to_string();
        assert!(e.contains("unknown duration unit"), "{e}");
    }
}
