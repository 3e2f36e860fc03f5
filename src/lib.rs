//! The `shardcast` binary's library: configuration loading, the command line, running the
//! server as operators expect (`serve`: logging, signals, reload, pid file, systemd), the
//! load generator (`shardcast bench`), `shardcast signal`, and the units they all read. The engine itself lives in the `shards` crate.

pub mod bench;
pub mod cli;
pub mod config;
pub mod logging;
pub mod monitor;
pub mod passwd;
pub mod reload;
pub mod serve;
pub mod signal;
pub mod units;
