//! The `shardcast` binary's library: configuration loading, the command line, the load
//! generator (`shardcast bench`) and the units both read (`units`). The engine itself lives in the `shards` crate.

pub mod bench;
pub mod cli;
pub mod config;
pub mod units;
