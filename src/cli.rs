//! The command line: `shardcast serve` runs the server, `shardcast config` prints the
//! embedded default configuration, `shardcast bench` runs the load generator. Flag names are part of the interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use shards::limits::SHARDS_MAX;

use crate::config::{Config, ConfigError, Shards};

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
    Serve(ServeArgs),
    /// Print the default configuration file, with every option documented.
    Config,
    /// Load-generate against any NATS-protocol server and report rates, latency and loss.
    Bench(Box<crate::bench::BenchArgs>),
}

#[derive(Debug, Args)]
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
    fn bad_shards_flag_is_explained() {
        let e = Cli::try_parse_from(["shardcast", "serve", "--shards", "0"]).unwrap_err();
        assert!(
            e.to_string().contains(&format!("from 1 to {SHARDS_MAX}")),
            "{e}"
        );
    }
}
