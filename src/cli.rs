//! The command line: `shardcast serve` runs the server, `shardcast config` prints the
//! embedded default configuration, `shardcast bench` runs the load generator,
//! `shardcast signal` signals a running server. Flag names are part of the interface;
//! the logging and process flags are nats-server's (`-l`, `-D`, `-V`, `-T`, `-P`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use shards::limits::SHARDS_MAX;

use crate::config::{Config, ConfigError, LogFormat, Shards};
use crate::signal::SignalArgs;

#[derive(Debug, Parser)]
#[command(
    name = "shardcast",
    version,
    about = "A thread-per-core NATS-protocol broadcast server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (embedded defaults unless -c is given).
    Serve(Box<ServeArgs>),
    /// Print the default configuration file, with every option documented.
    Config,
    /// Load-generate against any NATS-protocol server and report rates, latency and loss.
    Bench(Box<crate::bench::BenchArgs>),
    /// Send a signal to a running server: stop, quit, term, reopen (the log file),
    /// reload (the configuration), ldm (lame duck mode).
    Signal(SignalArgs),
    /// Print the bcrypt hash of a password (read from the terminal or standard input) for
    /// `[[auth.users]] password`.
    Passwd(crate::passwd::PasswdArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); see `shardcast config` for every option.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `host`).
    #[arg(short = 'a', long = "addr", value_name = "ADDR")]
    pub addr: Option<String>,
    /// Port to listen on; 0 picks a free one (overrides `port`).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,
    /// Number of shards, or "auto" (overrides `shards`).
    #[arg(long = "shards", value_name = "N|auto", value_parser = parse_shards)]
    pub shards: Option<Shards>,
    /// Log to FILE instead of standard error; SIGUSR1 reopens it (overrides `log.file`).
    #[arg(short = 'l', long = "log", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Debug logging (sets `log.level` to "debug").
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Protocol trace: log every client operation and every reply (sets `log.trace`).
    #[arg(short = 'V', long = "trace")]
    pub trace: bool,
    /// Timestamp log lines; `-T=false` leaves them out (overrides `log.time`).
    #[arg(
        short = 'T',
        long = "logtime",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub logtime: Option<bool>,
    /// Log line format (overrides `log.format`).
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Write the process id to FILE (overrides `pid_file`).
    #[arg(short = 'P', long = "pid", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Serve HTTP monitoring (/varz, /connz, /metrics, the dashboard…) on PORT; 0 picks a
    /// free one (overrides `monitoring.port`).
    #[arg(short = 'm', long = "http_port", value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Serve IRC clients on PORT; 0 picks a free one (overrides `irc.port`).
    #[arg(long = "irc", value_name = "PORT")]
    pub irc_port: Option<u16>,
    /// Take logs, one per line, on TCP port PORT and route them (turns `[logs]` on; 0
    /// picks a free one; overrides `logs.tcp_port`).
    #[arg(long = "log-tcp", value_name = "PORT")]
    pub log_tcp_port: Option<u16>,
    /// Take syslog messages over TCP on PORT and route them (turns `[logs]` on).
    #[arg(long = "syslog-tcp", value_name = "PORT")]
    pub syslog_tcp_port: Option<u16>,
    /// Take syslog datagrams on UDP port PORT and route them (turns `[logs]` on).
    #[arg(long = "syslog-udp", value_name = "PORT")]
    pub syslog_udp_port: Option<u16>,
    /// Require this user name in CONNECT (with --pass; overrides `auth.user`).
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// The password for --user (plain or a bcrypt hash; overrides `auth.password`).
    #[arg(long = "pass", value_name = "PASSWORD")]
    pub pass: Option<String>,
    /// Require this token in CONNECT (overrides `auth.token`).
    #[arg(long = "auth", value_name = "TOKEN")]
    pub auth: Option<String>,
    /// The server certificate for TLS (turns TLS on with --tlskey; overrides `tls.cert_file`).
    #[arg(long = "tlscert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key for TLS (overrides `tls.key_file`).
    #[arg(long = "tlskey", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The CAs client certificates must chain to (overrides `tls.ca_file`).
    #[arg(long = "tlscacert", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Clients must present a certificate (sets `tls.verify`).
    #[arg(long = "tlsverify")]
    pub tls_verify: bool,
}

fn parse_shards(s: &str) -> Result<Shards, String> {
    if s == "auto" {
        return Ok(Shards::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=SHARDS_MAX).contains(&n) => Ok(Shards::Count(n)),
        _ => Err(format!(
            "expected \"auto\" or a number from 1 to {SHARDS_MAX}, got \"{s}\""
        )),
    }
}

impl ServeArgs {
    /// The configuration file (or the defaults) with the flags applied on top.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(addr) = &self.addr {
            cfg.host = addr.clone();
        }
        if let Some(port) = self.port {
            cfg.port = port;
        }
        if let Some(shards) = self.shards {
            cfg.shards = shards;
        }
        if let Some(file) = &self.log_file {
            cfg.log.file = file.display().to_string();
        }
        if self.debug {
            cfg.log.level = "debug".into();
        }
        if self.trace {
            cfg.log.trace = true;
        }
        if let Some(time) = self.logtime {
            cfg.log.time = time;
        }
        if let Some(format) = self.log_format {
            cfg.log.format = format;
        }
        if let Some(pid) = &self.pid_file {
            cfg.pid_file = pid.display().to_string();
        }
        if let Some(port) = self.http_port {
            cfg.monitoring.port = Some(port);
        }
        if let Some(port) = self.irc_port {
            cfg.irc.port = Some(port);
        }
        if let Some(port) = self.log_tcp_port {
            cfg.logs.enabled = true;
            cfg.logs.tcp_port = Some(port);
        }
        if let Some(port) = self.syslog_tcp_port {
            cfg.logs.enabled = true;
            cfg.logs.syslog_tcp_port = Some(port);
        }
        if let Some(port) = self.syslog_udp_port {
            cfg.logs.enabled = true;
            cfg.logs.syslog_udp_port = Some(port);
        }
        if let Some(user) = &self.user {
            cfg.auth.user = Some(user.clone());
        }
        if let Some(pass) = &self.pass {
            cfg.auth.password = Some(crate::config::auth::SecretText(pass.clone()));
        }
        if let Some(token) = &self.auth {
            cfg.auth.token = Some(crate::config::auth::SecretText(token.clone()));
        }
        if let Some(f) = &self.tls_cert {
            cfg.tls.cert_file = Some(f.clone());
        }
        if let Some(f) = &self.tls_key {
            cfg.tls.key_file = Some(f.clone());
        }
        if let Some(f) = &self.tls_ca {
            cfg.tls.ca_file = Some(f.clone());
        }
        if self.tls_verify {
            cfg.tls.verify = true;
        }
        cfg.tls.validate().map_err(|message| ConfigError::Invalid {
            path: "the command line".into(),
            message,
        })?;
        if self.user.is_some() || self.pass.is_some() || self.auth.is_some() {
            cfg.auth
                .validate()
                .map_err(|message| ConfigError::Invalid {
                    path: "the command line".into(),
                    message,
                })?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let cli = Cli::try_parse_from([
            "shardcast",
            "serve",
            "-a",
            "127.0.0.1",
            "-p",
            "0",
            "--shards",
            "2",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        let cfg = args.resolve().expect("defaults");
        assert_eq!(cfg.host, "127.0.0.1");
        assert_eq!(cfg.port, 0);
        assert_eq!(cfg.shards, Shards::Count(2));
    }

    #[test]
    fn nats_server_auth_and_tls_flags() {
        let args = |extra: &[&str]| {
            let mut all = vec!["shardcast", "serve"];
            all.extend_from_slice(extra);
            let Command::Serve(args) = Cli::try_parse_from(all).expect("parses").command else {
                panic!("serve expected")
            };
            args.resolve()
        };
        let cfg = args(&["--user", "u", "--pass", "p"]).expect("valid");
        assert_eq!(cfg.auth.engine().users[0].name, "u");
        let cfg = args(&["--auth", "t0k"]).expect("valid");
        assert!(cfg.auth.engine().token.is_some());
        let e = args(&["--auth", "t", "--user", "u", "--pass", "p"]).unwrap_err();
        assert!(e.to_string().contains("cannot both be set"), "{e}");
        let e = args(&["--tlscert", "c.pem"]).unwrap_err();
        assert!(e.to_string().contains("tls.key_file is not"), "{e}");
        let cfg = args(&["--tlscert", "c.pem", "--tlskey", "k.pem"]).expect("valid");
        assert!(cfg.tls.engine().is_some());
    }

    #[test]
    fn nats_server_logging_flags_combine_and_override_the_file() {
        let cli = Cli::try_parse_from([
            "shardcast",
            "serve",
            "-DV",
            "-T=false",
            "-l",
            "/tmp/x.log",
            "--log-format",
            "json",
            "-P",
            "/tmp/x.pid",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        let cfg = args.resolve().expect("defaults");
        assert_eq!(cfg.log.level, "debug");
        assert!(cfg.log.trace);
        assert!(!cfg.log.time);
        assert_eq!(cfg.log.file, "/tmp/x.log");
        assert_eq!(cfg.log.format, LogFormat::Json);
        assert_eq!(cfg.pid_file, "/tmp/x.pid");
        let cli = Cli::try_parse_from(["shardcast", "serve", "-T"]).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(args.logtime, Some(true));
    }

    #[test]
    fn bad_shards_flag_is_explained() {
        let e = Cli::try_parse_from(["shardcast", "serve", "--shards", "0"]).unwrap_err();
        assert!(
            e.to_string().contains(&format!("from 1 to {SHARDS_MAX}")),
            "{e}"
        );
    }
}
